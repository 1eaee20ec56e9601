"""windows: stride-1 window starts per split part, and batches gathered by index arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast.windows import Windows, concat_ranges, series_of, window_starts


def brute_force_starts(lengths: list[int], borders: list[list[int]], part: str, L: int, H: int) -> list[int]:
    """Every window whose H targets all lie in `part` and whose L inputs lie in the series."""
    out, offset = [], 0
    for n, (train, val, test) in zip(lengths, borders, strict=True):
        lo, hi = {"train": (0, train), "val": (train, val), "test": (val, test), "all": (0, test)}[part]
        for t in range(n):  # t: first target row
            if t - L >= 0 and lo <= t and t + H <= hi:
                out.append(offset + t - L)
        offset += n
    return out


def starts_of(lengths: list[int], borders: list[list[int]], part: str, L: int, H: int) -> list[int]:
    offsets = np.cumsum([0, *lengths])
    return window_starts(offsets, np.array(borders), part, L, H).tolist()


def test_concat_ranges() -> None:
    assert concat_ranges(np.array([5, 0, 10]), np.array([3, 0, 2])).tolist() == [5, 6, 7, 10, 11]
    assert concat_ranges(np.array([5, 10]), np.array([-4, 2])).tolist() == [10, 11]  # negative counts: empty
    assert concat_ranges(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []


def test_window_counts_single_series() -> None:
    # 300 rows split 210/30/60, lookback 24, horizon 6
    borders, L, H = [[210, 240, 300]], 24, 6
    assert len(starts_of([300], borders, "train", L, H)) == 210 - L - H + 1  # 181
    assert len(starts_of([300], borders, "val", L, H)) == 30 - H + 1  # inputs reach back into train
    assert len(starts_of([300], borders, "test", L, H)) == 60 - H + 1
    assert len(starts_of([300], borders, "all", L, H)) == 300 - L - H + 1


def test_window_belongs_to_the_part_holding_its_targets() -> None:
    borders, L, H = [[210, 240, 300]], 24, 6
    val = starts_of([300], borders, "val", L, H)
    assert val[0] + L == 210  # first val window: its first target is the first val row
    assert val[-1] + L + H == 240  # last val window: its last target is the last val row
    assert val[0] < 210  # and its inputs are training rows
    test = starts_of([300], borders, "test", L, H)
    assert test[0] + L == 240 and test[-1] + L + H == 300


def test_window_starts_multi_series_match_brute_force() -> None:
    lengths = [300, 260, 40, 31]
    borders = [[210, 240, 300], [182, 208, 260], [28, 32, 40], [21, 24, 31]]
    for part in ("train", "val", "test", "all"):
        for L, H in ((24, 6), (1, 1), (5, 3)):
            assert starts_of(lengths, borders, part, L, H) == brute_force_starts(lengths, borders, part, L, H)


def test_window_starts_short_parts_give_no_windows() -> None:
    # val has 3 rows < horizon 6: no val window; a tiny series gives no training window
    assert starts_of([300], [[210, 213, 300]], "val", 24, 6) == []
    assert starts_of([20], [[14, 16, 20]], "train", 24, 6) == []


def test_window_starts_rows_past_test_are_unused() -> None:
    starts = starts_of([400], [[210, 240, 300]], "test", 24, 6)
    assert starts[-1] + 24 + 6 == 300


def test_series_of() -> None:
    offsets = np.array([0, 10, 15, 30])
    assert series_of(np.array([0, 9, 10, 14, 15, 29]), offsets).tolist() == [0, 0, 1, 1, 2, 2]


def test_windows_gather_inputs_and_targets() -> None:
    # column 0 holds the row number, column 1 minus it: a window's contents are easy to check
    n = torch.arange(20, dtype=torch.float32)
    win = Windows(torch.stack([n, -n], dim=1), n_targets=1, lookback=4, horizon=3)
    starts = torch.tensor([0, 5, 13])
    x, y = win.inputs(starts), win.targets(starts)
    assert x.shape == (3, 4, 2) and y.shape == (3, 3, 1)
    assert x[1, :, 0].tolist() == [5, 6, 7, 8] and x[1, :, 1].tolist() == [-5, -6, -7, -8]
    assert y[1, :, 0].tolist() == [9, 10, 11]
    assert y[2, -1, 0].item() == 19  # the last window ends on the last row


@pytest.mark.parametrize("n_targets", [1, 2])
def test_windows_targets_are_the_first_columns(n_targets: int) -> None:
    values = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    win = Windows(values, n_targets=n_targets, lookback=2, horizon=2)
    y = win.targets(torch.tensor([0]))
    assert torch.equal(y[0], values[2:4, :n_targets])
