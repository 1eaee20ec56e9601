"""Speed and memory of forecast's training and inference paths, against the classic GRU tutorial.

Run on purpose, never as a test:

    .venv/bin/python bench/speed.py [--quick] [--threads N] [--out bench/results/speed.json]

One JSON object goes to stdout (and to --out); progress goes to stderr. Every figure is the median of
several repeats, and every ratio compares paths measured in the same run, on the same data, model
and batch size, interleaved so that a busy machine slows all of them alike.

Sections (pick some with --only):
  throughput  windows/s on CPU: the tutorial loop (Python-loop windows, DataLoader(TensorDataset),
              nn.GRU + flatten + Linear, MSE + Adam), forecast's own loop (forecast.train.fit, which
              gathers batches by index from one series tensor) and the model's ceiling (forward,
              backward and Adam step on one batch already in memory), at batch 32 and at forecast's
              default batch size.
  accuracy    test MSE (scaled units) of the tutorial loop and of forecast's loop after the same
              number of epochs on ETTh1 OT (70/10/20 split, scaler fitted on the training rows).
  memory      peak RSS, each case in a fresh subprocess: training a few hundred steps on a long
              synthetic series, and a streaming backtest (forecast predict --backtest --split all).
  latency     wall time of `forecast --help` and of `forecast predict RUN_DIR` on ETTh1.
  gpu         when CUDA is available: throughput at batch 1024 and 4096, fp32 and bf16 autocast,
              as a fraction of the ceiling, and the tutorial loop at 1024.

The throughput section also runs informational probes (--no-extras skips them): the ceiling with a fused
Adam step, forecast with model.segment=12, the ceiling across batch sizes, and under OMP_WAIT_POLICY=PASSIVE.
Figures, machines and commands of recorded runs are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import forecast  # noqa: E402
from forecast import pipeline  # noqa: E402
from forecast.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from forecast.data import split_borders  # noqa: E402
from forecast.model import build_model, count_parameters  # noqa: E402
from forecast.train import autocast, fit, seed_everything  # noqa: E402
from forecast.windows import Windows, window_starts  # noqa: E402

SECTIONS = ("throughput", "accuracy", "memory", "latency", "gpu")
# the tutorial's settings: lookback, horizon, hidden size, layers, batch size
TUTORIAL = {"lookback": 96, "horizon": 96, "hidden_size": 64, "num_layers": 2, "batch_size": 32}
GB = 10**9


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def rnd(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


def summary(runs: list[float], **extra: Any) -> dict[str, Any]:
    return {"windows_per_s": rnd(median(runs)), "runs": [rnd(r) for r in runs], **extra}


def ratio(a: float, b: float) -> float:
    return rnd(a / b) if b else math.nan


def finite(obj: Any) -> Any:
    """The result with NaN and infinities as null, so that the JSON is strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------- memory probes


