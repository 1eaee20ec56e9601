"""Retail scale: one global model over tens of thousands of daily series, stage by stage.

Writes a long-format panel (default 30,000 series x 2,000 days, about 60M rows, staggered starts,
a few series shorter than one window) as Parquet and CSV, then runs the whole path, each stage in
a fresh process so that its peak RSS is its own:

  load_parquet, load_csv  read, validate, split and scale (forecast.panel.load_panel + prepare)
  shard_parquet, shard_csv  the same in the first of --shards processes sharded by id under torchrun:
                          it reads only its own series' rows
  train                   `forecast train` with 100 steps of 512 windows, then the full test
                          evaluation with per-series metrics; its training and test rates, and
                          their ratio, from one process (--train-repeats runs: their medians)
  train_rate              the training rate at full size against the 5M-row reference (the first
                          2,500 series of the same panel), measured in pairs: --repeats times
                          `train`'s training alone on each, alternating, each in a fresh process;
                          medians and their ratio (the machine's speed drifts by tens of percent)
  evaluate                `forecast evaluate` alone: every test window, the model and 3 baselines
  backtest                `forecast predict --backtest` on a file of 1,000 of the series, streamed
  predict                 `forecast predict`: the next 14 days of every series

One JSON object goes to stdout (and to --out). Run on purpose:

    .venv/bin/python bench/many_series.py                                # 30,000 x 2,000
    .venv/bin/python bench/many_series.py --series 3000 --length 500     # smaller
    .venv/bin/python bench/many_series.py --folder /tmp/panel --only train_rate --repeats 6
                                    # keeps the files in /tmp/panel; later runs reuse them
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch
from common import (
    ALLOCATOR_SET,
    ROOT,
    api,
    config,
    drop_short_series,
    load_panel,
    log,
    median,
    peak_rss_bytes,
    pipeline,
    prepare,
    quiet_log,
    rnd,
    write_json,
)

LOOKBACK, HORIZON, BATCH, STEPS = 56, 14, 512, 100
STAGES = (
    "load_parquet",
    "load_csv",
    "shard_parquet",
    "shard_csv",
    "train",
    "train_rate",
    "evaluate",
    "backtest",
    "predict",
)
REFERENCE_SERIES = 2_500  # the train_rate reference: 2,500 x 2,000 days, 5M rows


def make_panel(n_series: int, length: int, seed: int = 0) -> pa.Table:
    """Daily sales-like series: level, weekly season and noise, starts spread over a year; every
    500th series is shorter than one window (it is skipped, with a warning)."""
    rng = np.random.default_rng(seed)
    lengths = np.full(n_series, length)
    lengths[::500] = LOOKBACK // 2
    rows = np.repeat(np.arange(n_series), lengths)
    step = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    level = rng.uniform(10, 100, n_series).astype(np.float32)
    amplitude = rng.uniform(1, 5, n_series).astype(np.float32)
    phase = rng.integers(0, 7, n_series)
    sales = level[rows] + amplitude[rows] * np.sin(2 * np.pi * (step + phase[rows]) / 7).astype(np.float32)
    sales += rng.normal(0, 1, len(rows)).astype(np.float32)
    start = np.datetime64("2019-01-01") + rng.integers(0, 365, n_series).astype("timedelta64[D]")
    dates = start[rows] + step.astype("timedelta64[D]")
    names = np.array([f"item{i:05d}" for i in range(n_series)])
    return pa.table(
        {
            "item": pa.DictionaryArray.from_arrays(pa.array(rows.astype(np.int32)), pa.array(names)),
            "date": pa.array(dates.astype("datetime64[s]")).cast(pa.date32()),
            "sales": pa.array(np.round(sales, 2)),
        }
    )


def write_files(folder: Path, n_series: int, length: int) -> dict[str, Path]:
    table = make_panel(n_series, length)
    files = panel_files(folder)
    pq.write_table(table, files["parquet"])
    pacsv.write_csv(
        table.cast(pa.schema([("item", pa.string()), ("date", pa.date32()), ("sales", pa.float64())])), files["csv"]
    )
    item = table.column("item").combine_chunks().indices.to_numpy()
    pq.write_table(table.filter(pa.array(item < 1000)), files["subset"])
    pq.write_table(table.filter(pa.array(item < REFERENCE_SERIES)), files["reference"])
    return files


def panel_files(folder: Path) -> dict[str, Path]:
    names = {
        "parquet": "panel.parquet",
        "csv": "panel.csv",
        "subset": "subset.parquet",
        "reference": "reference.parquet",
    }
    return {k: folder / name for k, name in names.items()}


def settings(data: Path) -> config.Config:
    """The plain command's config: `forecast train --data DATA --target sales --set data.id_column=item
    --lookback 56 --horizon 14 --epochs 1 --set train.steps_per_epoch=100 --set train.batch_size=512`."""
    cfg = config.Config()
    cfg.data.path, cfg.data.id_column, cfg.data.target = str(data), "item", ["sales"]
    cfg.model.lookback, cfg.model.horizon = LOOKBACK, HORIZON
    cfg.train.epochs, cfg.train.batch_size, cfg.train.steps_per_epoch = 1, BATCH, STEPS
    return cfg


def training_rate(data: Path, run_dir: Path) -> dict[str, Any]:
    """`train`'s training epoch alone (set-up, starting weights, 100 steps of 512 and the epoch's
    validation loss), as `forecast train` runs it; no test evaluation."""
    setup = pipeline.set_up(settings(data), quiet_log)
    model = pipeline.start_model(setup, quiet_log)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = pipeline.fit_model(setup, model, torch.device("cpu"), run_dir, None, quiet=True)
    seconds = result.history[0]["seconds"]
    return {
        "rows": len(setup.prep.panel.values),
        "training_s": rnd(seconds),
        "train_windows_per_s": rnd(STEPS * BATCH / seconds),
    }


def stage(name: str, files: dict[str, Path], run_dir: Path, shards: int, data: str = "parquet") -> dict[str, Any]:
    """One stage, in this process; its seconds and what it measured."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if name.startswith(("load_", "shard_")):
        cfg = settings(files[name.split("_")[1]])
        shard = (0, shards) if name.startswith("shard_") else None
        panel = drop_short_series(load_panel(cfg.data, shard=shard), cfg, quiet_log)
        out["load_and_validate_s"] = rnd(time.perf_counter() - t0)
        prep = prepare(cfg, panel)
        out.update(
            rows=len(panel.values), series=len(panel.ids), train_windows=len(prep.starts("train", LOOKBACK, HORIZON))
        )
    elif name == "train":
        summary = api.train(settings(files["parquet"]), out=str(run_dir), force=True, quiet=True, log=quiet_log)
        history = api.load(run_dir).state.history
        trained, tested = STEPS * BATCH, summary.metrics["windows"] if summary.metrics else 0
        train_speed = trained / history["seconds"][0]  # the epoch's steps, without its validation
        test_speed = tested / summary.seconds["test_evaluation"]
        out.update(
            stage_s={k: rnd(v) for k, v in summary.seconds.items()},
            training_s=rnd(history["seconds"][0]),
            train_windows_per_s=rnd(train_speed),
            test_windows=tested,
            test_windows_per_s=rnd(test_speed),
            # both rates from one process, minutes apart: the machine's drift between runs cancels
            test_to_train_rate=rnd(test_speed / train_speed),
            test_mse_z={k: rnd(v["mse_z"]) for k, v in (summary.metrics or {}).get("models", {}).items()},
        )
    elif name == "train_rate":  # one half of a pair; the runner alternates the two
        out.update(training_rate(files[data], run_dir.with_name(f"rate_{data}")))
    elif name == "evaluate":
        result = api.evaluate(run_dir, log=quiet_log)
        out.update(test_windows=result["windows"], series_scored=len(result.get("series", {})))
    elif name == "backtest":
        path, rows = api.predict(
            run_dir, str(files["subset"]), str(run_dir / "subset.csv"), backtest=True, log=quiet_log
        )
        out["rows_written"] = rows
    elif name == "predict":
        path, rows = api.predict(run_dir, None, str(run_dir / "forecast.csv"), log=quiet_log)
        out["rows_written"] = rows
    out["seconds"] = rnd(time.perf_counter() - t0)
    # VmHWM: getrusage's ru_maxrss keeps the runner's peak across fork and exec (the runner holds
    # the panel it wrote), which floored every stage's figure at about 2.8 GB at full size
    out["peak_rss_gb"] = rnd(peak_rss_bytes() / 2**30, 3)
    return out


def in_fresh_process(name: str, folder: Path, shards: int, data: str = "parquet") -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--stage", name, "--folder", str(folder), "--shards", str(shards), "--data", data]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout)


def paired_rates(folder: Path, repeats: int) -> dict[str, Any]:
    """The training rate on the full panel and on the 5M-row reference, alternating fresh processes."""
    runs: dict[str, list[dict[str, Any]]] = {"parquet": [], "reference": []}
    for i in range(repeats):
        for data in ("parquet", "reference") if i % 2 == 0 else ("reference", "parquet"):
            runs[data].append(in_fresh_process("train_rate", folder, 1, data))
            log(f"train_rate {data} {i + 1}/{repeats}: {runs[data][-1]}")
    if any("error" in r for rs in runs.values() for r in rs):
        return {"error": next(r["error"] for rs in runs.values() for r in rs if "error" in r)}
    full, reference = ([r["train_windows_per_s"] for r in runs[k]] for k in ("parquet", "reference"))
    return {
        "rows": runs["parquet"][0]["rows"],
        "reference_rows": runs["reference"][0]["rows"],
        "train_windows_per_s": full,
        "reference_train_windows_per_s": reference,
        "median": rnd(median(full)),
        "reference_median": rnd(median(reference)),
        "ratio_of_medians": rnd(median(full) / median(reference)),
        "paired_ratios": [rnd(a / b) for a, b in zip(full, reference, strict=True)],
    }


def repeated_train(folder: Path, repeats: int) -> dict[str, Any]:
    """The train stage `repeats` times in fresh processes, with the medians of its rates and of
    their ratio (each taken within one process)."""
    runs = []
    for i in range(repeats):
        runs.append(in_fresh_process("train", folder, 1))
        log(f"train {i + 1}/{repeats}: {runs[-1]}")
        if "error" in runs[-1]:
            return runs[-1]
    keys = ("train_windows_per_s", "test_windows_per_s", "test_to_train_rate", "seconds", "peak_rss_gb")
    return {"runs": runs, **{f"median_{k}": rnd(median([r[k] for r in runs])) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=30_000)
    ap.add_argument("--length", type=int, default=2_000)
    ap.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--shards", type=int, default=4, help="processes the shard_* stages split the series over")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--stage", choices=STAGES, help="run one stage in this process (the runner's fresh processes)")
    ap.add_argument("--folder", help="keep the files and runs here, and reuse the files written there before")
    ap.add_argument("--repeats", type=int, default=4, help="train_rate: runs on each panel, alternating")
    ap.add_argument("--train-repeats", type=int, default=1, help="train: runs, with the medians of their rates")
    ap.add_argument("--data", choices=("parquet", "reference"), default="parquet", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        folder = Path(args.folder)
        print(json.dumps(stage(args.stage, panel_files(folder), folder / "run", args.shards, args.data)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        reused = bool(args.folder) and panel_files(folder)["reference"].is_file()
        if reused:
            log(f"using the files in {folder} (--series and --length are theirs)")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            write_files(folder, args.series, args.length)
            log(f"wrote {args.series} x {args.length} in {time.perf_counter() - t0:.0f} s")
        stages = {}
        for name in args.only:
            if name == "train_rate":
                stages[name] = paired_rates(folder, args.repeats)
            elif name == "train" and args.train_repeats > 1:
                stages[name] = repeated_train(folder, args.train_repeats)
            else:
                stages[name] = in_fresh_process(name, folder, args.shards)
            log(f"{name}: {stages[name]}")
    report = {
        "benchmark": "many_series",
        **({"files": str(folder)} if reused else {"series": args.series, "length": args.length}),
        "settings": {"lookback": LOOKBACK, "horizon": HORIZON, "batch_size": BATCH, "steps_per_epoch": STEPS},
        "shards": args.shards,
        "stages": stages,
        "threads": torch.get_num_threads(),
        "malloc_thresholds_set": ALLOCATOR_SET,
    }
    write_json(report, args.out)


if __name__ == "__main__":
    main()
