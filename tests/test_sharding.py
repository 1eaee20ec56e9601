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

from forecast.config import DataConfig
from forecast.errors import ForecastError
from forecast.panel import fit_scaler, load_panel, owners, split_borders
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
