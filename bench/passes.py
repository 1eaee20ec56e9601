"""The timed training passes of forecast's model: forecast's own loop, and the model's ceiling with no loop."""

from __future__ import annotations

import time

import torch
from common import ModelConfig, TrainConfig, Windows, autocast, build_model, fit, sync
from torch import nn


def library_model(cfg: ModelConfig, device: torch.device, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(1, 1, cfg).to(device)


def forecast_pass(
    model: nn.Module, windows: Windows, starts: torch.Tensor, batch: int, n_batches: int, precision: str = "fp32"
) -> float:
    """windows/s of forecast.train.fit over n_batches random batches (its `seconds`: the training pass alone)."""
    if n_batches * batch >= len(starts):
        raise ValueError(f"{n_batches} batches of {batch} need more than {len(starts)} windows")
    cfg = TrainConfig(epochs=1, batch_size=batch, steps_per_epoch=n_batches, precision=precision, patience=0)
    result = fit(model, windows, starts, starts[:0], cfg, quiet=True)
    return n_batches * batch / result.history[0]["seconds"]


def ceiling_pass(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    n_steps: int,
    precision: str = "fp32",
) -> float:
    """windows/s of forward + backward + Adam step on one batch already on the device: no data pipeline."""
    loss_fn = nn.MSELoss()
    model.train()
    sync(x.device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        with autocast(x.device, precision):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(x.device)
    return n_steps * len(x) / (time.perf_counter() - t0)
