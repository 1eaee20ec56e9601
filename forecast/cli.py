"""The `forecast` command line. Heavy modules are imported inside commands so --help is instant."""

from __future__ import annotations

import enum
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    err(f"warning: {message}")


OWN_PROCESS = False  # set by main(): the process is the command's, not a program that runs the app


def library() -> Any:
    """forecast.api, and torch and pandas behind it. In the command's own process (main), they are
    imported with the cycle collector paused, then frozen: the collector would otherwise sweep
    their 330,000 objects again and again while they load, and in every full collection after
    (on a 2-core machine: 0.5 s of the imports, and 0.45 s of full collections in a training run
    of configs/etth1.yaml). The imports leave a few thousand objects of cyclic garbage, kept."""
    import gc
    import sys

    paused = OWN_PROCESS and gc.isenabled() and "forecast.api" not in sys.modules  # the first import
    if paused:
        gc.disable()
    try:
        from forecast import api
    finally:
        if paused:
            gc.freeze()
            gc.enable()
    return api


@contextmanager
def user_errors() -> Iterator[None]:
    """Around a command's body: ForecastError -> one `Error:` line and exit 1; Ctrl-C -> exit 130.

    While it runs (and only then: the CLI may run inside another program), warnings print as one
    `warning: ...` line each.
    """
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            yield
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


RunDir = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="A run directory made by `forecast train`.", show_default=False)
]
DataOpt = Annotated[
    str | None, typer.Option("--data", help="A newer CSV with the training columns (default: the training file).")
]
ReadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Read the data otherwise than in training: data.fill=ffill|interpolate, data.sort=true, data.gaps=warn.",
    ),
]


def refuse_with_resume(run_dir: Path, given: dict[str, Any]) -> None:
    """--resume continues with the saved config: flags that would change it are refused, not ignored."""
    ignored = [flag for flag, value in given.items() if value not in (None, [], False)]
    if ignored:
        raise ForecastError(
            f"--resume continues {run_dir} with its saved config; drop {', '.join(ignored)} "
            "(or train a new run without --resume)"
        )


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


class Split(str, enum.Enum):
    train = "train"
    val = "val"
    test = "test"


class BacktestSplit(str, enum.Enum):
    train = "train"
    val = "val"
    test = "test"
    all = "all"


# train's flags that set a config value: parameter name -> dotted config key (its flag: --lookback, ...)
CONFIG_FLAGS = {
    "target": "data.target",
    "features": "data.features",
    "lookback": "model.lookback",
    "horizon": "model.horizon",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "device": "train.device",
    "seed": "train.seed",
}


def flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


