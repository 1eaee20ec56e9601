"""Time columns as people write them: quarters, month names, integer years, ISO weeks, zones,
fractions of a second; read, continued and written back in the same form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import SMALL, Cli, assert_user_error

from forecast import calendar, panel, read
from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import load_panel


def write_series(path: Path, times: list, column: str = "date", n_cols: int = 1) -> Path:
    """A CSV of `times` in `column` and a numeric `y`: a seasonal sine, plus trend."""
    t = np.arange(len(times))
    frame = pd.DataFrame({column: times, "y": 10 + np.sin(2 * np.pi * t / 4) + 0.01 * t})
    frame.to_csv(path, index=False)
    return path


def panel_of(path: Path, **kwargs) -> panel.Panel:
    return load_panel(DataConfig(path=str(path), **kwargs))


def written(panel: panel.Panel, times: np.ndarray) -> list[str]:
    return list(read.format_times(times, panel.time_format or read.DEFAULT_TIME_FORMAT))


def quarters(start: int, n: int, layout: str) -> list[str]:
    return [layout.format(y=start + i // 4, q=i % 4 + 1) for i in range(n)]


# ---------------------------------------------------------------- quarters, months, years, weeks


@pytest.mark.parametrize("layout", ["{y} Q{q}", "{y}Q{q}", "{y}-Q{q}", "Q{q} {y}"])
def test_quarter_strings_are_quarter_starts(tmp_path: Path, layout: str) -> None:
    path = write_series(tmp_path / "q.csv", quarters(1998, 30, layout), column="quarter")
    panel = panel_of(path)
    assert panel.times[0] == np.datetime64("1998-01-01") and panel.times[5] == np.datetime64("1999-04-01")
    assert panel.freq == "QS-JAN" and calendar.season_length(panel.freq) == 4
    future = calendar.continue_times(panel.times[-1:], panel.freq, 3)[0]  # last: 2005 Q2
    assert list(future) == list(pd.to_datetime(["2005-07-01", "2005-10-01", "2006-01-01"]))
    assert written(panel, future) == [layout.format(y=y, q=q) for y, q in ((2005, 3), (2005, 4), (2006, 1))]


@pytest.mark.parametrize(
    ("layout", "first", "later"),
    [("%Y %b", "1998 Jan", "2000 Jul"), ("%b-%Y", "Jan-1998", "Jul-2000"), ("%B %Y", "January 1998", "July 2000")],
)
def test_month_names_are_month_starts(tmp_path: Path, layout: str, first: str, later: str) -> None:
    months = pd.date_range("1998-01-01", periods=30, freq="MS")
    panel = panel_of(write_series(tmp_path / "m.csv", list(months.strftime(layout)), column="month"))
    assert panel.times[0] == np.datetime64("1998-01-01") and panel.freq == "MS" and panel.time_format == layout
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert list(future) == list(pd.to_datetime(["2000-07-01", "2000-08-01"]))
    assert written(panel, future)[0] == later and written(panel, panel.times[:1]) == [first]


def test_integer_year_column_is_an_annual_series(tmp_path: Path) -> None:
    path = tmp_path / "nile.csv"
    pd.DataFrame({"year": np.arange(1871, 1971), "flow": np.linspace(1000, 800, 100)}).to_csv(path, index=False)
    assert read.detect_date_column(pd.read_csv(path), None, str(path)) == "year"
    panel = panel_of(path)
    assert panel.times[0] == np.datetime64("1871-01-01") and panel.freq == "YS-JAN" and panel.time_format == "%Y"
    assert calendar.season_length(panel.freq) == 1
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert written(panel, future) == ["1971", "1972"]


@pytest.mark.parametrize(("padded", "written_as"), [(True, "%YM%m"), (False, "")])
def test_month_numbers_after_an_m_are_month_starts(tmp_path: Path, padded: bool, written_as: str) -> None:
    # 2015M01 (Eurostat) or 2015M1 (IMF); October to December must not read as January
    months = pd.date_range("2015-01-01", periods=30, freq="MS")
    times = [f"{t.year}M{t.month:02d}" if padded else f"{t.year}M{t.month}" for t in months]
    panel = panel_of(write_series(tmp_path / "m.csv", times, column="period"))
    assert panel.freq == "MS" and list(panel.times) == list(months) and panel.time_format == written_as
    if padded:
        assert written(panel, panel.times[9:10]) == ["2015M10"]


@pytest.mark.parametrize(
    ("column", "freq", "stamps", "layout"),
    [
        ("date", "D", pd.date_range("2023-12-20", periods=40, freq="D"), "%Y%m%d"),
        ("month", "MS", pd.date_range("1926-07-01", periods=40, freq="MS"), "%Y%m"),
    ],
)
def test_integer_dates_by_name_are_times(
    tmp_path: Path, column: str, freq: str, stamps: pd.DatetimeIndex, layout: str
) -> None:
    # 20231220 or 192607, as finance and statistics exports write them and pandas reads them: integers
    path = write_series(tmp_path / "d.csv", [int(t) for t in stamps.strftime(layout)], column=column)
    assert pd.api.types.is_integer_dtype(pd.read_csv(path)[column])
    panel = panel_of(path)
    assert panel.freq == freq and list(panel.times) == list(stamps) and panel.time_format == layout
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert written(panel, future) == list(pd.date_range(stamps[-1], periods=3, freq=freq)[1:].strftime(layout))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("date", [20231232, 20240101, 20240102]),  # a 32nd day
        ("date", [202313, 202401, 202402]),  # a 13th month
        ("date", [1, 2, 3]),  # a counter
        ("quarter", [199001, 199002, 199003]),  # year and quarter, not months
        ("week", [202401, 202402, 202403]),  # year and week
    ],
)
def test_integers_that_are_not_dates_are_not_a_time_column(column: str, values: list[int]) -> None:
    df = pd.DataFrame({column: values, "y": [1.0, 2.0, 3.0]})
    with pytest.raises(ForecastError, match="no time column found"):
        read.detect_date_column(df, None, "f.csv")
    with pytest.raises(ForecastError, match="not a time at line 2"):  # named as the time column: still not months
        read.read_times(df[column], column, "f.csv")


def test_integer_counter_named_year_is_not_a_time_column() -> None:
    df = pd.DataFrame({"year": [1, 2, 3], "y": [1.0, 2.0, 3.0]})  # years since something: not dates
    with pytest.raises(ForecastError, match="no time column found"):
        read.detect_date_column(df, None, "f.csv")


def test_year_and_month_columns_are_not_taken_for_an_annual_series() -> None:
    df = pd.DataFrame({"year": [2000, 2000, 2000], "month": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(ForecastError, match="no time column found .*set data.date_column"):
        read.detect_date_column(df, None, "f.csv")


@pytest.mark.parametrize(("layout", "freq"), [("%G-W%V", "W-MON"), ("%G-W%V-%u", "W-MON")])
def test_iso_weeks_are_their_mondays(tmp_path: Path, layout: str, freq: str) -> None:
    mondays = pd.date_range("2019-12-30", periods=60, freq="W-MON")  # 2020-W01 .. 2021-W07
    panel = panel_of(write_series(tmp_path / "w.csv", list(mondays.strftime(layout)), column="week"))
    assert panel.times[0] == np.datetime64("2019-12-30") and panel.freq == freq and panel.time_format == layout
    assert calendar.season_length(panel.freq) == 52
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert written(panel, future)[0] == pd.Timestamp(mondays[-1] + pd.Timedelta(weeks=1)).strftime(layout)
    assert written(panel, panel.times[:1])[0].startswith("2020-W01")


def test_iso_week_that_does_not_exist_names_its_line(tmp_path: Path) -> None:
    weeks = [f"2021-W{w:02d}" for w in range(40, 53)] + ["2021-W53"]  # 2021 has 52 ISO weeks
    with pytest.raises(ForecastError, match=r"not a time at line 15: '2021-W53'"):
        panel_of(write_series(tmp_path / "w.csv", weeks, column="week"))


@pytest.mark.parametrize("times", [[1500, 1501, 1502], ["1600 Q1", "1600 Q2", "1600 Q3"], ["1500-01-01"] * 3])
def test_times_pandas_cannot_hold_are_an_error_not_a_wrong_date(times: list) -> None:
    with pytest.raises(ForecastError, match=r"'year' in f.csv has (a value that is not a time|times outside)"):
        read.read_times(pd.Series(times), "year", "f.csv")


def test_layout_varying_between_rows_is_written_as_iso(tmp_path: Path) -> None:
    times = quarters(2000, 12, "{y} Q{q}")
    times[3] = "2000Q4"  # still a quarter, written differently: no single form to write back
    panel = panel_of(write_series(tmp_path / "q.csv", times))
    assert panel.freq == "QS-JAN" and panel.time_format == ""


def test_bad_quarter_names_its_line(tmp_path: Path) -> None:
    times = quarters(2000, 12, "{y} Q{q}")
    times[6] = "2001 Q7"
    with pytest.raises(ForecastError, match=r"not a time at line 8: '2001 Q7'"):
        panel_of(write_series(tmp_path / "q.csv", times))


def test_existing_formats_keep_the_default_output(tmp_path: Path) -> None:
    days = pd.date_range("2022-01-01", periods=40, freq="D")
    for layout in ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m"):
        times = list(pd.date_range("2022-01-01", periods=40, freq="MS" if layout == "%Y-%m" else "D").strftime(layout))
        panel = panel_of(write_series(tmp_path / "d.csv", times))
        assert panel.time_format == "" and panel.freq == ("MS" if layout == "%Y-%m" else "D")
    assert panel_of(write_series(tmp_path / "d.csv", list(days.strftime("%d/%m/%Y")))).times[12] == days[12]


@pytest.mark.parametrize("layout", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"])
def test_monthly_dates_on_the_first_read_in_the_order_that_makes_them_monthly(tmp_path: Path, layout: str) -> None:
    # no field exceeds 12: read the other way round, these are twelve days of each January
    months = pd.date_range("1991-07-01", periods=40, freq="MS")
    panel = panel_of(write_series(tmp_path / "m.csv", list(months.strftime(layout))))
    assert panel.freq == "MS" and list(panel.times) == list(months)
    future = calendar.continue_times(panel.times[-1:], panel.freq, 2)[0]
    assert list(future) == list(pd.to_datetime(["1994-11-01", "1994-12-01"]))


def test_dates_as_regular_either_way_round_are_an_error_not_a_guess(tmp_path: Path) -> None:
    days = ["01/01/2024", "01/02/2024", "01/03/2024", "01/04/2024", "01/05/2024"]  # Jan 1..5, or Jan..May
    with pytest.raises(
        ForecastError, match=r"could be day/month or month/day \(line 3: '01/02/2024'\), and both read as regular"
    ):
        panel_of(write_series(tmp_path / "d.csv", days))


@pytest.mark.parametrize(("layout", "day_first"), [("%d/%m/%Y", True), ("%m/%d/%Y", False)])
def test_a_newer_file_too_short_to_tell_day_from_month_is_read_as_the_run_read(
    tmp_path: Path, layout: str, day_first: bool
) -> None:
    months = pd.date_range("2000-01-01", periods=120, freq="MS")  # on the 1st: 01/02/2000 either way round
    cli, run = Cli(), tmp_path / "run"
    data = write_series(tmp_path / "m.csv", list(months.strftime(layout)))
    cli.ok("train", "--data", data, "--out", run, *SMALL[4:], "--lookback", 6, "--horizon", 3)
    recent = write_series(tmp_path / "recent.csv", list(months[-12:].strftime(layout)))  # one year: a tie alone
    with pytest.raises(ForecastError, match="could be day/month or month/day"):
        panel_of(recent)
    cli.ok("predict", run, "--data", recent)
    rows = pd.read_csv(run / "forecast.csv", dtype=str)
    assert rows["origin"][0] == "2009-12-01 00:00:00"
    assert list(rows["timestamp"]) == ["2010-01-01 00:00:00", "2010-02-01 00:00:00", "2010-03-01 00:00:00"]
    assert torch.load(run / "model.pt", weights_only=True)["day_first"] is day_first


# ---------------------------------------------------------------- zones and fractions


def test_daily_data_across_dst_keeps_local_days(tmp_path: Path) -> None:
    local = pd.date_range("2024-03-20", periods=30, freq="D", tz="Europe/Berlin")  # DST starts 03-31
    text = [t.isoformat() for t in local]
    assert "+01:00" in text[0] and "+02:00" in text[-1]
    panel = panel_of(write_series(tmp_path / "dst.csv", text), gaps="error")  # no irregular steps
    assert panel.freq == "D" and list(panel.times) == list(local.tz_localize(None))
    assert list(pd.DatetimeIndex(panel.times).day_of_week[:7]) == [2, 3, 4, 5, 6, 0, 1]  # 2024-03-20: a Wednesday
    assert written(panel, panel.times[-1:]) == ["2024-04-18 00:00:00"]  # local dates, as in the file


def test_one_utc_offset_is_kept_and_written_back(tmp_path: Path) -> None:
    local = pd.date_range("2024-01-01", periods=48, freq="h", tz="Asia/Kolkata")
    panel = panel_of(write_series(tmp_path / "ist.csv", [t.isoformat() for t in local]))
    assert panel.times[0] == np.datetime64("2024-01-01T00:00") and panel.freq == "h"
    assert written(panel, panel.times[:1]) == ["2024-01-01 00:00:00+05:30"]


def test_hourly_data_across_dst_is_utc_and_says_so(tmp_path: Path) -> None:
    local = pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Berlin")
    panel = panel_of(write_series(tmp_path / "dst.csv", [t.isoformat() for t in local]), gaps="error")
    assert panel.freq == "h" and panel.times[0] == np.datetime64("2024-03-29T23:00")
    assert written(panel, panel.times[:1]) == ["2024-03-29 23:00:00Z"]


@pytest.mark.parametrize("layout", ["%Y-%m-%dT%H:%M:%S+02:00", "%Y-%m-%d %H:%M:%S+0200", "%Y-%m-%d %H:%M:%S+02"])
def test_newer_file_in_summer_time_is_compared_on_the_runs_utc_clock(tmp_path: Path, layout: str) -> None:
    local = pd.date_range("2024-03-25", periods=200, freq="h", tz="Europe/Berlin")  # DST starts 03-31
    cli, run = Cli(), tmp_path / "run"
    data = write_series(tmp_path / "dst.csv", [t.isoformat() for t in local])
    cli.ok("train", "--data", data, "--out", run, *SMALL[4:], "--lookback", 8, "--horizon", 3)
    newer = pd.date_range(local[-20], periods=30, freq="h", tz="Europe/Berlin")  # +02:00 only: one offset
    path = write_series(tmp_path / "newer.csv", list(newer.strftime(layout)))
    last_utc = local[-1].tz_convert("UTC").tz_localize(None)
    result = cli.ok("evaluate", run, "--data", path)
    assert f"rows after {last_utc}" in result.stderr
    assert "test split: 8 windows" in result.stdout  # the 10 rows after the training data's last, less 2
    cli.ok("predict", run, "--data", path)
    rows = pd.read_csv(run / "forecast.csv", dtype=str)
    assert rows["origin"][0] == newer[-1].tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%SZ")


def test_daily_file_in_summer_time_keeps_its_dates(tmp_path: Path) -> None:
    winter = pd.date_range("2023-11-01", periods=120, freq="D", tz="Europe/Berlin")  # +01:00 throughout
    cli, run = Cli(), tmp_path / "run"
    data = write_series(tmp_path / "winter.csv", [t.isoformat() for t in winter])
    cli.ok("train", "--data", data, "--out", run, *SMALL[4:], "--lookback", 8, "--horizon", 3)
    summer = pd.date_range("2024-04-01", periods=40, freq="D", tz="Europe/Berlin")  # +02:00 throughout
    cli.ok("predict", run, "--data", write_series(tmp_path / "summer.csv", [t.isoformat() for t in summer]))
    rows = pd.read_csv(run / "forecast.csv", dtype=str)
    assert rows["timestamp"][0].startswith("2024-05-11 00:00:00")  # the day after the file's last, at midnight


def test_sub_second_times_keep_their_fractions(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=40, freq="250ms")
    panel = panel_of(write_series(tmp_path / "fast.csv", list(times.strftime("%Y-%m-%d %H:%M:%S.%f"))))
    assert panel.freq == "250ms"
    text = written(panel, panel.times[:3])
    assert text == ["2024-01-01 00:00:00.000000", "2024-01-01 00:00:00.250000", "2024-01-01 00:00:00.500000"]


# ---------------------------------------------------------------- end to end


def forecast_rows(cli: Cli, path: Path, run: Path, *extra: object) -> pd.DataFrame:
    cli.ok("train", "--data", path, "--out", run, *SMALL[4:], "--lookback", 8, "--horizon", 3, *extra)
    cli.ok("predict", run)
    return pd.read_csv(run / "forecast.csv", dtype=str)


@pytest.mark.parametrize(
    ("times", "column", "expected"),
    [
        (quarters(1990, 62, "{y} Q{q}"), "quarter", ["2005 Q3", "2005 Q4", "2006 Q1"]),
        ([str(y) for y in range(1900, 1962)], "year", ["1962", "1963", "1964"]),
        (list(pd.date_range("2000-01", periods=62, freq="MS").strftime("%Y %b")), "month", ["2005 Mar", "2005 Apr"]),
    ],
)
def test_forecast_csv_writes_times_as_the_data_did(tmp_path: Path, times: list, column: str, expected: list) -> None:
    path = tmp_path / "data.csv"
    frame = pd.DataFrame({column: times, "y": 10 + np.sin(np.arange(len(times)))})
    if column == "year":
        frame[column] = frame[column].astype(int)
    frame.to_csv(path, index=False)
    rows = forecast_rows(Cli(), path, tmp_path / "run")
    assert list(rows["timestamp"][: len(expected)]) == expected
    assert (rows["origin"] == times[-1]).all()


def test_predictions_csv_writes_quarters(tmp_path: Path) -> None:
    path = write_series(tmp_path / "q.csv", quarters(1990, 62, "{y}Q{q}"), column="quarter")
    cli = Cli()
    forecast_rows(cli, path, tmp_path / "run")
    cli.ok("predict", tmp_path / "run", "--backtest")
    rows = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype=str)
    assert rows["timestamp"].str.fullmatch(r"\d{4}Q[1-4]").all() and rows["origin"].str.fullmatch(r"\d{4}Q[1-4]").all()


@pytest.mark.parametrize(
    ("times", "column"),
    [
        (quarters(1990, 62, "{y} Q{q}"), "quarter"),
        (list(pd.date_range("2000-01", periods=62, freq="MS").strftime("%Y %b")), "month"),
        (list(pd.date_range("2000-01", periods=62, freq="MS").strftime("%YM%m")), "month"),
        (list(pd.date_range("2000-01-03", periods=62, freq="W-MON").strftime("%G-W%V")), "week"),
        (list(pd.date_range("2000-01", periods=62, freq="MS").strftime("%Y%m").astype(int)), "period"),
    ],
)
def test_plot_reads_back_the_times_predict_wrote_in_the_datas_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, times: list, column: str
) -> None:
    from forecast import plots

    seen: dict[str, pd.DataFrame] = {}
    monkeypatch.setattr(plots, "plot_backtest", lambda pred, horizon, title, path: seen.update(backtest=pred))
    monkeypatch.setattr(plots, "plot_forecast", lambda hist, fc, title, path: seen.update(forecast=fc))
    path = tmp_path / "data.csv"
    pd.DataFrame({column: times, "y": 10 + np.sin(np.arange(len(times)))}).to_csv(path, index=False)
    cli, run = Cli(), tmp_path / "run"
    rows = forecast_rows(cli, path, run)
    assert not rows["timestamp"].str.match(r"\d{4}-\d\d-\d\d").any()  # written in the data's layout, not ISO
    cli.ok("predict", run, "--backtest")
    cli.ok("plot", run)
    expected = panel_of(path).times[-1]  # the data's last time, as read
    assert (seen["forecast"]["origin"] == expected).all()
    assert seen["forecast"]["timestamp"].iloc[0] > expected and seen["forecast"]["timestamp"].is_monotonic_increasing
    assert seen["backtest"]["timestamp"].max() == expected


def test_bad_time_value_is_one_error_line(tmp_path: Path) -> None:
    times = quarters(2000, 40, "{y} Q{q}")
    times[10] = "someday"
    path = write_series(tmp_path / "q.csv", times, column="quarter")
    result = Cli()("train", "--data", path, "--out", tmp_path / "run", *SMALL)
    assert_user_error(result, "line 12", "'someday'")


def test_forecast_csv_keeps_sub_second_times(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=80, freq="250ms")
    path = write_series(tmp_path / "fast.csv", list(times.strftime("%Y-%m-%d %H:%M:%S.%f")))
    rows = forecast_rows(Cli(), path, tmp_path / "run")
    expected = ["2024-01-01 00:00:20.000000", "2024-01-01 00:00:20.250000", "2024-01-01 00:00:20.500000"]
    assert list(rows["timestamp"]) == expected
