"""Training throughput on CPU: the tutorial's loop, forecast's loop and the model's ceiling, in windows/s.

    .venv/bin/python bench/throughput.py [--quick] [--threads N] [--no-extras] [--out FILE]

On ETTh1 OT with the tutorial's settings, at batch 32 and at forecast's default batch size:
  tutorial  Python-loop windows, DataLoader(TensorDataset), nn.GRU + flatten + Linear, MSE + Adam;
  forecast  forecast.train.fit, which gathers batches by index from one series tensor;
  ceiling   forward, backward and Adam step on one batch already in memory.
The paths take turns within each repeat, in a rotating order, so that a busy machine slows them all
alike. Informational probes (--no-extras skips them): the ceiling with a fused Adam step, forecast
with model.segment=12, and, each in a fresh process (`--case ceiling`), the ceiling across batch
sizes and under OMP_WAIT_POLICY=PASSIVE.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import common
import numpy as np
import runner
import torch
import tutorial
from common import MAX_BATCH, Ett, ModelConfig, Windows, count_parameters, log, median, ratio, rnd, summary
from passes import ceiling_pass, forecast_pass, library_model
from thresholds import SAME_OUTPUTS_MAX_ABS_DIFF

SIZES: runner.Sizes = {
    "--windows-per-run": (2048, 256, "windows per throughput run"),
    "--min-batches": (8, 4, "batches per throughput run at least"),
}
CPU = torch.device("cpu")
PATH_NOTES = {
    "tutorial_bB": "Python-loop windows, DataLoader(TensorDataset, shuffle=True), Adam, loss.item() per batch",
    "forecast_bB": "forecast.train.fit: gather by index from one series tensor, AdamW, grad clipping",
    "ceiling_bB": "forward + backward + Adam step on one batch already in memory",
    "ceiling_fused_adam_bB": "the same with torch.optim.Adam(fused=True)",
    "forecast_segment12_bB": "fit, model.segment=12 (8 GRU steps of 12 rows): not the tutorial's arithmetic",
    "forecast_shipped_dropout_bB": "fit, the tutorial's model with the shipped model.dropout (between the GRU's "
    "two layers, by nn.GRU, and before the head)",
}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--no-extras",
        dest="extras",
        action="store_false",
        help="skip the informational probes (fused Adam, ceiling by batch size, OMP_WAIT_POLICY)",
    )


class Training(NamedTuple):
    """The ETTh1 training windows twice: as forecast indexes them, and as the tutorial builds them."""

    windows: Windows
    starts: torch.Tensor
    x_np: np.ndarray
    y_np: np.ndarray


def measure(args: argparse.Namespace, ett: Ett) -> dict[str, Any]:
    """The throughput section of the report."""
    L, H, D, NL = (tutorial.SETTINGS[k] for k in ("lookback", "horizon", "hidden_size", "num_layers"))
    mcfg = tutorial.model_config("none")
    default_batch = MAX_BATCH  # the batch the defaults choose for data with thousands of windows, as here
    batch_sizes = sorted({tutorial.SETTINGS["batch_size"], default_batch})

    t0 = time.perf_counter()
    x_np, y_np = tutorial.windows(tutorial.scaled(ett)[: ett.n_train_rows], L, H)
    build_s = time.perf_counter() - t0
    data = Training(Windows(torch.from_numpy(ett.scaled), 1, L, H), ett.starts("train", L, H), x_np, y_np)
    if len(data.starts) != len(x_np):
        raise RuntimeError(f"window counts differ: library {len(data.starts)}, tutorial {len(x_np)}")
    checks, n_parameters = same_arithmetic(ett, data, mcfg)
    log(
        f"throughput: {len(data.starts)} training windows of ETTh1 OT, L={L} H={H} hidden={D}x{NL}, "
        f"batch sizes {batch_sizes}, {args.repeats} repeats of ~{args.windows_per_run} windows"
    )
    paths: dict[str, Callable[[], float]] = {}
    for b in batch_sizes:
        paths.update(warmed_up_paths(args, data, mcfg, b, segment=b == default_batch))
    runs = interleaved(paths, args.repeats)
    probes = ceiling_probes(args, batch_sizes) if args.extras else None
    result: dict[str, Any] = {
        "data": f"{Path(ett.path).name} OT, training windows of the 70% training rows",
        "train_windows": len(data.starts),
        **model_fields(mcfg, n_parameters),
        "forecast_default_batch_size": default_batch,
        "forecast_train_config": "TrainConfig defaults (AdamW wd=0 == Adam, grad_clip=1.0) with the batch size "
        "shown; batches drawn by steps_per_epoch",
        "windows_per_run": {f"b{b}": max(args.min_batches, args.windows_per_run // b) * b for b in batch_sizes},
        "repeats": args.repeats,
        "checks": {
            "tutorial_window_build_s": rnd(build_s),
            "tutorial_materialized_bytes": int(x_np.nbytes + y_np.nbytes),
            **checks,
        },
        **path_figures(runs, batch_sizes),
    }
    if probes:
        result["ceiling_probes"] = probes
    return result


def model_fields(mcfg: ModelConfig, n_parameters: int) -> dict[str, Any]:
    """The model measured: the tutorial's, and the config that builds it in forecast."""
    t = tutorial.SETTINGS
    model = {k: t[k] for k in ("lookback", "horizon", "hidden_size", "num_layers")}
    return {
        "model": {**model, "cell": "gru", "norm": "none", "parameters": n_parameters},
        "model_config": dataclasses.asdict(mcfg),
    }


