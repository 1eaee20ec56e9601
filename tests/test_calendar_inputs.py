"""`data.calendar`: calendar features (bounded, periodic) of the steps being forecast, as known-future
inputs to the head, read from the timestamps forecast (frequencies themselves: test_calendars.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import HORIZON, LOOKBACK, Cli, next_steps, read_times, train_on_multi

from forecast import calendar
from forecast.run import load_run


def test_calendar_features_are_bounded_and_periodic() -> None:
    times = pd.date_range("2024-01-01", periods=48, freq="h").to_numpy()
    cal = calendar.calendar_features(times)
    assert cal.shape == (48, 6) and np.abs(cal).max() <= 1
    np.testing.assert_allclose(cal[:24, :2], cal[24:, :2], atol=1e-12)  # hour of day repeats daily


@pytest.fixture(scope="module")
def calendar_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # no highway: its zero-initialized head would let validation keep the calendar-blind start
    base = tmp_path_factory.mktemp("calendar")
    return train_on_multi(base, "--set", "data.calendar=true", "--set", "model.highway=false")


def test_calendar_forecast(cli: Cli, calendar_run: Path, tmp_path: Path) -> None:
    run = load_run(calendar_run)
    assert run.model.n_future == len(calendar.CALENDAR_COLUMNS)
    assert "calendar inputs: hour, weekday and month as sin/cos" in cli.ok("info", calendar_run).stdout
    assert run.model.head.in_features == 8 * LOOKBACK + HORIZON * len(calendar.CALENDAR_COLUMNS)
    out = tmp_path / "forecast.csv"
    result = cli.ok("predict", calendar_run, "--out", out)
    assert result.stdout.strip() == f"wrote {HORIZON} rows to {out}"
    frame = read_times(out)
    last = pd.Timestamp("2024-01-13 11:00:00")
    assert list(frame.columns) == ["target", "origin", "timestamp", "step", "y_pred"]
    assert (frame["origin"] == last).all() and frame["timestamp"].tolist() == next_steps(last)
    assert np.isfinite(frame["y_pred"]).all()
    cli.ok("predict", calendar_run, "--backtest", "--out", tmp_path / "bt.csv")
    backtest = pd.read_csv(tmp_path / "bt.csv")
    assert len(backtest) == (60 - HORIZON + 1) * HORIZON and np.isfinite(backtest["y_pred"]).all()


def test_calendar_forecast_depends_on_the_future_timestamps(calendar_run: Path) -> None:
    run = load_run(calendar_run)
    prep = run.data_for(None)
    x = torch.from_numpy(prep.scaled[-LOOKBACK:][None])  # the last window, calendar columns included
    last = pd.Timestamp(prep.panel.times[-1])

    def future(times: list[pd.Timestamp]) -> torch.Tensor:
        return torch.from_numpy(calendar.calendar_features(np.array(times, dtype="datetime64[ns]"))).float()[None]

    with torch.inference_mode():
        real = run.model(x, future(next_steps(last)))
        other = run.model(x, future(next_steps(last + pd.Timedelta(hours=7))))
    assert not torch.allclose(real, other, atol=1e-6)
    # forecast() feeds the calendar of the steps it forecasts
    frame = run.forecast()
    expected = prep.scaler.inverse(real.numpy(), np.array([0]), 1).reshape(-1)
    np.testing.assert_allclose(frame["y_pred"], expected, rtol=1e-5)
