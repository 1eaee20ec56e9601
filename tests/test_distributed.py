"""Where the work runs: forward passes side by side on CPU threads, and training under torchrun
(two CPU processes with gloo write one run directory, as one process would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import synthetic_frame, write_csv

from forecast import api
from forecast.distributed import side_by_side
from forecast.run import load_run

EPOCHS = 2
TINY = [
    "--lookback",
    "12",
    "--horizon",
    "3",
    "--epochs",
    str(EPOCHS),
    "--device",
    "cpu",
    "--quiet",
    "--set",
    "model.hidden_size=8",
    "--set",
    "train.patience=0",
]


def train_on_two_ranks(tmp_path: Path, batch_size: int) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """torchrun with 2 processes on 120 rows of `y` (84 train rows, 70 training windows); it must succeed."""
    data = write_csv(tmp_path / "tiny.csv", synthetic_frame(n=120, columns=("y",)))
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--standalone",
        "-m",
        "forecast",
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        *TINY,
        "--batch-size",
        str(batch_size),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return run, result


def test_side_by_side_keeps_order_and_puts_the_threads_back() -> None:
    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen_threads = []

        def square(i: int) -> int:
            seen_threads.append(torch.get_num_threads())
            return i * i

        assert list(side_by_side(square, range(50), cpu)) == [i * i for i in range(50)]
        assert set(seen_threads) == {1} and torch.get_num_threads() == 2  # single-threaded workers, then back
        stopped = side_by_side(square, range(50), cpu)
        next(stopped)
        stopped.close()  # a consumer that stops early
        assert torch.get_num_threads() == 2

        def fails(i: int) -> int:
            raise ValueError(f"item {i}")

        with pytest.raises(ValueError, match="item 0"):
            list(side_by_side(fails, range(3), cpu))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_scores_do_not_depend_on_the_threads(run_copy: Path) -> None:
    before = torch.get_num_threads()
    try:
        scores = []
        for threads in (1, 2):  # one thread: in turn; two: side by side
            torch.set_num_threads(threads)
            scores.append(api.evaluate(run_copy, split="test")["models"]["model"])
    finally:
        torch.set_num_threads(before)
    assert scores[0].keys() == scores[1].keys()
    for key, value in scores[0].items():
        assert value == pytest.approx(scores[1][key], rel=1e-5), key


@pytest.mark.slow
def test_two_processes_write_one_run(tmp_path: Path) -> None:
    # 70 training windows in batches of 32, 32 and 6: each split evenly over the 2 ranks
    run, result = train_on_two_ranks(tmp_path, batch_size=32)
    assert result.stdout.count("run directory:") == 1, result.stdout  # rank 0 reports
    assert f"run directory: {run}" in result.stdout and "mse_z" in result.stdout
    assert result.stderr.count("config:") == 1 and "x 2 processes" in result.stderr  # rank 0 logs

    assert {"model.pt", "history.csv", "metrics.json", "config.yaml"} <= {p.name for p in run.iterdir()}
    assert "state.pt" not in {p.name for p in run.iterdir()}
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["config"]["train"]["epochs"] == EPOCHS and ckpt["record"]["status"] == "completed"
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert (history[["train_loss", "val_loss"]] > 0).all().all()
    # the run directory works like a single process's
    loaded = load_run(run)
    assert len(loaded.forecast()) == 3


@pytest.mark.slow
def test_a_last_batch_of_one_window(tmp_path: Path) -> None:
    # 70 training windows in batches of 23: 23, 23, 23 and 1, which rank 1 gets no share of
    run, _ = train_on_two_ranks(tmp_path, batch_size=23)
    assert pd.read_csv(run / "history.csv")["train_loss"].notna().all()
