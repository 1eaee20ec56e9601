"""forecast from Python: train from a config, load a run, forecast a DataFrame.

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

from forecast import config, pipeline
from forecast.config import Config
from forecast.pipeline import Run


def fit(
    cfg: Config | dict[str, Any] | str | Path, out: str | None = None, force: bool = False, quiet: bool = True
) -> Run:
    """Train from a Config, a nested dict, or a YAML path; return the loaded run."""
    if isinstance(cfg, (str, Path)):
        cfg = config.load_yaml(cfg)
    elif isinstance(cfg, dict):
        cfg = config.from_dict(cfg)
    summary = pipeline.train(
        cfg, out=out, force=force, quiet=quiet, log=pipeline.quiet_log if quiet else pipeline.stderr_log
    )
    return load(summary["run_dir"])


def load(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load a run directory made by `forecast train`."""
    return pipeline.load_run(run_dir, device)


__all__ = ["Config", "Run", "fit", "load"]