@app.command()
def train(
    config_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG.yaml",
            help="YAML config (default: the bundled demo, configs/default.yaml, when --data is not given).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[str | None, typer.Option(help="CSV or Parquet file to train on.")] = None,
    target: Annotated[
        list[str] | None, typer.Option(help="Column to forecast (repeat, or separate with commas, for several).")
    ] = None,
    features: Annotated[
        list[str] | None, typer.Option(help="Extra input column (repeat, or separate with commas, for several).")
    ] = None,
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
            "--set", metavar="KEY=VALUE", help="Any config value, e.g. model.hidden_size=32 or data.split.val=0.15."
        ),
    ] = None,
    out: Annotated[str | None, typer.Option(help="Run directory (default: runs/<data>-<time>).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it holds an earlier run.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue an interrupted run in this directory.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train a model and score it on the test split."""
    given = locals()
    with user_errors():
        api = library()

        if resume is not None:
            others = {"CONFIG.yaml": config_file, "--data": data, "--set": set_, "--out": out, "--force": force}
            refuse_with_resume(resume, {**others, **{flag(name): given[name] for name in CONFIG_FLAGS}})
            cfg = api.saved_config(resume)
        else:
            check_config_argument(config_file, target, features)
            values = {key: given[name] for name, key in CONFIG_FLAGS.items()}
            values["data.target"], values["data.features"] = columns(target), columns(features)
            cfg = api.training_config(config_file, data, values, set_ or [])
        with sigterm_interrupts():
            summary = api.train(cfg, out=out, force=force, resume=resume, log=err, quiet=quiet)
        report_training(summary)


def columns(values: list[str] | None) -> list[str] | None:
    """--target/--features values, each of which may name several columns: a,b."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def check_config_argument(config_file: Path | None, target: list[str] | None, features: list[str] | None) -> None:
    """`--target a b` makes b the CONFIG.yaml argument: say how to give several columns."""
    if config_file is None or config_file.exists() or config_file.suffix.lower() in (".yaml", ".yml"):
        return
    if target or features:
        raise ForecastError(
            f"{str(config_file)!r} is not a config file; to give several columns, repeat the flag "
            "(--target a --target b) or separate them with commas (--target a,b)"
        )


def report_training(summary: Any) -> None:
    """Where the run is and its test scores; an interrupted run says how to continue it."""
    api = library()

    if summary.rank > 0:  # under torchrun, rank 0 reports
        return
    if summary.run_dir is None:  # stopped before the first epoch ended: nothing kept
        err("Interrupted.")
        raise typer.Exit(130)
    if summary.resumable:
        err(f"Interrupted: the best weights so far are saved; continue with: forecast train --resume {summary.run_dir}")
        raise typer.Exit(130)
    typer.echo(f"run directory: {summary.run_dir}")
    if summary.metrics is not None:
        typer.echo(api.metrics_table(summary.metrics))


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
    split: Annotated[BacktestSplit, typer.Option(help="With --backtest: the part to backtest.")] = BacktestSplit.test,
    coverage: Annotated[float | None, typer.Option(help="Add y_lo/y_hi conformal intervals, e.g. 0.9.")] = None,
    set_: ReadOpt = None,
) -> None:
    """Forecast the steps after the data's last row (or backtest with --backtest)."""
    if coverage is not None and not 0 < coverage < 1:
        raise typer.BadParameter(f"must be between 0 and 1 (e.g. 0.9), got {coverage}", param_hint="--coverage")
    if split != BacktestSplit.test and not backtest:
        raise typer.BadParameter("a split is backtested only with --backtest; add it", param_hint="--split")
    with user_errors():
        api = library()

        path, rows = api.predict(run_dir, data, out, backtest, split.value, coverage, log=err, reading=set_)
        typer.echo(f"wrote {rows} rows to {path}")


@app.command()
def evaluate(
    run_dir: RunDir,
    data: DataOpt = None,
    split: Annotated[Split, typer.Option(help="The part to score.")] = Split.test,
    set_: ReadOpt = None,
) -> None:
    """Score the model beside three baselines; write metrics.json."""
    with user_errors():
        api = library()

        result = api.evaluate(run_dir, data, split.value, log=err, reading=set_)
        typer.echo(api.metrics_table(result))
        if "saved_to" in result:  # the training data's test scores, where the run folder can be written
            typer.echo(f"wrote {result['saved_to']}")


@app.command()
def plot(
    run_dir: RunDir,
    out: Annotated[str | None, typer.Option(help="Folder for the PNG files (default: RUN_DIR).")] = None,
    series: Annotated[str | None, typer.Option(help="Series id to draw, for multi-series data.")] = None,
    data: Annotated[
        str | None,
        typer.Option(help="The file whose history to draw (default: the training file), e.g. predict's --data."),
    ] = None,
) -> None:
    """Draw loss.png, backtest.png and forecast.png."""
    with user_errors():
        api = library()

        for path in api.plot(run_dir, out, series, log=err, data=data):
            typer.echo(f"wrote {path}")


@app.command()
def info(run_dir: RunDir) -> None:
    """Show a run's config, parameter counts, data, record and metrics."""
    with user_errors():
        api = library()

        typer.echo(api.info(run_dir))


def main() -> None:
    import gc

    from forecast.allocator import keep_freed_memory

    keep_freed_memory()  # the process is ours: training's buffers keep their pages between steps
    global OWN_PROCESS
    OWN_PROCESS = True
    try:
        app(prog_name="forecast")
    finally:
        # Python's shutdown sweeps every object for cycles, torch's many among them: 0.9 s after
        # `import torch` alone on a 2-core machine, 1.7 s after a training run. Frozen, they are
        # skipped; modules are still torn down, and files and streams flushed and closed.
        gc.freeze()


if __name__ == "__main__":
    main()
