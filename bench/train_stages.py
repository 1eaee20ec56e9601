"""Where `forecast train CONFIG` spends its time, stage by stage, each run in a fresh process.

    .venv/bin/python bench/train_stages.py [CONFIG] [--repeats N] [--device auto|cpu|cuda] [--out FILE]

CONFIG defaults to configs/etth1.yaml. Each run is a fresh Python process that does what the
command does, timing:
  imports            forecast's command-line module, then the library (torch, pandas)
  config             reading and checking CONFIG
  set_up             read, validate, split and scale the data, choose sizes, starting weights
  training           every epoch with its validation loss
  baselines          the linear baseline's fit and the validation forecasts behind intervals and
                     the baseline check
  saving             model.pt, history.csv, loss.png
  test_evaluation    every test window, the model beside its three baselines, metrics.json
  bench_bookkeeping  this script's own reading of the run afterwards (not the command's)
  start_and_exit     the rest of the process's wall time: the interpreter starting and ending
                     (and train's closing of a torchrun process group, where there is one)
set_up to test_evaluation are `forecast train`'s own (TrainSummary.seconds). One JSON object goes
to stdout (and to --out): every run's stages and their medians. The device is the config's
train.device (auto: a CUDA GPU where there is one) unless --device says otherwise; on a GPU this
makes the table of the GPU section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(config_file: str, device: str | None, run_dir: str) -> dict[str, Any]:
    """One `forecast train` in this process, as the command runs it, with its stages timed."""
    t0 = time.perf_counter()
    import forecast.cli as cli  # what `forecast` imports first
    from forecast.allocator import keep_freed_memory

    keep_freed_memory()  # as cli.main does
    cli.OWN_PROCESS = True
    api = cli.library()  # as the train command does: torch, pandas, the pipeline
    from forecast import pipeline

    t1 = time.perf_counter()
    cfg = api.training_config(Path(config_file), None, {"train.device": device}, [])
    t2 = time.perf_counter()
    summary = pipeline.train(cfg, out=run_dir, force=True, quiet=True, log=lambda _: None)
    t3 = time.perf_counter()
    import gc

    import torch

    on = pipeline.pick_device(cfg.train.device)
    out = {
        "device": str(on),
        "device_name": torch.cuda.get_device_name(on) if on.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "epochs_run": len(api.load(run_dir).state.history["seconds"]),
        "test_windows": summary.metrics["windows"] if summary.metrics else 0,
        "seconds": {"imports": t1 - t0, "config": t2 - t1, **summary.seconds},
    }
    out["seconds"]["bench_bookkeeping"] = time.perf_counter() - t3  # not the command's
    gc.freeze()  # as cli.main does: shutdown skips sweeping torch's objects
    return out


def one_run(config_file: str, device: str | None, run_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", config_file, "--run", str(run_dir)]
    cmd += ["--device", device] if device else []
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    out["seconds"]["start_and_exit"] = wall - sum(out["seconds"].values())
    out["wall_s"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default="configs/etth1.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the config's train.device")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.device, args.run)))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            runs.append(one_run(args.config, args.device, Path(tmp) / "run"))
            stages = ", ".join(f"{k} {v:.2f}" for k, v in runs[-1]["seconds"].items())
            print(f"[train_stages] run {i + 1}/{args.repeats}: {runs[-1]['wall_s']:.2f} s: {stages}", file=sys.stderr)
    names = list(runs[0]["seconds"])
    report = {
        "benchmark": "train_stages",
        "config": args.config,
        "device": runs[0]["device"],
        "device_name": runs[0]["device_name"],
        "torch": runs[0]["torch"],
        "epochs_run": [r["epochs_run"] for r in runs],
        "test_windows": runs[0]["test_windows"],
        "median_s": {k: round(statistics.median(r["seconds"][k] for r in runs), 3) for k in names},
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "runs": [{k: round(v, 3) for k, v in r["seconds"].items()} for r in runs],
    }
    from common import environment, write_json  # the parent only: common imports torch

    write_json({**report, "environment": environment()}, args.out)


if __name__ == "__main__":
    main()
