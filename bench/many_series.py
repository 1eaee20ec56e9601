"""Many series, one global model: 10,000 series of 500 steps in one long-format CSV.

Times each stage of `forecast train` on it (load and validate, scale, one epoch, evaluation) and
prints JSON. The hot path (batch gathering and the training step) has no per-series loop: every
series lives in one stacked tensor and windows are start indices into it. Run on purpose:

    .venv/bin/python bench/many_series.py                    # 10,000 x 500
    .venv/bin/python bench/many_series.py --series 500       # smaller
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import api, config, load_panel, prepare, quiet_log


def make_csv(path: Path, n_series: int, length: int, seed: int = 0) -> None:
    """Daily series with their own level, trend, weekly season and noise, and staggered starts."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = rng.uniform(10, 100, (n_series, 1))
    trend = rng.normal(0, 0.05, (n_series, 1)) * t
    season = rng.uniform(1, 5, (n_series, 1)) * np.sin(2 * np.pi * (t + rng.integers(0, 7, (n_series, 1))) / 7)
    values = level + trend + season + rng.normal(0, 1, (n_series, length))
    starts = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n_series), unit="D")
    dates = (starts.to_numpy()[:, None] + np.arange(length) * np.timedelta64(1, "D")).reshape(-1)
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"s{i:05d}" for i in range(n_series)], length),
            "date": pd.DatetimeIndex(dates).strftime("%Y-%m-%d"),
            "sales": values.reshape(-1).round(3),
        }
    )
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=200, help="training batches (of 512 windows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "many.csv"
        t0 = time.perf_counter()
        make_csv(csv, args.series, args.length)
        cfg = config.Config()
        cfg.data.path, cfg.data.id_column, cfg.data.target = str(csv), "id", ["sales"]
        cfg.model.lookback, cfg.model.horizon, cfg.model.hidden_size = 56, 14, 32
        cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 512, args.device
        cfg.train.steps_per_epoch = args.steps  # an epoch of random batches drawn across all series
        timings = {"write_csv_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        panel = load_panel(cfg.data)
        timings["load_and_validate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prep = prepare(cfg, panel)
        timings["split_and_scale_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = api.train(cfg, out=str(Path(tmp) / "run"), quiet=True, log=quiet_log)
        timings["train_command_s"] = time.perf_counter() - t0
        run = api.load(Path(tmp) / "run")
        epoch_s = run.state.history["seconds"][0]
        n_train = len(prep.starts("train", 56, 14))
        trained = min(n_train, args.steps * cfg.train.batch_size)
    report = {
        "series": args.series,
        "length": args.length,
        "rows": args.series * args.length,
        "train_windows": n_train,
        "windows_trained": trained,
        "epoch_s": round(epoch_s, 2),
        "train_windows_per_s": round(trained / epoch_s),
        **{k: round(v, 2) for k, v in timings.items()},
        "test_mse_z": summary.metrics["models"]["model"]["mse_z"],
        "test_mse_z_linear": summary.metrics["models"]["linear"]["mse_z"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "device": run.state.record.device,
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
