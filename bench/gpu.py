"""GPU throughput: forecast's loop against the model's ceiling at batch 1024 and 4096, fp32 and bf16.

    .venv/bin/python bench/gpu.py [--quick] [--gpu-steps N] [--gpu-batches N] [--out FILE]
    .venv/bin/python bench/gpu.py --quick --gpu-on-cpu    # smoke-test this code on a machine without CUDA

On a synthetic --gpu-steps series with the tutorial's model settings, each case reports forecast's
fit as a fraction of the ceiling at the same precision (bf16: autocast), and the tutorial's loop
at batch 1024 beside them. Without CUDA (and without --gpu-on-cpu) the section says so and skips.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import common
import numpy as np
import runner
import torch
import tutorial
from common import Windows, log, median, ratio, rnd, summary
from passes import ceiling_pass, forecast_pass, library_model

SIZES: runner.Sizes = {
    "--gpu-steps": (1_200_000, 1_200_000, "series length of the GPU section"),
    "--gpu-batches": (50, 10, "batches per GPU throughput run"),
}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--gpu-on-cpu", action="store_true", help="run the GPU section on the CPU: a smoke test")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The gpu section of the report."""
    if not torch.cuda.is_available() and not args.gpu_on_cpu:
        log("gpu: no CUDA GPU available; skipped")
        return {"available": False, "note": "no CUDA GPU was available; GPU throughput was not measured"}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    L, H = tutorial.SETTINGS["lookback"], tutorial.SETTINGS["horizon"]
    n = args.gpu_steps
    values = common.synthetic_series(n)
    windows = Windows(values.to(device), 1, L, H)
    train_rows, parts = common.split_starts(n, L, H)
    starts = parts["train"].to(device)
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
                out["cases"][key] = forecast_case(args, windows, starts, b, precision)
            except Exception as e:  # e.g. an op without a bf16 kernel: report it, go on
                out["cases"][key] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                log(f"  {key}: failed: {out['cases'][key]['error']}")
    try:
        series = values.numpy()[:train_rows, 0]
        out["tutorial_b1024_fp32"] = tutorial_case(args, series, device, out["cases"].get("b1024_fp32", {}))
    except Exception as e:
        out["tutorial_b1024_fp32"] = {"error": f"{type(e).__name__}: {e}"}
    return out


def forecast_case(
    args: argparse.Namespace, windows: Windows, starts: torch.Tensor, b: int, precision: str
) -> dict[str, Any]:
    """forecast's fit and the ceiling at batch b and `precision`, after a warm-up, in turns."""
    mcfg = tutorial.model_config("none")
    device = starts.device
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
    log(f"  b{b}_{precision}: forecast {median(f_runs):.0f}/s, ceiling {median(c_runs):.0f}/s")
    return {
        "forecast": summary(f_runs),
        "ceiling": summary(c_runs),
        "fraction_of_ceiling": ratio(median(f_runs), median(c_runs)),
    }


def tutorial_case(
    args: argparse.Namespace, series: np.ndarray, device: torch.device, b1024: dict[str, Any]
) -> dict[str, Any]:
    """The tutorial's loop at batch 1024, fp32, beside forecast's case b1024_fp32 (its figures in b1024)."""
    b = 1024
    L, H = tutorial.SETTINGS["lookback"], tutorial.SETTINGS["horizon"]
    t0 = time.perf_counter()
    x_np, y_np = tutorial.windows(series, L, H)
    build_s = time.perf_counter() - t0
    tm = tutorial.seeded_model(0).to(device)
    t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    loader = tutorial.loader(x_np, y_np, b)
    tutorial.train_pass(tm, t_opt, loader, 5, device)
    t_runs = []
    for _ in range(args.repeats):
        seen, sec, _ = tutorial.train_pass(tm, t_opt, loader, args.gpu_batches, device)
        t_runs.append(seen / sec)
    ceiling = b1024.get("ceiling", {}).get("windows_per_s", math.nan)
    forecast_b = b1024.get("forecast", {}).get("windows_per_s", math.nan)
    log(f"  tutorial b1024: {median(t_runs):.0f}/s")
    return {
        **summary(t_runs),
        "window_build_s": rnd(build_s),
        "fraction_of_ceiling": ratio(median(t_runs), ceiling),
        "forecast_speedup": ratio(forecast_b, median(t_runs)),
    }


SECTION = runner.Section("gpu", lambda args, inputs: measure(args), SIZES, flags=add_arguments)

if __name__ == "__main__":
    sys.exit(runner.run([SECTION], __doc__))
