"""Accuracy on the standard ETT-hour long-horizon protocol, model beside the baselines.

Trains one run per cell (setting x horizon) with the shipped configs, scores every stride-1
test window (none dropped), and writes a Markdown table and JSON. Run on purpose:

    .venv/bin/python bench/accuracy.py                 # the whole table, S and M, four horizons
    .venv/bin/python bench/accuracy.py --cells S96 M96 # some cells
    .venv/bin/python bench/accuracy.py --quick         # a smoke run: one short epoch per cell
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, api, config, markdown_table

SETTINGS = {
    # name: (config, lookback, targets the issue sets for mse_z by horizon)
    "S": ("configs/etth1.yaml", 336, {96: 0.053, 192: 0.069, 336: 0.081, 720: 0.080}),
    "M": ("configs/etth1_m.yaml", 96, {96: 0.368, 192: 0.408, 336: 0.444, 720: 0.446}),
}
HORIZONS = (96, 192, 336, 720)
BASELINES = ("repeat_last", "seasonal_naive", "linear")


def run_cell(setting: str, horizon: int, args: argparse.Namespace) -> dict:
    path, lookback, targets = SETTINGS[setting]
    cfg = config.load_yaml(ROOT / path)
    cfg.model.lookback, cfg.model.horizon = lookback, horizon
    cfg.train.device = args.device
    if args.quick:
        cfg.train.epochs, cfg.train.steps_per_epoch = 1, 5
    config.check(cfg)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = api.train(cfg, out=f"{tmp}/run", quiet=not args.progress, log=lambda m: None)
        run = api.load(f"{tmp}/run")
    seconds = time.perf_counter() - t0
    models = summary.metrics["models"]
    cell = {
        "setting": setting,
        "lookback": lookback,
        "horizon": horizon,
        "windows": summary.metrics["windows"],
        "target_mse_z": targets[horizon],
        "mse_z": {name: m["mse_z"] for name, m in models.items()},
        "mae_z": {name: m["mae_z"] for name, m in models.items()},
        "epochs": len(run.state.history["train_loss"]),
        "best_epoch": run.state.best_epoch,
        "train_seconds": round(seconds, 1),
        "device": run.state.record.device,
    }
    cell["beats_target"] = cell["mse_z"]["model"] < cell["target_mse_z"]
    cell["beats_linear"] = cell["mse_z"]["model"] < cell["mse_z"]["linear"]
    print(
        f"{setting}{horizon}: model {cell['mse_z']['model']:.4f} linear {cell['mse_z']['linear']:.4f} "
        f"target {cell['target_mse_z']} ({seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return cell


COLUMNS = ["setting", "L", "H", "model mse_z", "model mae_z", "linear", "repeat-last", "seasonal", "target"]
COLUMNS += ["beats target", "epochs", "train s"]


def markdown(cells: list[dict]) -> str:
    rows = []
    for c in cells:
        z, a = c["mse_z"], c["mae_z"]
        rows.append(
            [c["setting"], c["lookback"], c["horizon"], f"**{z['model']:.4f}**", f"{a['model']:.4f}"]
            + [f"{z[name]:.4f}" for name in ("linear", "repeat_last", "seasonal_naive")]
            + [f"< {c['target_mse_z']}", "yes" if c["beats_target"] else "no", c["epochs"], f"{c['train_seconds']:.0f}"]
        )
    return markdown_table(COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", help="e.g. S96 M720 (default: all eight)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="one short epoch per cell, to check the script")
    parser.add_argument("--progress", action="store_true", help="show training progress bars")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for accuracy.{json,md}")
    args = parser.parse_args()
    cells = args.cells or [f"{s}{h}" for s in SETTINGS for h in HORIZONS]
    results = [run_cell(c[0], int(c[1:]), args) for c in cells]
    report = {
        "protocol": "ETTh1, train rows 0-8639, val 8640-11519, test 11520-14399, every stride-1 test window",
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "cells": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "accuracy.md").write_text(markdown(results) + "\n")
    print(json.dumps(report, indent=2))
    print(markdown(results), file=sys.stderr)


if __name__ == "__main__":
    main()
