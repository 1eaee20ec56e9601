"""Calendars: frequencies inferred for every series, business days, months on any day, week
anchors, seasons, and the same step written two ways ('D' and '24h')."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL, Cli, assert_user_error, write_csv

from forecast import calendar, panel
from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import load_panel


def frame_of(times: pd.DatetimeIndex | list, sid: str | None = None) -> pd.DataFrame:
    t = np.arange(len(times))
    frame = pd.DataFrame({"date": times, "y": 10 + np.sin(2 * np.pi * t / 7) + 0.01 * t})
    if sid is not None:
        frame.insert(0, "id", sid)
    return frame


def panel_of(path: Path, **kwargs) -> panel.Panel:
    return load_panel(DataConfig(path=str(path), **kwargs))


def business_days_with_holidays() -> pd.DatetimeIndex:
    days = pd.bdate_range("2024-01-02", "2024-12-31")
    holidays = pd.to_datetime(["2024-01-15", "2024-02-19", "2024-05-27", "2024-07-04", "2024-12-25"])
    return days.difference(holidays)  # a trading calendar: weekends and five holidays skipped


# ---------------------------------------------------------------- calendars pandas cannot name


def test_business_days_with_holidays_are_business_days(tmp_path: Path) -> None:
    days = business_days_with_holidays()
    panel = panel_of(write_csv(tmp_path / "b.csv", frame_of(days)), gaps="error")  # holidays are no gaps
    assert panel.freq == "B" and calendar.season_length(panel.freq) == 5
    future = calendar.continue_times(panel.times[-1:], panel.freq, 4)[0]  # last: Tuesday 2024-12-31
    assert list(future) == list(pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-06"]))


def test_business_days_skip_the_fixed_holidays_the_data_skips(tmp_path: Path) -> None:
    days = pd.bdate_range("2020-01-02", "2024-12-24")
    days = days[~days.strftime("%m-%d").isin(["01-01", "07-04", "12-25"])]  # plus one moving day, once
    days = days.delete(days.get_loc(pd.Timestamp("2024-03-29")))  # Good Friday 2024
    panel = panel_of(write_csv(tmp_path / "b.csv", frame_of(days)), gaps="error")
    assert panel.freq == "B" and panel.holidays == ("01-01", "07-04", "12-25")
    future = calendar.continue_times(panel.times[-1:], panel.freq, 3, panel.holidays)[0]  # last: Tue 2024-12-24
    assert list(future) == list(pd.to_datetime(["2024-12-26", "2024-12-27", "2024-12-30"]))


def test_business_days_keep_their_time_of_day(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-01-01", periods=30) + pd.Timedelta(hours=16)  # daily closes at 16:00
    panel = panel_of(write_csv(tmp_path / "b.csv", frame_of(days)))
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]  # last: Friday 2024-02-09
    assert panel.freq == "B" and list(future) == list(pd.to_datetime(["2024-02-12 16:00", "2024-02-13 16:00"]))


def test_monthly_on_the_15th_stays_on_the_15th(tmp_path: Path) -> None:
    months = pd.date_range("2020-01-01", periods=26, freq="MS") + pd.Timedelta(days=14)
    panel = panel_of(write_csv(tmp_path / "m.csv", frame_of(months)), gaps="error")
    assert panel.freq == "MS" and calendar.season_length(panel.freq) == 12
    future = calendar.continue_times(panel.times[-1:], panel.freq, 3)[0]  # last: 2022-02-15
    assert list(future) == list(pd.to_datetime(["2022-03-15", "2022-04-15", "2022-05-15"]))


@pytest.mark.parametrize("day", [29, 30])
def test_monthly_on_the_29th_or_30th_keeps_its_day_past_february(tmp_path: Path, day: int) -> None:
    """January 30, February 28, March 30, ...: one month apart, not 31 days with gaps."""
    months = pd.date_range("2017-01-01", periods=63, freq="MS")
    times = [m + pd.Timedelta(days=min(day, m.days_in_month) - 1) for m in months]  # the last: 2022-03
    panel = panel_of(write_csv(tmp_path / "m.csv", frame_of(times)), gaps="error")
    assert panel.freq == "MS" and calendar.season_length(panel.freq) == 12
    anchor = calendar.month_anchor(panel.times, panel.offsets)
    assert list(anchor) == [day]
    future = calendar.continue_times(panel.times[-2:-1], panel.freq, 3, anchor=anchor)[0]  # from 2022-02-28
    assert list(future) == list(pd.to_datetime([f"2022-03-{day}", f"2022-04-{day}", f"2022-05-{day}"]))
    # and end to end: the forecast after the data's last row (2022-03-29/30) crosses no February
    cli = Cli()
    cli.ok("train", "--data", tmp_path / "m.csv", "--out", tmp_path / "run", *SMALL)
    cli.ok("predict", tmp_path / "run", "--data", write_csv(tmp_path / "to_feb.csv", frame_of(times[:-1])))
    future = pd.to_datetime(pd.read_csv(tmp_path / "run" / "forecast.csv")["timestamp"])
    assert list(future[:2]) == list(pd.to_datetime([f"2022-03-{day}", f"2022-04-{day}"]))


def test_monthly_data_a_few_days_off_its_day_is_monthly_with_a_warning(tmp_path: Path) -> None:
    months = pd.date_range("2015-01-01", periods=30, freq="MS")
    times = [m + pd.Timedelta(days=min(30, m.days_in_month) - 1) for m in months]
    times[13] = pd.Timestamp("2016-02-28")  # February 29 existed that year
    path = write_csv(tmp_path / "m.csv", frame_of(times))
    with pytest.warns(UserWarning, match="monthly on day 30 of the month .*2016-02-28 is a few days off it"):
        panel = panel_of(path)
    assert panel.freq == "MS"
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2, anchor=np.array([30]))[0]
    assert list(future) == list(pd.to_datetime(["2017-07-30", "2017-08-30"]))
    with pytest.raises(ForecastError, match="2016-02-28"):
        panel_of(path, gaps="error")
    fixed = [pd.Timestamp("2015-01-01") + pd.Timedelta(days=31 * i) for i in range(3)]  # 31-day steps: not months
    assert panel_of(write_csv(tmp_path / "d.csv", frame_of(fixed))).freq == "31D"


def test_one_late_reading_is_named_and_moves_no_forecast(tmp_path: Path) -> None:
    times = list(pd.date_range("2022-01-01", periods=24, freq="MS") + pd.Timedelta(days=14))  # the 15th
    times[9] = pd.Timestamp("2022-10-17")
    with pytest.warns(UserWarning, match="monthly on day 15 .*2022-10-17 is a few days off it"):
        panel = panel_of(write_csv(tmp_path / "m.csv", frame_of(times)))
    anchor = calendar.month_anchor(panel.times, panel.offsets)
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2, anchor=anchor)[0]
    assert panel.freq == "MS" and list(future) == list(pd.to_datetime(["2024-01-15", "2024-02-15"]))


def test_fixed_steps_with_a_gap_are_not_taken_for_months(tmp_path: Path) -> None:
    times = pd.date_range("2023-01-29", periods=8, freq="30D").delete(3)  # every 30 days, one missing
    with pytest.warns(UserWarning, match="irregular time steps"):
        assert panel_of(write_csv(tmp_path / "d.csv", frame_of(times))).freq == "30D"


@pytest.mark.parametrize("first", ["end", "mid"])
def test_each_series_keeps_its_day_whichever_comes_first(tmp_path: Path, first: str) -> None:
    ends = frame_of(pd.date_range("2023-01-31", periods=6, freq="ME"), "end")
    mids = frame_of(pd.date_range("2023-01-01", periods=6, freq="MS") + pd.Timedelta(days=14), "mid")
    frames = [ends, mids] if first == "end" else [mids, ends]
    panel = panel_of(write_csv(tmp_path / "long.csv", pd.concat(frames)), id_column="id", sort=True)
    anchor = calendar.month_anchor(panel.times, panel.offsets)
    last = panel.times[panel.offsets[1:] - 1]
    future = dict(zip(panel.ids, calendar.continue_times(last, panel.freq, 2, anchor=anchor), strict=True))
    assert list(future["end"]) == list(pd.to_datetime(["2023-07-31", "2023-08-31"]))
    assert list(future["mid"]) == list(pd.to_datetime(["2023-07-15", "2023-08-15"]))


def test_month_ends_stay_month_ends(tmp_path: Path) -> None:
    ends = pd.date_range("2022-01-31", periods=24, freq="ME")
    panel = panel_of(write_csv(tmp_path / "m.csv", frame_of(ends)), gaps="error")
    future = calendar.continue_times(panel.times[-1:], panel.freq, 3)[0]  # last: 2023-12-31
    assert panel.freq == "ME" and list(future) == list(pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"]))


@pytest.mark.parametrize("anchor", ["W-WED", "W-SUN", "2W-FRI"])
def test_weeks_keep_their_weekday(tmp_path: Path, anchor: str) -> None:
    weeks = pd.date_range("2023-01-01", periods=40, freq=anchor)
    panel = panel_of(write_csv(tmp_path / "w.csv", frame_of(weeks)), gaps="error")
    assert panel.freq == anchor
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert list(future) == list(pd.date_range(weeks[-1], periods=3, freq=anchor)[1:])


@pytest.mark.parametrize(("freq", "months"), [("QS-FEB", 3), ("YS-JUL", 12), ("QE-DEC", 3), ("2MS", 2)])
def test_quarters_and_years_on_any_anchor(tmp_path: Path, freq: str, months: int) -> None:
    times = pd.date_range("2001-01-01", periods=30, freq=freq)
    panel = panel_of(write_csv(tmp_path / "q.csv", frame_of(times)), gaps="error")
    assert calendar.step_of(panel.freq) == ("months", months)
    assert list(calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]) == list(
        pd.date_range(times[-1], periods=3, freq=freq)[1:]
    )


@pytest.mark.parametrize("freq", ["BME", "BMS"])
def test_calendars_only_pandas_names_still_work(tmp_path: Path, freq: str) -> None:
    times = pd.date_range("2020-01-01", periods=40, freq=freq)  # business month ends / starts
    panel = panel_of(write_csv(tmp_path / "bm.csv", frame_of(times)), gaps="error")
    assert panel.freq == freq and calendar.season_length(panel.freq) == 12
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert list(future) == list(pd.date_range(times[-1], periods=3, freq=freq)[1:])


def test_real_gaps_are_still_found(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=60, freq="D").delete(20)  # one missing day (a Sunday)
    path = write_csv(tmp_path / "d.csv", frame_of(days))
    with pytest.warns(UserWarning, match=r"usually 1 days 00:00:00, largest gap 2 days 00:00:00 after 2024-01-20"):
        assert panel_of(path).freq == "D"
    with pytest.raises(ForecastError, match="irregular time steps"):
        panel_of(path, gaps="error")
    weekdays = business_days_with_holidays().delete(slice(40, 50))  # two trading weeks missing
    with pytest.raises(ForecastError, match="usually 1 business day, largest gap 11 business days"):
        panel_of(write_csv(tmp_path / "b.csv", frame_of(weekdays)), gaps="error")
    shorter = [pd.Timestamp("2020-01-01") + pd.Timedelta(days=d) for d in (0, 31, 62, 93, 124, 150, 181, 212)]
    with pytest.raises(ForecastError, match=r"usually 31 days 00:00:00, but 26 days 00:00:00 after 2020-05-04"):
        panel_of(write_csv(tmp_path / "s.csv", frame_of(shorter)), gaps="error")  # the usual step is the largest


def test_missing_month_is_a_gap_in_months(tmp_path: Path) -> None:
    months = pd.date_range("2020-01-01", periods=30, freq="MS").delete(10)
    with pytest.raises(ForecastError, match="usually 1 month, largest gap 2 months after 2020-10-01"):
        panel_of(write_csv(tmp_path / "m.csv", frame_of(months)), gaps="error")


# ---------------------------------------------------------------- every series, one frequency


def many_series(n: int, bad: int | None = None, freq: str = "h") -> pd.DataFrame:
    parts = []
    for k in range(n):
        times = pd.date_range("2024-01-01", periods=50, freq=freq)
        if k == bad:
            times = times.delete(slice(20, 25))
        parts.append(frame_of(times, f"s{k:02d}"))
    return pd.concat(parts, ignore_index=True)


def test_every_series_is_checked_for_gaps(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long.csv", many_series(12, bad=10))  # the 11th series has a gap
    with pytest.raises(ForecastError, match=r"\(series 's10'\) has irregular time steps"):
        panel_of(path, id_column="id", gaps="error")


def test_mixed_frequencies_are_refused_naming_one_of_each(tmp_path: Path) -> None:
    frame = pd.concat(
        [
            many_series(3),
            frame_of(pd.date_range("2024-01-01", periods=50, freq="D"), "daily"),
            frame_of(pd.date_range("2024-01-01", periods=50, freq="MS"), "monthly"),
        ]
    )
    path = write_csv(tmp_path / "mixed.csv", frame)
    with pytest.raises(ForecastError, match=r"mixes frequencies: series 'daily' is D but series 'monthly' is MS"):
        panel_of(path, id_column="id")


def test_weekly_series_on_different_weekdays_share_one_step(tmp_path: Path) -> None:
    frame = pd.concat([frame_of(pd.date_range("2024-01-01", periods=30, freq=f), f) for f in ("W-MON", "W-THU")])
    panel = panel_of(write_csv(tmp_path / "w.csv", frame), id_column="id")
    future = calendar.continue_times(panel.times[panel.offsets[1:] - 1], panel.freq, 1)[:, 0]
    assert list(pd.DatetimeIndex(future).day_name()) == ["Monday", "Thursday"]  # each keeps its own weekday


def test_inference_is_vectorized_over_many_series(tmp_path: Path) -> None:
    # 3000 series: one pass over all rows, no per-series Python loop (which took seconds)
    n, length = 3000, 40
    ids = np.repeat([f"s{k}" for k in range(n)], length)
    times = np.tile(pd.date_range("2024-01-01", periods=length, freq="D").to_numpy(), n)
    frame = pd.DataFrame({"id": ids, "date": times, "y": np.random.default_rng(0).normal(size=n * length)})
    import time

    start = time.perf_counter()
    panel = load_panel(DataConfig(id_column="id"), frame)
    assert panel.freq == "D" and len(panel.ids) == n
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------- seasons and steps


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("h", 24),
        ("2h", 12),
        ("7h", 1),
        ("15min", 96),
        ("30min", 48),
        ("D", 7),
        ("24h", 7),
        ("2D", 1),
        ("B", 5),
        ("W-SUN", 52),
        ("W-WED", 52),
        ("168h", 52),
        ("2W", 26),
        ("3W", 1),
        ("MS", 12),
        ("ME", 12),
        ("2MS", 6),
        ("5MS", 1),
        ("QS", 4),
        ("QS-JAN", 4),
        ("QE-DEC", 4),
        ("2QS", 2),
        ("YS", 1),
        ("YE-DEC", 1),
    ],
)
def test_season_length_table(freq: str, season: int) -> None:
    assert calendar.season_length(freq) == season


@pytest.mark.parametrize(
    ("a", "b"), [("D", "24h"), ("W-SUN", "168h"), ("W-SUN", "W-WED"), ("MS", "ME"), ("h", "60min")]
)
def test_steps_compare_as_durations_or_calendar_rules(a: str, b: str) -> None:
    assert calendar.step_of(a) == calendar.step_of(b)


@pytest.mark.parametrize(("a", "b"), [("D", "B"), ("MS", "QS"), ("D", "W-SUN"), ("h", "2h")])
def test_different_steps_differ(a: str, b: str) -> None:
    assert calendar.step_of(a) != calendar.step_of(b)


def test_newer_file_with_a_missing_day_is_accepted(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    train = write_csv(tmp_path / "train.csv", frame_of(days))
    newer = write_csv(tmp_path / "newer.csv", frame_of(days.delete(150)))
    cli = Cli()
    cli.train(train, tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the gap's warning
        result = cli("predict", tmp_path / "run", "--data", newer, "--out", tmp_path / "f.csv")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "f.csv")["timestamp"].iloc[0] == "2024-07-19 00:00:00"


def test_model_of_one_frequency_refuses_another(tmp_path: Path) -> None:
    cli = Cli()
    daily = write_csv(tmp_path / "d.csv", frame_of(pd.date_range("2024-01-01", periods=200, freq="D")))
    cli.train(daily, tmp_path / "r")
    hourly = write_csv(tmp_path / "h.csv", frame_of(pd.date_range("2024-01-01", periods=200, freq="h")))
    assert_user_error(cli("predict", tmp_path / "r", "--data", hourly), "frequency 'h'", "trained on 'D'")


def test_forecast_of_business_days_skips_weekends(tmp_path: Path) -> None:
    cli = Cli()
    path = write_csv(tmp_path / "b.csv", frame_of(business_days_with_holidays()))
    cli.ok("train", "--data", path, "--out", tmp_path / "run", *SMALL)
    cli.ok("predict", tmp_path / "run")
    future = pd.to_datetime(pd.read_csv(tmp_path / "run" / "forecast.csv")["timestamp"])
    assert len(future) == 6 and (future.dt.day_of_week < 5).all() and future.iloc[0] == pd.Timestamp("2025-01-01")


def test_forecast_from_a_short_newer_file_skips_the_holidays_training_showed(tmp_path: Path) -> None:
    days = pd.bdate_range("2016-01-04", "2019-12-18")
    days = days[~days.strftime("%m-%d").isin(["12-25", "01-01"])]  # four years of trading days
    cli = Cli()
    cli.ok("train", "--data", write_csv(tmp_path / "b.csv", frame_of(days)), "--out", tmp_path / "run", *SMALL)
    recent = write_csv(tmp_path / "recent.csv", frame_of(days[-40:]))  # too short to show a holiday itself
    cli.ok("predict", tmp_path / "run", "--data", recent)
    future = pd.to_datetime(pd.read_csv(tmp_path / "run" / "forecast.csv")["timestamp"])
    assert list(future.dt.strftime("%m-%d")) == ["12-19", "12-20", "12-23", "12-24", "12-26", "12-27"]
