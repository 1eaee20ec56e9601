"""Window starts and contents for any series lengths, split borders, lookback and horizon."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from forecast.windows import PARTS, Windows, concat_ranges, series_of, window_starts


@st.composite
def panels(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(lengths (S,), borders (S, 3)): series of 1..120 rows, each cut into train/val/test (+ unused)."""
    lengths = np.array(draw(st.lists(st.integers(1, 120), min_size=1, max_size=4)))
    borders = []
    for n in lengths:
        cuts = sorted(draw(st.lists(st.integers(0, int(n)), min_size=3, max_size=3)))
        borders.append(cuts)
    return lengths, np.array(borders, dtype=np.int64)


PART_BOUNDS = {"train": (None, 0), "val": (0, 1), "test": (1, 2), "all": (None, 2)}


@given(panels(), st.integers(1, 30), st.integers(1, 30), st.sampled_from([*PARTS, "all"]))
def test_window_starts_are_exactly_the_windows_of_the_part(panel, lookback: int, horizon: int, part: str) -> None:
    lengths, borders = panel
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    starts = window_starts(offsets, borders, part, lookback, horizon)
    lo_col, hi_col = PART_BOUNDS[part]
    expected = []
    for s in range(len(lengths)):
        lo = 0 if lo_col is None else borders[s, lo_col]
        hi = borders[s, hi_col]
        count = max(0, hi - horizon - max(lo, lookback) + 1)
        first = offsets[s] + max(lo, lookback) - lookback
        expected.extend(range(first, first + count))
        # every window: inputs inside the series, targets inside the part
        mine = starts[series_of(starts, offsets) == s] - offsets[s]
        assert len(mine) == count
        assert ((mine >= 0) & (mine + lookback >= lo) & (mine + lookback + horizon <= hi)).all()
    assert starts.tolist() == expected
    assert (np.diff(starts) > 0).all()  # stride 1 within a series, in order


@given(panels(), st.integers(1, 10), st.integers(1, 10))
def test_parts_partition_the_windows_of_all(panel, lookback: int, horizon: int) -> None:
    # a window whose targets straddle two parts belongs to neither
    lengths, borders = panel
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    parts = [set(window_starts(offsets, borders, p, lookback, horizon).tolist()) for p in PARTS]
    every = set(window_starts(offsets, borders, "all", lookback, horizon).tolist())
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2]) and not (parts[0] & parts[2])
    assert parts[0] | parts[1] | parts[2] <= every


@given(panels(), st.integers(1, 12), st.integers(1, 12), st.integers(1, 3), st.integers(1, 2))
def test_windows_gather_the_right_rows(panel, lookback: int, horizon: int, n_columns: int, n_targets: int) -> None:
    lengths, borders = panel
    n_targets = min(n_targets, n_columns)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    starts = window_starts(offsets, borders, "all", lookback, horizon)
    rows = int(lengths.sum())
    values = torch.arange(rows * n_columns, dtype=torch.float32).reshape(rows, n_columns)
    win = Windows(values, n_targets, lookback, horizon)
    x, y = win.inputs(torch.from_numpy(starts)), win.targets(torch.from_numpy(starts))
    assert x.shape == (len(starts), lookback, n_columns) and y.shape == (len(starts), horizon, n_targets)
    for i, s in enumerate(starts[:20]):
        assert torch.equal(x[i], values[s : s + lookback])
        assert torch.equal(y[i], values[s + lookback : s + lookback + horizon, :n_targets])


@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(-3, 6)), max_size=6))
def test_concat_ranges_matches_a_loop(pairs: list[tuple[int, int]]) -> None:
    lo = np.array([p[0] for p in pairs], dtype=np.int64)
    counts = np.array([p[1] for p in pairs], dtype=np.int64)
    expected = [v for a, n in pairs for v in range(a, a + max(n, 0))]
    assert concat_ranges(lo, counts).tolist() == expected