def same_arithmetic(ett: Ett, data: Training, mcfg: ModelConfig) -> tuple[dict[str, Any], int]:
    """Whether both paths see the same windows and compute the same outputs; and the model's parameter count."""
    lib_x = data.windows.inputs(data.starts[:64])
    same_inputs = bool(torch.equal(lib_x, torch.from_numpy(data.x_np[:64])))
    scaled_diff = float(np.abs(tutorial.scaled(ett) - ett.scaled[:, 0]).max())

    # same seed -> same initial weights; same weights -> same outputs (norm="none": identical arithmetic)
    tut = tutorial.seeded_model(0)
    lib = library_model(mcfg, CPU)
    same_init = all(
        torch.equal(a, b) for a, b in zip(tut.state_dict().values(), lib.state_dict().values(), strict=True)
    )
    with torch.no_grad():
        out_diff = float((tut(lib_x) - lib(lib_x)[..., 0]).abs().max())
    same = same_init and out_diff < SAME_OUTPUTS_MAX_ABS_DIFF
    if not same:
        log(f"WARNING: forecast's model does not compute what the tutorial's does (max diff {out_diff:.3g})")
    checks = {
        "max_abs_diff_scaled_values_tutorial_vs_library": scaled_diff,
        "same_first_windows": same_inputs,
        "same_initial_weights": same_init,
        "max_abs_diff_outputs_same_weights": out_diff,
        "same_arithmetic": same,
    }
    return checks, count_parameters(lib)


def warmed_up_paths(
    args: argparse.Namespace, data: Training, mcfg: ModelConfig, b: int, segment: bool
) -> dict[str, Callable[[], float]]:
    """The paths at batch size b, each a call that times one run, after a warm-up of a few batches each."""
    n_batches = max(args.min_batches, args.windows_per_run // b)
    tm = tutorial.seeded_model(0)
    t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    loader = tutorial.loader(data.x_np, data.y_np, b)
    if n_batches > len(data.x_np) // b:
        raise ValueError(f"--windows-per-run too large for batch {b}")

    windows, starts = data.windows, data.starts
    cm = library_model(mcfg, CPU)
    c_opt = torch.optim.Adam(cm.parameters(), lr=1e-3)
    pick = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))[:b]]
    cx, cy = windows.inputs(pick), windows.targets(pick)
    fm = library_model(mcfg, CPU)
    paths: dict[str, Callable[[], float]] = {
        f"tutorial_b{b}": partial(tutorial.rate, tm, t_opt, loader, n_batches, CPU),
        f"forecast_b{b}": partial(forecast_pass, fm, windows, starts, b, n_batches),
        f"ceiling_b{b}": partial(ceiling_pass, cm, c_opt, cx, cy, n_batches),
    }
    # warm-up: a few batches of each path (allocator, thread pool, lazy Adam state)
    tutorial.train_pass(tm, t_opt, loader, 3, CPU)
    forecast_pass(fm, windows, starts, b, 3)
    ceiling_pass(cm, c_opt, cx, cy, 3)
    if segment:  # the default batch: also with the dropout forecast ships (the tutorial has none)
        dm = library_model(dataclasses.replace(mcfg, dropout=ModelConfig().dropout), CPU)
        forecast_pass(dm, windows, starts, b, 3)
        paths[f"forecast_shipped_dropout_b{b}"] = partial(forecast_pass, dm, windows, starts, b, n_batches)
    if args.extras:  # what a fused (one-kernel) Adam step would give the ceiling
        fused = library_model(mcfg, CPU)
        f_opt = torch.optim.Adam(fused.parameters(), lr=1e-3, fused=True)
        ceiling_pass(fused, f_opt, cx, cy, 3)
        paths[f"ceiling_fused_adam_b{b}"] = partial(ceiling_pass, fused, f_opt, cx, cy, n_batches)
        if segment:  # forecast's SegRNN-style option: lookback/12 GRU steps (other arithmetic)
            seg = library_model(dataclasses.replace(mcfg, segment=12), CPU)
            forecast_pass(seg, windows, starts, b, 3)
            paths[f"forecast_segment12_b{b}"] = partial(forecast_pass, seg, windows, starts, b, n_batches)
    return paths


