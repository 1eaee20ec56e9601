"""The model scored beside its three baselines on the same windows, with the statistics it needs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from forecast import calendar, metrics
from forecast.checkpoint import RunState
from forecast.inference import QUANTILE_LEVELS, Predictor, interval_width, predict_chunks
from forecast.prepare import MAX_STAT_WINDOWS, Prepared, subsample
from forecast.windows import Windows, series_of


def reference_stats(p: Predictor, prep: Prepared) -> dict[str, Any]:
    """What evaluation needs from training data, as RunState fields: z-score and MASE scales, the
    closed-form linear baseline, conformal quantiles of validation residuals and validation MSEs."""
    cfg, panel = p.cfg, prep.panel
    L, H, T = cfg.model.lookback, cfg.model.horizon, panel.n_targets
    season = calendar.season_length(panel.freq)
    std, mase_scale = metrics.train_stats(panel.values, panel.offsets, prep.borders[:, 0], T, season)
    windows = prep.windows(cfg)
    train = subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS)
    linear = metrics.fit_linear(
        windows.past_targets(train).astype(np.float64), windows.targets(train).astype(np.float64)
    )
    stats: dict[str, Any] = {
        "season": season,
        "train_std": torch.from_numpy(std),
        "mase_scale": torch.from_numpy(mase_scale),
        "linear": torch.from_numpy(linear),
    }
    val = subsample(prep.starts("val", L, H), MAX_STAT_WINDOWS)  # exchangeable: a subset stays valid
    if len(val):
        residuals, sq = [], dict.fromkeys(("model", "repeat_last", "seasonal_naive", "linear"), 0.0)
        for chunk, pred in predict_chunks(p, prep, val):
            y = windows.targets(chunk)
            residuals.append(np.abs(pred - y))
            for name, guess in metrics.beside_baselines(pred, windows.past_targets(chunk), season, linear):
                sq[name] += float(((guess - y) ** 2).sum())
        q = np.quantile(np.concatenate(residuals), QUANTILE_LEVELS, axis=0, method="higher")
        stats.update(conformal=torch.from_numpy(q), n_val_windows=len(val))  # (levels, H, T), scaled
        stats["val_mse"] = {name: v / (len(val) * H * T) for name, v in sq.items()}  # scaled units
    return stats


def score(
    p: Predictor, state: RunState, prep: Prepared, starts: np.ndarray, half_width: np.ndarray | None
) -> dict[str, Any]:
    """Metrics of the model and the baselines over the windows at `starts`, overall and per series,
    with the intervals' empirical coverage when `half_width` is given. Filled actuals are not scored."""
    T = len(p.targets)
    rows = state.rows_for(prep.panel.ids)
    std, scale = state.train_std.numpy()[rows], state.mase_scale.numpy()[rows]
    linear = state.linear.numpy()
    scores = {name: metrics.Scores(std, scale) for name in ("model", "repeat_last", "seasonal_naive", "linear")}
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
        for name, guess in metrics.beside_baselines(pred, scaled.past_targets(chunk), state.season, linear):
            scores[name].add(series, y_true, prep.scaler.inverse(guess, series, T), mask)
        if half_width is not None:
            y_pred = prep.scaler.inverse(pred, series, T)
            w = interval_width(half_width, prep.scaler, series, T)
            counted = np.ones(w.shape, bool) if mask is None else mask
            covered += float(((np.abs(y_true - y_pred) <= w) & counted).sum())
            width += float(2 * (w * counted).sum())
    result: dict[str, Any] = {
        "models": {name: s.result() for name, s in scores.items()},
        "filled_points_excluded": excluded,
    }
    if half_width is not None:
        n = max(len(starts) * p.cfg.model.horizon * T - excluded, 1)
        result["intervals"] = {"empirical_coverage": covered / n, "mean_width": width / n}
    if len(prep.panel.ids) > 1:
        result["series"] = {
            sid: {name: s.result(i) for name, s in scores.items()} for i, sid in enumerate(prep.panel.ids)
        }
    return result
