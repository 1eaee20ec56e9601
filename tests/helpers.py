"""Helpers shared by the tests: synthetic data, a CLI runner, a run trained on it, reading what
`predict` wrote, the check of an `Error:` line, and pickles that run code when loaded.

Tiny data: a few hundred hourly rows of sine + trend + noise, so that a CLI `train` with the
SMALL settings below takes about a second on 2 CPU cores.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner, Result

from forecast.cli import app

# Model settings small enough that one CLI `train` takes about a second.
SMALL = [
    "--lookback",
    "24",
    "--horizon",
    "6",
    "--epochs",
    "2",
    "--device",
    "cpu",
    "--quiet",
    "--set",
    "model.hidden_size=8",
    "--batch-size",
    "256",
    "--set",
    "train.steps_per_epoch=0",  # every window once: the tests check plumbing, not the training budget
]
LOOKBACK, HORIZON = 24, 6
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def set_flags(*pairs: str) -> list[str]:
    """`--set KEY=VALUE` for each pair, as `train` takes them."""
    return [arg for pair in pairs for arg in ("--set", pair)]


def synthetic_frame(
    n: int = 300, columns: Sequence[str] = ("a", "b", "c"), start: str = "2024-01-01", freq: str = "h", seed: int = 0
) -> pd.DataFrame:
    """`date` plus one column per name: a daily sine with its own phase, a slow trend and noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"date": pd.date_range(start, periods=n, freq=freq)})
    for k, name in enumerate(columns):
        frame[name] = 10 + 5 * k + (2 + k) * np.sin(2 * np.pi * t / 24 + k) + 0.01 * t + rng.normal(0, 0.1, n)
    return frame


def long_frame() -> pd.DataFrame:
    """Long format: three series of different lengths and start dates, told apart by `id`."""
    parts = []
    for k, (sid, n, start) in enumerate(
        (("s1", 300, "2024-01-01"), ("s2", 260, "2024-01-03 05:00"), ("s3", 240, "2024-02-01"))
    ):
        part = synthetic_frame(n, columns=("y", "x"), start=start, seed=k)
        part.insert(0, "id", sid)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False, date_format=DATE_FORMAT)
    return path


def read_times(path: Path) -> pd.DataFrame:
    """forecast.csv or predictions.csv with its origin and timestamp columns as times."""
    return pd.read_csv(path, parse_dates=["origin", "timestamp"])


def next_steps(last: pd.Timestamp, freq: str = "h", n: int = HORIZON) -> list[pd.Timestamp]:
    """The n times after `last`: the timestamps of a forecast whose origin is `last`."""
    return list(pd.date_range(last, periods=n + 1, freq=freq)[1:])


class Cli:
    """Runs `forecast ...` in-process. Bugs (exceptions other than an exit) propagate to pytest.

    typer 0.29's CliRunner keeps the streams apart: result.stdout, result.stderr, and
    result.output (both, interleaved as a terminal shows them).
    """

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: object) -> Result:
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    def ok(self, *args: object) -> Result:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result

    def train(self, data: Path, out: Path, *extra: object) -> Result:
        return self.ok("train", "--data", data, "--out", out, *SMALL, *extra)


def train_on_multi(base: Path, *extra: object) -> Path:
    """A run in base/run, trained on base/multi.csv (300 hourly rows of a, b, c) with extra CLI args."""
    data = write_csv(base / "multi.csv", synthetic_frame(columns=("a", "b", "c")))
    Cli().train(data, base / "run", *extra)
    return base / "run"


def assert_user_error(result: Result, *fragments: str) -> str:
    """Exit 1, one `Error: ...` line on stderr holding every fragment, nothing on stdout, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    line = errors[0]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert result.stdout == "", result.stdout
    return line


class TouchOnLoad:
    """Unpickling this creates `marker`: a stand-in for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class ShellOnLoad:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
