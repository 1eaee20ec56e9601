"""Forecasts from a trained model: the one batched prediction loop, long frames and intervals."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecast import calendar
from forecast.checkpoint import RunState
from forecast.config import Config
from forecast.distributed import autocast, side_by_side
from forecast.errors import ForecastError, Log, stderr_log
from forecast.model import Forecaster
from forecast.panel import Scaler
from forecast.prepare import Prepared
from forecast.windows import Windows, series_of

CHUNK_WINDOWS = 4096  # inference streams this many windows at a time
QUANTILE_LEVELS = np.linspace(0, 1, 201)  # stored conformal quantiles of |validation residual|


@dataclass
class Predictor:
    """A trained model and what its forecasts need: the resolved config, target names and device."""

    model: Forecaster
    cfg: Config
    targets: list[str]
    device: torch.device


def predict_chunks(
    p: Predictor, prep: Prepared, starts: np.ndarray, ahead: bool = False, progress: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (starts chunk, scaled forecasts (W, H, T)) for every window, batched, in bounded memory.

    ahead: the windows end at their series' last row, so the calendar inputs of the forecast steps
    come from the times that follow it rather than from rows of the data.
    """
    from tqdm.auto import tqdm

    cfg, model = p.cfg, p.model
    values = torch.from_numpy(prep.scaled).to(p.device)
    windows = Windows(values, model.n_targets, cfg.model.lookback, cfg.model.horizon, model.n_future)
    model.eval()
    batch = model.cpu_pass_windows() if p.device.type == "cpu" else CHUNK_WINDOWS

    def forecast(chunk: np.ndarray) -> np.ndarray:
        preds = []
        with torch.inference_mode(), autocast(p.device, cfg.train.precision):
            for part in np.array_split(chunk, math.ceil(len(chunk) / batch)):
                index = torch.from_numpy(part).to(p.device)
                future = future_calendar(p, prep, part) if ahead else windows.future(index)
                preds.append(model(windows.inputs(index), future).float())
        return torch.cat(preds).cpu().numpy()

    chunks = [starts[i : i + CHUNK_WINDOWS] for i in range(0, len(starts), CHUNK_WINDOWS)]
    bar = tqdm(
        total=len(chunks),
        desc="forecasting",
        unit="chunk",
        disable=not progress or len(chunks) < 4,
        file=sys.stderr,
        mininterval=1.0,  # a readable log where stderr is not a terminal
        dynamic_ncols=True,
    )
    with bar:
        for chunk, pred in zip(chunks, side_by_side(forecast, chunks, p.device), strict=True):
            bar.update()
            yield chunk, pred


def future_calendar(p: Predictor, prep: Prepared, starts: np.ndarray) -> torch.Tensor | None:
    """(W, H, C) calendar inputs of the steps after windows that end at their series' last row."""
    if not p.model.n_future:
        return None
    times = target_times(prep, starts + p.cfg.model.lookback - 1, p.cfg.model.horizon, ahead=True)
    features = calendar.calendar_features(times.reshape(-1)).reshape(*times.shape, -1)
    return torch.from_numpy(features).float().to(p.device)


def target_times(prep: Prepared, origins: np.ndarray, horizon: int, ahead: bool) -> np.ndarray:
    """(W, H) times of the steps after each origin row: the data's own, or (ahead) continued by its calendar."""
    panel = prep.panel
    if ahead:
        anchor = None
        if calendar.step_of(panel.freq)[0] == "months":  # each series' day in the month, from all its rows
            anchor = calendar.month_anchor(panel.times, panel.offsets)[series_of(origins, panel.offsets)]
        return calendar.continue_times(panel.times[origins], panel.freq, horizon, panel.holidays, anchor)
    return panel.times[origins[:, None] + np.arange(1, horizon + 1)]


def interval_width(half_width: np.ndarray, scaler: Scaler, series: np.ndarray, n_targets: int) -> np.ndarray:
    """(W, H, T) half-widths in original units for windows of `series`, from scaled (H, T) ones."""
    return half_width[None, :, :] * scaler.scale[series, None, :n_targets]


