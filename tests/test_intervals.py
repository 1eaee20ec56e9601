"""Conformal intervals (`predict.coverage`): bands around every forecast, their empirical coverage
and width in metrics.json, wider for higher coverage, and the validation rows they need."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import HORIZON, Cli, assert_user_error, train_on_multi


@pytest.fixture(scope="module")
def interval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_on_multi(tmp_path_factory.mktemp("intervals"), "--set", "predict.coverage=0.9")


@pytest.fixture
def interval_copy(interval_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(interval_run, tmp_path / "run"))


def check_intervals(block: dict) -> None:
    assert block["coverage"] == 0.9
    assert 0 < block["empirical_coverage"] <= 1
    assert block["mean_width"] > 0


def test_evaluate_reports_intervals(cli: Cli, interval_copy: Path, tmp_path: Path) -> None:
    check_intervals(json.loads((interval_copy / "metrics.json").read_text())["intervals"])  # from training
    (interval_copy / "metrics.json").unlink()
    result = cli.ok("evaluate", interval_copy)
    assert "intervals: nominal 90%" in result.stdout
    block = json.loads((interval_copy / "metrics.json").read_text())["intervals"]
    check_intervals(block)
    # the same numbers from the backtest's own bands: share of actuals inside, mean width
    cli.ok("predict", interval_copy, "--backtest", "--out", tmp_path / "bt.csv")
    bt = pd.read_csv(tmp_path / "bt.csv")
    inside = ((bt["y_lo"] <= bt["y_true"]) & (bt["y_true"] <= bt["y_hi"])).mean()
    assert block["empirical_coverage"] == pytest.approx(inside, abs=1.5 / len(bt))
    assert block["mean_width"] == pytest.approx((bt["y_hi"] - bt["y_lo"]).mean(), rel=1e-6)


def test_trained_coverage_is_the_default_for_predict(cli: Cli, interval_copy: Path) -> None:
    cli.ok("predict", interval_copy)
    frame = pd.read_csv(interval_copy / "forecast.csv")
    assert list(frame.columns) == ["target", "origin", "timestamp", "step", "y_pred", "y_lo", "y_hi"]


@pytest.mark.parametrize("backtest", [False, True])
def test_predict_coverage_bands_hold_the_forecast(cli: Cli, trained_run: Path, tmp_path: Path, backtest: bool) -> None:
    extra = ["--backtest"] if backtest else []
    out = tmp_path / "p.csv"
    cli.ok("predict", trained_run, *extra, "--coverage", "0.9", "--out", out)
    frame = pd.read_csv(out)
    assert len(frame) == ((60 - HORIZON + 1) * HORIZON if backtest else HORIZON)
    assert frame[["y_lo", "y_pred", "y_hi"]].notna().all().all()
    assert ((frame["y_lo"] <= frame["y_pred"]) & (frame["y_pred"] <= frame["y_hi"])).all()
    assert (frame["y_hi"] > frame["y_lo"]).all()


def test_higher_coverage_gives_wider_intervals(cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    widths = {}
    for coverage in ("0.5", "0.95"):
        out = tmp_path / f"{coverage}.csv"
        cli.ok("predict", trained_run, "--backtest", "--coverage", coverage, "--out", out)
        frame = pd.read_csv(out)
        widths[coverage] = (frame["y_hi"] - frame["y_lo"]).to_numpy()
        np.testing.assert_allclose(frame["y_lo"] + frame["y_hi"], 2 * frame["y_pred"], rtol=1e-9)  # centred
    assert (widths["0.95"] >= widths["0.5"] - 1e-9).all()
    assert widths["0.95"].mean() > widths["0.5"].mean()


def test_intervals_need_validation_rows(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    args = ["--set", "data.split.val=0", "--set", "predict.coverage=0.9"]
    result = cli("train", "--data", multi_csv, "--out", tmp_path / "run", *args)
    assert_user_error(result, "predict.coverage", "data.split.val")
