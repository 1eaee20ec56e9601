"""Split borders, scaler round trips, and CSV parsing of odd but valid files."""

from __future__ import annotations

import math
import string
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import assume, given
from hypothesis import strategies as st

from forecast import read
from forecast.config import DataConfig
from forecast.panel import Panel, fit_scaler, load_panel, split_borders

# ---------------------------------------------------------------- split borders

lengths_st = st.lists(st.integers(1, 20_000), min_size=1, max_size=5).map(np.array)


@st.composite
def percentages(draw: st.DrawFn) -> tuple[int, int, int]:
    """train, val, test in percent, summing to at most 100 (often exactly 100)."""
    train = draw(st.integers(1, 100))
    val = draw(st.integers(0, 100 - train))
    test = draw(st.one_of(st.just(100 - train - val), st.integers(0, 100 - train - val)))
    return train, val, test


@given(lengths_st, percentages())
def test_split_borders_percentages_are_exact(lengths: np.ndarray, parts: tuple[int, int, int]) -> None:
    # fractions as people write them (0.7, 0.29): floor(rows * fraction) with no floating-point noise
    train, val, test = parts
    split = {"train": train / 100, "val": val / 100, "test": test / 100}
    borders = split_borders(lengths, split)
    n_train = [n * train // 100 for n in lengths]
    n_val = [n * val // 100 for n in lengths]
    assert borders[:, 0].tolist() == n_train
    assert (borders[:, 1] - borders[:, 0]).tolist() == n_val
    if train + val + test == 100:
        assert borders[:, 2].tolist() == lengths.tolist()  # the test part takes every remaining row
    else:
        assert (borders[:, 2] - borders[:, 1]).tolist() == [n * test // 100 for n in lengths]


@st.composite
def fractions(draw: st.DrawFn) -> tuple[float, float, float]:
    train = draw(st.floats(0.001, 1))
    val = draw(st.floats(0, 1 - train))
    test = draw(st.floats(0, max(0.0, 1 - train - val)))
    return train, val, test


@given(lengths_st, fractions())
def test_split_borders_any_fractions(lengths: np.ndarray, parts: tuple[float, float, float]) -> None:
    train, val, test = parts
    assume(train + val + test <= 1)
    borders = split_borders(lengths, {"train": train, "val": val, "test": test})
    assert borders.shape == (len(lengths), 3)
    assert (np.diff(borders, axis=1) >= 0).all() and (borders[:, 0] >= 0).all()
    assert (borders[:, 2] <= lengths).all()
    for n, row in zip(lengths, borders, strict=True):
        exact = math.floor(int(n) * Fraction(repr(train)))
        assert abs(int(row[0]) - exact) <= 1


@given(
    st.lists(st.integers(300, 5000), min_size=1, max_size=4).map(np.array),
    st.integers(1, 100),
    st.integers(0, 100),
    st.integers(0, 100),
)
def test_split_borders_row_counts(lengths: np.ndarray, train: int, val: int, test: int) -> None:
    borders = split_borders(lengths, {"train": train, "val": val, "test": test})
    assert borders.tolist() == [[train, train + val, train + val + test]] * len(lengths)


# ---------------------------------------------------------------- scaler


@st.composite
def scaled_panels(draw: st.DrawFn) -> tuple[Panel, np.ndarray]:
    lengths = draw(st.lists(st.integers(2, 40), min_size=1, max_size=3))
    n_columns = draw(st.integers(1, 3))
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    values = np.array(
        draw(
            st.lists(
                st.lists(finite, min_size=n_columns, max_size=n_columns), min_size=sum(lengths), max_size=sum(lengths)
            )
        )
    )
    train_end = np.array([draw(st.integers(1, n)) for n in lengths])
    panel = Panel(
        values=values,
        times=np.zeros(len(values), dtype="datetime64[ns]"),
        columns=[f"c{j}" for j in range(n_columns)],
        n_targets=n_columns,
        ids=[str(i) for i in range(len(lengths))],
        offsets=np.cumsum([0, *lengths]),
        freq="h",
    )
    return panel, train_end


@given(scaled_panels())
def test_scaler_round_trip(case: tuple[Panel, np.ndarray]) -> None:
    panel, train_end = case
    scaler = fit_scaler(panel, train_end)
    scaled = scaler.transform(panel)
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths())
    back = scaler.inverse(scaled[:, None, :], series, panel.n_targets)[:, 0, :]
    # the model's inputs are float32: the round trip holds to float32's precision of the scaled value
    bound = 1e-6 * scaler.scale[series] * np.maximum(1, np.abs(scaled)) + 1e-9
    assert (np.abs(back - panel.values) <= bound).all()
    for s in range(len(panel.ids)):
        a = panel.offsets[s]
        train = scaled[a : a + train_end[s]]
        assert train.min() >= -1e-9 and train.max() <= 1 + 1e-9  # training rows land in [0, 1]


# ---------------------------------------------------------------- CSV parsing

NAME = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(lambda n: n not in read.DATE_NAMES)
FREQS = {"h": "%Y-%m-%d %H:%M:%S", "15min": "%Y-%m-%dT%H:%M:%S", "D": "%Y-%m-%d"}
OFFSETS = {
    "": pd.Timedelta(0),
    "Z": pd.Timedelta(0),
    "+05:30": pd.Timedelta(hours=5, minutes=30),
    "-08:00": pd.Timedelta(hours=-8),
}


@st.composite
def odd_csvs(draw: st.DrawFn) -> dict:
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    n = draw(st.integers(5, 40))
    freq = draw(st.sampled_from(sorted(FREQS)))
    offset = draw(st.sampled_from(sorted(OFFSETS))) if freq != "D" else ""
    columns = {}
    for name in names:
        if draw(st.booleans()):
            columns[name] = draw(st.lists(st.integers(-(10**6), 10**6), min_size=n, max_size=n))
        else:
            columns[name] = draw(st.lists(st.floats(-1e9, 1e9, allow_nan=False, width=64), min_size=n, max_size=n))
    return {
        "names": names,
        "columns": columns,
        "freq": freq,
        "offset": offset,
        "times": pd.date_range("2023-12-31", periods=n, freq=freq),
        "sep": draw(st.sampled_from([",", ";", "\t"])),
        "quote_header": draw(st.booleans()),
        "pad": draw(st.sampled_from(["", " ", "  "])),
        "bom": draw(st.booleans()),
        "crlf": draw(st.booleans()),
        "time_name": draw(st.sampled_from(["date", "ds"])),
    }


def render(case: dict) -> str:
    def cell(text: str, quote: bool = False) -> str:
        return case["pad"] + (f'"{text}"' if quote else text) + case["pad"]

    header = [cell(name, case["quote_header"]) for name in [case["time_name"], *case["names"]]]
    lines = [case["sep"].join(header)]
    fmt = FREQS[case["freq"]]
    for i, t in enumerate(case["times"]):
        row = [cell(t.strftime(fmt) + case["offset"])]
        row += [cell(repr(case["columns"][name][i])) for name in case["names"]]
        lines.append(case["sep"].join(row))
    newline = "\r\n" if case["crlf"] else "\n"
    return ("\ufeff" if case["bom"] else "") + newline.join(lines) + newline


@given(odd_csvs())
def test_odd_but_valid_csv_files_parse(case: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "odd.csv"
        path.write_bytes(render(case).encode())
        panel = load_panel(DataConfig(path=str(path), target=case["names"]))
    assert panel.columns == case["names"]
    expected = np.array([case["columns"][name] for name in case["names"]], dtype=float).T
    np.testing.assert_array_equal(panel.values, expected)  # repr() round-trips floats exactly
    # times with one UTC offset keep their local wall time (the offset is written back in outputs)
    assert (panel.times == case["times"].to_numpy(dtype="datetime64[ns]")).all()
    assert pd.tseries.frequencies.to_offset(panel.freq) == pd.tseries.frequencies.to_offset(case["freq"])
