"""Settings left to the data: horizon, lookback, season, normalization, segments and the training budget.

Every choice here uses the training rows only, and each is printed by `train` and saved in the
run's config, so a run never depends on how it was chosen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecast import metrics
from forecast.config import Config
from forecast.errors import ForecastError

MIN_STEPS_PER_EPOCH = 25  # small data: an epoch draws at least this many batches, so 20 epochs train
MAX_STEPS_PER_EPOCH = 100  # long data: at most this many, so training time stops growing with length
MAX_BATCH = 256
MAX_RNN_STEPS = 96  # longer lookbacks are read in segments of several rows a step


def default_horizon(season: int, step_seconds: float | None) -> int:
    """A forecast horizon that people use for this frequency: a year of months, two weeks of days, a day of hours."""
    if step_seconds is None:  # calendar steps: months, quarters, years, business days, weeks
        return {12: 12, 4: 8, 5: 10, 52: 13, 26: 13}.get(season, 6)
    day = 86_400
    if step_seconds >= day:
        return 14 if step_seconds == day else 8
    return max(1, min(day // int(step_seconds), 288))  # a day ahead, at most 288 steps


MAX_WEEK_LOOKBACK = 1024  # sub-daily data sees a whole week when a week is at most this many steps


def default_lookback(horizon: int, season: int, train_rows: int, step: float | None = None) -> int:
    """Three seasons or two horizons, whichever is longer; for sub-daily data (`step` seconds) a
    whole week where that fits, since load, traffic and calls repeat weekly; always leaving the
    train part windows."""
    lookback = max(2 * horizon, 3 * season if season > 1 else 0, 12)
    if step is not None and step < 86_400:
        week = int(7 * 86_400 // step)
        if week <= MAX_WEEK_LOOKBACK:
            lookback = max(lookback, week)
    # leave at least half the training rows as window starts, when the series allows it
    room = (train_rows - horizon) // 2
    return int(max(min(lookback, room), min(horizon, room), 1))


def default_segment(lookback: int) -> int:
    """Rows per recurrent step: 1 up to MAX_RNN_STEPS steps, else the smallest divisor that gets there."""
    if lookback <= MAX_RNN_STEPS:
        return 1
    return next(d for d in range(2, lookback + 1) if lookback % d == 0 and lookback // d <= MAX_RNN_STEPS)


def naive_errors(train_x: np.ndarray, train_y: np.ndarray, seasonal: np.ndarray) -> np.ndarray:
    """Summed squared errors of a seasonal forecast (B, H, T) of the training windows and of
    repeat-last on them: (2,)."""
    last = metrics.repeat_last(train_x, train_y.shape[1])
    return np.array([((seasonal - train_y) ** 2).sum(), ((last - train_y) ** 2).sum()], dtype=np.float64)


def seasonal_beats_last(
    train_x: np.ndarray,
    train_y: np.ndarray,
    seasonal: np.ndarray,
    pool: Callable[[np.ndarray], np.ndarray] | None = None,
) -> bool:
    """Whether the seasonal forecast `seasonal` of the training windows has the lower MSE than
    repeat-last; pool sums the errors over processes (distributed.total) when each holds a shard."""
    errors = naive_errors(train_x, train_y, seasonal)
    seasonal_error, last = pool(errors) if pool else errors
    return bool(seasonal_error < last)


@dataclass
class Budget:
    batch_size: int
    steps_per_epoch: int  # 0 = every window once
    epochs: int

    def describe(self, n_windows: int) -> str:
        per_epoch = self.steps_per_epoch or math.ceil(n_windows / self.batch_size)
        return (
            f"up to {self.epochs} epochs x {per_epoch} batches of {self.batch_size} "
            f"({self.epochs * per_epoch} steps over {n_windows} training windows)"
        )


def training_budget(cfg: Config, n_windows: int) -> Budget:
    """Batch size and batches per epoch from the number of training windows, unless the config sets them.

    Counted in optimizer steps: a 200-row monthly series (about 100 windows) still gets
    20 x 25 steps, and a series of millions of windows is not trained for hours.
    """
    batch = cfg.train.batch_size or int(min(MAX_BATCH, max(16, 2 ** math.floor(math.log2(max(n_windows / 8, 1))))))
    steps = cfg.train.steps_per_epoch
    if steps is None:
        steps = int(np.clip(math.ceil(n_windows / batch), MIN_STEPS_PER_EPOCH, MAX_STEPS_PER_EPOCH))
    return Budget(batch, steps, cfg.train.epochs)


Pool = Callable[[np.ndarray], np.ndarray]  # sums an array over processes (distributed.total), each holding a shard


def _summed(value: np.ndarray, pool: Pool | None) -> np.ndarray:
    return pool(value) if pool else value


def ridge_path(x: np.ndarray, r: np.ndarray, pool: Pool | None = None) -> tuple[np.ndarray, ...]:
    """What ridge fits from normalized windows x (N, L, T) to residuals r (N, H, T) share:
    (eigenvalues, eigenvectors and V^T X^T Y of the centered Gram matrix, x_mean, y_mean). One map
    for every target column, with an unshrunk bias. Built from sums, which `pool` adds up over
    processes: sharded, the fit is the one a single process holding every series makes."""
    X, Y = as_rows(x), as_rows(r)  # (N*T, L), (N*T, H)
    L = X.shape[1]
    sums = np.concatenate([[len(X)], X.sum(axis=0), Y.sum(axis=0), (X.T @ X).ravel(), (X.T @ Y).ravel()])
    sums = _summed(sums, pool)
    n = max(sums[0], 1.0)
    x_mean, y_mean = sums[1 : 1 + L] / n, sums[1 + L : 1 + L + Y.shape[1]] / n
    rest = sums[1 + L + Y.shape[1] :]
    XtX, XtY = rest[: L * L].reshape(L, L), rest[L * L :].reshape(L, -1)
    gram = XtX - n * np.outer(x_mean, x_mean)  # of the centered windows
    cross = XtY - n * np.outer(x_mean, y_mean)
    eig, V = np.linalg.eigh((gram + gram.T) / 2)
    return np.clip(eig[::-1], 0, None), V[:, ::-1], V[:, ::-1].T @ cross, x_mean, y_mean


def ridge_fit(path: tuple[np.ndarray, ...], lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(weight (H, L), bias (H,)) of the ridge fit with strength lam."""
    eig, V, VtXtY, x_mean, y_mean = path
    coef = V @ (VtXtY / (eig + lam)[:, None])  # (L, H)
    return coef.T.astype(np.float32), (y_mean - x_mean @ coef).astype(np.float32)


