"""data: reading and validating CSVs, time columns, splits, scaling, seasons."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import long_frame, synthetic_frame, write_csv

from forecast import panel, read
from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import fit_scaler, load_panel, split_borders


def panel_of(path: Path, **kwargs) -> panel.Panel:
    return load_panel(DataConfig(path=str(path), **kwargs))


# ---------------------------------------------------------------- time column


@pytest.mark.parametrize("name", ["date", "Date", "timestamp", "ds", "time"])
def test_detect_date_column_by_name(name: str) -> None:
    df = pd.DataFrame({"y": [1.0, 2.0], name: ["2024-01-01", "2024-01-02"]})
    assert read.detect_date_column(df, None, "f.csv") == name


def test_detect_date_column_by_content() -> None:
    # text columns (pandas >= 3 reads them as `str`, not `object`) with times in them
    df = pd.DataFrame({"y": [1.0, 2.0], "when": pd.array(["01/02/2024", "01/03/2024"], dtype="str")})
    assert read.detect_date_column(df, None, "f.csv") == "when"


def test_detect_date_column_skips_numeric_columns_named_like_times() -> None:
    df = pd.DataFrame({"day": [1, 2, 3], "sales": [4.0, 5.0, 6.0]})
    with pytest.raises(ForecastError, match=r"no time column found in f.csv \(columns: day, sales\)"):
        read.detect_date_column(df, None, "f.csv")


def test_detect_date_column_named_but_missing() -> None:
    df = pd.DataFrame({"date": ["2024-01-01"], "y": [1.0]})
    with pytest.raises(ForecastError, match=r"time column 'when' not found in f.csv \(columns: date, y\)"):
        read.detect_date_column(df, "when", "f.csv")


def test_parse_times_converts_offsets_to_utc() -> None:
    # daylight saving time: the offsets change, the instants stay one hour apart
    local = pd.date_range("2024-03-31 00:00", periods=4, freq="h", tz="Europe/Berlin")
    times = read.read_times(pd.Series([t.isoformat() for t in local]), "date", "f.csv")[0]
    assert list(times) == list(pd.date_range("2024-03-30 23:00", periods=4, freq="h"))


def test_parse_times_reads_day_first_dates() -> None:
    days = pd.date_range("2022-01-01", periods=40, freq="D")
    col = pd.Series(days.strftime("%d/%m/%Y"))  # 01/01, 02/01, ... 13/01: the day comes first
    times = read.read_times(col, "Day", "f.csv")[0]
    assert (times.to_numpy() == days.to_numpy()).all()


def test_parse_times_keeps_month_first_dates() -> None:
    days = pd.date_range("2022-01-01", periods=40, freq="D")
    times = read.read_times(pd.Series(days.strftime("%m/%d/%Y")), "Day", "f.csv")[0]
    assert (times.to_numpy() == days.to_numpy()).all()


def test_parse_times_refuses_naive_mixed_with_aware() -> None:
    col = pd.Series(["2024-01-01 00:00:00", "2024-01-01 01:00:00+02:00", "2024-01-01 02:00:00"])
    with pytest.raises(ForecastError, match=r"'date' in f.csv mixes time zones: line 3"):
        read.read_times(col, "date", "f.csv")[0]


def test_parse_times_names_the_bad_line() -> None:
    col = pd.Series(["2024-01-01", "2024-01-02", "soon"])
    with pytest.raises(ForecastError, match=r"'date' in f.csv has a value that is not a time at line 4: 'soon'"):
        read.read_times(col, "date", "f.csv")[0]


# ---------------------------------------------------------------- reading files


def test_load_panel_single_series(multi_csv: Path) -> None:
    panel = panel_of(multi_csv)
    assert panel.columns == ["c"] and panel.targets == ["c"]  # default target: last numeric column
    assert panel.freq == "h" and panel.ids == [""] and list(panel.offsets) == [0, 300]
    frame = pd.read_csv(multi_csv)
    np.testing.assert_allclose(panel.values[:, 0], frame["c"])
    assert panel.times[0] == np.datetime64("2024-01-01T00:00") and panel.times.dtype == "datetime64[ns]"


def test_load_panel_targets_then_features(multi_csv: Path) -> None:
    panel = panel_of(multi_csv, target=["b", "a"], features=["c"])
    assert panel.columns == ["b", "a", "c"] and panel.n_targets == 2 and panel.targets == ["b", "a"]
    np.testing.assert_allclose(panel.values[:, 2], pd.read_csv(multi_csv)["c"])


def test_load_panel_long_format(long_csv: Path) -> None:
    panel = panel_of(long_csv, id_column="id", target=["y"], features=["x"])
    assert panel.ids == ["s1", "s2", "s3"]
    assert list(panel.lengths()) == [300, 260, 240]
    frame = long_frame()
    for s, sid in enumerate(panel.ids):
        a, b = panel.offsets[s], panel.offsets[s + 1]
        rows = frame[frame["id"] == sid]
        np.testing.assert_allclose(panel.values[a:b, 0], rows["y"])
        assert panel.times[a] == rows["date"].iloc[0]


def test_load_panel_long_format_nan_line_is_the_files(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[305, "y"] = np.nan  # series s2, file line 307
    path = write_csv(tmp_path / "long.csv", frame.iloc[::-1])  # reversed: needs data.sort
    line = len(frame) - 305 + 1
    with pytest.raises(ForecastError, match=rf"1 missing values in .*long.csv \(first: column 'y', line {line}\)"):
        panel_of(path, id_column="id", target=["y"], sort=True)


def test_load_panel_odd_but_valid_csv(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    rows = "\n".join(f"2024-01-{d:02d} , {d} , {d}.5" for d in range(1, 11))
    path.write_text('"date", "units" , "price"\n' + rows + "\n")
    panel = panel_of(path, target=["units"], features=["price"])
    assert panel.columns == ["units", "price"] and panel.freq == "D"
    np.testing.assert_allclose(panel.values[:, 1], np.arange(1, 11) + 0.5)


def test_default_target_is_never_a_feature() -> None:
    frame = synthetic_frame(columns=("a", "b"))
    targets, features = read.resolve_targets(frame, DataConfig(features=["b"]), "date", "f.csv")
    assert targets == ["a"] and features == ["b"]


def test_read_table_closes_the_file(multi_csv: Path) -> None:
    # a handle left open warns (ResourceWarning) when it is collected: record every warning meanwhile
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        frame = read.read_table(multi_csv)
        gc.collect()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []
    # and what it read is the whole file: multi_csv's 300 hourly rows of date, a, b, c
    assert list(frame.columns) == ["date", "a", "b", "c"] and len(frame) == 300
    assert pd.to_datetime(frame["date"]).tolist() == list(pd.date_range("2024-01-01", periods=300, freq="h"))
    expected = synthetic_frame(columns=("a", "b", "c"))[["a", "b", "c"]].to_numpy()
    np.testing.assert_allclose(frame[["a", "b", "c"]].to_numpy(dtype=float), expected, rtol=1e-12)


def test_gaps_warn_with_the_real_step(tmp_path: Path) -> None:
    frame = synthetic_frame(60, columns=("y",)).drop(index=range(20, 25))
    path = write_csv(tmp_path / "gaps.csv", frame)
    expected = r"usually 0 days 01:00:00, largest gap 0 days 06:00:00 after 2024-01-01 19:00"
    with pytest.warns(UserWarning, match=expected):
        panel = panel_of(path)
    assert panel.freq == "h"  # the usual step, not nanoseconds
    with pytest.raises(ForecastError, match="largest gap 0 days 06:00:00"):
        panel_of(path, gaps="error")


def test_sort_orders_rows(tmp_path: Path) -> None:
    frame = synthetic_frame(50, columns=("y",))
    path = write_csv(tmp_path / "shuffled.csv", frame.sample(frac=1, random_state=0))
    with pytest.raises(ForecastError, match="not sorted by time"):
        panel_of(path)
    panel = panel_of(path, sort=True)
    np.testing.assert_allclose(panel.values[:, 0], frame["y"])
    assert (np.diff(panel.times) > np.timedelta64(0, "ns")).all()


def fill_one(values: np.ndarray, columns: list[str], fill: str, path: str) -> np.ndarray:
    """One series' values, all of one split, with gaps filled per data.fill."""
    n = len(values)
    return panel.fill_gaps(values, np.array([0, n]), np.array([[n, n, n]]), fill, columns, path, [""])[0]


