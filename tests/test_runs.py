"""Whole runs: determinism, and Ctrl-C / SIGTERM followed by --resume."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import SMALL, Cli, assert_user_error, synthetic_frame, write_csv

from forecast.config import ModelConfig, TrainConfig
from forecast.model import build_model
from forecast.train import Trainer, clear_gain
from forecast.windows import Windows

# enough epochs that a signal sent after the first one lands mid-training; patience 0 runs them all
LONG = [
    "--lookback",
    "24",
    "--horizon",
    "6",
    "--epochs",
    "10",
    "--device",
    "cpu",
    "--quiet",
    "--seed",
    "3",
    "--set",
    "model.hidden_size=8",
    "--set",
    "train.patience=0",
]


def test_same_seed_same_predictions(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    outputs = []
    for name, seed in (("one", "0"), ("two", "0"), ("other", "1")):
        # no highway: its closed-form start does not depend on the seed, and may be kept as the best
        cli.train(multi_csv, tmp_path / name, "--seed", seed, "--set", "model.highway=false")
        cli.ok("predict", tmp_path / name, "--backtest")
        outputs.append((tmp_path / name / "predictions.csv").read_bytes())
    assert outputs[0] == outputs[1]  # byte for byte
    assert outputs[0] != outputs[2]  # and the seed matters


@pytest.fixture(scope="module")
def long_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("long") / "long.csv", synthetic_frame(800, columns=("a", "b")))


@pytest.fixture(scope="module")
def uninterrupted(long_data: Path) -> dict[str, torch.Tensor]:
    run = long_data.parent / "uninterrupted"
    Cli().ok("train", "--data", long_data, "--out", run, *LONG)
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


def default_sigint() -> None:
    """In the child: take Ctrl-C even when the tests run where SIGINT is ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_training(data: Path, run: Path, signum: int) -> subprocess.CompletedProcess:
    """Start `python -m forecast train` and send `signum` once the first epoch's state.pt exists."""
    cmd = [sys.executable, "-m", "forecast", "train", "--data", str(data), "--out", str(run), *LONG]
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=run.parent,
        preexec_fn=default_sigint if ignored else None,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "state.pt").exists():
            assert proc.poll() is None, f"training ended before its first epoch:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no state.pt after 120 s"
            time.sleep(0.02)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_then_resume(
    cli: Cli, long_data: Path, uninterrupted: dict[str, torch.Tensor], tmp_path: Path, signum: int
) -> None:
    run = tmp_path / "run"
    done = interrupt_training(long_data, run, signum)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert f"forecast train --resume {run}" in done.stderr

    # the interrupted run holds the best weights so far, says it is incomplete, and can resume
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert set(ckpt["state_dict"]) == set(uninterrupted)
    epochs_done = len(pd.read_csv(run / "history.csv"))
    assert 1 <= epochs_done < 10
    assert (run / "state.pt").is_file()
    assert "INCOMPLETE: interrupted" in cli.ok("info", run).stdout.splitlines()[0]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]

    cli.ok("predict", run)  # a forecast of the interrupted model: it must not pass for the resumed one's
    resumed = cli.ok("train", "--resume", run, "--quiet")
    assert f"run directory: {run}" in resumed.stdout
    assert not (run / "forecast.csv").exists() and "removed forecast.csv" in resumed.stderr
    assert "(complete)" in cli.ok("info", run).stdout.splitlines()[0]
    assert not (run / "state.pt").exists()
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(1, 11))

    # with a fixed seed, interrupting and resuming changes nothing: the same final weights
    final = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    for name, tensor in uninterrupted.items():
        assert torch.equal(final[name], tensor), name


@pytest.mark.slow
def test_resume_on_a_changed_file_says_so(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "long.csv", synthetic_frame(800, columns=("a", "b")))
    run = tmp_path / "run"
    assert interrupt_training(data, run, signal.SIGINT).returncode == 130
    write_csv(data, synthetic_frame(800, columns=("a", "b"), seed=4))  # edited while the run waits
    resumed = cli.ok("train", "--resume", run, "--quiet")
    assert f"warning: {data.resolve()} has changed since this run began training" in resumed.stderr


