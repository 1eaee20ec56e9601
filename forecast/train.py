"""The training loop: MSE + Adam, validation each epoch, best weights, early stopping, progress bars."""

from __future__ import annotations

import dataclasses
import math
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

from forecast.checkpoint import Status
from forecast.config import TrainConfig
from forecast.distributed import autocast, side_by_side, total, world
from forecast.model import Forecaster
from forecast.windows import Windows


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_epoch: int = 0
    best_val: float = math.inf
    stale: int = 0  # epochs since the best
    status: Status = Status.COMPLETED
    kept_start: str = ""  # why the starting weights were kept over training's best epoch, if they were

    def keep_if_best(self, model: nn.Module, score: float, epoch: int) -> None:
        """Copy the weights when `score` (validation loss) beats the best so far; count stale epochs."""
        if score < self.best_val:
            self.best_val, self.best_epoch, self.stale = score, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_batches(
    n: int, cfg: TrainConfig, device: torch.device, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Shuffled batches of window positions: every window once, or steps_per_epoch batches drawn
    from as many shuffled passes as that takes (fewer windows than it needs: several passes).
    generator: where the draws come from (default torch's global one)."""
    batch = cfg.batch_size or n
    if not cfg.steps_per_epoch:
        return list(torch.randperm(n, device=device, generator=generator).split(batch))
    total = cfg.steps_per_epoch * batch
    if 4 * total <= n:  # a small part of one pass: draw it without shuffling all n (seconds at 40M)
        return list(distinct_draw(n, total, device, generator).split(batch))
    passes = [torch.randperm(n, device=device, generator=generator) for _ in range(math.ceil(total / n))]
    return list(torch.cat(passes)[:total].split(batch))


def shared_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """A generator every process seeds alike for an epoch: the same batches on every process, however
    much of torch's global one each has used (dropout draws in proportion to a process's slice)."""
    state = int(np.random.SeedSequence([seed % 2**32, epoch]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(state)


def distinct_draw(n: int, k: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """k distinct positions of range(n) in random order, as the first k of a shuffle would be, in
    O(k log k) rather than O(n): draw k at random, then draw again for each repeat until none is
    left (few rounds when k is a small part of n)."""
    if k > n:
        raise ValueError(f"cannot draw {k} distinct positions of {n}")
    drawn = torch.randint(n, (k,), device=device, generator=generator)
    while True:
        order = torch.argsort(drawn, stable=True)
        ordered = drawn[order]
        repeat = torch.zeros(k, dtype=torch.bool, device=device)
        repeat[order[1:]] = ordered[1:] == ordered[:-1]  # every later copy of a value
        count = int(repeat.sum())
        if not count:
            return drawn
        drawn[repeat] = torch.randint(n, (count,), device=device, generator=generator)


def window_losses(
    model: Forecaster, windows: Windows, starts: torch.Tensor, batch_size: int, precision: str
) -> torch.Tensor:
    """Each window's MSE over `starts`, in scaled units: (W,) float64, on the device; no host sync."""
    device = starts.device
    if not len(starts):
        return torch.zeros(0, dtype=torch.float64, device=device)
    model.eval()

    def losses(chunk: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(device, precision):
            pred = model(windows.inputs(chunk), windows.future(chunk))
        return ((pred.float() - windows.targets(chunk)) ** 2).mean(dim=(1, 2)).double()

    size = model.cpu_pass_windows() if device.type == "cpu" else batch_size * 4
    return torch.cat(list(side_by_side(losses, starts.split(size), device)))


def clear_gain(gains: torch.Tensor, sharded: bool = False) -> tuple[bool, float, float, int]:
    """Whether per-window gains (W,) are clearly above zero: their mean beats one standard error
    of it (the one-standard-error rule); with the mean, that standard error and the count, pooled
    over processes when sharded. Fewer than 2 windows cannot show a gain."""
    gains = gains.double().cpu()
    sums = np.array([len(gains), float(gains.sum()), float((gains**2).sum())])
    n, s1, s2 = (total(sums) if sharded else sums).tolist()
    if n < 2:
        return False, s1 / max(n, 1.0), math.inf, int(n)
    mean = s1 / n
    se = math.sqrt(max(s2 - n * mean**2, 0.0) / (n - 1) / n)
    return mean > se, mean, se, int(n)


def cosine_factor(epochs: int) -> Callable[[int], float]:
    return lambda e: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(e, epochs) / epochs))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    device = next(model.parameters()).device
    # the fused kernel updates every parameter in one pass: a few percent per step on CPU and GPU
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    factor = cosine_factor(cfg.epochs) if cfg.lr_schedule == "cosine" else (lambda e: 1.0)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Trainer:
    """One model's training: the optimizer and schedule, the data, and the result so far."""

    model: Forecaster
    windows: Windows
    train_starts: torch.Tensor
    val_starts: torch.Tensor
    cfg: TrainConfig
    quiet: bool = False
    sharded: bool = False  # each process holds its own series: it trains on its own windows only
    result: FitResult = field(default_factory=FitResult)

    def __post_init__(self) -> None:
        self.device = self.train_starts.device
        self.rank, self.world_size = world()
        # under torchrun every rank draws the same shuffled batches and trains on its own slice of each;
        # DistributedDataParallel averages the gradients, so all ranks hold the same weights
        self.net = nn.parallel.DistributedDataParallel(self.model) if self.world_size > 1 else self.model
        self.optimizer, self.scheduler = make_optimizer(self.model, self.cfg)
        self.loss_fn = nn.MSELoss()
        # validation windows of every process: sharded, a process may hold none while others do
        self.n_val = int(total(len(self.val_starts))) if self.sharded else len(self.val_starts)
        # a starting forecast (base + highway fit) and its validation losses: see settle()
        self.start: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None

    def validation_losses(self) -> torch.Tensor:
        """Each validation window's MSE, of this process's windows."""
        batch = self.cfg.batch_size or len(self.train_starts)
        return window_losses(self.model, self.windows, self.val_starts, batch, self.cfg.precision)

    def validation_loss(self, losses: torch.Tensor | None = None) -> float:
        """Mean MSE over the validation windows (of every process, sharded); NaN without any."""
        summed = float((self.validation_losses() if losses is None else losses).sum())
        return float(total(summed) if self.sharded else summed) / self.n_val if self.n_val else math.nan

    def restore(self, state: dict[str, Any] | None) -> int:
        """Continue from a snapshot, or let the starting weights compete as epoch 0; return the first epoch."""
        if state is None:
            losses = self.validation_losses()
            start = self.validation_loss(losses)
            if math.isfinite(start):  # training must beat the starting weights on validation
                self.result.keep_if_best(self.model, start, 0)
                if self.model.starts_from_forecast():
                    self.start = (self.result.best_state, losses)
            return 1
        if "start_state" in state:
            self.start = (state["start_state"], state["start_losses"].to(self.device))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        r = self.result
        r.history, r.best_state = state["history"], state["best_state"]
        r.best_epoch, r.best_val, r.stale = state["best_epoch"], state["best_val"], state["stale"]
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and "cuda_rng" in state:  # shuffles and dropout draw on the GPU there
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        return int(state["epoch"]) + 1

    def train_epoch(self, epoch: int) -> float:
        """One epoch of Adam steps; the mean training loss over every rank."""
        self.model.train()
        total = torch.zeros((), device=self.device)
        seen = 0
        cfg = self.cfg
        if self.sharded:  # a batch is every process's share of it, drawn from its own windows
            cfg = dataclasses.replace(cfg, batch_size=max(cfg.batch_size // self.world_size, 1))
        # unsharded under torchrun, every process must draw the same batches: from a generator of their own
        shared = self.world_size > 1 and not self.sharded
        generator = shared_generator(cfg.seed, epoch, self.device) if shared else None
        batches = epoch_batches(len(self.train_starts), cfg, self.device, generator)
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}",
            leave=False,
            disable=self.quiet,
            unit="batch",
            delay=3,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        for idx in bar:
            if self.sharded:
                starts = self.train_starts[idx]
            elif len(idx) < self.world_size:  # a last batch too small to give every process a window
                continue
            else:  # every process draws the same batches and trains on its slice of each
                starts = self.train_starts[idx[self.rank :: self.world_size]]
            total += self.step(starts) * len(starts)  # stays on the device: no sync per batch
            seen += len(starts)
        if self.world_size > 1:
            counts = torch.tensor([float(seen)], device=self.device)
            dist.all_reduce(total)
            dist.all_reduce(counts)
            seen = int(counts.item())
        return float(total) / max(seen, 1)

    def step(self, starts: torch.Tensor) -> torch.Tensor:
        """One Adam step on the windows at `starts`; returns the batch loss, on the device."""
        x, y = self.windows.inputs(starts), self.windows.targets(starts)  # (B, L, F), (B, H, T)
        with autocast(self.device, self.cfg.precision):
            loss = self.loss_fn(self.net(x, self.windows.future(starts)).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def snapshot(self, epoch: int) -> dict[str, Any]:
        """Everything `restore` needs to continue after `epoch`."""
        r = self.result
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": r.history,
            "best_state": r.best_state,
            "best_epoch": r.best_epoch,
            "best_val": r.best_val,
            "stale": r.stale,
            "epoch": epoch,
            **({"start_state": self.start[0], "start_losses": self.start[1]} if self.start else {}),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
        }

    def epoch(self, epoch: int) -> Status | None:
        """Train and validate one epoch, recording it; a status when training must stop now."""
        lr = self.optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        train_loss = self.train_epoch(epoch)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            return Status.DIVERGED
        val_loss = self.validation_loss()
        if self.n_val and not math.isfinite(val_loss):
            return Status.DIVERGED
        self.scheduler.step()
        self.result.history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr, "seconds": seconds}
        )
        # with no validation windows, the latest epoch counts as the best
        self.result.keep_if_best(self.model, val_loss if math.isfinite(val_loss) else -epoch, epoch)
        return None

    def settle(self) -> None:
        """Keep the starting forecast unless training's best epoch beats it clearly on validation.

        The start (base forecast plus the highway's closed-form fit) needs no training; an epoch
        chosen on a few validation windows can beat it there by chance and forecast worse after
        them. So training's best replaces it only when its gain per validation window is above one
        standard error of that gain (the one-standard-error rule: the simpler model, unless the
        other is clearly better). With one validation window, or none, no gain is clear."""
        r = self.result
        if r.best_epoch == 0 and r.history and math.isfinite(r.best_val):  # no epoch beat the start at all
            val = [h["val_loss"] for h in r.history]
            k = int(np.nanargmin(val)) if not np.isnan(val).all() else 0
            start = "starting forecast" if self.start is not None else "starting weights"
            r.kept_start = (
                f"kept the {start}: no epoch beat it on validation ({r.best_val:.4g} against "
                f"{val[k]:.4g} at epoch {k + 1}, the best of {len(val)})"
            )
            return
        if self.start is None or r.best_epoch == 0 or not r.best_state:
            return
        start_state, start_losses = self.start
        self.model.load_state_dict(r.best_state)
        clear, gain, se, n = clear_gain(start_losses - self.validation_losses(), self.sharded)
        if clear:
            return
        why = (
            f"by {gain:.3g} on the one validation window, too few to tell a gain from chance"
            if n < 2
            else f"on validation by {gain:.3g} a window, within one standard error ({se:.3g}, {n} windows)"
        )
        r.kept_start = f"kept the starting forecast: training's best epoch ({r.best_epoch}) beat it {why}"
        r.best_state, r.best_epoch, r.best_val = start_state, 0, self.validation_loss(start_losses)


def fit(
    model: Forecaster,
    windows: Windows,
    train_starts: torch.Tensor,
    val_starts: torch.Tensor,
    cfg: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    quiet: bool = False,
    sharded: bool = False,
) -> FitResult:
    """Train `model` in place; return the history and the best-by-validation weights.

    on_epoch receives a resumable state after every epoch; `resume` is such a state.
    """
    trainer = Trainer(model, windows, train_starts, val_starts, cfg, quiet=quiet or world()[0] > 0, sharded=sharded)
    result = trainer.result
    first_epoch = trainer.restore(resume)
    bar = tqdm(
        range(first_epoch, cfg.epochs + 1),
        desc="training",
        unit="epoch",
        disable=trainer.quiet,
        initial=first_epoch - 1,
        total=cfg.epochs,
        dynamic_ncols=True,
    )
    try:
        for epoch in bar:
            stop = trainer.epoch(epoch)
            if stop is not None:
                result.status = stop
                break
            last = result.history[-1]
            bar.set_postfix(train=f"{last['train_loss']:.4f}", val=f"{last['val_loss']:.4f}", best=result.best_epoch)
            if on_epoch is not None and trainer.rank == 0:
                on_epoch(trainer.snapshot(epoch))
            if cfg.patience and result.stale >= cfg.patience:
                result.status = Status.EARLY_STOPPED
                break
    except KeyboardInterrupt:
        result.status = Status.INTERRUPTED
    finally:
        bar.close()
    if not result.best_state:
        result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.settle()
    return result
