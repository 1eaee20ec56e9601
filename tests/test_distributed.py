"""Training under torchrun: two CPU processes with gloo write one run directory, as one process would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import synthetic_frame, write_csv

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


def torchrun(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
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
        str(out),
        *TINY,
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=out.parent)


@pytest.mark.slow
def test_two_processes_write_one_run(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "tiny.csv", synthetic_frame(n=120, columns=("y",)))
    run = tmp_path / "run"
    # 120 rows: 84 train rows, 70 training windows: batches of 32, 32 and 6 split evenly over 2 ranks
    result = torchrun(data, run, "--batch-size", "32")
    assert result.returncode == 0, result.stdout + result.stderr
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
    data = write_csv(tmp_path / "tiny.csv", synthetic_frame(n=120, columns=("y",)))
    run = tmp_path / "run"
    # 70 training windows in batches of 23: 23, 23, 23 and 1, which rank 1 gets no share of
    result = torchrun(data, run, "--batch-size", "23")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pd.read_csv(run / "history.csv")["train_loss"].notna().all()
