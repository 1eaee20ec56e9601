"""The Python API, and the one front door the command line uses too.

import forecast
cfg = forecast.Config()
cfg.data.path, cfg.data.target = "data/ETTh1.csv", ["OT"]
run = forecast.fit(cfg, out="runs/api")        # train -> forecast.Run
run = forecast.load("runs/api")                # the same, from disk
future = run.forecast(df)                      # DataFrame in, long DataFrame out
scores = run.evaluate()["models"]["model"]["mse_z"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from forecast import config, pipeline, report
from forecast.config import Config
from forecast.errors import ForecastError, Log, quiet_log, stderr_log
from forecast.pipeline import TrainSummary
from forecast.run import Run, load_run, run_directory

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def fit(
    cfg: Config | dict[str, Any] | str | Path, out: str | None = None, force: bool = False, quiet: bool = True
) -> Run:
    """Train from a Config, a nested dict, or a YAML path; return the loaded run."""
    if isinstance(cfg, (str, Path)):
        cfg = config.load_yaml(cfg)
    elif isinstance(cfg, dict):
        cfg = config.from_dict(cfg)
    summary = train(cfg, out=out, force=force, quiet=quiet, log=quiet_log if quiet else stderr_log)
    if summary.run_dir is None:
        raise KeyboardInterrupt  # stopped before the first epoch ended: there is no run to load
    return load(summary.run_dir)


def train(
    cfg: Config,
    out: str | None = None,
    force: bool = False,
    resume: str | Path | None = None,
    log: Log = stderr_log,
    quiet: bool = False,
) -> TrainSummary:
    """Train into a new run directory (or continue `resume`); the summary says how it ended."""
    return pipeline.train(cfg, out, force, str(resume) if resume else None, log, quiet)


def load(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load a run directory made by `forecast train`."""
    return load_run(run_dir, device)


def predict(
    run_dir: str | Path,
    data: str | pd.DataFrame | None = None,
    out: str | None = None,
    backtest: bool = False,
    split: str = "test",
    coverage: float | None = None,
    log: Log = stderr_log,
    reading: list[str] | None = None,
) -> tuple[Path, int]:
    """Write forecast.csv (or, with backtest, predictions.csv) of a run; return the path and row count.
    `reading`: how to read the data, other than in training (e.g. ["data.fill=ffill"]; Run.read_with)."""
    run = load(run_dir).read_with(reading)
    if backtest:
        return pipeline.write_backtest(run, data, out, split, coverage, log)
    return pipeline.write_forecast(run, data, out, coverage, log)


def evaluate(
    run_dir: str | Path,
    data: str | pd.DataFrame | None = None,
    split: str = "test",
    log: Log = stderr_log,
    reading: list[str] | None = None,
) -> dict[str, Any]:
    """Scores of the model and its baselines; the training data's test scores also go to metrics.json
    (its path is then the result's `saved_to`). `reading` as for predict."""
    return load(run_dir).read_with(reading).evaluate(data, split, log)


def plot(
    run_dir: str | Path,
    out: str | None = None,
    series: str | None = None,
    log: Log = stderr_log,
    data: str | pd.DataFrame | None = None,
) -> list[Path]:
    """Draw loss.png, backtest.png and forecast.png; return their paths. `data`: the file whose
    history to draw (default: the training data), e.g. the newer one predict read."""
    return pipeline.plot(load(run_dir), out, series, log, data)


def info(run_dir: str | Path) -> str:
    """A run's config, parameters, data, record and metrics, as text."""
    return pipeline.info(load(run_dir))


def metrics_table(result: dict[str, Any]) -> str:
    """Scores from `evaluate` (or a TrainSummary's metrics) as the table the CLI prints."""
    return report.metrics_table(result)


def training_config(config_file: Path | None, data: str | None, values: dict[str, Any], sets: list[str]) -> Config:
    """The config of a new run: the YAML file (or the bundled demo when neither it nor data is
    given), then `data`, then `values` (dotted key -> value, None = not given), then `sets` (KEY=VALUE)."""
    demo = config_file is None and data is None
    if demo:
        config_file = pipeline.default_config_path()
    if config_file is not None and config_file.suffix.lower() in DATA_SUFFIXES:
        raise ForecastError(
            f"{config_file} looks like a data file, not a YAML config; train on it with --data {config_file}"
        )
    cfg = config.load_yaml(config_file) if config_file is not None else Config()
    demo_data = cfg.data.path
    if data is not None:
        cfg.data.path = data
    for key, value in values.items():
        if value is not None and value != []:
            config.set_value(cfg, key, value, f"--{key.split('.')[1].replace('_', '-')}")
    cfg = config.apply_overrides(cfg, sets)
    if demo and cfg.data.path == demo_data and not Path(demo_data).is_file():
        # an installed package ships the demo config but not its data, which lives in the repository
        raise ForecastError(
            f"no data given: pass --data FILE.csv (the bundled demo {demo_data} is only in the source repository)"
        )
    return config.check(cfg)


def saved_config(run_dir: Path) -> Config:
    """The config saved in a run directory, to continue it."""
    run_dir = run_directory(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ForecastError(f"{run_dir} is not a run directory (it has no config.yaml)")
    pipeline.state_path(run_dir)  # before anything is printed: a run that completed has nothing to resume
    return config.check(config.load_yaml(run_dir / "config.yaml"))


__all__ = ["Config", "Run", "evaluate", "fit", "info", "load", "plot", "predict", "train"]
