"""Peak memory (RSS) of training on a long series and of a streaming backtest, each case in a fresh process.

    .venv/bin/python bench/memory.py [--quick] [--long-steps N] [--backtest-steps N] [--out FILE]

A process's peak RSS only ever grows, so each case runs alone: this script re-invokes itself as
`python bench/memory.py --case train|backtest --params JSON`, which runs that one case in its own
process and prints its JSON on the last line. The cases:
  train     forecast.train.fit for --long-train-steps steps on a synthetic --long-steps series,
            lookback 512, the library's defaults otherwise;
  backtest  forecast predict RUN_DIR --data SERIES.csv --backtest --split all, in-process, on a
            synthetic series of --backtest-steps rows and of a quarter of that (and, with no CSV,
            loading the run alone, as the baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import common
import runner
from common import (
    CHUNK_WINDOWS,
    MAX_BATCH,
    ModelConfig,
    TrainConfig,
    Windows,
    api,
    build_model,
    default_segment,
    fit,
    log,
    peak_rss_bytes,
    rnd,
    rss_bytes,
)
from thresholds import GB

SIZES: runner.Sizes = {
    "--long-steps": (10_000_000, 300_000, "series length of the training memory case"),
    "--long-train-steps": (200, 5, "training steps of that case"),
    "--backtest-steps": (200_000, 20_000, "series length of the backtest case"),
}
LONG_LOOKBACK = 512


def measure(args: argparse.Namespace, run_dir: Path, tmp: Path) -> dict[str, Any]:
    """The memory section of the report; run_dir is a trained run, tmp a folder for the series CSVs."""
    steps, series = args.long_train_steps, args.long_steps
    log(f"memory (i): training {steps} steps on a {series:,}-step series, lookback {LONG_LOOKBACK}")
    params = {"steps": args.long_steps, "lookback": LONG_LOOKBACK, "train_steps": args.long_train_steps}
    train = run_memory_case("train", params, args.threads)
    log(
        f"  peak RSS {train['peak_rss_bytes'] / GB:.2f} GB; materialized windows would need "
        f"{train['materialized_windows_bytes'] / GB:.1f} GB"
    )
    return {"train_long_series": train, "backtest": backtest_cases(args, run_dir, tmp)}


def backtest_cases(args: argparse.Namespace, run_dir: Path, tmp: Path) -> dict[str, Any]:
    """The backtest on two series lengths, and how much its peak RSS grew between them."""
    base = run_memory_case("backtest", {"run_dir": str(run_dir), "csv": None}, args.threads)
    cases = []
    for n in (args.backtest_steps // 4, args.backtest_steps):
        csv, pred = tmp / f"series-{n}.csv", tmp / f"predictions-{n}.csv"
        write_series_csv(csv, n)
        log(f"memory (ii): backtest over a {n:,}-step series")
        params = {"run_dir": str(run_dir), "csv": str(csv), "out": str(pred), "series_steps": n}
        case = run_memory_case("backtest", params, args.threads)
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
    return {
        "command": "forecast predict RUN_DIR --data SERIES.csv --backtest --split all (api.predict in-process)",
        "run": "configs/default.yaml model (lookback 96, horizon 24, hidden 32) trained briefly on ETTh1 OT",
        "baseline_peak_rss_bytes": base["peak_rss_bytes"],
        "cases": cases,
        "peak_rss_growth_bytes": growth,
        "peak_rss_growth_per_series_row_bytes": rnd(growth / extra_rows),
        "materialized_windows_growth_bytes": large["materialized_windows_bytes"] - small["materialized_windows_bytes"],
        "output_csv_growth_bytes": large["csv_bytes"] - small["csv_bytes"],
    }


def write_series_csv(path: Path, n: int) -> None:
    import pandas as pd

    values = common.synthetic_series(n).numpy()[:, 0] * 5 + 20  # an oil temperature's scale
    times = pd.date_range("2000-01-01", periods=n, freq="h")
    pd.DataFrame({"date": times, "OT": values}).to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")


def run_memory_case(case: str, params: dict[str, Any], threads: int) -> dict[str, Any]:
    """One case in a fresh process: `python bench/memory.py --case CASE --params JSON`."""
    return runner.run_case(str(Path(__file__).resolve()), case, params, threads)


# ---------------------------------------------------------------- the cases, each run in its own process


def train_case(p: dict[str, Any]) -> dict[str, Any]:
    """Train `train_steps` steps via forecast.train.fit on a synthetic series of `steps` rows."""
    rss_import = rss_bytes()
    n, L = p["steps"], p["lookback"]
    # the defaults otherwise, with the sizes they choose for hourly data: a day's horizon, segments, batch
    mcfg = ModelConfig(lookback=L, horizon=24, segment=default_segment(L))
    H = mcfg.horizon
    values = common.synthetic_series(n)
    _, starts = common.split_starts(n, L, H)
    train, val = starts["train"], starts["val"]
    cfg = TrainConfig(epochs=1, batch_size=MAX_BATCH, steps_per_epoch=p["train_steps"], patience=0)
    val = val[: cfg.batch_size * 8]  # a validation pass over ~1M windows would only add time
    windows = Windows(values, 1, L, H)
    common.seed_everything(0)
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


def backtest_case(p: dict[str, Any]) -> dict[str, Any]:
    """forecast predict RUN --data CSV --backtest --split all, in-process (the CLI's own calls)."""
    rss_import = rss_bytes()
    run_dir = p["run_dir"]
    if p.get("csv") is None:
        return {"rss_after_imports_bytes": rss_import, "peak_rss_bytes": peak_rss_bytes()}
    t0 = time.perf_counter()
    path, rows = api.predict(run_dir, p["csv"], p["out"], backtest=True, split="all", log=lambda _: None)
    sec = time.perf_counter() - t0
    model = api.load(run_dir).cfg.model
    L, H = model.lookback, model.horizon
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
        "chunk_windows": CHUNK_WINDOWS,
    }


SECTION = runner.Section(
    "memory",
    lambda args, inputs: measure(args, inputs.run_dir, inputs.tmp),
    SIZES,
    cases={"train": train_case, "backtest": backtest_case},
    needs=("run_dir",),
    report_seconds=True,
)

if __name__ == "__main__":
    sys.exit(runner.run([SECTION], __doc__))
