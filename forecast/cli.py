"""The `forecast` command line. Heavy modules are imported inside commands so --help is instant."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from forecast import __version__
from forecast.errors import ForecastError

app = typer.Typer(
    help="Train GRU forecasters on time series in CSV files, and use them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
T = TypeVar("T")
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    err(f"warning: {message}")


def guarded(action: Callable[[], T]) -> T:
    """Run a command body: ForecastError -> one `Error:` line and exit 1; Ctrl-C -> exit 130.

    While it runs (and only then: the CLI may run inside another program), warnings print as one
    `warning: ...` line each.
    """
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return action()
        except ForecastError as e:
            err(f"Error: {e}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err("Interrupted.")
            raise typer.Exit(130) from None


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"forecast {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Train GRU forecasters on time series in CSV files, and use them."""


RunDir = Annotated[Path, typer.Argument(help="A run directory made by `forecast train`.", show_default=False)]
DataOpt = Annotated[
    str | None, typer.Option("--data", help="A newer CSV with the training columns (default: the training file).")
]


def build_config(config_file: Path | None, data: str | None, flags: dict[str, Any], sets: list[str]) -> Any:
    from forecast import config, pipeline

    demo = config_file is None and data is None
    if demo:
        config_file = pipeline.default_config_path()
    if config_file is not None and config_file.suffix.lower() in DATA_SUFFIXES:
        raise ForecastError(
            f"{config_file} looks like a data file, not a YAML config; train on it with --data {config_file}"
        )
    cfg = config.load_yaml(config_file) if config_file is not None else config.Config()
    demo_data = cfg.data.path
    if data is not None:
        cfg.data.path = data
    for key, value in flags.items():
        if value is not None and value != []:
            config.set_value(cfg, key, value, f"--{key.split('.')[1].replace('_', '-')}")
    cfg = config.apply_overrides(cfg, sets)
    if demo and cfg.data.path == demo_data and not Path(demo_data).is_file():
        # an installed package ships the demo config but not its data, which lives in the repository
        raise ForecastError(
            f"no data given: pass --data FILE.csv (the bundled demo {demo_data} is only in the source repository)"
        )
    return config.check(cfg)


def resume_config(run_dir: Path, given: dict[str, Any]) -> Any:
    """The saved config of an interrupted run; flags that would change it are refused, not ignored."""
    from forecast import config

    ignored = [flag for flag, value in given.items() if value not in (None, [], False)]
    if ignored:
        raise ForecastError(
            f"--resume continues {run_dir} with its saved config; drop {', '.join(ignored)} "
            "(or train a new run without --resume)"
        )
    if not run_dir.is_dir():
        raise ForecastError(f"run directory {str(run_dir)!r} not found")
    if not (run_dir / "config.yaml").is_file():
        raise ForecastError(f"{run_dir} is not a run directory (it has no config.yaml)")
    return config.check(config.load_yaml(run_dir / "config.yaml"))