@pytest.mark.parametrize(("fill", "expected"), [("ffill", [1.0, 1.0, 1.0, 4.0]), ("interpolate", [1.0, 2.0, 3.0, 4.0])])
def test_fill_missing(fill: str, expected: list[float]) -> None:
    values = np.array([[1.0], [np.nan], [np.nan], [4.0]])
    np.testing.assert_allclose(fill_one(values, ["y"], fill, "f.csv")[:, 0], expected)


def test_fill_missing_leading_gap_and_empty_column() -> None:
    np.testing.assert_allclose(fill_one(np.array([[np.nan], [2.0]]), ["y"], "ffill", "f")[:, 0], [2, 2])
    with pytest.raises(ForecastError, match="column 'y' in f.csv has no values at all"):
        fill_one(np.full((3, 1), np.nan), ["y"], "ffill", "f.csv")


# ---------------------------------------------------------------- splitting


def test_split_borders_fractions() -> None:
    borders = split_borders(np.array([300, 260, 10]), {"train": 0.7, "val": 0.1, "test": 0.2})
    assert borders.tolist() == [[210, 240, 300], [182, 208, 260], [7, 8, 10]]


def test_split_borders_fractions_without_float_noise() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point; it is 29 rows
    assert split_borders(np.array([100]), {"train": 0.29, "val": 0.01, "test": 0.7}).tolist() == [[29, 30, 100]]