def _status_field(name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process: VmHWM, else getrusage's ru_maxrss."""
    hwm = _status_field("VmHWM")
    if hwm is not None:
        return hwm
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def rss_bytes() -> int:
    return _status_field("VmRSS") or peak_rss_bytes()


# ---------------------------------------------------------------- data


def synthetic_series(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1) float32: daily and weekly sines plus noise, built in chunks (no n-sized float64 temporaries)."""
    out = torch.empty(n, 1)
    gen = torch.Generator().manual_seed(seed)
    chunk = 1 << 20
    for a in range(0, n, chunk):
        t = torch.arange(a, min(n, a + chunk), dtype=torch.float64)
        noise = torch.randn(len(t), generator=gen, dtype=torch.float64)
        out[a : a + len(t), 0] = (
            torch.sin(2 * math.pi * t / 24) + 0.5 * torch.sin(2 * math.pi * t / 168) + 0.1 * noise
        ).float()
    return out


class Ett:
    """ETTh1 OT loaded and scaled by the library (70/10/20, MinMaxScaler on the training rows)."""

    def __init__(self, path: str):
        cfg = Config(data=DataConfig(path=path, target=["OT"]))
        panel = pipeline.data.load_panel(cfg.data)
        self.prep = pipeline.prepare(cfg, panel)
        self.scaled = self.prep.scaled  # (N, 1) float32
        self.n_rows = len(self.scaled)
        self.n_train_rows = int(self.prep.borders[0, 0])
        self.path = path

    def starts(self, part: str, lookback: int, horizon: int) -> torch.Tensor:
        return torch.from_numpy(self.prep.starts(part, lookback, horizon))

    def tutorial_scaled(self) -> np.ndarray:
        """The tutorial's own scaling: pandas + MinMaxScaler fitted on the first 70% of rows."""
        import pandas as pd
        from sklearn.preprocessing import MinMaxScaler

        ot = pd.read_csv(self.path)["OT"].to_numpy().reshape(-1, 1)
        scaler = MinMaxScaler().fit(ot[: self.n_train_rows])
        return scaler.transform(ot).astype(np.float32)[:, 0]


# ---------------------------------------------------------------- the tutorial


class TutorialGRU(nn.Module):
    """The classic tutorial model: nn.GRU(batch_first=True) -> flatten -> nn.Linear(hidden*lookback, horizon)."""

    def __init__(self, hidden_size: int, num_layers: int, lookback: int, horizon: int):
        super().__init__()
        self.gru = nn.GRU(1, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size * lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)  # (B, L, D)
        return self.fc(out.flatten(1))  # (B, H)


def tutorial_windows(series: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's windows: a Python loop over every start, stacked into (N, L, 1) and (N, H)."""
    xs, ys = [], []
    for i in range(len(series) - lookback - horizon + 1):
        xs.append(series[i : i + lookback])
        ys.append(series[i + lookback : i + lookback + horizon])
    return np.array(xs, dtype=np.float32)[:, :, None], np.array(ys, dtype=np.float32)


def tutorial_loader(x: np.ndarray, y: np.ndarray, batch: int, seed: int = 0) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch, shuffle=True, generator=gen
    )


def tutorial_pass(
    model: nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, n_batches: int | None, device: torch.device
) -> tuple[int, float, float]:
    """The tutorial's training loop over n_batches batches (None = one epoch); (windows, seconds, mean loss)."""
    loss_fn = nn.MSELoss()
    model.train()
    sync(device)
    t0 = time.perf_counter()
    seen, running = 0, 0.0
    batches = loader if n_batches is None else (b for _, b in zip(range(n_batches), loader, strict=False))
    for xb, yb in batches:
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item() * len(xb)  # the tutorial's running loss
        seen += len(xb)
    sync(device)
    return seen, time.perf_counter() - t0, running / max(seen, 1)


def tutorial_rate(
    model: nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, n_batches: int, device: torch.device
) -> float:
    seen, sec, _ = tutorial_pass(model, opt, loader, n_batches, device)
    return seen / sec


# ---------------------------------------------------------------- forecast's path and the ceiling


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


def tutorial_model_config(norm: str = "none") -> ModelConfig:
    """The tutorial's model in forecast's config, every field that changes the arithmetic pinned."""
    t = TUTORIAL
    return ModelConfig(
        lookback=t["lookback"],
        horizon=t["horizon"],
        hidden_size=t["hidden_size"],
        num_layers=t["num_layers"],
        dropout=0.0,
        cell="gru",
        norm=norm,
        segment=1,
        channels="joint",
    )


# ---------------------------------------------------------------- 1-3: CPU throughput


def section_throughput(args: argparse.Namespace, ett: Ett) -> dict[str, Any]:
    device = torch.device("cpu")
    L, H, D, NL = (TUTORIAL[k] for k in ("lookback", "horizon", "hidden_size", "num_layers"))
    mcfg = tutorial_model_config("none")
    default_batch = TrainConfig().batch_size
    batch_sizes = sorted({TUTORIAL["batch_size"], default_batch})

    t0 = time.perf_counter()
    x_np, y_np = tutorial_windows(ett.tutorial_scaled()[: ett.n_train_rows], L, H)
    build_s = time.perf_counter() - t0
    windows = Windows(torch.from_numpy(ett.scaled), 1, L, H)
    starts = ett.starts("train", L, H)
    if len(starts) != len(x_np):
        raise RuntimeError(f"window counts differ: library {len(starts)}, tutorial {len(x_np)}")
    lib_x = windows.inputs(starts[:64])
    same_inputs = bool(torch.equal(lib_x, torch.from_numpy(x_np[:64])))
    scaled_diff = float(np.abs(ett.tutorial_scaled() - ett.scaled[:, 0]).max())

    # same seed -> same initial weights; same weights -> same outputs (norm="none": identical arithmetic)
    torch.manual_seed(0)
    tut = TutorialGRU(D, NL, L, H)
    lib = library_model(mcfg, device)
    same_init = all(
        torch.equal(a, b) for a, b in zip(tut.state_dict().values(), lib.state_dict().values(), strict=True)
    )
    with torch.no_grad():
        out_diff = float((tut(lib_x) - lib(lib_x)[..., 0]).abs().max())

    if not (same_init and out_diff < 1e-5):
        log(f"WARNING: forecast's model does not compute what the tutorial's does (max diff {out_diff:.3g})")
    log(
        f"throughput: {len(starts)} training windows of ETTh1 OT, L={L} H={H} hidden={D}x{NL}, "
        f"batch sizes {batch_sizes}, {args.repeats} repeats of ~{args.windows_per_run} windows"
    )
    paths: dict[str, Callable[[], float]] = {}
    for b in batch_sizes:
        n_batches = max(args.min_batches, args.windows_per_run // b)
        torch.manual_seed(0)
        tm = TutorialGRU(D, NL, L, H)
        t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        loader = tutorial_loader(x_np, y_np, b)
        if n_batches > len(x_np) // b:
            raise ValueError(f"--windows-per-run too large for batch {b}")

        cm = library_model(mcfg, device)
        c_opt = torch.optim.Adam(cm.parameters(), lr=1e-3)
        pick = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))[:b]]
        cx, cy = windows.inputs(pick), windows.targets(pick)
        fm = library_model(mcfg, device)
        paths[f"tutorial_b{b}"] = partial(tutorial_rate, tm, t_opt, loader, n_batches, device)
        paths[f"forecast_b{b}"] = partial(forecast_pass, fm, windows, starts, b, n_batches)
        paths[f"ceiling_b{b}"] = partial(ceiling_pass, cm, c_opt, cx, cy, n_batches)
        # warm-up: a few batches of each path (allocator, thread pool, lazy Adam state)
        tutorial_pass(tm, t_opt, loader, 3, device)
        forecast_pass(fm, windows, starts, b, 3)
        ceiling_pass(cm, c_opt, cx, cy, 3)
        if args.extras:  # what a fused (one-kernel) Adam step would give the ceiling
            fused = library_model(mcfg, device)
            f_opt = torch.optim.Adam(fused.parameters(), lr=1e-3, fused=True)
            ceiling_pass(fused, f_opt, cx, cy, 3)
            paths[f"ceiling_fused_adam_b{b}"] = partial(ceiling_pass, fused, f_opt, cx, cy, n_batches)
            if b == default_batch:  # forecast's SegRNN-style option: lookback/12 GRU steps (other arithmetic)
                seg = library_model(dataclasses.replace(mcfg, segment=12), device)
                forecast_pass(seg, windows, starts, b, 3)
                paths[f"forecast_segment12_b{b}"] = partial(forecast_pass, seg, windows, starts, b, n_batches)

    runs: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for r in range(args.repeats):
        # interleaved, so that contention hits every path alike; rotated, so that no path is always first
        k = (r * 3) % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(paths[name]())
        log(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in runs.items()))

    med = {k: median(v) for k, v in runs.items()}
    probes = ceiling_probes(args, batch_sizes) if args.extras else None
    tut32 = med[f"tutorial_b{TUTORIAL['batch_size']}"]
    result: dict[str, Any] = {
        "data": f"{Path(ett.path).name} OT, training windows of the 70% training rows",
        "train_windows": len(starts),
        "model": {
            "lookback": L,
            "horizon": H,
            "hidden_size": D,
            "num_layers": NL,
            "cell": "gru",
            "norm": "none",
            "parameters": count_parameters(lib),
        },
        "model_config": dataclasses.asdict(mcfg),
        "forecast_default_batch_size": default_batch,
        "forecast_train_config": "TrainConfig defaults (AdamW wd=0 == Adam, grad_clip=1.0) with the batch size "
        "shown; batches drawn by steps_per_epoch",
        "windows_per_run": {f"b{b}": max(args.min_batches, args.windows_per_run // b) * b for b in batch_sizes},
        "repeats": args.repeats,
        "checks": {
            "tutorial_window_build_s": rnd(build_s),
            "tutorial_materialized_bytes": int(x_np.nbytes + y_np.nbytes),
            "max_abs_diff_scaled_values_tutorial_vs_library": scaled_diff,
            "same_first_windows": same_inputs,
            "same_initial_weights": same_init,
            "max_abs_diff_outputs_same_weights": out_diff,
            "same_arithmetic": same_init and out_diff < 1e-5,
        },
        "paths": {k: summary(v) for k, v in runs.items()},
        "path_notes": {
            "tutorial_bB": "Python-loop windows, DataLoader(TensorDataset, shuffle=True), Adam, loss.item() per batch",
            "forecast_bB": "forecast.train.fit: gather by index from one series tensor, AdamW, grad clipping",
            "ceiling_bB": "forward + backward + Adam step on one batch already in memory",
            "ceiling_fused_adam_bB": "the same with torch.optim.Adam(fused=True)",
            "forecast_segment12_bB": "fit, model.segment=12 (8 GRU steps of 12 rows): not the tutorial's arithmetic",
        },
        "ratio_vs_tutorial_b32": {k: ratio(v, tut32) for k, v in med.items()},
        "fraction_of_ceiling": {
            k: ratio(med[k], med[f"ceiling_b{k.rsplit('_b', 1)[1]}"])
            for k in med
            if not k.startswith("ceiling_b") and "segment" not in k
        },
        "paired_ratio_forecast_vs_tutorial_same_batch": {
            f"b{b}": rnd(median([f / t for f, t in zip(runs[f"forecast_b{b}"], runs[f"tutorial_b{b}"], strict=True)]))
            for b in batch_sizes
        },
    }
    if probes:
        result["ceiling_probes"] = probes
    return result


def ceiling_probes(args: argparse.Namespace, batch_sizes: list[int]) -> dict[str, Any]:
    """The ceiling in fresh processes: across batch sizes, and under both OpenMP wait policies.

    Batch size is the one lever on CPU, where every path runs at the model's ceiling. And on a machine whose
    cores are busy with other work, OpenMP threads that spin while they wait (the default) can slow a step
    many-fold; OMP_WAIT_POLICY=PASSIVE makes them sleep instead.
    """
    scan = [32, 128, 512] if args.quick else [32, 64, 128, 256, 512, 1024]
    params = {
        "repeats": max(2, args.repeats // 2),
        "min_batches": args.min_batches,
        "windows_per_run": args.windows_per_run,
    }
    inherited = os.environ.get("OMP_WAIT_POLICY")
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    log(f"  ceiling by batch size {scan}, fresh process, OMP_WAIT_POLICY={inherited}")
    by_batch = run_child("ceiling", {**params, "batch_sizes": scan}, args.threads)
    policies: dict[str, dict[str, float]] = {}
    for policy in ("default", "PASSIVE"):
        if (policy == "default" and inherited is None) or policy == inherited:
            policies[policy] = {f"ceiling_b{b}": by_batch[f"ceiling_b{b}"] for b in batch_sizes}
            continue
        log(f"  ceiling with OMP_WAIT_POLICY={policy}")
        env = clean if policy == "default" else {**clean, "OMP_WAIT_POLICY": policy}
        small = {"repeats": 1, "min_batches": 4, "windows_per_run": 128, "batch_sizes": [32]}  # it can crawl
        policies[policy] = run_child("ceiling", small, args.threads, env=env)
    base = by_batch["ceiling_b32"]
    return {
        "note": f"windows/s of the ceiling in fresh processes; load average {load} before",
        "inherited_OMP_WAIT_POLICY": inherited,
        "ceiling_by_batch_size": {k: rnd(v) for k, v in by_batch.items()},
        "ceiling_vs_ceiling_b32": {k: ratio(v, base) for k, v in by_batch.items()},
        "omp_wait_policy": {p: {k: rnd(v) for k, v in res.items()} for p, res in policies.items()},
        "omp_passive_vs_default": {
            k: ratio(v, policies["default"][k]) for k, v in policies["PASSIVE"].items() if k in policies["default"]
        },
    }


# ---------------------------------------------------------------- accuracy at equal epochs


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


def section_accuracy(args: argparse.Namespace, ett: Ett) -> dict[str, Any]:
    device = torch.device("cpu")
    L, H, D, NL, B = (TUTORIAL[k] for k in ("lookback", "horizon", "hidden_size", "num_layers", "batch_size"))
    epochs, seed = args.accuracy_epochs, 0
    windows = Windows(torch.from_numpy(ett.scaled), 1, L, H)
    train, val, test = (ett.starts(p, L, H) for p in ("train", "val", "test"))
    x_np, y_np = tutorial_windows(ett.tutorial_scaled()[: ett.n_train_rows], L, H)
    if args.accuracy_windows:  # --quick: the first N training windows, the same for both loops
        train, x_np, y_np = train[: args.accuracy_windows], x_np[: args.accuracy_windows], y_np[: args.accuracy_windows]
    log(f"accuracy: {epochs} epoch(s) of {len(train)} windows, batch {B}; test on {len(test)} windows")

    torch.manual_seed(seed)
    tut = TutorialGRU(D, NL, L, H)
    opt = torch.optim.Adam(tut.parameters(), lr=1e-3)
    loader = tutorial_loader(x_np, y_np, B, seed)
    tut_epochs = []
    for e in range(epochs):
        seen, sec, loss = tutorial_pass(tut, opt, loader, None, device)
        tut_epochs.append({"seconds": rnd(sec), "train_loss": rnd(loss), "windows_per_s": rnd(seen / sec)})
        log(f"  tutorial epoch {e + 1}: {sec:.1f} s, train loss {loss:.4f}")
    tut.eval()
    result: dict[str, Any] = {
        "data": f"{Path(ett.path).name} OT, split 70/10/20, MinMaxScaler fitted on the training rows",
        "epochs": epochs,
        "batch_size": B,
        "train_windows": len(train),
        "test_windows": len(test),
        "test_windows_rule": "every stride-1 window whose targets lie in the test split (forecast's rule)",
        "tutorial": {
            "test_mse": rnd(test_mse(tut, windows, test), 5),
            "epochs": tut_epochs,
            "optimizer": "Adam lr 1e-3, last epoch's weights",
        },
    }
    for norm in ("none", "last"):
        seed_everything(seed)
        model = build_model(1, 1, tutorial_model_config(norm))
        cfg = TrainConfig(epochs=epochs, batch_size=B, seed=seed, patience=0)
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
        result[f"forecast_norm_{norm}"] = {
            "test_mse": rnd(best, 5),
            "test_mse_last_epoch": rnd(last, 5),
            "best_epoch": res.best_epoch,
            "epochs": hist,
            "optimizer": "TrainConfig defaults: AdamW lr 1e-3 wd 0, grad_clip 1.0, cosine schedule, "
            "best-by-validation weights",
        }
    # norm="none" is the tutorial's arithmetic; norm="last" is forecast's default
    for norm in ("none", "last"):
        result[f"ratio_mse_forecast_norm_{norm}_vs_tutorial"] = ratio(
            result[f"forecast_norm_{norm}"]["test_mse"], result["tutorial"]["test_mse"]
        )
    return result


# ---------------------------------------------------------------- memory: children in fresh processes


def child_train_memory(p: dict[str, Any]) -> dict[str, Any]:
    """Train `train_steps` steps via forecast.train.fit on a synthetic series of `steps` rows."""
    rss_import = rss_bytes()
    n, L = p["steps"], p["lookback"]
    mcfg = ModelConfig(lookback=L)  # the library's defaults otherwise
    H = mcfg.horizon
    values = synthetic_series(n)
    offsets = np.array([0, n], dtype=np.int64)
    borders = split_borders(np.array([n]), DataConfig().split)
    train = torch.from_numpy(window_starts(offsets, borders, "train", L, H))
    val = torch.from_numpy(window_starts(offsets, borders, "val", L, H))
    cfg = TrainConfig(epochs=1, steps_per_epoch=p["train_steps"], patience=0)
    val = val[: cfg.batch_size * 8]  # a validation pass over ~1M windows would only add time
    windows = Windows(values, 1, L, H)
    seed_everything(0)
    model = build_model(1, 1, mcfg)
    rss_data = rss_bytes()
    res = fit(model, windows, train, val, cfg, quiet=True)
    all_windows = n - L - H + 1
    return {
        "series_steps": n,
        "model_config": dataclasses.asdict(mcfg),
        "batch_size": cfg.batch_size,
        "train_steps": p["train_steps"],
        "train_windows": len(train),
        "validation_windows_used": len(val),
        "seconds_per_step": rnd(res.history[0]["seconds"] / p["train_steps"]),
        "train_loss": rnd(res.history[0]["train_loss"]),
        "rss_after_imports_bytes": rss_import,
        "rss_with_data_and_model_bytes": rss_data,
        "series_tensor_bytes": values.numel() * 4,
        "train_starts_bytes": train.numel() * 8,
        "peak_rss_bytes": peak_rss_bytes(),
        "materialized_windows_bytes": all_windows * L * 4,
        "materialized_windows_rule": "N windows * lookback * 4 bytes (float32 inputs only, one column)",
    }


def child_backtest_memory(p: dict[str, Any]) -> dict[str, Any]:
    """forecast predict RUN --data CSV --backtest --split all, in-process (the CLI's own calls)."""
    rss_import = rss_bytes()
    run = pipeline.load_run(p["run_dir"])
    if p.get("csv") is None:
        return {"rss_after_imports_bytes": rss_import, "peak_rss_bytes": peak_rss_bytes()}
    t0 = time.perf_counter()
    path, rows = pipeline.predict(run, p["csv"], p["out"], backtest=True, split="all", log=lambda _: None)
    sec = time.perf_counter() - t0
    L, H = run.cfg.model.lookback, run.cfg.model.horizon
    windows = p["series_steps"] - L - H + 1
    return {
        "series_steps": p["series_steps"],
        "lookback": L,
        "horizon": H,
        "windows": windows,
        "rows_written": rows,
        "csv_bytes": Path(path).stat().st_size,
        "seconds": rnd(sec),
        "rss_after_imports_bytes": rss_import,
        "peak_rss_bytes": peak_rss_bytes(),
        "materialized_windows_bytes": windows * L * 4,
        "chunk_windows": pipeline.CHUNK_WINDOWS,
    }


def child_ceiling(p: dict[str, Any]) -> dict[str, Any]:
    """The ceiling (tutorial settings) at each batch size, in this process's threading environment."""
    rows = 20_000
    windows = Windows(synthetic_series(rows), 1, TUTORIAL["lookback"], TUTORIAL["horizon"])
    gen = torch.Generator().manual_seed(0)
    out = {}
    for b in p["batch_sizes"]:
        model = library_model(tutorial_model_config("none"), torch.device("cpu"))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        starts = torch.randint(rows - TUTORIAL["lookback"] - TUTORIAL["horizon"] + 1, (b,), generator=gen)
        x, y = windows.inputs(starts), windows.targets(starts)
        ceiling_pass(model, opt, x, y, 3)
        n = max(p["min_batches"], p["windows_per_run"] // b)
        out[f"ceiling_b{b}"] = median([ceiling_pass(model, opt, x, y, n) for _ in range(p["repeats"])])
    return out


CHILDREN = {
    "train_memory": child_train_memory,
    "backtest_memory": child_backtest_memory,
    "ceiling": child_ceiling,
}


def run_child(
    name: str, params: dict[str, Any], threads: int, timeout: float = 900, env: dict[str, str] | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--child-params",
        json.dumps(params),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_series_csv(path: Path, n: int) -> None:
    import pandas as pd

    values = synthetic_series(n).numpy()[:, 0] * 5 + 20  # an oil temperature's scale
    times = pd.date_range("2000-01-01", periods=n, freq="h")
    pd.DataFrame({"date": times, "OT": values}).to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")


def section_memory(args: argparse.Namespace, run_dir: Path, tmp: Path) -> dict[str, Any]:
    log(f"memory (i): training {args.long_train_steps} steps on a {args.long_steps:,}-step series, lookback 512")
    train = run_child(
        "train_memory", {"steps": args.long_steps, "lookback": 512, "train_steps": args.long_train_steps}, args.threads
    )
    log(
        f"  peak RSS {train['peak_rss_bytes'] / GB:.2f} GB; materialized windows would need "
        f"{train['materialized_windows_bytes'] / GB:.1f} GB"
    )
    out: dict[str, Any] = {"train_long_series": train}

    base = run_child("backtest_memory", {"run_dir": str(run_dir), "csv": None}, args.threads)
    cases = []
    for n in (args.backtest_steps // 4, args.backtest_steps):
        csv, pred = tmp / f"series-{n}.csv", tmp / f"predictions-{n}.csv"
        write_series_csv(csv, n)
        log(f"memory (ii): backtest over a {n:,}-step series")
        case = run_child(
            "backtest_memory",
            {"run_dir": str(run_dir), "csv": str(csv), "out": str(pred), "series_steps": n},
            args.threads,
        )
        log(
            f"  {case['rows_written']:,} rows, {case['csv_bytes'] / GB:.2f} GB of CSV in {case['seconds']} s, "
            f"peak RSS {case['peak_rss_bytes'] / GB:.3f} GB"
        )
        cases.append(case)
        csv.unlink()
        pred.unlink()
    small, large = cases
    growth = large["peak_rss_bytes"] - small["peak_rss_bytes"]
    extra_rows = large["series_steps"] - small["series_steps"]
    out["backtest"] = {
        "command": "forecast predict RUN_DIR --data SERIES.csv --backtest --split all (pipeline.predict in-process)",
        "run": "configs/default.yaml model (lookback 96, horizon 24, hidden 32) trained briefly on ETTh1 OT",
        "baseline_peak_rss_bytes": base["peak_rss_bytes"],
        "cases": cases,
        "peak_rss_growth_bytes": growth,
        "peak_rss_growth_per_series_row_bytes": rnd(growth / extra_rows),
        "materialized_windows_growth_bytes": large["materialized_windows_bytes"] - small["materialized_windows_bytes"],
        "output_csv_growth_bytes": large["csv_bytes"] - small["csv_bytes"],
    }
    return out


# ---------------------------------------------------------------- latency


def forecast_command() -> list[str]:
    script = Path(sys.executable).parent / "forecast"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "forecast"]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    sec = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return sec


def train_tiny_run(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    cmd = forecast_command() + [
        "train",
        str(ROOT / "configs" / "default.yaml"),
        "--data",
        args.data,
        "--epochs",
        "1",
        "--set",
        "train.steps_per_epoch=5",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(run_dir),
        "--force",
    ]
    log(f"training a tiny run: {' '.join(cmd)}")
    return {"command": "forecast " + " ".join(cmd[len(forecast_command()) :]), "seconds": rnd(timed(cmd))}


def section_latency(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    exe = forecast_command()
    help_cmd, predict_cmd = exe + ["--help"], exe + ["predict", str(run_dir)]
    help_first = timed(help_cmd)  # may include writing .pyc files
    helps = [timed(help_cmd) for _ in range(args.help_repeats)]
    log(f"latency: forecast --help {median(helps):.3f} s (first call {help_first:.3f} s)")
    predict_first = timed(predict_cmd)
    predicts = [timed(predict_cmd) for _ in range(args.predict_repeats)]
    log(f"latency: forecast predict {median(predicts):.3f} s (first call {predict_first:.3f} s)")
    return {
        "executable": exe[0],
        "help": {"median_s": rnd(median(helps)), "runs_s": [rnd(x) for x in helps], "first_call_s": rnd(help_first)},
        "predict": {
            "command": "forecast predict RUN_DIR",
            "data": Path(args.data).name,
            "median_s": rnd(median(predicts)),
            "runs_s": [rnd(x) for x in predicts],
            "first_call_s": rnd(predict_first),
        },
    }


# ---------------------------------------------------------------- GPU


def section_gpu(args: argparse.Namespace) -> dict[str, Any]:
    if not torch.cuda.is_available() and not args.gpu_on_cpu:
        log("gpu: no CUDA GPU available; skipped")
        return {"available": False, "note": "no CUDA GPU was available; GPU throughput was not measured"}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    L, H = TUTORIAL["lookback"], TUTORIAL["horizon"]
    mcfg = tutorial_model_config("none")
    n = args.gpu_steps
    values = synthetic_series(n)
    windows = Windows(values.to(device), 1, L, H)
    offsets, borders = np.array([0, n], dtype=np.int64), split_borders(np.array([n]), DataConfig().split)
    starts = torch.from_numpy(window_starts(offsets, borders, "train", L, H)).to(device)
    out: dict[str, Any] = {
        "available": True,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke test)",
        "series_steps": n,
        "train_windows": len(starts),
        "batches_per_run": args.gpu_batches,
        "model": "tutorial settings (lookback 96, horizon 96, hidden 64 x 2 layers, norm none)",
        "cases": {},
    }
    log(f"gpu: {out['device_name']}, {n:,}-step series")
    for b in (1024, 4096):
        for precision in ("fp32", "bf16"):
            key = f"b{b}_{precision}"
            try:
                fm = library_model(mcfg, device)
                cm = library_model(mcfg, device)
                c_opt = torch.optim.Adam(cm.parameters(), lr=1e-3)
                pick = starts[torch.randperm(len(starts), device=device)[:b]]
                cx, cy = windows.inputs(pick), windows.targets(pick)
                forecast_pass(fm, windows, starts, b, 5, precision)
                ceiling_pass(cm, c_opt, cx, cy, 5, precision)
                f_runs, c_runs = [], []
                for _ in range(args.repeats):
                    f_runs.append(forecast_pass(fm, windows, starts, b, args.gpu_batches, precision))
                    c_runs.append(ceiling_pass(cm, c_opt, cx, cy, args.gpu_batches, precision))
                out["cases"][key] = {
                    "forecast": summary(f_runs),
                    "ceiling": summary(c_runs),
                    "fraction_of_ceiling": ratio(median(f_runs), median(c_runs)),
                }
                log(f"  {key}: forecast {median(f_runs):.0f}/s, ceiling {median(c_runs):.0f}/s")
            except Exception as e:  # e.g. an op without a bf16 kernel: report it, go on
                out["cases"][key] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                log(f"  {key}: failed: {out['cases'][key]['error']}")
    try:
        b = 1024
        t0 = time.perf_counter()
        x_np, y_np = tutorial_windows(values.numpy()[: int(borders[0, 0]), 0], L, H)
        build_s = time.perf_counter() - t0
        torch.manual_seed(0)
        tm = TutorialGRU(TUTORIAL["hidden_size"], TUTORIAL["num_layers"], L, H).to(device)
        t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        loader = tutorial_loader(x_np, y_np, b)
        tutorial_pass(tm, t_opt, loader, 5, device)
        t_runs = []
        for _ in range(args.repeats):
            seen, sec, _ = tutorial_pass(tm, t_opt, loader, args.gpu_batches, device)
            t_runs.append(seen / sec)
        ceiling = out["cases"].get("b1024_fp32", {}).get("ceiling", {}).get("windows_per_s", math.nan)
        forecast_b = out["cases"].get("b1024_fp32", {}).get("forecast", {}).get("windows_per_s", math.nan)
        out["tutorial_b1024_fp32"] = {
            **summary(t_runs),
            "window_build_s": rnd(build_s),
            "fraction_of_ceiling": ratio(median(t_runs), ceiling),
            "forecast_speedup": ratio(forecast_b, median(t_runs)),
        }
        log(f"  tutorial b1024: {median(t_runs):.0f}/s")
    except Exception as e:
        out["tutorial_b1024_fp32"] = {"error": f"{type(e).__name__}: {e}"}
    return out


# ---------------------------------------------------------------- main


def environment(args: argparse.Namespace) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cuda = torch.cuda.is_available()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "forecast"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        git = {"commit": commit or None, "forecast_package_modified": bool(dirty)}
    except OSError:
        git = {"commit": None, "forecast_package_modified": None}
    return {
        "git": git,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "cuda_available": cuda,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "forecast": forecast.__version__,
        "platform": platform.platform(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": mem,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def targets_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    t: dict[str, dict[str, Any]] = {}

    def add(name: str, target: str, value: float, ok: bool) -> None:
        t[name] = {"target": target, "value": value, "pass": bool(ok)}

    tp = result.get("throughput")
    if tp:
        default_b = tp["forecast_default_batch_size"]
        r32 = tp["ratio_vs_tutorial_b32"]["forecast_b32"]
        rdef = tp["ratio_vs_tutorial_b32"][f"forecast_b{default_b}"]
        add("cpu_forecast_b32_vs_tutorial_b32", ">= 1.0", r32, r32 >= 1.0)
        add(f"cpu_forecast_default_batch_b{default_b}_vs_tutorial_b32", ">= 2.5", rdef, rdef >= 2.5)
    acc = result.get("accuracy")
    if acc:
        r = acc["ratio_mse_forecast_norm_none_vs_tutorial"]
        add(
            "accuracy_equal_epochs_mse_ratio",
            "<= 1.10 (forecast's loop, norm none, test MSE within 10% of the tutorial's, or better)",
            r,
            r <= 1.10,
        )
    mem = result.get("memory")
    if mem:
        peak = mem["train_long_series"]["peak_rss_bytes"]
        add("train_long_series_peak_rss_bytes", f"< 2 GB ({2 * GB} bytes)", peak, peak < 2 * GB)
        bt = mem["backtest"]
        add(
            "backtest_peak_rss_growth_bytes",
            "< the growth of materialized windows (memory bounded: O(T) data, not O(T x lookback) windows)",
            bt["peak_rss_growth_bytes"],
            bt["peak_rss_growth_bytes"] < bt["materialized_windows_growth_bytes"],
        )
    lat = result.get("latency")
    if lat:
        h, p = lat["help"]["median_s"], lat["predict"]["median_s"]
        add("help_latency_s", "< 0.5", h, h < 0.5)
        add("predict_latency_s", "< 3.0 (CPU)", p, p < 3.0)
    return t


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shrink everything for a smoke run")
    ap.add_argument("--out", help="also write the JSON to this file")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the usable CPU cores)")
    ap.add_argument("--data", default=str(ROOT / "data" / "ETTh1.csv"), help="ETTh1.csv")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 5, quick 2)")
    ap.add_argument("--windows-per-run", type=int, default=None, help="windows per throughput run (default 2048)")
    ap.add_argument("--min-batches", type=int, default=None, help="batches per throughput run at least (default 8)")
    ap.add_argument("--accuracy-epochs", type=int, default=None, help="epochs of the accuracy runs (default 2)")
    ap.add_argument("--accuracy-windows", type=int, default=None, help="use only the first N training windows")
    ap.add_argument("--long-steps", type=int, default=None, help="series length of the training memory case (10M)")
    ap.add_argument("--long-train-steps", type=int, default=None, help="training steps of that case (default 200)")
    ap.add_argument("--backtest-steps", type=int, default=None, help="series length of the backtest case (200k)")
    ap.add_argument("--help-repeats", type=int, default=5)
    ap.add_argument("--predict-repeats", type=int, default=3)
    ap.add_argument("--gpu-steps", type=int, default=None, help="series length of the GPU section (default 1.2M)")
    ap.add_argument("--gpu-batches", type=int, default=None, help="batches per GPU throughput run (default 50)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (run directory, CSVs)")
    ap.add_argument(
        "--no-extras",
        dest="extras",
        action="store_false",
        help="skip the informational probes (fused Adam, ceiling by batch size, OMP_WAIT_POLICY)",
    )
    ap.add_argument("--gpu-on-cpu", action="store_true", help=argparse.SUPPRESS)  # smoke-test the GPU code on CPU
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--child-params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    defaults = {
        "repeats": 2 if q else 5,
        "windows_per_run": 256 if q else 2048,
        "min_batches": 4 if q else 8,
        "accuracy_epochs": 1 if q else 2,
        "accuracy_windows": 1024 if q else 0,
        "long_steps": 300_000 if q else 10_000_000,
        "long_train_steps": 5 if q else 200,
        "backtest_steps": 20_000 if q else 200_000,
        "gpu_steps": 1_200_000,
        "gpu_batches": 10 if q else 50,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if q:
        args.help_repeats, args.predict_repeats = min(args.help_repeats, 2), min(args.predict_repeats, 2)
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.child_params))))
        return 0
    sections = args.only or list(SECTIONS)
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "forecast bench/speed.py",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "environment": environment(args),
        "settings": {k: v for k, v in vars(args).items() if k not in ("child", "child_params", "out", "only")},
        "sections": sections,
    }
    log(f"torch {torch.__version__}, {args.threads} thread(s), sections {', '.join(sections)}")
    tmp = Path(tempfile.mkdtemp(prefix="forecast-speed-"))
    try:
        ett = Ett(args.data) if {"throughput", "accuracy"} & set(sections) else None
        if "throughput" in sections and ett is not None:
            t0 = time.perf_counter()
            result["throughput"] = section_throughput(args, ett)
            result["throughput"]["section_seconds"] = rnd(time.perf_counter() - t0)
        if "accuracy" in sections and ett is not None:
            t0 = time.perf_counter()
            result["accuracy"] = section_accuracy(args, ett)
            result["accuracy"]["section_seconds"] = rnd(time.perf_counter() - t0)
        if {"memory", "latency"} & set(sections):
            run_dir = tmp / "run"
            result["tiny_run"] = train_tiny_run(args, run_dir)
            if "memory" in sections:
                t0 = time.perf_counter()
                result["memory"] = section_memory(args, run_dir, tmp)
                result["memory"]["section_seconds"] = rnd(time.perf_counter() - t0)
            if "latency" in sections:
                result["latency"] = section_latency(args, run_dir)
        if "gpu" in sections:
            result["gpu"] = section_gpu(args)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["targets"] = targets_of(result)
    result["all_pass"] = all(t["pass"] for t in result["targets"].values())
    result["elapsed_s"] = rnd(time.perf_counter() - t_start)
    text = json.dumps(finite(result), indent=2, allow_nan=False)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")
    for name, t in result["targets"].items():
        log(f"{'PASS' if t['pass'] else 'FAIL'} {name}: {t['value']} (target {t['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
