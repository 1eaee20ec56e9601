"""Error metrics, accumulated over chunks of windows, and the baselines every model is shown beside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

METRICS = ("mae", "rmse", "mse", "mape", "smape", "mase", "mse_z", "mae_z")
FORECASTERS = ("model", "repeat_last", "seasonal_naive", "linear")  # every score puts the model beside the baselines


class Actuals:
    """A chunk's actual values and what every forecaster's errors on them share: computed once a
    chunk, then scored against the model and each baseline (Scores.add_to).

    series (W,); y_true (W, H, T) in original units; mask (W, H, T), True where a point counts
    (False where data.fill made the actual up), default all; std (S, T) as Scores keeps it."""

    def __init__(self, series: np.ndarray, y_true: np.ndarray, std: np.ndarray, mask: np.ndarray | None = None):
        self.series, self.mask = series, mask
        self.y_true = np.asarray(y_true, dtype=np.float64)
        self.abs_true = np.abs(self.y_true)
        counted = self.abs_true > 1e-9 * std[series, None, :]  # MAPE skips (near-)zero actuals
        if mask is not None:
            counted &= mask
        self.counted = counted  # the points MAPE divides by
        W, H, T = self.y_true.shape
        n = np.full((W, T), float(H)) if mask is None else mask.sum(axis=1, dtype=np.float64)
        self.counts = {"n_ape": counted.sum(axis=1, dtype=np.float64), "n": n}  # (W, T), like the error sums


class Scores:
    """Running sums of errors per series, so a backtest can be scored chunk by chunk.

    std and mase_scale are per series and target column: (S, T) arrays from training rows.
    """

    SUMS = ("ae", "se", "ape", "n_ape", "sape", "se_z", "ae_z", "ase", "n")

    def __init__(self, std: np.ndarray, mase_scale: np.ndarray):
        self.std = np.where(std > 0, std, 1.0)
        self.mase_scale = np.where(mase_scale > 0, mase_scale, 1.0)
        self.sums = {k: np.zeros(len(std)) for k in self.SUMS}

    def add(self, series: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> None:
        """series (W,), y_true and y_pred (W, H, T) in original units; mask (W, H, T), True where a
        point counts (e.g. False where data.fill made the actual up), default all."""
        self.add_to(Actuals(series, y_true, self.std, mask), y_pred)

    def add_to(self, actuals: Actuals, y_pred: np.ndarray) -> None:
        """The errors of y_pred (W, H, T) against a chunk's actuals. Each sum is taken over a
        window's steps (W, T); the ones scaled per series and target (z-scores, MASE) are scaled
        there rather than point by point, then summed per series of the chunk."""
        series = actuals.series
        if len(series) == 0:
            return
        err = np.subtract(y_pred, actuals.y_true, dtype=np.float64)
        if actuals.mask is not None:
            err[~actuals.mask] = 0.0  # masked points add nothing, even NaN
        abs_err = np.abs(err)
        denom = np.abs(y_pred, dtype=np.float64)
        denom += actuals.abs_true  # NaN at a masked NaN actual: no sMAPE term there
        sape = np.divide(abs_err, denom, out=np.zeros_like(denom), where=denom > 0)
        ae, se = abs_err.sum(axis=1), np.square(err, out=err).sum(axis=1)  # (W, T)
        ape = np.divide(abs_err, actuals.abs_true, out=np.zeros_like(abs_err), where=actuals.counted)
        std, scale = self.std[series], self.mase_scale[series]
        per_window = {
            "ae": ae,
            "se": se,
            "ape": ape.sum(axis=1),
            "sape": 2.0 * sape.sum(axis=1),
            "se_z": se / std**2,
            "ae_z": ae / std,
            "ase": ae / scale,
            **actuals.counts,
        }
        first = int(series.min())  # a chunk's windows mostly belong to a few neighbouring series
        for key in self.SUMS:
            counts = np.bincount(series - first, weights=per_window[key].sum(axis=1))
            self.sums[key][first : first + len(counts)] += counts

    def result(self, series: int | None = None) -> dict[str, float]:
        """Metrics over every window and step (all series, or one)."""
        s = {k: (v.sum() if series is None else v[series]) for k, v in self.sums.items()}
        n = s["n"]
        if n == 0:
            return {m: float("nan") for m in METRICS}
        mse = s["se"] / n
        return {
            "mae": float(s["ae"] / n),
            "rmse": float(np.sqrt(mse)),
            "mse": float(mse),
            "mape": float(100 * s["ape"] / s["n_ape"]) if s["n_ape"] else float("nan"),
            "smape": float(100 * s["sape"] / n),
            "mase": float(s["ase"] / n),
            "mse_z": float(s["se_z"] / n),
            "mae_z": float(s["ae_z"] / n),
        }


def train_stats(
    values: np.ndarray, offsets: np.ndarray, train_end: np.ndarray, n_targets: int, season: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per series: the population std of each target on training rows, and MASE's scale
    (mean absolute seasonal difference on training rows; lag 1 when the series is too short).
    Every series at once: sums over each series' training rows with np.add.reduceat."""
    x = values[:, :n_targets]
    starts, ends = offsets[:-1], offsets[:-1] + train_end
    mean = train_sums(x, starts, ends) / train_end[:, None]
    centered = x - np.repeat(mean, np.diff(offsets), axis=0)
    std = np.sqrt(train_sums(centered**2, starts, ends) / train_end[:, None])
    lag = np.where(train_end > season, season, 1)
    scale = np.ones_like(std)  # a series of one training row: no difference to take
    for k in np.unique(lag):  # one pass per lag in use: at most two
        diffs = np.zeros_like(x)
        diffs[k:] = np.abs(x[k:] - x[:-k])
        use = (lag == k) & (train_end > k)
        sums = train_sums(diffs, starts + k, ends)  # differences whose earlier row is in the same series
        scale[use] = sums[use] / (train_end[use, None] - k)
    return std, scale