def test_split_borders_fractions_below_one_leave_rows_unused() -> None:
    assert split_borders(np.array([100]), {"train": 0.5, "val": 0.1, "test": 0.2}).tolist() == [[50, 60, 80]]


def test_split_borders_row_counts() -> None:
    borders = split_borders(np.array([17420, 15000]), {"train": 8640, "val": 2880, "test": 2880})
    assert borders.tolist() == [[8640, 11520, 14400]] * 2


def test_split_borders_row_counts_longer_than_a_series() -> None:
    with pytest.raises(ForecastError, match="asks for 14400 rows but a series has only 9000"):
        split_borders(np.array([17420, 9000]), {"train": 8640, "val": 2880, "test": 2880})


# ---------------------------------------------------------------- scaling


def toy_panel(values: np.ndarray, lengths: list[int]) -> panel.Panel:
    n = len(values)
    return panel.Panel(
        values=values,
        times=np.arange(n).astype("datetime64[h]").astype("datetime64[ns]"),
        columns=[f"c{j}" for j in range(values.shape[1])],
        n_targets=1,
        ids=[f"s{i}" for i in range(len(lengths))],
        offsets=np.cumsum([0, *lengths]),
        freq="h",
    )


def test_scaler_uses_training_rows_only() -> None:
    values = np.concatenate([np.arange(10.0), [100.0, -50.0]])[:, None]  # extremes after the training rows
    scaler = fit_scaler(toy_panel(values, [12]), np.array([10]))
    assert scaler.data_min.tolist() == [[0.0]] and scaler.data_max.tolist() == [[9.0]]
    scaled = scaler.transform(toy_panel(values, [12]))
    np.testing.assert_allclose(scaled[:10, 0], np.arange(10) / 9)
    assert scaled[10, 0] > 1 and scaled[11, 0] < 0  # test rows are not clipped