def test_resume_of_a_run_that_completed(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    cli.train(multi_csv, tmp_path / "run")
    result = cli("train", "--resume", tmp_path / "run")
    assert result.exit_code == 1 and "no state.pt to resume from" in result.stderr
    assert result.stdout == "" and "budget" not in result.stderr  # said before the config and the data


def test_train_leaves_signal_handlers_as_it_found_them(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    cli.train(multi_csv, tmp_path / "run")
    assert signal.getsignal(signal.SIGTERM) is before


def test_small_settings_are_small(trained_run: Path) -> None:
    # the suite's speed rests on these: a regression here makes every CLI test slow
    cfg = torch.load(trained_run / "model.pt", weights_only=True)["config"]
    assert SMALL[SMALL.index("--epochs") + 1] == "2" and cfg["train"]["epochs"] == 2
    assert cfg["model"]["hidden_size"] == 8


def test_nan_loss_stops_and_keeps_the_last_good_weights(
    cli: Cli, multi_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one batch per epoch; the loss turns NaN from the second epoch on
    calls = {"n": 0}
    mse = torch.nn.MSELoss()

    class ExplodingLoss(torch.nn.Module):
        def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            loss = mse(pred, target)
            return loss * float("nan") if calls["n"] > 1 else loss

    monkeypatch.setattr("forecast.train.nn.MSELoss", ExplodingLoss)
    run = tmp_path / "run"
    result = cli("train", "--data", multi_csv, "--out", run, *SMALL, "--epochs", "5", "--batch-size", "100000")
    assert_user_error(result, "diverged", "after epoch 1", str(run))
    ckpt = torch.load(run / "model.pt", weights_only=True)
    # the starting weights (epoch 0) compete on validation too
    assert ckpt["record"]["status"] == "diverged" and ckpt["best_epoch"] in (0, 1)
    assert f"(epoch {ckpt['best_epoch']})" in result.stderr
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert len(pd.read_csv(run / "history.csv")) == 1
    assert "INCOMPLETE: diverged" in cli.ok("info", run).stdout


def test_run_record_and_changed_data_warning(cli: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "data.csv", synthetic_frame())
    run = tmp_path / "run"
    args = ["train", "--data", str(csv), "--out", str(run), *SMALL, "--seed", "5"]
    done = subprocess.run([sys.executable, "-m", "forecast", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = torch.load(run / "model.pt", weights_only=True)["record"]
    assert record["command"].endswith(" ".join(args))  # the command line as typed
    assert set(record["versions"]) >= {"forecast", "torch", "pandas", "numpy"}
    assert record["device"] == "cpu" and record["seed"] == 5 and record["status"] == "completed"
    assert record["data"]["rows"] == 300 and len(record["data"]["sha256"]) == 64
    assert record["data"]["path"] == str(csv.resolve())
    assert record["started"] <= record["ended"]
    info = cli.ok("info", run).stdout
    assert "(complete)" in info and record["data"]["sha256"] not in info and "seed 5" in info
    assert "changed" not in cli.ok("predict", run).stderr
    metrics = (run / "metrics.json").read_text()
    write_csv(csv, synthetic_frame(seed=9))  # same shape, other values
    for command in (("predict", run), ("evaluate", run)):
        result = cli.ok(*command)
        assert f"warning: {csv} has changed since this model was trained on it; it is read as new data" in result.stderr
    assert "metrics.json" not in result.stdout and (run / "metrics.json").read_text() == metrics  # training's scores
    write_csv(csv, synthetic_frame(n=340, seed=9))  # 40 rows appended: they are the test windows
    assert "rows after" in cli.ok("evaluate", run).stderr


def test_divergence_seen_only_in_validation_is_caught(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    # one batch per epoch: its training loss is measured before the update that blows up the weights
    run = tmp_path / "run"
    result = cli("train", "--data", multi_csv, "--out", run, *SMALL, "--lr", "1e30", "--batch-size", "100000")
    assert_user_error(result, "diverged", "in the first epoch", "lower train.lr")
    assert not run.exists()  # nothing half-made is left behind, so a retry needs no --force
    cli.train(multi_csv, run)


def test_a_gain_counts_when_it_is_above_one_standard_error() -> None:
    assert clear_gain(torch.tensor([1.0, 1.1, 0.9, 1.0]))[0]
    assert not clear_gain(torch.tensor([1.0, -0.8, 0.9, -0.9]))[0]  # mean 0.05, standard error 0.48
    assert clear_gain(torch.tensor([5.0])) == (False, 5.0, math.inf, 1)  # one window shows no spread
    gains = torch.tensor([0.3, 0.1, 0.4, 0.2, 0.5], dtype=torch.float64)
    clear, mean, se, n = clear_gain(gains)
    assert clear and n == 5
    assert mean == pytest.approx(0.3) and se == pytest.approx(float(gains.std()) / math.sqrt(5))


def small_trainer(highway: bool, n_val: int) -> Trainer:
    torch.manual_seed(0)
    model = build_model(1, 1, ModelConfig(lookback=8, horizon=2, hidden_size=4, norm="last", highway=highway))
    windows = Windows(torch.randn(200, 1), 1, 8, 2)
    val = torch.arange(100, 100 + n_val)
    return Trainer(model, windows, torch.arange(90), val, TrainConfig(batch_size=8), quiet=True)


@pytest.mark.parametrize(
    ("gains", "kept"),
    [([0.5], True), ([1.0, -0.8, 0.9, -0.9, 0.05, -0.05], True), ([0.5, 0.6, 0.4, 0.5, 0.55, 0.45], False)],
)
def test_training_replaces_the_starting_forecast_only_for_a_clear_gain(gains: list[float], kept: bool) -> None:
    trainer = small_trainer(highway=True, n_val=len(gains))
    trainer.restore(None)  # the starting forecast competes as epoch 0, and is remembered
    assert trainer.start is not None
    start_state = trainer.start[0]
    with torch.no_grad():  # what training's best epoch might be: other weights
        trainer.model.head.bias.add_(0.3)
    r = trainer.result
    r.best_state, r.best_epoch = {k: v.clone() for k, v in trainer.model.state_dict().items()}, 3
    # the start scored worse than that epoch by `gains` on the validation windows
    trainer.start = (start_state, trainer.validation_losses() + torch.tensor(gains, dtype=torch.float64))
    resumed = small_trainer(highway=True, n_val=len(gains))
    resumed.restore(trainer.snapshot(3))
    assert resumed.start is not None and torch.equal(resumed.start[1], trainer.start[1])
    trainer.settle()
    assert (r.best_epoch == 0) is kept and bool(r.kept_start) is kept
    assert torch.equal(r.best_state["head.bias"], start_state["head.bias"]) is kept
    if kept and len(gains) == 1:
        assert "beat it by 0.5 on the one validation window, too few to tell" in r.kept_start
    elif kept:
        assert "within one standard error" in r.kept_start and f"{len(gains)} windows" in r.kept_start


def test_random_starting_weights_are_not_kept_for_want_of_a_clear_gain() -> None:
    trainer = small_trainer(highway=False, n_val=1)  # no highway: the start forecasts nothing
    trainer.restore(None)
    assert trainer.start is None
    trainer.result.best_epoch = 2
    trainer.settle()
    assert trainer.result.best_epoch == 2 and not trainer.result.kept_start


def test_a_start_no_epoch_beat_is_kept_and_said() -> None:
    trainer = small_trainer(highway=True, n_val=4)
    trainer.restore(None)  # the start is epoch 0, the best so far
    start = trainer.result.best_val
    trainer.result.history = [{"val_loss": start + 0.2}, {"val_loss": start + 0.1}]  # neither beat it
    trainer.settle()
    r = trainer.result
    assert r.best_epoch == 0 and "no epoch beat it on validation" in r.kept_start
    assert "at epoch 2, the best of 2" in r.kept_start
