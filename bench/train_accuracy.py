"""Accuracy at equal epochs: test MSE of the tutorial's training loop and of forecast's, on ETTh1 OT.

    .venv/bin/python bench/train_accuracy.py [--quick] [--accuracy-epochs N] [--out FILE]

Both loops train the tutorial's model (forecast's with norm none, the same arithmetic, and with its
default norm last) for the same epochs at batch 32 from the same initial weights, on a 70/10/20
split scaled by a MinMaxScaler fitted on the training rows. The test MSE is in scaled units. (Not
to be confused with bench/accuracy.py, the ETTh1 long-horizon table of the shipped configs.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import runner
import torch
import tutorial
from common import Ett, TrainConfig, Windows, build_model, fit, log, ratio, rnd, seed_everything

SIZES: runner.Sizes = {
    "--accuracy-epochs": (2, 1, "epochs of the accuracy runs"),
    "--accuracy-windows": (0, 1024, "use only the first N training windows (0: all)"),
}
SEED = 0


@torch.inference_mode()
def test_mse(predict: Callable[[torch.Tensor], torch.Tensor], windows: Windows, starts: torch.Tensor) -> float:
    """Mean squared error over every (window, step) of `starts`, scaled units."""
    total, count = 0.0, 0
    for chunk in starts.split(1024):
        pred = predict(windows.inputs(chunk)).reshape(len(chunk), -1)
        true = windows.targets(chunk).reshape(len(chunk), -1)
        total += float(((pred - true) ** 2).sum())
        count += true.numel()
    return total / count


def measure(args: argparse.Namespace, ett: Ett) -> dict[str, Any]:
    """The accuracy section of the report."""
    L, H, B = (tutorial.SETTINGS[k] for k in ("lookback", "horizon", "batch_size"))
    epochs = args.accuracy_epochs
    windows = Windows(torch.from_numpy(ett.scaled), 1, L, H)
    train, val, test = (ett.starts(p, L, H) for p in ("train", "val", "test"))
    x_np, y_np = tutorial.windows(tutorial.scaled(ett)[: ett.n_train_rows], L, H)
    if args.accuracy_windows:  # --quick: the first N training windows, the same for both loops
        train, x_np, y_np = train[: args.accuracy_windows], x_np[: args.accuracy_windows], y_np[: args.accuracy_windows]
    log(f"accuracy: {epochs} epoch(s) of {len(train)} windows, batch {B}; test on {len(test)} windows")

    result: dict[str, Any] = {
        "data": f"{Path(ett.path).name} OT, split 70/10/20, MinMaxScaler fitted on the training rows",
        "epochs": epochs,
        "batch_size": B,
        "train_windows": len(train),
        "test_windows": len(test),
        "test_windows_rule": "every stride-1 window whose targets lie in the test split (forecast's rule)",
        "tutorial": tutorial_loop(epochs, x_np, y_np, windows, test),
    }
    for norm in ("none", "last"):
        result[f"forecast_norm_{norm}"] = forecast_loop(norm, epochs, windows, train, val, test)
    # norm="none" is the tutorial's arithmetic; norm="last" is forecast's default
    for norm in ("none", "last"):
        result[f"ratio_mse_forecast_norm_{norm}_vs_tutorial"] = ratio(
            result[f"forecast_norm_{norm}"]["test_mse"], result["tutorial"]["test_mse"]
        )
    return result


def tutorial_loop(
    epochs: int, x_np: np.ndarray, y_np: np.ndarray, windows: Windows, test: torch.Tensor
) -> dict[str, Any]:
    """The tutorial's loop for `epochs` epochs, scored with its last epoch's weights."""
    device = torch.device("cpu")
    tut = tutorial.seeded_model(SEED)
    opt = torch.optim.Adam(tut.parameters(), lr=1e-3)
    loader = tutorial.loader(x_np, y_np, tutorial.SETTINGS["batch_size"], SEED)
    tut_epochs = []
    for e in range(epochs):
        seen, sec, loss = tutorial.train_pass(tut, opt, loader, None, device)
        tut_epochs.append({"seconds": rnd(sec), "train_loss": rnd(loss), "windows_per_s": rnd(seen / sec)})
        log(f"  tutorial epoch {e + 1}: {sec:.1f} s, train loss {loss:.4f}")
    tut.eval()
    return {
        "test_mse": rnd(test_mse(tut, windows, test), 5),
        "epochs": tut_epochs,
        "optimizer": "Adam lr 1e-3, last epoch's weights",
    }


def forecast_loop(
    norm: str, epochs: int, windows: Windows, train: torch.Tensor, val: torch.Tensor, test: torch.Tensor
) -> dict[str, Any]:
    """forecast.train.fit on the tutorial's model with `norm`, scored with its best-by-validation weights."""
    seed_everything(SEED)
    model = build_model(1, 1, tutorial.model_config(norm))
    cfg = TrainConfig(epochs=epochs, batch_size=tutorial.SETTINGS["batch_size"], seed=SEED, patience=0)
    res = fit(model, windows, train, val, cfg, quiet=True)
    last = test_mse(model, windows, test)
    model.load_state_dict(res.best_state)
    best = test_mse(model, windows, test)
    hist = [
        {
            "seconds": rnd(h["seconds"]),
            "train_loss": rnd(h["train_loss"]),
            "val_loss": rnd(h["val_loss"]),
            "windows_per_s": rnd(len(train) / h["seconds"]),
        }
        for h in res.history
    ]
    for h in hist:
        log(f"  forecast norm={norm}: {h}")
    return {
        "test_mse": rnd(best, 5),
        "test_mse_last_epoch": rnd(last, 5),
        "best_epoch": res.best_epoch,
        "epochs": hist,
        "optimizer": "TrainConfig defaults: AdamW lr 1e-3 wd 0, grad_clip 1.0, cosine schedule, "
        "best-by-validation weights",
    }


SECTION = runner.Section(
    "accuracy", lambda args, inputs: measure(args, inputs.ett), SIZES, needs=("ett",), report_seconds=True
)

if __name__ == "__main__":
    sys.exit(runner.run([SECTION], __doc__))
