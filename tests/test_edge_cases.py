"""Edge cases of splits, defaults and run files that a review turned up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from helpers import Cli, assert_user_error, synthetic_frame, write_csv

from forecast import config, read
from forecast.config import DataConfig
from forecast.panel import split_borders


def test_evaluate_on_another_split_leaves_the_test_metrics(cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    before = (run / "metrics.json").read_text()
    assert "wrote" not in cli.ok("evaluate", run, "--split", "val").stdout
    assert (run / "metrics.json").read_text() == before
    assert json.loads(before)["split"] == "test"


def test_row_count_split_does_not_bind_new_data(cli: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "data.csv", synthetic_frame(n=300, columns=("y",)))
    run = tmp_path / "run"
    cli.train(csv, run, "--set", "data.split.train=200", "--set", "data.split.val=50", "--set", "data.split.test=50")
    recent = write_csv(tmp_path / "recent.csv", synthetic_frame(n=60, columns=("y",), start="2024-03-01"))
    cli.ok("predict", run, "--data", recent)  # 60 rows: enough for the lookback, far fewer than the split
    forecast = pd.read_csv(run / "forecast.csv")
    assert forecast["origin"].iloc[0] == str(pd.Timestamp("2024-03-01") + pd.Timedelta(hours=59))


def test_default_target_is_never_a_feature() -> None:
    frame = synthetic_frame(columns=("a", "b"))
    targets, features = read.resolve_targets(frame, DataConfig(features=["b"]), "date", "f.csv")
    assert targets == ["a"] and features == ["b"]


def test_zero_parts_fit_either_kind_of_split() -> None:
    fractions = config.check(config.from_dict({"data": {"split": {"train": 0.8, "val": 0, "test": 0.2}}}))
    counts = config.check(config.from_dict({"data": {"split": {"train": 200, "val": 0, "test": 50}}}))
    assert split_borders(pd.Series([300]).to_numpy(), fractions.data.split).tolist() == [[240, 240, 300]]
    assert split_borders(pd.Series([300]).to_numpy(), counts.data.split).tolist() == [[200, 200, 250]]


def test_no_data_path_says_how_to_give_one(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("model:\n  horizon: 6\n")
    assert_user_error(cli("train", tmp_path / "cfg.yaml"), "no data file given", "--data")