def on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Let SIGTERM (a scheduler's stop) end training like Ctrl-C, until the block ends."""
    if threading.current_thread() is not threading.main_thread():  # signals are main-thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@app.command()
def train(
    config_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="[CONFIG.yaml]",
            help="YAML config (default: the bundled demo, configs/default.yaml, when --data is not given).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[str | None, typer.Option(help="CSV or Parquet file to train on.")] = None,
    target: Annotated[list[str] | None, typer.Option(help="Column to forecast (repeat for several).")] = None,
    features: Annotated[list[str] | None, typer.Option(help="Extra input column (repeat for several).")] = None,
    lookback: Annotated[int | None, typer.Option(help="Input window length.")] = None,
    horizon: Annotated[int | None, typer.Option(help="Steps to forecast.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per batch.")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="Any config value, e.g. model.hidden_size=32 or data.split.train=8640."
        ),
    ] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default: runs/<data>-<time>).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it holds an earlier run.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue an interrupted run in this directory.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train a model and score it on the test split."""

    def body() -> None:
        from forecast import pipeline, report

        flags = {
            "data.target": target,
            "data.features": features,
            "model.lookback": lookback,
            "model.horizon": horizon,
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.device": device,
            "train.seed": seed,
        }
        if resume is not None:
            given = {
                "CONFIG.yaml": config_file,
                "--data": data,
                "--set": set_,
                "--out": out,
                "--force": force,
                **{f"--{key.split('.')[1].replace('_', '-')}": value for key, value in flags.items()},
            }
            cfg = resume_config(resume, given)
        else:
            cfg = build_config(config_file, data, flags, set_ or [])
        with sigterm_interrupts():
            summary = pipeline.train(
                cfg, out=out, force=force, resume=str(resume) if resume else None, log=err, quiet=quiet
            )
        run_dir = summary["run_dir"]
        if summary["rank"] > 0:  # under torchrun, rank 0 reports
            return
        if summary["status"] == "interrupted":
            err(f"Interrupted: the best weights so far are saved; continue with: forecast train --resume {run_dir}")
            raise typer.Exit(130)
        typer.echo(f"run directory: {run_dir}")
        if "metrics" in summary:
            typer.echo(report.metrics_table(summary["metrics"]))

    guarded(body)


@app.command()
def predict(
    run_dir: RunDir,
    data: DataOpt = None,
    out: Annotated[
        str | None, typer.Option(help="Output CSV (default: RUN_DIR/forecast.csv or predictions.csv).")
    ] = None,
    backtest: Annotated[
        bool, typer.Option(help="Rolling stride-1 forecasts with actuals, instead of the future.")
    ] = False,
    split: Annotated[str, typer.Option(help="With --backtest: train, val, test or all.")] = "test",
    coverage: Annotated[float | None, typer.Option(help="Add y_lo/y_hi conformal intervals, e.g. 0.9.")] = None,
) -> None:
    """Forecast the steps after the data's last row (or backtest with --backtest)."""

    def body() -> None:
        from forecast import pipeline

        if split not in ("train", "val", "test", "all"):
            raise typer.BadParameter(f"must be train, val, test or all, got {split!r}", param_hint="--split")
        if coverage is not None and not 0 < coverage < 1:
            raise typer.BadParameter(f"must be between 0 and 1 (e.g. 0.9), got {coverage}", param_hint="--coverage")
        run = pipeline.load_run(run_dir)
        path, rows = pipeline.predict(run, data, out, backtest, split, coverage, log=err)
        typer.echo(f"wrote {rows} rows to {path}")

    guarded(body)


@app.command()
def evaluate(
    run_dir: RunDir,
    data: DataOpt = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
) -> None:
    """Score the model beside three baselines; write metrics.json."""

    def body() -> None:
        from forecast import pipeline, report

        if split not in ("train", "val", "test"):
            raise typer.BadParameter(f"must be train, val or test, got {split!r}", param_hint="--split")
        run = pipeline.load_run(run_dir)
        result = pipeline.evaluate(run, data, split, log=err)
        typer.echo(report.metrics_table(result))
        if data is None and split == "test":
            typer.echo(f"wrote {run.path / 'metrics.json'}")

    guarded(body)


@app.command()
def plot(
    run_dir: RunDir,
    out: Annotated[str | None, typer.Option(help="Folder for the PNG files (default: RUN_DIR).")] = None,
    series: Annotated[str | None, typer.Option(help="Series id to draw, for multi-series data.")] = None,
) -> None:
    """Draw loss.png, backtest.png and forecast.png."""

    def body() -> None:
        from forecast import pipeline, report

        run = pipeline.load_run(run_dir)
        for path in report.plot(run, out, series, log=err):
            typer.echo(f"wrote {path}")

    guarded(body)


@app.command()
def info(run_dir: RunDir) -> None:
    """Show a run's config, parameter counts, data, record and metrics."""

    def body() -> None:
        from forecast import pipeline, report

        typer.echo(report.info(pipeline.load_run(run_dir)))

    guarded(body)


def main() -> None:
    app(prog_name="forecast")


if __name__ == "__main__":
    main()