def train_sums(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(S, T) sums of x over rows [starts[s], ends[s]) of each series; 0 where the range is empty."""
    bounds = np.minimum(np.column_stack([starts, np.maximum(ends, starts)]).ravel(), len(x))
    padded = np.vstack([x, np.zeros((1, x.shape[1]))])  # a row past the end, so every bound is an index
    sums = np.add.reduceat(padded, bounds, axis=0)[0::2]
    return np.where((ends > starts)[:, None], sums, 0.0)


# ---------------------------------------------------------------- baselines
# Each takes target inputs x (W, L, T) and returns (W, H, T), in any units.


def repeat_last(x: np.ndarray, horizon: int) -> np.ndarray:
    return np.repeat(x[:, -1:, :], horizon, axis=1)


def seasonal_naive(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last full season: step h takes the value `season` (or a multiple) steps back."""
    L = x.shape[1]
    m = season if 1 < season <= L else 1
    steps = np.arange(1, horizon + 1)
    back = m * ((steps - 1) // m + 1)  # smallest multiple of m that reaches into the window
    return x[:, L - back + (steps - 1), :]


def linear_moments(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X'X (L + 1, L + 1) and X'Y (L + 1, H) of last-value-subtracted windows x (N, L, T), y (N, H, T),
    one row per window and target column, a bias column last: sums, so shards of windows add up."""
    last = x[:, -1:, :]
    X = np.moveaxis(x - last, 2, 1).reshape(-1, x.shape[1])  # (N*T, L)
    Y = np.moveaxis(y - last, 2, 1).reshape(-1, y.shape[1])  # (N*T, H)
    X = np.hstack([X, np.ones((len(X), 1))])
    return X.T @ X, X.T @ Y


def solve_linear(moments: tuple[np.ndarray, np.ndarray], ridge: float = 1e-4) -> np.ndarray:
    """The least-squares weights (L + 1, H), bias last, with a touch of ridge."""
    gram, xty = moments[0].copy(), moments[1]
    gram[np.diag_indices_from(gram)] += ridge * np.trace(gram) / len(gram)
    return np.linalg.solve(gram, xty)


def fit_linear(
    x: np.ndarray, y: np.ndarray, ridge: float = 1e-4, pool: Callable[[Any], Any] | None = None
) -> np.ndarray:
    """Closed-form least squares on last-value-subtracted windows (NLinear-style), one map shared
    by every target column. x (N, L, T), y (N, H, T) -> weights (L + 1, H), bias last.
    pool sums the normal equations over processes (distributed.total) when each holds a shard."""
    moments = linear_moments(x, y)
    return solve_linear(pool(moments) if pool else moments, ridge)


def predict_linear(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    last = x[:, -1:, :]
    X = np.moveaxis(x - last, 2, 1)  # (W, T, L)
    out = X @ weights[:-1] + weights[-1]  # (W, T, H)
    return np.moveaxis(out, 1, 2) + last


def beside_baselines(
    pred: np.ndarray, x: np.ndarray, season: int, linear: np.ndarray
) -> tuple[tuple[str, np.ndarray], ...]:
    """The model's forecasts (W, H, T) beside the three baselines' on the same windows x (W, L, T),
    named as in FORECASTERS."""
    H = pred.shape[1]
    guesses = (pred, repeat_last(x, H), seasonal_naive(x, H, season), predict_linear(linear, x))
    return tuple(zip(FORECASTERS, guesses, strict=True))