def test_scaler_per_series_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(1000, 50, (30, 2))])
    panel = toy_panel(values, [20, 30])
    scaler = fit_scaler(panel, np.array([14, 21]))
    scaled = scaler.transform(panel)
    for a, n in ((0, 14), (20, 21)):
        np.testing.assert_allclose(scaled[a : a + n].min(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(scaled[a : a + n].max(axis=0), 1, atol=1e-12)
    # inverse maps target columns back, per series: windows (B, H, T), up to float32's precision
    assert scaled.dtype == np.float32
    series = np.array([0, 1])
    y = np.stack([scaled[0:5, :1], scaled[20:25, :1]]).astype(np.float64)
    expected = np.stack([values[0:5, :1], values[20:25, :1]])
    np.testing.assert_allclose(scaler.inverse(y, series, 1), expected, rtol=1e-6)


def test_scaler_constant_column_scale_one() -> None:
    values = np.full((10, 1), 3.0)
    scaler = fit_scaler(toy_panel(values, [10]), np.array([7]))
    np.testing.assert_allclose(scaler.transform(toy_panel(values, [10])), 0.0)
    np.testing.assert_allclose(scaler.inverse(np.zeros((1, 2, 1)), np.array([0]), 1), 3.0)


def test_scaler_matches_sklearn() -> None:
    from sklearn.preprocessing import MinMaxScaler

    values = np.random.default_rng(1).normal(size=(40, 3))
    ours = fit_scaler(toy_panel(values, [40]), np.array([28])).transform(toy_panel(values, [40]))
    np.testing.assert_allclose(ours, MinMaxScaler().fit(values[:28]).transform(values))


# ---------------------------------------------------------------- ids, fills and splits across series


def test_ids_are_kept_as_text(tmp_path: Path) -> None:
    frame = long_frame()
    frame["id"] = frame["id"].map({"s1": "001", "s2": "002", "s3": "010"})
    path = write_csv(tmp_path / "long.csv", frame)
    assert panel_of(path, id_column="id").ids == ["001", "002", "010"]
    as_text = load_panel(DataConfig(id_column="id"), frame.assign(date=frame["date"].astype(str)))
    assert as_text.ids == ["001", "002", "010"]  # a DataFrame with string ids matches the file


def test_plot_finds_a_series_by_its_text_id(tmp_path: Path) -> None:
    from helpers import Cli

    frame = long_frame()
    frame["id"] = frame["id"].map({"s1": "001", "s2": "002", "s3": "010"})
    path = write_csv(tmp_path / "long.csv", frame)
    cli = Cli()
    cli.train(path, tmp_path / "run", "--set", "data.id_column=id", "--set", "data.target=y")
    cli.ok("plot", tmp_path / "run", "--series", "001", "--out", tmp_path / "plots")
    cli.ok("predict", tmp_path / "run")
    forecast = pd.read_csv(tmp_path / "run" / "forecast.csv", dtype=str)
    assert sorted(set(forecast["series"])) == ["001", "002", "010"]


def test_blank_id_names_its_line(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[7, "id"] = None
    with pytest.raises(ForecastError, match=r"id column 'id' in .*long.csv is empty at line 9"):
        panel_of(write_csv(tmp_path / "long.csv", frame), id_column="id")


def test_interpolate_never_borrows_from_a_later_split(tmp_path: Path) -> None:
    # 100 rows split 70/10/20: the last training rows are missing; the next value lies in validation
    frame = synthetic_frame(100, columns=("y",))
    frame.loc[68:69, "y"] = np.nan
    frame.loc[85, "y"] = np.nan  # inside validation: a line between its neighbours
    panel = panel_of(write_csv(tmp_path / "gaps.csv", frame), fill="interpolate")
    y = frame["y"].to_numpy()
    np.testing.assert_allclose(panel.values[68:70, 0], y[67])  # carried forward, not drawn towards row 70
    np.testing.assert_allclose(panel.values[85, 0], (y[84] + y[86]) / 2)
    assert panel.filled[:, 0].nonzero()[0].tolist() == [68, 69, 85]


def test_fill_stays_within_each_series(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[300, "y"] = np.nan  # the first row of series s2
    panel = panel_of(write_csv(tmp_path / "long.csv", frame), id_column="id", target=["y"], fill="ffill")
    assert panel.values[300, 0] == frame.loc[301, "y"]  # from s2's next row, not s1's last


def test_evaluate_leaves_filled_actuals_out(tmp_path: Path) -> None:
    from helpers import Cli

    from forecast import api

    frame = synthetic_frame(300, columns=("y",))
    frame.loc[[250, 251, 280], "y"] = np.nan  # in the test split
    path = write_csv(tmp_path / "gaps.csv", frame)
    Cli().train(path, tmp_path / "run", "--set", "data.fill=interpolate")
    result = api.load(tmp_path / "run").evaluate()
    assert result["filled_points_excluded"] > 0
    assert result["filled_points_excluded"] == 3 * 6  # each filled row is the target of 6 windows (horizon 6)


def test_row_count_split_skips_a_short_series(tmp_path: Path) -> None:
    from helpers import Cli

    frame = long_frame()
    short = synthetic_frame(60, columns=("y", "x"), seed=5).assign(id="tiny")
    path = write_csv(tmp_path / "long.csv", pd.concat([frame, short[frame.columns]]))
    counts = ["data.split.train=150", "data.split.val=40", "data.split.test=40", "data.id_column=id", "data.target=y"]
    result = Cli().train(path, tmp_path / "run", *[a for c in counts for a in ("--set", c)])
    assert "skipping 1 series shorter than data.split's 230 rows: tiny" in result.stderr


def test_a_layout_is_decided_on_the_first_rows_not_the_first_distinct_values() -> None:
    # long format: one series writes years, four write a mid-year date, so most of the first 20
    # rows are dates (among the first 20 distinct values, most would be years)
    values = [str(y) for y in range(1980, 1985)]
    for y in range(1985, 2000):
        values += [str(y)] + [f"{y}-07-01"] * 4
    times, _ = read.read_times(pd.Series(values), "date", "f.csv")
    assert times.iloc[6] == pd.Timestamp("1985-07-01")
