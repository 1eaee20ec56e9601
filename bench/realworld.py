"""The default config on real series, beside the naive forecasts, as a user would run it.

Reads a manifest of real files (default: ../shared/data/real/suite.csv, columns name, target,
features, id_column, lookback, horizon, season, ...), and for each file trains the default config
twice: with the manifest's lookback and horizon ("manifest"), and with neither given ("auto").
Each run is scored on its test windows against repeat-last, seasonal naive and the linear
baseline, the same windows for all. The headline is the ratio of the model's test MSE to the
best naive forecast's (lower is better; < 1 beats both naive forecasts), with its geometric mean
over the files. The validation-split ratio is reported beside it: settings are tuned on that.

    .venv/bin/python bench/realworld.py                       # every file, both modes
    .venv/bin/python bench/realworld.py --only a10 nile --modes manifest
    .venv/bin/python bench/realworld.py --set model.hidden_size=32   # try an override
    .venv/bin/python bench/realworld.py --last 48 --modes auto   # short series: each one's last 48 rows

Prints a Markdown table and writes JSON (default bench/results/realworld.json). No network.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from common import ROOT, ForecastError, api, config, markdown_table

DEFAULT_SUITE = ROOT.parent / "shared" / "data" / "real" / "suite.csv"
NAIVE = ("repeat_last", "seasonal_naive")


def file_config(row: pd.Series, folder: Path, mode: str, sets: list[str]) -> config.Config:
    """The plain command's config: --data, --target, [--features], [id column], [--lookback --horizon]."""
    cfg = config.Config()
    cfg.data.path = str(folder / f"{row['name']}.csv")
    cfg.data.target = [str(row["target"])]
    if isinstance(row["features"], str) and row["features"].strip():
        cfg.data.features = row["features"].split()
    if isinstance(row["id_column"], str) and row["id_column"].strip():
        cfg.data.id_column = row["id_column"]
    if mode == "manifest":
        cfg.model.lookback, cfg.model.horizon = int(row["lookback"]), int(row["horizon"])
    return config.check(config.apply_overrides(cfg, sets))


def ratio(models: dict[str, Any]) -> tuple[float, str]:
    """Model MSE over the best naive forecast's MSE, and which naive forecast that was."""
    best = min(NAIVE, key=lambda n: models[n]["mse"])
    return models["model"]["mse"] / models[best]["mse"], best


def run_one(row: pd.Series, folder: Path, mode: str, sets: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": row["name"], "mode": mode}
    t0 = time.perf_counter()
    try:
        cfg = file_config(row, folder, mode, sets)
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = io.StringIO()
            with contextlib.redirect_stderr(io.StringIO()):
                summary = api.train(cfg, out=f"{tmp}/run", quiet=True, log=lambda m: log.write(m + "\n"))
                train_seconds = time.perf_counter() - t0
                run = api.load(summary.run_dir)
                val = run.evaluate(split="val", log=lambda m: None)
    except ForecastError as e:
        return {**out, "error": str(e)}
    test = summary.metrics
    test_ratio, test_best = ratio(test["models"])
    val_ratio, _ = ratio(val["models"])
    return {
        **out,
        "lookback": test["lookback"],
        "horizon": test["horizon"],
        "test_windows": test["windows"],
        "ratio": test_ratio,
        "best_naive": test_best,
        "linear_ratio": test["models"]["linear"]["mse"] / test["models"][test_best]["mse"],
        "val_ratio": val_ratio,
        "mse": {name: m["mse"] for name, m in test["models"].items()},
        "epochs": len(run.state.history["train_loss"]),
        "train_seconds": round(train_seconds, 1),
        "warnings": [line for line in log.getvalue().splitlines() if line.startswith("warning")],
    }


def cut(source: Path, dest: Path, id_column: str, last: int) -> None:
    """A copy of a file with each series' last `last` rows, as read (text kept as written)."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame = frame.groupby(id_column, sort=False).tail(last) if id_column else frame.tail(last)
    frame.to_csv(dest, index=False)


def geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def table(results: list[dict[str, Any]], mode: str) -> str:
    rows = [r for r in results if r["mode"] == mode]
    cells: list[list[Any]] = []
    for r in rows:
        if "error" in r:
            cells.append([r["name"], "", "", f"error: {r['error'][:80]}", "", "", "", ""])
            continue
        cells.append(
            [r["name"], r["lookback"], r["horizon"], f"{r['ratio']:.3f}", f"{r['linear_ratio']:.3f}"]
            + [f"{r['val_ratio']:.3f}", r["epochs"], r["train_seconds"]]
        )
    ok = [r for r in rows if "error" not in r]
    if ok:
        losing = sum(r["ratio"] >= 1 for r in ok)
        cells.append(
            [f"**geometric mean** ({len(ok)} of {len(rows)} ran; {losing} at or above 1)", "", ""]
            + [f"**{geomean([r['ratio'] for r in ok]):.3f}**", f"{geomean([r['linear_ratio'] for r in ok]):.3f}"]
            + [f"{geomean([r['val_ratio'] for r in ok]):.3f}", "", f"{sum(r['train_seconds'] for r in ok):.0f}"]
        )
    columns = ["series", "L", "H", "test MSE / best naive", "linear / best naive", "val ratio", "epochs", "train s"]
    return f"### {mode}\n\n" + markdown_table(columns, cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="manifest CSV (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="names of the files to run (default: all)")
    parser.add_argument("--modes", nargs="*", default=["manifest", "auto"], choices=["manifest", "auto"])
    parser.add_argument("--set", action="append", default=[], dest="sets", help="a config override, key=value")
    parser.add_argument("--last", type=int, help="keep only each series' last N rows (short series)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "realworld.json")
    args = parser.parse_args()
    if not args.suite.is_file():
        sys.exit(f"manifest {args.suite} not found; pass --suite")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    suite = pd.read_csv(args.suite, dtype=str, keep_default_na=False)
    if args.only:
        suite = suite[suite["name"].isin(args.only)]
    folder = args.suite.parent
    if args.last:
        folder = Path(tempfile.mkdtemp(prefix="realworld-last-"))
        for _, row in suite.iterrows():
            cut(args.suite.parent / f"{row['name']}.csv", folder / f"{row['name']}.csv", row["id_column"], args.last)
    results = []
    for mode in args.modes:
        for _, row in suite.iterrows():
            result = run_one(row, folder, mode, args.sets)
            shown = result.get("error") or f"ratio {result['ratio']:.3f} in {result['train_seconds']} s"
            print(f"{mode:8s} {row['name']:18s} {shown}", file=sys.stderr, flush=True)
            results.append(result)
    print("\n\n".join(table(results, mode) for mode in args.modes))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        mode: {
            "geomean_ratio": geomean([r["ratio"] for r in results if r["mode"] == mode and "error" not in r]),
            "geomean_val_ratio": geomean([r["val_ratio"] for r in results if r["mode"] == mode and "error" not in r]),
        }
        for mode in args.modes
    }
    record = {"sets": args.sets, "last": args.last, "summary": summary, "results": results}
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nJSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
