"""Many series in one long-format file (`data.id_column`): series too short are skipped and the
commands go on without them, windows never cross series, and backtests, metrics, plots and
forecasts are per series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import (
    HORIZON,
    LOOKBACK,
    Cli,
    assert_user_error,
    long_frame,
    next_steps,
    read_times,
    synthetic_frame,
    write_csv,
)

import forecast
from forecast import config, prepare
from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import load_panel, split_borders
from forecast.windows import PARTS, series_of, window_starts

LONG_ARGS = ("--set", "data.id_column=id", "--target", "y", "--features", "x")
# rows per series, and test windows: 20% of the rows (after 70/10 floors) minus horizon plus one
LENGTHS = {"s1": 300, "s2": 260, "s3": 240}
TEST_WINDOWS = {"s1": 60 - HORIZON + 1, "s2": 52 - HORIZON + 1, "s3": 48 - HORIZON + 1}


def long_with_short_series() -> pd.DataFrame:
    """The three series of long_frame plus `tiny`: 20 rows, too short for one training window."""
    tiny = synthetic_frame(20, columns=("y", "x"), start="2024-03-01", seed=9)
    tiny.insert(0, "id", "tiny")
    return pd.concat([long_frame(), tiny], ignore_index=True)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("long")
    csv = write_csv(base / "long.csv", long_frame())
    Cli().train(csv, base / "run", *LONG_ARGS)
    return base / "run"


# ---------------------------------------------------------------- series too short to train on


def test_short_series_skipped_with_a_warning(cli: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "long4.csv", long_with_short_series())
    result = cli.train(csv, tmp_path / "run", *LONG_ARGS)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "tiny" in warnings[0] and "s1" not in warnings[0]
    assert "run directory:" in result.stdout
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["ids"] == ["s1", "s2", "s3"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["series"]) == {"s1", "s2", "s3"}


def test_commands_after_a_skipped_series(cli: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "long4.csv", long_with_short_series())
    run = tmp_path / "run"
    cli.train(csv, run, *LONG_ARGS)
    cli.ok("predict", run, "--backtest")
    assert set(pd.read_csv(run / "predictions.csv")["series"]) == {"s1", "s2", "s3"}
    cli.ok("evaluate", run)
    cli.ok("plot", run, "--series", "s1")


# ---------------------------------------------------------------- windows


def test_windows_never_cross_series(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "long4.csv", long_with_short_series())
    cfg = config.Config()
    cfg.data.path, cfg.data.id_column, cfg.data.target, cfg.data.features = str(csv), "id", ["y"], ["x"]
    cfg.model.lookback, cfg.model.horizon = LOOKBACK, HORIZON
    full = load_panel(cfg.data)
    assert full.ids == ["s1", "s2", "s3", "tiny"]
    kept = prepare.drop_short_series(full, cfg, lambda msg: None)
    for panel in (full, kept):
        borders = split_borders(panel.lengths(), cfg.data.split)
        for part in (*PARTS, "all"):
            starts = window_starts(panel.offsets, borders, part, LOOKBACK, HORIZON)
            assert len(starts)
            first = series_of(starts, panel.offsets)
            last = series_of(starts + LOOKBACK + HORIZON - 1, panel.offsets)
            np.testing.assert_array_equal(first, last)  # the first and last row lie in one series
            assert (starts >= panel.offsets[first]).all()
            assert (starts + LOOKBACK + HORIZON <= panel.offsets[first + 1]).all()
            if panel is full:
                assert panel.ids.index("tiny") not in first  # 20 rows: no window in any part
    # the kept panel's test windows: each series' own test rows, nothing more
    borders = split_borders(kept.lengths(), cfg.data.split)
    starts = window_starts(kept.offsets, borders, "test", LOOKBACK, HORIZON)
    counts = np.bincount(series_of(starts, kept.offsets), minlength=3)
    assert dict(zip(kept.ids, counts.tolist(), strict=True)) == TEST_WINDOWS


# ---------------------------------------------------------------- per-series outputs


def test_long_backtest_per_series(cli: Cli, long_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    cli.ok("predict", long_run, "--backtest", "--out", out)
    frame = read_times(out)
    assert list(frame.columns) == ["series", "target", "origin", "timestamp", "step", "y_pred", "y_true"]
    source = long_frame()
    for sid, rows in frame.groupby("series"):
        times = source[source["id"] == sid]["date"].reset_index(drop=True)
        test_start = len(times) - (TEST_WINDOWS[sid] + HORIZON - 1)
        assert len(rows) == TEST_WINDOWS[sid] * HORIZON
        assert rows["timestamp"].min() == times[test_start] and rows["timestamp"].max() == times.iloc[-1]
        assert set(rows["timestamp"]) <= set(times) and set(rows["origin"]) <= set(times)
        assert ((rows["timestamp"] - rows["origin"]) == pd.to_timedelta(rows["step"], unit="h")).all()


def test_long_metrics_per_series_and_aggregate(long_run: Path) -> None:
    metrics = json.loads((long_run / "metrics.json").read_text())
    assert metrics["windows"] == sum(TEST_WINDOWS.values())
    assert set(metrics["series"]) == set(LENGTHS)
    names = {"model", "repeat_last", "seasonal_naive", "linear"}
    assert set(metrics["models"]) == names
    for sid, per_model in metrics["series"].items():
        assert set(per_model) == names, sid
    # the aggregate is every window and step: the per-series MAE and MSE weighted by window counts
    weights = np.array([TEST_WINDOWS[sid] for sid in metrics["series"]], dtype=float)
    for name in names:
        for key in ("mae", "mse", "mae_z", "mse_z"):
            per = np.array([metrics["series"][sid][name][key] for sid in metrics["series"]])
            assert metrics["models"][name][key] == pytest.approx(per @ weights / weights.sum(), rel=1e-9)
    maes = [metrics["series"][sid]["model"]["mae"] for sid in LENGTHS]
    assert len(set(maes)) == 3  # really per series


def test_long_plot_series(cli: Cli, long_run: Path, tmp_path: Path) -> None:
    result = cli.ok("plot", long_run, "--series", "s3", "--out", tmp_path / "pngs")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["backtest.png", "forecast.png", "loss.png"]
    assert str(tmp_path / "pngs" / "forecast.png") in result.stdout
    assert (
        "drawing series s1 of 3; --series picks another" in cli.ok("plot", long_run, "--out", tmp_path / "first").stderr
    )
    missing = cli("plot", long_run, "--series", "nope", "--out", tmp_path / "other")
    assert_user_error(missing, "'nope'", "s1")
    assert not (tmp_path / "other").exists()


def test_long_forecast_per_series(cli: Cli, long_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "forecast.csv"
    result = cli.ok("predict", long_run, "--out", out)
    assert result.stdout.strip() == f"wrote {3 * HORIZON} rows to {out}"
    frame = read_times(out)
    assert list(frame.columns) == ["series", "target", "origin", "timestamp", "step", "y_pred"]
    assert sorted(frame["series"].unique()) == ["s1", "s2", "s3"]
    source = long_frame()
    for sid, rows in frame.groupby("series"):
        last = source[source["id"] == sid]["date"].max()
        assert rows["step"].tolist() == list(range(1, HORIZON + 1))
        assert (rows["origin"] == last).all() and rows["timestamp"].tolist() == next_steps(last)
    assert np.isfinite(frame["y_pred"]).all()


def test_a_series_too_short_to_forecast_is_skipped_not_the_file(cli: Cli, long_run: Path, tmp_path: Path) -> None:
    frame = long_frame()
    short = pd.concat([frame[frame["id"] != "s2"], frame[frame["id"] == "s2"].tail(LOOKBACK - 1)])
    data = write_csv(tmp_path / "recent.csv", short)
    out = tmp_path / "forecast.csv"
    result = cli.ok("predict", long_run, "--data", data, "--out", out)
    assert f"skipping 1 series with fewer rows than the lookback ({LOOKBACK}): s2" in result.stderr
    assert sorted(read_times(out)["series"].unique()) == ["s1", "s3"]
    alone = write_csv(tmp_path / "alone.csv", frame[frame["id"] == "s2"].tail(LOOKBACK - 1))
    assert_user_error(cli("predict", long_run, "--data", alone), "series s2", "than the lookback")


def test_newer_rows_of_every_series_are_scored_though_the_series_end_apart(
    cli: Cli, long_run: Path, tmp_path: Path
) -> None:
    parts = []  # every series 20 rows longer; s1 and s2 end weeks before s3, the latest
    for k, (sid, n, start) in enumerate(
        (("s1", 300, "2024-01-01"), ("s2", 260, "2024-01-03 05:00"), ("s3", 240, "2024-02-01"))
    ):
        part = synthetic_frame(n + 20, columns=("y", "x"), start=start, seed=k)
        part.insert(0, "id", sid)
        parts.append(part)
    newer = write_csv(tmp_path / "newer.csv", pd.concat(parts, ignore_index=True))
    result = forecast.api.evaluate(long_run, data=str(newer), log=lambda m: None)
    assert result["windows"] == 3 * (20 - HORIZON + 1)
    assert all(np.isfinite(result["series"][sid]["model"]["mae"]) for sid in LENGTHS)
    assert result["windows_from"].startswith("rows after each series' last time in the training data")


def test_plot_of_a_series_with_no_backtest_leaves_no_other_series_backtest(
    cli: Cli, long_run: Path, tmp_path: Path
) -> None:
    frame = long_frame()
    s3 = synthetic_frame(260, columns=("y", "x"), start="2024-02-01", seed=2)  # s3 20 rows newer, s1 and s2 not
    s3.insert(0, "id", "s3")
    newer = write_csv(tmp_path / "newer.csv", pd.concat([frame[frame["id"] != "s3"], s3], ignore_index=True))
    out = tmp_path / "pngs"
    cli.ok("plot", long_run, "--series", "s3", "--data", newer, "--out", out)
    assert (out / "backtest.png").is_file()
    result = cli.ok("plot", long_run, "--series", "s1", "--data", newer, "--out", out)
    assert "no backtest to draw (series s1)" in result.stderr and "earlier backtest.png was removed" in result.stderr
    assert not (out / "backtest.png").exists() and (out / "forecast.png").is_file()


def test_last_timestamp_is_the_latest_of_all_series(cli: Cli, long_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cli.train(long_csv, run, "--set", "data.id_column=id", "--target", "y")
    latest = pd.read_csv(long_csv, parse_dates=["date"])["date"].max()
    assert torch.load(run / "model.pt", weights_only=True)["last_timestamp"] == str(latest)


@pytest.mark.parametrize("ids", [["001", "002", "10"], ["1001", "1002", "1010"]])
def test_an_id_column_of_numbers_is_never_taken_for_the_time(tmp_path: Path, ids: list[str]) -> None:
    times = pd.date_range("2024-01-01", periods=40, freq="h").strftime("%Y-%m-%d %H:%M")
    frame = pd.concat([pd.DataFrame({"id": i, "when": times, "y": np.arange(40.0) + k}) for k, i in enumerate(ids)])
    frame.to_csv(tmp_path / "ids_first.csv", index=False)  # the id column comes first; the time's name is no hint
    panel = load_panel(DataConfig(path=str(tmp_path / "ids_first.csv"), id_column="id", target=["y"]))
    assert panel.ids == sorted(ids) and panel.freq == "h"
    with pytest.raises(ForecastError, match="the id column 'when' is not one"):  # the time named as the id
        load_panel(DataConfig(path=str(tmp_path / "ids_first.csv"), id_column="when", target=["y"]))
