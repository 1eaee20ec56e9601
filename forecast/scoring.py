"""The model scored beside its three baselines on the same windows, with the statistics it needs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from forecast import calendar, metrics
from forecast.checkpoint import RunState
from forecast.distributed import gather, gather_series, total
from forecast.inference import QUANTILE_LEVELS, Predictor, interval_width, predict_chunks
from forecast.prepare import MAX_STAT_WINDOWS, Prepared, subsample
from forecast.windows import Windows, series_of


def reference_stats(p: Predictor, prep: Prepared, sharded: bool = False) -> dict[str, Any]:
    """What evaluation needs from training data, as RunState fields: z-score and MASE scales (of
    this process's series), the closed-form linear baseline, conformal quantiles of validation
    residuals and validation MSEs. Sharded, the last three pool every process's windows."""
    cfg, panel = p.cfg, prep.panel
    L, H, T = cfg.model.lookback, cfg.model.horizon, panel.n_targets
    season = calendar.season_length(panel.freq)
    std, mase_scale = metrics.train_stats(panel.values, panel.offsets, prep.borders[:, 0], T, season)
    windows = prep.windows(cfg)
    train = subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS)
    x, y = windows.past_targets(train).astype(np.float64), windows.targets(train).astype(np.float64)
    linear = metrics.fit_linear(x, y, pool=total if sharded else None)
    stats: dict[str, Any] = {
        "season": season,
        "train_std": torch.from_numpy(std),
        "mase_scale": torch.from_numpy(mase_scale),
        "linear": torch.from_numpy(linear),
    }
    val = subsample(prep.starts("val", L, H), MAX_STAT_WINDOWS)  # exchangeable: a subset stays valid
    residuals, sq = [np.zeros((0, H, T), np.float32)], np.zeros(4)
    for chunk, pred in predict_chunks(p, prep, val):
        y = windows.targets(chunk)
        residuals.append(np.abs(pred - y))
        for i, (_, guess) in enumerate(metrics.beside_baselines(pred, windows.past_targets(chunk), season, linear)):
            sq[i] += float(((guess - y) ** 2).sum())
    n_val = len(val)
    if sharded:
        residuals, sq, n_val = gather(np.concatenate(residuals)), total(sq), total(n_val)
    if n_val:
        q = np.quantile(np.concatenate(residuals), QUANTILE_LEVELS, axis=0, method="higher")
        stats.update(conformal=torch.from_numpy(q), n_val_windows=n_val)  # (levels, H, T), scaled
        stats["val_mse"] = {name: float(v) / (n_val * H * T) for name, v in zip(metrics.FORECASTERS, sq, strict=True)}
    return stats


def score(
    p: Predictor,
    state: RunState,
    prep: Prepared,
    starts: np.ndarray,
    half_width: np.ndarray | None,
    sharded: bool = False,
) -> dict[str, Any]:
    """Metrics of the model and the baselines over the windows at `starts`, overall and per series,
    with the intervals' empirical coverage when `half_width` is given. Filled actuals are not scored.
    Sharded, every process scores its own series and each gets the totals over all of them."""
    T = len(p.targets)
    rows = state.rows_for(prep.panel.ids)
    std, scale = state.train_std.numpy()[rows], state.mase_scale.numpy()[rows]
    linear = state.linear.numpy()
    scores = {name: metrics.Scores(std, scale) for name in metrics.FORECASTERS}
    scaled, actual = prep.windows(p.cfg), prep.windows(p.cfg, scaled=False)
    filled = prep.panel.filled  # (N, F) cells that data.fill made up
    made_up = (
        Windows(filled, T, p.cfg.model.lookback, p.cfg.model.horizon) if filled is not None and filled.any() else None
    )
    covered = width = 0.0
    excluded = 0
    for chunk, pred in predict_chunks(p, prep, starts, progress=True):
        series = series_of(chunk, prep.panel.offsets)
        y_true = actual.targets(chunk)
        mask = None if made_up is None else ~made_up.targets(chunk)
        excluded += 0 if mask is None else int((~mask).sum())
        actuals = metrics.Actuals(series, y_true, scores["model"].std, mask)  # shared by the four
        for name, guess in metrics.beside_baselines(pred, scaled.past_targets(chunk), state.season, linear):
            scores[name].add_to(actuals, prep.scaler.inverse(guess, series, T))
        if half_width is not None:
            y_pred = prep.scaler.inverse(pred, series, T)
            w = interval_width(half_width, prep.scaler, series, T)
            counted = np.ones(w.shape, bool) if mask is None else mask
            covered += float(((np.abs(y_true - y_pred) <= w) & counted).sum())
            width += float(2 * (w * counted).sum())
    ids, windows = prep.panel.ids, len(starts)
    if sharded:  # every process's series, in the order one process would hold them
        scores, ids = pooled(scores, ids)
        windows, covered, width, excluded = total(np.array([windows, covered, width, excluded]))
    result: dict[str, Any] = {
        "windows": int(windows),
        "models": {name: s.result() for name, s in scores.items()},
        "filled_points_excluded": int(excluded),
    }
    if half_width is not None:
        n = max(windows * p.cfg.model.horizon * T - excluded, 1)
        result["intervals"] = {"empirical_coverage": covered / n, "mean_width": width / n}
    if len(ids) > 1:
        result["series"] = {sid: {name: s.result(i) for name, s in scores.items()} for i, sid in enumerate(ids)}
    return result


def pooled(scores: dict[str, metrics.Scores], ids: list[str]) -> tuple[dict[str, metrics.Scores], list[str]]:
    """The per-series sums of every process, sorted by series id."""
    mine: dict[str, Any] = {"ids": np.array(ids, dtype=object)}
    for name, s in scores.items():
        mine |= {f"{name}.std": s.std, f"{name}.scale": s.mase_scale}
        mine |= {f"{name}.{key}": value for key, value in s.sums.items()}
    every = gather_series(mine)
    out = {}
    for name in scores:
        out[name] = metrics.Scores(every[f"{name}.std"], every[f"{name}.scale"])
        out[name].sums = {key: every[f"{name}.{key}"] for key in metrics.Scores.SUMS}
    return out, [str(sid) for sid in every["ids"]]
