"""`evaluate --data` and `predict --backtest --data`: the test windows of new data are those whose
targets are newer than the training data; a file with nothing newer falls back to its own split,
and the output says which. A row-count split binds only the training file, never new data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import HORIZON, Cli, assert_user_error, synthetic_frame, write_csv

import forecast

LAST = pd.Timestamp("2024-01-13 11:00:00")  # row 300 of the training file, hourly from 2024-01-01
ROW_COUNTS = ["--set", "data.split.train=200", "--set", "data.split.val=50", "--set", "data.split.test=50"]


@pytest.fixture(scope="module")
def counts_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run on 300 rows under the row-count split 200/50/50, as the ETT configs use."""
    base = tmp_path_factory.mktemp("counts")
    train_csv = write_csv(base / "train.csv", synthetic_frame(n=300, columns=("y",)))
    Cli().train(train_csv, base / "run", *ROW_COUNTS)
    return base / "run"


@pytest.fixture
def run(counts_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(counts_run, tmp_path / "run"))


def frame_csv(path: Path, n: int, start: str = "2024-01-01") -> Path:
    return write_csv(path, synthetic_frame(n=n, columns=("y",), start=start))


def test_evaluate_newer_file_scores_every_row_after_the_training_data(cli: Cli, run: Path, tmp_path: Path) -> None:
    newer = frame_csv(tmp_path / "newer.csv", n=400)  # the training rows, then 100 more
    result = cli.ok("evaluate", run, "--data", newer)
    assert f"test split: {100 - HORIZON + 1} windows" in result.stdout  # not the rows 250..299 of the split
    assert f"test windows: rows after {LAST} (newer than the training data)" in result.stderr
    scores = forecast.load(run).evaluate(str(newer))
    assert scores["windows_from"] == f"rows after {LAST} (newer than the training data)"


def test_evaluate_shorter_recent_file_is_scored_not_refused(cli: Cli, run: Path, tmp_path: Path) -> None:
    recent = frame_csv(tmp_path / "recent.csv", n=60, start=str(LAST - pd.Timedelta(hours=29)))  # 30 new rows
    result = cli.ok("evaluate", run, "--data", recent)
    assert f"test split: {30 - HORIZON + 1} windows" in result.stdout


def test_backtest_of_a_newer_file_forecasts_only_new_rows(cli: Cli, run: Path, tmp_path: Path) -> None:
    newer = frame_csv(tmp_path / "newer.csv", n=340)
    cli.ok("predict", run, "--backtest", "--data", newer)
    pred = pd.read_csv(run / "predictions.csv", parse_dates=["origin", "timestamp"])
    assert pred["timestamp"].min() == LAST + pd.Timedelta(hours=1)
    assert pred["origin"].nunique() == 40 - HORIZON + 1 and pred["timestamp"].max() == LAST + pd.Timedelta(hours=40)


def test_older_file_falls_back_to_its_own_split_and_says_so(cli: Cli, run: Path, tmp_path: Path) -> None:
    older = frame_csv(tmp_path / "older.csv", n=150, start="2023-06-01")  # fewer rows than the 300 counted
    result = cli.ok("evaluate", run, "--data", older)
    assert f"test split: {25 - HORIZON + 1} windows" in result.stdout  # 50/300 of 150 rows
    note = f"the last 17% of the rows of {older}"
    assert note in result.stderr and f"newer than the training data's last timestamp {LAST}" in result.stderr
    assert forecast.load(run).evaluate(str(older))["windows_from"].startswith(note)


def test_unrelated_file_with_room_for_the_counts_keeps_them(cli: Cli, run: Path, tmp_path: Path) -> None:
    older = frame_csv(tmp_path / "older.csv", n=320, start="2023-06-01")
    result = cli.ok("evaluate", run, "--data", older)
    assert f"test split: {50 - HORIZON + 1} windows" in result.stdout  # rows 250..299, as in training
    assert f"the test split of {older} by data.split" in result.stderr


def test_training_file_given_again_scores_its_test_split(cli: Cli, run: Path) -> None:
    train_csv = forecast.load(run).cfg.data.path  # the absolute path train saved
    again = cli.ok("evaluate", run, "--data", train_csv)
    assert again.stdout.splitlines()[:5] == cli.ok("evaluate", run).stdout.splitlines()[:5]
    assert "the test split of the training data" in again.stderr


def test_too_few_newer_rows_is_a_clear_error(cli: Cli, run: Path, tmp_path: Path) -> None:
    newer = frame_csv(tmp_path / "newer.csv", n=303)  # 3 new rows, and a window needs 6
    for command in (["evaluate"], ["predict", "--backtest"]):
        result = cli(*command, run, "--data", newer)
        assert_user_error(result, "no complete window", f"rows after {LAST}", f"needs horizon = {HORIZON}")


def test_dataframe_newer_than_the_training_data(run: Path) -> None:
    frame = synthetic_frame(n=330, columns=("y",))
    result = forecast.load(run).evaluate(frame)
    assert result["windows"] == 30 - HORIZON + 1 and result["windows_from"].startswith(f"rows after {LAST}")


def test_row_count_split_does_not_bind_new_data(cli: Cli, run: Path, tmp_path: Path) -> None:
    recent = frame_csv(tmp_path / "recent.csv", n=60, start="2024-03-01")
    cli.ok("predict", run, "--data", recent)  # 60 rows: enough for the lookback, far fewer than the split
    forecast = pd.read_csv(run / "forecast.csv")
    assert forecast["origin"].iloc[0] == str(pd.Timestamp("2024-03-01") + pd.Timedelta(hours=59))


def test_newer_file_with_a_gap_in_its_values_is_read_as_asked(cli: Cli, run: Path, tmp_path: Path) -> None:
    frame = synthetic_frame(n=340, columns=("y",))
    frame.loc[339, "y"] = None  # the last value is missing: the model was trained on a complete file
    newer = write_csv(tmp_path / "newer.csv", frame)
    assert_user_error(cli("predict", run, "--data", newer), "missing values", "--set data.fill=ffill")
    cli.ok("predict", run, "--data", newer, "--set", "data.fill=ffill")
    assert len(pd.read_csv(run / "forecast.csv")) == HORIZON
    scored = cli.ok("evaluate", run, "--data", newer, "--set", "data.fill=ffill")
    assert "rows after" in scored.stderr and "mse_z" in scored.stdout
    metrics = (run / "metrics.json").read_text()
    assert "wrote" not in cli.ok("evaluate", run, "--set", "data.gaps=error").stdout  # not as trained: not saved
    assert (run / "metrics.json").read_text() == metrics
    result = cli("predict", run, "--data", newer, "--set", "model.horizon=3")
    assert_user_error(result, "--set model.horizon", "data.fill, data.sort, data.gaps")
