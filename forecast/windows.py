"""Stride-1 windows as start indices into one stacked (N, F) array, gathered by index; never materialized."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

PARTS = ("train", "val", "test")


def concat_ranges(lo: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate arange(lo[i], lo[i] + counts[i]) for every i, without a Python loop."""
    counts = np.maximum(counts, 0).astype(np.int64)
    first_pos = np.cumsum(counts) - counts  # where each range begins in the output
    return np.repeat(lo - first_pos, counts) + np.arange(int(counts.sum()), dtype=np.int64)


def window_starts(offsets: np.ndarray, borders: np.ndarray, part: str, lookback: int, horizon: int) -> np.ndarray:
    """Global row index of the first input row of every window whose targets lie in `part`.

    A window's targets are rows t .. t+H-1 and its inputs t-L .. t-1; it belongs to the part that
    holds its targets, and its inputs may reach back into earlier parts.
    borders: (S, 3) ends of train/val/test in rows from each series' start.
    """
    begin = np.zeros(len(borders), dtype=np.int64) if part in ("train", "all") else borders[:, PARTS.index(part) - 1]
    end = borders[:, 2] if part == "all" else borders[:, PARTS.index(part)]
    first_target = np.maximum(begin, lookback)
    counts = end - horizon - first_target + 1
    return concat_ranges(offsets[:-1] + first_target - lookback, counts)


def series_of(starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Which series each global start index belongs to."""
    return np.searchsorted(offsets, starts, side="right") - 1


class Windows:
    """The one gather: (x, y) of any windows, from one stacked (N, F) array by index arithmetic.

    values: a torch tensor (training, inference, on the model's device) or a numpy array (the
    baselines, in scaled units, and the actuals, in original units); targets in the first T
    columns and known-future (calendar) columns in the last C. Each method maps window starts
    (B,) of the same kind to a batch.
    """

    def __init__(self, values: Any, n_targets: int, lookback: int, horizon: int, n_future: int = 0):
        self.values = values
        self.n_targets = n_targets
        self.n_future = n_future
        self.lookback = lookback
        self.horizon = horizon
        if isinstance(values, torch.Tensor):
            self.in_offsets: Any = torch.arange(lookback, device=values.device)
            self.out_offsets: Any = torch.arange(lookback, lookback + horizon, device=values.device)
        else:
            self.in_offsets, self.out_offsets = np.arange(lookback), np.arange(lookback, lookback + horizon)

    def inputs(self, starts: Any) -> Any:
        """(B, L, F): every input column over the lookback."""
        return self.values[starts[:, None] + self.in_offsets]

    def past_targets(self, starts: Any) -> Any:
        """(B, L, T): the target columns over the lookback, what the baselines read."""
        return self.values[starts[:, None] + self.in_offsets, : self.n_targets]

    def targets(self, starts: Any) -> Any:
        """(B, H, T): the target columns over the forecast steps."""
        return self.values[starts[:, None] + self.out_offsets, : self.n_targets]

    def future(self, starts: Any) -> Any:
        """(B, H, C): the known-future columns over the forecast steps, or None."""
        if not self.n_future:
            return None
        return self.values[starts[:, None] + self.out_offsets, -self.n_future :]
