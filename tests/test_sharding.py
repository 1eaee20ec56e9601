"""Many series under torchrun: each process keeps only its own series, and the run and its scores
are the ones a single process would report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import synthetic_frame, write_csv

from forecast import calendar, prepare, sharded_read
from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import Panel, fit_scaler, load_panel, owners, split_borders
from forecast.run import load_run

SERIES = [f"store{i}" for i in range(7)]


def panel_file(tmp_path: Path) -> Path:
    parts = []
    for k, sid in enumerate(SERIES):
        part = synthetic_frame(90 + 10 * k, columns=("sales",), seed=k)
        part.insert(0, "store", sid)
        parts.append(part)
    return write_csv(tmp_path / "stores.csv", pd.concat(parts, ignore_index=True))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_every_series_belongs_to_exactly_one_process(tmp_path: Path, kind: str) -> None:
    path = panel_file(tmp_path)
    if kind == "parquet":
        path = path.with_suffix(".parquet")
        pd.read_csv(tmp_path / "stores.csv").to_parquet(path)
    cfg = DataConfig(path=str(path), id_column="store", target=["sales"])
    whole = load_panel(cfg)
    shards = [load_panel(cfg, shard=(rank, 3)) for rank in range(3)]
    assert sorted(sid for shard in shards for sid in shard.ids) == whole.ids  # each once
    for rank, shard in enumerate(shards):
        assert (owners(shard.ids, 3) == rank).all()
        for sid in shard.ids:  # the same rows, in the same order, as in the whole panel
            a, b = shard.offsets[shard.ids.index(sid)], shard.offsets[shard.ids.index(sid) + 1]
            i = whole.ids.index(sid)
            np.testing.assert_array_equal(shard.values[a:b], whole.values[whole.offsets[i] : whole.offsets[i + 1]])
            np.testing.assert_array_equal(shard.times[a:b], whole.times[whole.offsets[i] : whole.offsets[i + 1]])
    # the owner of a series is fixed by its id alone: the same in every process, run and release
    assert owners(SERIES, 3).tolist() == [0, 2, 1, 2, 2, 0, 1]
    assert owners(SERIES, 2).tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_every_process_reads_the_file_as_one_process_does(tmp_path: Path) -> None:
    # store0's dates alone (05/01/2022, 05/02/2022, ...) read as 1-5 May; store4's (15/01/2022, ...)
    # show that the file writes the day first, so store0 is monthly on the 5th, in every process
    rows = []
    for sid, day in (("store0", 5), ("store4", 15)):
        for k, month in enumerate(pd.date_range("2022-01-01", periods=30, freq="MS")):
            rows.append({"store": sid, "date": f"{day:02d}/{month.month:02d}/{month.year}", "sales": float(k)})
    path = write_csv(tmp_path / "dayfirst.csv", pd.DataFrame(rows))
    cfg = DataConfig(path=str(path), id_column="store", target=["sales"])
    whole, first = load_panel(cfg), load_panel(cfg, shard=(0, 2))
    assert first.ids == ["store0"] and first.freq == whole.freq
    np.testing.assert_array_equal(first.times, whole.times[: whole.offsets[1]])
    assert pd.Timestamp(first.times[1]) == pd.Timestamp("2022-02-05")


def test_a_bad_row_is_reported_at_its_line_in_the_file(tmp_path: Path) -> None:
    path = panel_file(tmp_path)
    lines = path.read_text().splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith("store5,")) + 5  # store5: process 1 of 2
    assert lines[bad].startswith("store5,")
    lines[bad] = ",".join(lines[bad].split(",")[:-1] + ["oops"])
    path.write_text("\n".join(lines) + "\n")
    cfg = DataConfig(path=str(path), id_column="store", target=["sales"])
    for shard in (None, (1, 2)):  # 1-based, the header is line 1
        with pytest.raises(ForecastError, match=f"line {bad + 1}: 'oops'"):
            load_panel(cfg, shard=shard)
    lines[bad] = lines[bad - 3]  # now a value, but a time that goes back
    path.write_text("\n".join(lines) + "\n")
    for shard in (None, (1, 2)):
        with pytest.raises(ForecastError, match=f"within series 'store5' \\(line {bad + 1}\\)"):
            load_panel(cfg, shard=shard)


@pytest.mark.slow
def test_two_processes_train_their_own_series_and_report_the_single_process_scores(tmp_path: Path) -> None:
    data = panel_file(tmp_path)
    run = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"),
        *("-m", "forecast", "train", "--data", str(data), "--out", str(run), "--target", "sales"),
        *("--set", "data.id_column=store", "--lookback", "12", "--horizon", "3", "--epochs", "2"),
        *("--device", "cpu", "--quiet", "--set", "model.hidden_size=8", "--set", "train.patience=0"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("run directory:") == 1  # the first process reports
    mine = int((owners(SERIES, 2) == 0).sum())
    assert f"{len(SERIES)} series (sharded by id over 2 processes, {mine} in the first)" in result.stderr

    # the run holds every series once, in a single process's order, with each series' own scaler
    state = load_run(run).state
    assert state.ids == sorted(SERIES)
    whole = load_panel(DataConfig(path=str(data), id_column="store", target=["sales"]))
    train_end = split_borders(whole.lengths(), {"train": 0.7, "val": 0.1, "test": 0.2})[:, 0]
    np.testing.assert_allclose(state.scaler["min"].numpy(), fit_scaler(whole, train_end).data_min)
    assert state.record.data.rows == len(whole.values)

    # the scores the two processes pooled are those one process computes for the same run
    pooled = json.loads((run / "metrics.json").read_text())
    assert sorted(pooled["series"]) == sorted(SERIES)  # every series scored once
    alone = load_run(run).evaluate(split="test", log=lambda _: None)
    assert pooled["windows"] == alone["windows"]
    for name, scores in alone["models"].items():
        for metric, value in scores.items():
            assert pooled["models"][name][metric] == pytest.approx(value, rel=1e-5), (name, metric)
    for sid in SERIES:
        assert pooled["series"][sid]["model"]["mae"] == pytest.approx(alone["series"][sid]["model"]["mae"], rel=1e-5)
    assert all(torch.isfinite(v).all() for v in state.state_dict.values())


def assert_shards_read_as_the_whole_file(cfg: DataConfig, size: int = 2, streamed: bool = True) -> None:
    """Every process's panel is the whole panel's rows of its series, read alike (times, layout,
    frequency), and (streamed) it came from reading only its own rows."""
    whole = load_panel(cfg)
    held = []
    for rank in range(size):
        own = sharded_read.read_own_rows(cfg, cfg.path, lambda names, r=rank: owners(names, size) == r)
        assert (own is not None) == streamed
        shard = load_panel(cfg, shard=(rank, size))
        assert (shard.freq, shard.time_format, shard.columns) == (whole.freq, whole.time_format, whole.columns)
        for k, sid in enumerate(shard.ids):
            i = whole.ids.index(sid)
            rows = slice(whole.offsets[i], whole.offsets[i + 1])
            np.testing.assert_array_equal(shard.values[shard.offsets[k] : shard.offsets[k + 1]], whole.values[rows])
            np.testing.assert_array_equal(shard.times[shard.offsets[k] : shard.offsets[k + 1]], whole.times[rows])
        held += shard.ids
    assert sorted(held) == whole.ids


def two_series(times_a: list[object], times_b: list[object], time_name: str = "date") -> pd.DataFrame:
    """store0 then store5 (owned by processes 0 and 1 of 2), with the times given."""
    rows = [("store0", t, float(k)) for k, t in enumerate(times_a)] + [
        ("store5", t, float(k) * 2) for k, t in enumerate(times_b)
    ]
    return pd.DataFrame(rows, columns=["store", time_name, "sales"])


MONTHS = pd.date_range("2001-01-01", periods=40, freq="MS")
LAYOUTS = {
    # store0's quarters and years alone read the same; shown for the layouts people export
    "quarters": two_series(
        [f"{t.year} Q{t.quarter}" for t in MONTHS[::3]], [f"{t.year} Q{t.quarter}" for t in MONTHS[::3]]
    ),
    "month names": two_series([t.strftime("%b-%Y") for t in MONTHS], [t.strftime("%b-%Y") for t in MONTHS[5:]]),
    "integer years": two_series(list(range(1950, 1990)), list(range(1960, 2000)), time_name="year"),
    # store0 alone is in winter time (one offset: written back with it); store5 crosses the change,
    # so the file's daily times are local dates, in every process
    "utc offsets": two_series(
        [f"2024-01-{d:02d}T12:00:00+01:00" for d in range(1, 31)],
        [f"2024-03-{d:02d}T12:00:00+0{1 if d < 31 else 2}:00" for d in range(2, 32)]
        + [f"2024-04-{d:02d}T12:00:00+02:00" for d in range(1, 20)],
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_process_reading_only_its_rows_reads_every_time_layout_as_the_whole_file(tmp_path: Path, layout: str) -> None:
    path = write_csv(tmp_path / "panel.csv", LAYOUTS[layout])
    assert_shards_read_as_the_whole_file(DataConfig(path=str(path), id_column="store", target=["sales"]))


def test_parquet_ids_and_zoned_times_are_read_as_the_whole_file(tmp_path: Path) -> None:
    frame = LAYOUTS["utc offsets"].copy()
    frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.tz_convert("Europe/Paris")
    frame["store"] = pd.to_datetime(frame["store"].map({"store0": "2020-01-01", "store5": "2020-01-02"}))
    frame.to_parquet(tmp_path / "panel.parquet")  # date-typed ids, named as read_ids names them
    assert_shards_read_as_the_whole_file(DataConfig(path=str(tmp_path / "panel.parquet"), id_column="store"))


def test_a_choice_the_first_rows_cannot_make_is_made_by_reading_the_whole_file(tmp_path: Path) -> None:
    # no target given and a text column beside the numbers: the whole file decides which is numeric
    frame = two_series([t.isoformat() for t in MONTHS], [t.isoformat() for t in MONTHS])
    frame["note"] = "x"
    path = write_csv(tmp_path / "panel.csv", frame)
    assert_shards_read_as_the_whole_file(DataConfig(path=str(path), id_column="store"), streamed=False)


def test_a_column_of_whole_numbers_that_later_has_fractions_is_read_by_streaming(tmp_path: Path) -> None:
    # Arrow types a streamed column from its first block: whole numbers there, 0.5 far past it
    hours = pd.date_range("2001-01-01", periods=60_000, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"store0,{t},{k % 7}" for k, t in enumerate(hours)] + [f"store5,{t},0.5" for t in hours[:50]]
    path = tmp_path / "panel.csv"
    path.write_text("store,date,sales\n" + "\n".join(lines) + "\n")
    assert_shards_read_as_the_whole_file(DataConfig(path=str(path), id_column="store", target=["sales"]))


def test_what_the_whole_file_decides_is_decided_alike_in_every_process(tmp_path: Path) -> None:
    # a Categorical time column with categories no row uses: the rows decide (dd/mm or mm/dd).
    # The cut row's 12/31/2023 would make every date month first; the rows left are monthly day first
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    rows = [(s, d.strftime("%d/%m/%Y"), float(k)) for s in ("store0", "store5") for k, d in enumerate(months)]
    frame = pd.DataFrame([*rows, ("store9", "12/31/2023", 0.0)], columns=["store", "date", "sales"])
    cut = frame.astype({"date": "category"})[frame["store"] != "store9"].reset_index(drop=True)
    cut.to_parquet(tmp_path / "cut.parquet")
    cfg = DataConfig(path=str(tmp_path / "cut.parquet"), id_column="store", target=["sales"])
    whole = load_panel(cfg)
    assert whole.freq == "MS" and list(whole.times[:24]) == list(months)
    assert_shards_read_as_the_whole_file(cfg)

    # Parquet column names are the file's own, spaces included
    days = [d.date() for d in pd.date_range("2024-01-01", periods=30, freq="D")]
    spaced = two_series(days, days).rename(columns={"sales": " sales"})
    spaced.to_parquet(tmp_path / "spaced.parquet")
    assert_shards_read_as_the_whole_file(DataConfig(path=str(tmp_path / "spaced.parquet"), id_column="store"))

    # fractions of a second in store5's times only: every process writes them back
    seconds = pd.date_range("2024-01-01", periods=30, freq="h")
    fractions = two_series([str(t) for t in seconds], [str(t + pd.Timedelta("500ms")) for t in seconds])
    cfg = DataConfig(path=str(write_csv(tmp_path / "fractions.csv", fractions)), id_column="store", target=["sales"])
    assert load_panel(cfg).time_format.endswith(".%f")
    assert_shards_read_as_the_whole_file(cfg)


def test_a_time_named_column_empty_in_the_first_block_is_left_to_the_whole_file(tmp_path: Path) -> None:
    # `year` is empty through Arrow's first block (long notes), filled later: the whole file types
    # it as numbers, so the time column is `date`
    note = "x" * 2100
    lines = [f"store5,,{y}-12-31,{k}.5,{note}" for k, y in enumerate(range(1700, 2200))]
    lines += [f"store0,{y},{y}-12-31,{k}.5,n" for k, y in enumerate(range(1950, 2000))]
    path = tmp_path / "years.csv"
    path.write_text("store,year,date,sales,note\n" + "\n".join(lines) + "\n")
    cfg = DataConfig(path=str(path), id_column="store", target=["sales"])
    assert load_panel(cfg).freq.startswith("YE")
    assert_shards_read_as_the_whole_file(cfg, streamed=False)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("abc", "non-numeric value at line {line}: 'abc'"),
        ("", "missing values in .* line {line}\\)"),
        ("inf", "infinite value at line {line}"),
    ],
)
def test_a_bad_value_in_one_process_s_rows_stops_every_process_at_its_line(
    tmp_path: Path, bad: str, message: str
) -> None:
    path = panel_file(tmp_path)
    lines = path.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("store5,")) + 5  # store5: process 1 of 2
    lines[i] = ",".join(lines[i].split(",")[:-1] + [bad])
    path.write_text("\n".join(lines) + "\n")
    cfg = DataConfig(path=str(path), id_column="store", target=["sales"])
    for shard in (None, (0, 2), (1, 2)):
        with pytest.raises(ForecastError, match=message.format(line=i + 1)):
            load_panel(cfg, shard=shard)


def test_processes_share_one_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    def panel(freq: str, days: pd.DatetimeIndex) -> Panel:
        return Panel(np.zeros((len(days), 1)), days.to_numpy(), ["y"], 1, ["store0"], np.array([0, len(days)]), freq)

    daily = panel("D", pd.date_range("2024-01-01", periods=3))
    monkeypatch.setattr(prepare, "gather", lambda value: [value, ("h", "store5", None)])  # the other process's
    with pytest.raises(ForecastError, match="mixes frequencies: series 'store0' is D but series 'store5' is h"):
        prepare.share_calendar(daily, "f.csv")
    monkeypatch.setattr(prepare, "gather", lambda value: [value, ("D", "store5", None)])
    assert prepare.share_calendar(daily, "f.csv") is daily

    # business days: store0 never trades on 26 December, store5 does; one process reading both
    # finds Christmas alone a holiday, and so must the process holding store0 only
    weekdays = pd.bdate_range("2018-01-01", "2023-12-31")
    mine = weekdays[~weekdays.strftime("%m-%d").isin(["12-25", "12-26"])]
    theirs = weekdays[weekdays.strftime("%m-%d") != "12-25"]
    alone = panel("B", mine)
    assert set(calendar.infer_holidays(alone.times)) == {"12-25", "12-26"}
    other_days = np.unique(theirs.to_numpy().astype("datetime64[D]"))
    monkeypatch.setattr(prepare, "gather", lambda value: [value, ("B", "store5", other_days)])
    assert prepare.share_calendar(alone, "f.csv").holidays == ("12-25",)
