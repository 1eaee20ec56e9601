"""What a run writes is what a reader gets: metrics.json that any JSON reader parses and that holds
the test split's scores whatever else is evaluated, and plots that draw the files `predict` wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import Cli, read_times, synthetic_frame, write_csv

from forecast import plots


def refuse_constant(name: str) -> None:
    raise AssertionError(f"metrics.json holds {name}, which is not JSON")


def test_metrics_json_writes_undefined_scores_as_null(cli: Cli, tmp_path: Path) -> None:
    frame = synthetic_frame(n=300, columns=("y",))
    frame.loc[240:, "y"] = 0.0  # every test actual is zero: MAPE is undefined
    csv = write_csv(tmp_path / "zeros.csv", frame)
    run = tmp_path / "run"
    cli.train(csv, run)
    metrics = json.loads((run / "metrics.json").read_text(), parse_constant=refuse_constant)
    assert metrics["models"]["model"]["mape"] is None
    assert isinstance(metrics["models"]["model"]["mae"], float)
    info = cli.ok("info", run).stdout  # the table reads the nulls back
    assert "mse_z" in info


def test_evaluate_on_another_split_leaves_the_test_metrics(cli: Cli, run_copy: Path) -> None:
    before = (run_copy / "metrics.json").read_text()
    assert "wrote" not in cli.ok("evaluate", run_copy, "--split", "val").stdout
    assert (run_copy / "metrics.json").read_text() == before
    assert json.loads(before)["split"] == "test"


def test_evaluate_where_it_cannot_write_still_shows_the_scores(
    cli: Cli, run_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forecast import files
    from forecast.errors import ForecastError

    before = (run_copy / "metrics.json").read_text()

    def read_only(path: object, value: object) -> None:
        raise ForecastError(f"cannot write {path}: no permission to write in {run_copy}")

    monkeypatch.setattr(files, "write_json", read_only)
    result = cli.ok("evaluate", run_copy)
    assert "mse_z" in result.stdout and "wrote" not in result.stdout
    assert "no permission" in result.stderr and "the scores are not saved" in result.stderr
    assert (run_copy / "metrics.json").read_text() == before


def test_plot_of_one_series_with_a_series_id_says_there_is_one(cli: Cli, run_copy: Path) -> None:
    result = cli("plot", run_copy, "--series", "A")
    assert result.exit_code == 1 and "this run has one series" in result.stderr


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, pd.DataFrame]:
    """The frames `forecast plot` hands to the plotting functions, by figure name."""
    seen: dict[str, pd.DataFrame] = {}
    monkeypatch.setattr(plots, "plot_backtest", lambda pred, horizon, title, path: seen.update(backtest=pred))
    monkeypatch.setattr(plots, "plot_forecast", lambda hist, fc, title, path: seen.update(forecast=fc, history=hist))
    return seen


def assert_same_rows(drawn: pd.DataFrame, written: pd.DataFrame) -> None:
    columns = list(written.columns)
    pd.testing.assert_frame_equal(drawn[columns].reset_index(drop=True), written, check_dtype=False)


def test_plot_draws_the_forecast_predict_wrote_with_its_band(
    cli: Cli, run_copy: Path, drawn: dict[str, pd.DataFrame]
) -> None:
    cli.ok("predict", run_copy, "--coverage", "0.9")
    cli.ok("plot", run_copy)
    written = read_times(run_copy / "forecast.csv")
    assert {"y_lo", "y_hi"} <= set(drawn["forecast"].columns)
    assert_same_rows(drawn["forecast"], written)


def test_plot_draws_the_forecast_of_newer_data(
    cli: Cli, run_copy: Path, tmp_path: Path, drawn: dict[str, pd.DataFrame]
) -> None:
    newer = write_csv(tmp_path / "newer.csv", synthetic_frame(n=340, columns=("a", "b", "c")))  # 40 rows more
    cli.ok("predict", run_copy, "--data", newer)
    alone = cli.ok("plot", run_copy)  # the training file's history ends 40 hours before the forecast
    assert "later than the data drawn" in alone.stderr and "pass --data" in alone.stderr
    cli.ok("plot", run_copy, "--data", newer)
    written = read_times(run_copy / "forecast.csv")
    assert written["origin"].iloc[0] == pd.Timestamp("2024-01-01") + pd.Timedelta(hours=339)
    assert_same_rows(drawn["forecast"], written)
    assert drawn["history"]["timestamp"].max() == written["origin"].iloc[0]  # drawn up to the forecast


def test_plot_draws_the_backtest_predict_wrote_with_its_band(
    cli: Cli, run_copy: Path, drawn: dict[str, pd.DataFrame]
) -> None:
    cli.ok("predict", run_copy, "--backtest", "--split", "val", "--coverage", "0.8")
    cli.ok("plot", run_copy)
    written = read_times(run_copy / "predictions.csv")
    assert {"y_lo", "y_hi"} <= set(drawn["backtest"].columns)
    assert_same_rows(drawn["backtest"], written)


def test_plot_computes_what_predict_did_not_write(cli: Cli, run_copy: Path, drawn: dict[str, pd.DataFrame]) -> None:
    assert not (run_copy / "forecast.csv").exists() and not (run_copy / "predictions.csv").exists()
    cli.ok("plot", run_copy)
    cli.ok("predict", run_copy)
    assert_same_rows(drawn["forecast"], read_times(run_copy / "forecast.csv"))
    assert set(drawn["backtest"]["origin"]) <= set(cli_backtest(cli, run_copy)["origin"])


def cli_backtest(cli: Cli, run: Path) -> pd.DataFrame:
    cli.ok("predict", run, "--backtest", "--out", run / "test-backtest.csv")
    return read_times(run / "test-backtest.csv")


def test_plot_draws_one_series_of_forecast_csv(
    cli: Cli, long_csv: Path, tmp_path: Path, drawn: dict[str, pd.DataFrame]
) -> None:
    run = tmp_path / "long-run"
    cli.train(long_csv, run, "--set", "data.id_column=id", "--target", "y")
    cli.ok("predict", run)
    cli.ok("plot", run, "--series", "s2")
    written = read_times(run / "forecast.csv")
    assert_same_rows(drawn["forecast"], written[written["series"] == "s2"].reset_index(drop=True))
    assert drawn["history"]["timestamp"].max() == written.loc[written["series"] == "s2", "origin"].iloc[0]