def conformal_half_width(state: RunState, coverage: float | None) -> np.ndarray | None:
    """(H, T) half-widths in scaled units: the finite-sample-corrected quantile of validation |residuals|."""
    if coverage is None:
        return None
    if not 0 < coverage < 1:
        raise ForecastError(f"coverage must be between 0 and 1 (e.g. 0.9), got {coverage!r}")
    if state.conformal is None:
        raise ForecastError(
            "this run has no validation windows, so it cannot give intervals; train with data.split.val > 0"
        )
    n = state.n_val_windows
    level = math.ceil((n + 1) * coverage) / n
    if level > 1:  # split-conformal needs n >= coverage / (1 - coverage) windows: 9 for 0.9, 19 for 0.95
        need = math.ceil(coverage / (1 - coverage) - 1e-9)
        warnings.warn(
            f"{coverage:g} intervals need {need} validation windows and this run has {n}: they span the "
            "largest validation error and cover less than asked; train with a longer validation split",
            stacklevel=2,
        )
        level = 1.0
    q = state.conformal.numpy()  # (levels, H, T)
    i = int(np.searchsorted(QUANTILE_LEVELS, level - 1e-12))
    return q[min(i, len(q) - 1)]


def long_frame(
    p: Predictor, prep: Prepared, chunk: np.ndarray, pred: np.ndarray, ahead: bool, half_width: np.ndarray | None
) -> pd.DataFrame:
    """One row per (window, step, target): series, target, origin, timestamp, step, y_pred[, y_true][, y_lo, y_hi].

    ahead: forecasts after each series' last row (no actuals); else a backtest with its actuals."""
    L, H, T = p.cfg.model.lookback, p.cfg.model.horizon, len(p.targets)
    series = series_of(chunk, prep.panel.offsets)
    y_pred = prep.scaler.inverse(pred, series, T)  # (W, H, T)
    W = len(chunk)
    origin_rows = chunk + L - 1
    frame: dict[str, Any] = {}
    if p.cfg.data.id_column:
        frame["series"] = np.repeat(np.array(prep.panel.ids, dtype=object)[series], H * T)
    frame["target"] = np.tile(np.array(p.targets, dtype=object), W * H)
    frame["origin"] = np.repeat(prep.panel.times[origin_rows], H * T)
    frame["timestamp"] = np.repeat(target_times(prep, origin_rows, H, ahead).reshape(-1), T)
    frame["step"] = np.tile(np.repeat(np.arange(1, H + 1), T), W)
    frame["y_pred"] = y_pred.reshape(-1)
    if not ahead:
        frame["y_true"] = prep.windows(p.cfg, scaled=False).targets(chunk).reshape(-1)
    if half_width is not None:
        width = interval_width(half_width, prep.scaler, series, T)
        frame["y_lo"] = (y_pred - width).reshape(-1)
        frame["y_hi"] = (y_pred + width).reshape(-1)
    return pd.DataFrame(frame)


def backtest_frames(
    p: Predictor, prep: Prepared, starts: np.ndarray, half_width: np.ndarray | None = None, progress: bool = False
) -> Iterator[pd.DataFrame]:
    """The long predictions table of the windows at `starts`, chunk by chunk, in original units."""
    for chunk, pred in predict_chunks(p, prep, starts, progress=progress):
        yield long_frame(p, prep, chunk, pred, False, half_width)


def forecast_frame(
    p: Predictor, prep: Prepared, half_width: np.ndarray | None = None, log: Log = stderr_log
) -> pd.DataFrame:
    """The `horizon` steps after the last row of each series that holds a lookback of rows; the
    others are named in a warning (an error when none does)."""
    L, ids, lengths = p.cfg.model.lookback, prep.panel.ids, prep.panel.lengths()
    short = lengths < L
    if short.all():
        where = f"series {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}" if ids[0] else "the series"
        raise ForecastError(
            f"{where}: fewer rows ({int(lengths.max())} at most) than the lookback ({L}); cannot forecast"
        )
    if short.any():
        names = [ids[i] for i in np.flatnonzero(short)]
        more = " ..." if len(names) > 10 else ""
        log(
            f"warning: skipping {len(names)} series with fewer rows than the lookback ({L}): "
            f"{', '.join(names[:10])}{more}"
        )
    last_starts = (prep.panel.offsets[1:] - L)[~short]
    frames = [
        long_frame(p, prep, chunk, pred, True, half_width)
        for chunk, pred in predict_chunks(p, prep, last_starts, ahead=True)
    ]
    return pd.concat(frames, ignore_index=True)
