"""Shared helpers of the bench scripts, and the one place they import forecast from.

Every name a bench script takes from the forecast package is imported here and re-exported (see
__all__), so when the package's modules move, only the imports below need re-pointing. The scripts
run as `python bench/NAME.py`, which puts bench/ on sys.path: `from common import ...` just works,
and forecast itself comes from the environment (installed editable, `pip install -e .`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import forecast
from forecast import api, config, metrics, pipeline
from forecast.allocator import keep_freed_memory
from forecast.choices import MAX_BATCH, default_segment
from forecast.config import Config, DataConfig, ModelConfig, TrainConfig
from forecast.distributed import autocast
from forecast.errors import ForecastError, quiet_log
from forecast.inference import CHUNK_WINDOWS
from forecast.model import build_model, count_parameters, seasonal_base
from forecast.panel import load_panel, split_borders
from forecast.prepare import drop_short_series, prepare
from forecast.train import fit, seed_everything
from forecast.windows import Windows, window_starts

__all__ = [
    "CHUNK_WINDOWS",
    "MAX_BATCH",
    "Config",
    "DataConfig",
    "ForecastError",
    "ModelConfig",
    "TrainConfig",
    "Windows",
    "api",
    "autocast",
    "build_model",
    "config",
    "count_parameters",
    "default_segment",
    "drop_short_series",
    "fit",
    "forecast",
    "load_panel",
    "metrics",
    "pipeline",
    "prepare",
    "quiet_log",
    "seasonal_base",
    "seed_everything",
    "split_borders",
    "window_starts",
]

ROOT = Path(__file__).resolve().parent.parent
ALLOCATOR_SET = keep_freed_memory()  # as the `forecast` command does: the figures are the command's


# ---------------------------------------------------------------- figures


def log(msg: str) -> None:
    """A progress line on stderr, stamped with the script's name and the time; stdout carries the JSON alone."""
    print(f"[{Path(sys.argv[0]).stem} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table: a header row, a `| --- |` row, then one row a list; an empty cell is written `| |`."""

    def line(cells: list[Any]) -> str:
        return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"

    return "\n".join([line(columns), "|" + " --- |" * len(columns), *map(line, rows)])


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


def split_starts(n: int, lookback: int, horizon: int) -> tuple[int, dict[str, torch.Tensor]]:
    """An n-step series split as the library splits one (70/10/20): its training rows, its train and val starts."""
    offsets = np.array([0, n], dtype=np.int64)
    borders = split_borders(np.array([n]), DataConfig().split)
    starts = {p: torch.from_numpy(window_starts(offsets, borders, p, lookback, horizon)) for p in ("train", "val")}
    return int(borders[0, 0]), starts


class Ett:
    """ETTh1 OT loaded and scaled by the library (70/10/20, MinMaxScaler on the training rows)."""

    def __init__(self, path: str):
        cfg = Config(data=DataConfig(path=path, target=["OT"]))
        panel = load_panel(cfg.data)
        self.prep = prepare(cfg, panel)
        self.scaled = self.prep.scaled  # (N, 1) float32
        self.n_rows = len(self.scaled)
        self.n_train_rows = int(self.prep.borders[0, 0])
        self.path = path

    def starts(self, part: str, lookback: int, horizon: int) -> torch.Tensor:
        return torch.from_numpy(self.prep.starts(part, lookback, horizon))


# ---------------------------------------------------------------- the forecast command


def forecast_command() -> list[str]:
    script = Path(sys.executable).parent / "forecast"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "forecast"]


def timed(cmd: list[str]) -> float:
    """Wall seconds of one command, run from the repository root; an error if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    sec = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return sec


def train_tiny_run(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """A run directory for the memory and latency benchmarks: configs/default.yaml, 5 steps on --data."""
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


# ---------------------------------------------------------------- the JSON report


def environment() -> dict[str, Any]:
    """Versions, CPU, memory, threads and load: what a figure needs beside it to be read."""
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
    return {
        "git": git_state(),
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
        "malloc_thresholds_set": ALLOCATOR_SET,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the forecast package differs from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "forecast"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        return {"commit": commit or None, "forecast_package_modified": bool(dirty)}
    except OSError:
        return {"commit": None, "forecast_package_modified": None}


def write_json(result: dict[str, Any], out: str | None) -> None:
    """The report as strict JSON (NaN as null): to stdout, and to the file `out` when given."""
    text = json.dumps(finite(result), indent=2, allow_nan=False)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        log(f"wrote {out}")
