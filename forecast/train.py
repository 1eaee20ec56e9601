"""The training loop: MSE + Adam over batches gathered on the device, validation every epoch,
best-by-validation weights, early stopping, and a tqdm bar."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from forecast.config import TrainConfig
from forecast.errors import ForecastError
from forecast.windows import Windows


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_epoch: int = 0
    best_val: float = math.inf
    status: str = "completed"  # completed | early_stopped | interrupted | diverged


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ForecastError("train.device is cuda but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ForecastError("train.device is mps but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); return (rank, world size)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return world()


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def share(value: Any) -> Any:
    """Rank 0's value on every rank (identity without torchrun)."""
    if world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str) -> Any:
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16" and device.type == "cuda"
    )


def epoch_batches(n: int, cfg: TrainConfig, device: torch.device) -> list[torch.Tensor]:
    """Shuffled batches of window positions: every window once, or steps_per_epoch batches drawn
    from as many shuffled passes as that takes (fewer windows than it needs: several passes)."""
    batch = cfg.batch_size or n
    if not cfg.steps_per_epoch:
        return list(torch.randperm(n, device=device).split(batch))
    total = cfg.steps_per_epoch * batch
    passes = [torch.randperm(n, device=device) for _ in range(math.ceil(total / n))]
    return list(torch.cat(passes)[:total].split(batch))


@torch.inference_mode()
def mean_loss(model: nn.Module, windows: Windows, starts: torch.Tensor, batch_size: int, precision: str) -> float:
    """Mean MSE over `starts`, in scaled units; one host sync at the end."""
    if len(starts) == 0:
        return math.nan
    model.eval()
    total = torch.zeros((), device=starts.device)
    for chunk in starts.split(batch_size * 4):
        with autocast(starts.device, precision):
            pred = model(windows.inputs(chunk), windows.future(chunk))
        total += ((pred.float() - windows.targets(chunk)) ** 2).mean(dim=(1, 2)).sum()
    return float(total) / len(starts)


def batch_size(cfg: TrainConfig, starts: torch.Tensor) -> int:
    return cfg.batch_size or len(starts)


def cosine_factor(epochs: int) -> Callable[[int], float]:
    return lambda e: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(e, epochs) / epochs))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    device = next(model.parameters()).device
    # the fused kernel updates every parameter in one pass: a few percent per step on CPU and GPU
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    factor = cosine_factor(cfg.epochs) if cfg.lr_schedule == "cosine" else (lambda e: 1.0)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model: nn.Module,
    windows: Windows,
    train_starts: torch.Tensor,
    val_starts: torch.Tensor,
    cfg: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    quiet: bool = False,
) -> FitResult:
    """Train `model` in place; return the history and the best-by-validation weights.

    on_epoch receives a resumable state after every epoch; `resume` is such a state.
    """
    device = train_starts.device
    rank, world_size = world()
    quiet = quiet or rank > 0
    # under torchrun every rank draws the same shuffled batches and trains on its own slice of each;
    # DistributedDataParallel averages the gradients, so all ranks hold the same weights
    net = nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    optimizer, scheduler = make_optimizer(model, cfg)
    result, first_epoch, stale = FitResult(), 1, 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        result.history, result.best_state = resume["history"], resume["best_state"]
        result.best_epoch, result.best_val, stale = resume["best_epoch"], resume["best_val"], resume["stale"]
        first_epoch = resume["epoch"] + 1
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda" and "cuda_rng" in resume:  # shuffles and dropout draw on the GPU there
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
    elif len(val_starts):  # the starting weights compete too: training must beat them on validation
        start = mean_loss(model, windows, val_starts, batch_size(cfg, train_starts), cfg.precision)
        if math.isfinite(start):
            result.best_val = start
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    loss_fn = nn.MSELoss()
    bar = tqdm(
        range(first_epoch, cfg.epochs + 1),
        desc="training",
        unit="epoch",
        disable=quiet,
        initial=first_epoch - 1,
        total=cfg.epochs,
        dynamic_ncols=True,
    )
    try:
        for epoch in bar:
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            t0 = time.perf_counter()
            batches = epoch_batches(len(train_starts), cfg, device)
            total = torch.zeros((), device=device)
            seen = 0
            for idx in tqdm(
                batches,
                desc=f"epoch {epoch}",
                leave=False,
                disable=quiet,
                unit="batch",
                delay=3,
                mininterval=0.5,
                dynamic_ncols=True,
            ):
                if len(idx) < world_size:  # a last batch too small to give every process a window
                    continue
                starts = train_starts[idx[rank::world_size]]
                x, y = windows.inputs(starts), windows.targets(starts)  # (B, L, F), (B, H, T)
                with autocast(device, cfg.precision):
                    loss = loss_fn(net(x, windows.future(starts)).float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                total += loss.detach() * len(starts)  # stays on the device: no sync per batch
                seen += len(starts)
            if world_size > 1:
                counts = torch.tensor([float(seen)], device=device)
                dist.all_reduce(total)
                dist.all_reduce(counts)
                seen = int(counts.item())
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            train_loss = float(total) / max(seen, 1)
            if not math.isfinite(train_loss):
                result.status = "diverged"
                break
            val_loss = mean_loss(model, windows, val_starts, batch_size(cfg, train_starts), cfg.precision)
            if len(val_starts) and not math.isfinite(val_loss):
                result.status = "diverged"
                break
            scheduler.step()
            result.history.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr, "seconds": seconds}
            )
            # with no validation windows, the latest epoch counts as the best
            score = val_loss if math.isfinite(val_loss) else -epoch
            if score < result.best_val:
                result.best_val, result.best_epoch, stale = score, epoch, 0
                result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", best=result.best_epoch)
            if on_epoch is not None and rank == 0:
                on_epoch(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "history": result.history,
                        "best_state": result.best_state,
                        "best_epoch": result.best_epoch,
                        "best_val": result.best_val,
                        "stale": stale,
                        "epoch": epoch,
                        "rng": torch.get_rng_state(),
                        **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                    }
                )
            if cfg.patience and stale >= cfg.patience:
                result.status = "early_stopped"
                break
    except KeyboardInterrupt:
        result.status = "interrupted"
    finally:
        bar.close()
    if not result.best_state:
        result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return result