def interleaved(paths: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Every path once a repeat, so that contention hits every path alike; rotated, so that none is always first."""
    runs: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for r in range(repeats):
        k = (r * 3) % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(paths[name]())
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in runs.items()))
    return runs


def path_figures(runs: dict[str, list[float]], batch_sizes: list[int]) -> dict[str, Any]:
    """The runs of every path, and the ratios between paths: to the tutorial at 32, to the ceiling, paired."""
    med = {k: median(v) for k, v in runs.items()}
    tut32 = med[f"tutorial_b{tutorial.SETTINGS['batch_size']}"]
    return {
        "paths": {k: summary(v) for k, v in runs.items()},
        "path_notes": PATH_NOTES,
        "ratio_vs_tutorial_b32": {k: ratio(v, tut32) for k, v in med.items()},
        "fraction_of_ceiling": {
            k: ratio(med[k], med[f"ceiling_b{k.rsplit('_b', 1)[1]}"])
            for k in med
            if not k.startswith("ceiling_b") and "segment" not in k and "dropout" not in k
        },
        "paired_ratio_forecast_vs_tutorial_same_batch": {
            f"b{b}": rnd(median([f / t for f, t in zip(runs[f"forecast_b{b}"], runs[f"tutorial_b{b}"], strict=True)]))
            for b in batch_sizes
        },
    }


# ---------------------------------------------------------------- the ceiling in fresh processes


def ceiling_probes(args: argparse.Namespace, batch_sizes: list[int]) -> dict[str, Any]:
    """The ceiling in fresh processes: across batch sizes, and under both OpenMP wait policies.

    Batch size is the one lever on CPU, where every path runs at the model's ceiling. And on a machine whose
    cores are busy with other work, OpenMP threads that spin while they wait (the default) can slow a step
    many-fold; OMP_WAIT_POLICY=PASSIVE makes them sleep instead.
    """
    scan = sorted({32, 128, 512, *batch_sizes}) if args.quick else sorted({32, 64, 128, 256, 512, 1024, *batch_sizes})
    params = {
        "repeats": max(2, args.repeats // 2),
        "min_batches": args.min_batches,
        "windows_per_run": args.windows_per_run,
    }
    inherited = os.environ.get("OMP_WAIT_POLICY")
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    log(f"  ceiling by batch size {scan}, fresh process, OMP_WAIT_POLICY={inherited}")
    by_batch = run_ceiling({**params, "batch_sizes": scan}, args.threads)
    policies: dict[str, dict[str, float]] = {}
    for policy in ("default", "PASSIVE"):
        if (policy == "default" and inherited is None) or policy == inherited:
            policies[policy] = {f"ceiling_b{b}": by_batch[f"ceiling_b{b}"] for b in batch_sizes}
            continue
        log(f"  ceiling with OMP_WAIT_POLICY={policy}")
        env = clean if policy == "default" else {**clean, "OMP_WAIT_POLICY": policy}
        small = {"repeats": 1, "min_batches": 4, "windows_per_run": 128, "batch_sizes": [32]}  # it can crawl
        policies[policy] = run_ceiling(small, args.threads, env=env)
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


def run_ceiling(params: dict[str, Any], threads: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """ceiling_case in a fresh process: `python bench/throughput.py --case ceiling --params JSON`."""
    return runner.run_case(str(Path(__file__).resolve()), "ceiling", params, threads, env=env)


def ceiling_case(p: dict[str, Any]) -> dict[str, Any]:
    """The ceiling (tutorial settings) at each batch size, in this process's threading environment."""
    rows, L, H = 20_000, tutorial.SETTINGS["lookback"], tutorial.SETTINGS["horizon"]
    windows = Windows(common.synthetic_series(rows), 1, L, H)
    gen = torch.Generator().manual_seed(0)
    out = {}
    for b in p["batch_sizes"]:
        model = library_model(tutorial.model_config("none"), CPU)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        starts = torch.randint(rows - L - H + 1, (b,), generator=gen)
        x, y = windows.inputs(starts), windows.targets(starts)
        ceiling_pass(model, opt, x, y, 3)
        n = max(p["min_batches"], p["windows_per_run"] // b)
        out[f"ceiling_b{b}"] = median([ceiling_pass(model, opt, x, y, n) for _ in range(p["repeats"])])
    return out


SECTION = runner.Section(
    "throughput",
    lambda args, inputs: measure(args, inputs.ett),
    SIZES,
    flags=add_arguments,
    cases={"ceiling": ceiling_case},
    needs=("ett",),
    report_seconds=True,
)

if __name__ == "__main__":
    sys.exit(runner.run([SECTION], __doc__))