def ridge_strengths(path: tuple[np.ndarray, ...]) -> np.ndarray:
    """Candidate ridge strengths, relative to the largest eigenvalue of the centered Gram matrix
    (the largest squared singular value of the centered windows)."""
    eig = path[0]
    top = float(eig[0]) if len(eig) and eig[0] > 0 else 1.0
    return top * np.logspace(-6, 2, 17)


def as_rows(x: np.ndarray) -> np.ndarray:
    """(N, L, T) windows -> (N*T, L): one row per window and target column, the ridge map's input
    (or output) rows, contiguous, so that applying the map is one BLAS product."""
    return np.moveaxis(x, 2, 1).reshape(-1, x.shape[1])


def apply_ridge(fit: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The fitted residuals: normalized window rows (M, L) -> (M, H)."""
    weight, bias = fit
    return rows @ weight.T + bias


COMBINATION_WEIGHTS = (0.25, 0.5, 0.75, 1.0)  # of the ridge correction, beside the base forecast's 1 - w
MIN_HELD_OUT = 8  # held-out windows below which no correction is chosen: too few to tell 68 candidates from chance


def enough_windows(n_fit: float, n_held_out: float) -> bool:
    """Whether choose_ridge has windows enough to fit on and to choose on (MIN_HELD_OUT held out)."""
    return n_held_out >= MIN_HELD_OUT and n_fit >= 2


def choose_ridge(
    fit_on: tuple[np.ndarray, np.ndarray], held_out: tuple[np.ndarray, np.ndarray], pool: Pool | None = None
) -> tuple[float, float] | None:
    """The ridge strength, and the weight w of its correction, whose fit on earlier windows best
    predicts the residuals of later, held-out ones; None when predicting no residual (the base
    forecast alone) does better. Each tuple is (normalized windows, residuals to the base forecast);
    `pool` adds sums up over processes, so that every process makes the choice one process
    holding every series makes.

    Stride-1 windows overlap, so in-sample criteria (GCV, leave-one-out) pick too little
    shrinkage on short series; scoring forecasts of later windows does not, given enough of them
    (MIN_HELD_OUT: with fewer, the base forecast alone is kept). The weight combines
    the base forecast (1 - w) with base + ridge (w): ridge shrinks the map but not its bias, the
    mean correction (on a trending series, the drift of the fitting years), and a drift that
    slows is forecast better damped, as combinations and Theta's halved drift do.
    """
    hx, hr = as_rows(held_out[0]), as_rows(held_out[1])
    counts = _summed(np.array([len(fit_on[0]), hr.size, len(held_out[0])], dtype=np.float64), pool)
    if not enough_windows(counts[0], counts[2]):
        return None
    path = ridge_path(*fit_on, pool=pool)
    strengths = ridge_strengths(path)
    candidates = [(float(lam), w) for lam in strengths for w in COMBINATION_WEIGHTS]
    errors = []
    for lam in strengths:
        fitted = apply_ridge(ridge_fit(path, lam), hx)
        errors += [float(((w * fitted - hr) ** 2).sum()) for w in COMBINATION_WEIGHTS]
    scores = _summed(np.array([*errors, float((hr**2).sum())]), pool) / counts[1]  # MSEs; the last: the base's
    best = int(np.argmin(scores[:-1]))
    return candidates[best] if scores[best] < scores[-1] else None


def step_seconds(freq: str) -> float | None:
    """The length of one step in seconds for fixed frequencies (hours, days); None for calendar ones."""
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    if offset.rule_code.upper() == "D":  # a fixed day; pandas 3 no longer counts Day as a fixed Tick
        return 86_400.0 * offset.n
    try:
        return offset.nanos / 1e9
    except ValueError:
        return None


SHORT_SERIES_PARTS = 5  # a horizon chosen for a short series is at most this fraction of its rows
MIN_ROWS = 10  # fewer rows leave no room for training windows beside a validation and a test window
MIN_SEASON_WINDOWS = 4  # training windows a short series must keep for its lookback to grow to a season


def choose_sizes(cfg: Config, season: int, freq: str, train_rows: int, rows: int) -> list[str]:
    """Fill in horizon, lookback, season and segment left unset; return what was chosen, to print.
    `rows`: a series' length (the median one): the horizon is at most a fifth of it, so that a
    short series still has room for a test part, a validation part and training windows."""
    chosen = []
    model = cfg.model
    if not model.season:
        model.season = season
    if not model.horizon:
        if rows < MIN_ROWS:
            raise ForecastError(
                f"a series of {rows} rows is too short to train and test a forecaster on; it needs at least "
                f"{MIN_ROWS} (training windows, then a validation and a test window)"
            )
        model.horizon = default_horizon(model.season, step_seconds(freq))
        if model.horizon > max(rows // SHORT_SERIES_PARTS, 1):
            model.horizon = max(rows // SHORT_SERIES_PARTS, 1)
            chosen.append(f"horizon {model.horizon} (a fifth of the {rows} rows: a short series)")
        else:
            chosen.append(f"horizon {model.horizon}")
    if not model.lookback:
        model.lookback = default_lookback(model.horizon, model.season, train_rows, step_seconds(freq))
        if 1 < model.season and model.lookback < model.season:
            # a short series: one whole season in the window (a seasonal forecast to start from)
            # where the training part, after a horizon each for validation and test, keeps windows
            train_after = min(train_rows, rows - 2 * model.horizon)
            if train_after - model.horizon - model.season + 1 >= MIN_SEASON_WINDOWS:
                model.lookback = model.season
        chosen.append(f"lookback {model.lookback}")
    if not model.segment:
        model.segment = default_segment(model.lookback)
        if model.segment > 1:
            chosen.append(f"segment {model.segment}")
    return chosen
