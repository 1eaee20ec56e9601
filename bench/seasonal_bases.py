"""The seasonal base forecasts alone, on the real series: what model.seasonal_base was chosen on.

For every file of the manifest (default: ../shared/data/real/suite.csv) that `train` would give
norm seasonal, it sets the data up as `train` does (sizes from the manifest, or chosen with
--modes auto) and scores, on the validation and on the test windows, seasonal naive and the
smoothed base (model.seasonal_base: the window's seasons averaged, at the last one's level, plus
a share of their trend) with trend shares 0, 0.5 (the default) and 1. Each is given as the ratio
of its MSE to the better of repeat-last and seasonal naive on the same windows (scaled units),
with geometric means over the files. The share was chosen on the validation columns.

    .venv/bin/python bench/seasonal_bases.py        # JSON in bench/results/seasonal_bases.json

Seconds on 2 cores; no training, no network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from common import ROOT, markdown_table, metrics, pipeline, quiet_log, seasonal_base, write_json
from realworld import DEFAULT_SUITE, file_config, geomean

SHARES = (0.0, 0.5, 1.0)  # of the window's trend per season ahead


def forecasts(x: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Every forecast scored here, of windows x (B, L, T) in scaled units."""
    t = torch.from_numpy(x)
    out = {
        "repeat_last": metrics.repeat_last(x, horizon),
        "seasonal_naive": metrics.seasonal_naive(x, horizon, season),
    }
    for share in SHARES:
        out[f"smoothed, trend x {share:g}"] = seasonal_base(t, horizon, season, trend_share=share).numpy()
    return out


def ratios(x: np.ndarray, y: np.ndarray, horizon: int, season: int) -> dict[str, float]:
    """Each forecast's MSE over the better naive forecast's."""
    mse = {name: float(((f - y) ** 2).mean()) for name, f in forecasts(x, horizon, season).items()}
    best = min(mse["repeat_last"], mse["seasonal_naive"])
    return {name: m / best for name, m in mse.items() if name != "repeat_last"}


def run_one(row: pd.Series, folder: Path, mode: str) -> dict[str, Any] | None:
    setup = pipeline.set_up(file_config(row, folder, mode, []), quiet_log)
    cfg, prep = setup.cfg, setup.prep
    if cfg.model.norm != "seasonal":
        return None
    L, H, season = cfg.model.lookback, cfg.model.horizon, cfg.model.season
    windows = prep.windows(cfg)
    out: dict[str, Any] = {"name": row["name"], "mode": mode, "lookback": L, "season": season}
    for part in ("val", "test"):
        starts = prep.starts(part, L, H)
        out[part] = ratios(windows.past_targets(starts), windows.targets(starts), H, season)
        out[f"{part}_windows"] = len(starts)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    names = list(rows[0]["val"])
    cells = [
        [r["name"], r["lookback"], r["season"], f"{r['val_windows']}/{r['test_windows']}"]
        + [f"{r[part][n]:.3f}" for part in ("val", "test") for n in names]
        for r in rows
    ]
    cells.append(
        [f"**geometric mean** ({len(rows)} files)", "", "", ""]
        + [f"**{geomean([r[part][n] for r in rows]):.3f}**" for part in ("val", "test") for n in names]
    )
    columns = ["series", "L", "season", "val/test windows"] + [
        f"{part}: {n}" for part in ("val", "test") for n in names
    ]
    return markdown_table(columns, cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="manifest CSV (default: %(default)s)")
    parser.add_argument("--modes", nargs="*", default=["manifest"], choices=["manifest", "auto"])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "seasonal_bases.json")
    args = parser.parse_args()
    if not args.suite.is_file():
        sys.exit(f"manifest {args.suite} not found; pass --suite")
    suite = pd.read_csv(args.suite, dtype=str, keep_default_na=False)
    result: dict[str, Any] = {"suite": str(args.suite), "modes": {}}
    for mode in args.modes:
        rows = [r for _, row in suite.iterrows() if (r := run_one(row, args.suite.parent, mode)) is not None]
        result["modes"][mode] = rows
        print(f"### {mode}\n\n{table(rows)}\n", file=sys.stderr)
    write_json(result, str(args.json))


if __name__ == "__main__":
    main()
