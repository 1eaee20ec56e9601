"""A validated panel of series in original units: loading, missing values, splits, per-series scaling."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecast import calendar, read, sharded_read
from forecast.config import DataConfig, split_is_counts
from forecast.errors import ForecastError
from forecast.sharded_read import OwnRows


@dataclass
class Panel:
    """Every series of one file, stacked: rows of series s are offsets[s]:offsets[s+1]."""

    values: np.ndarray  # (N, F) float64, original units; targets first, then features
    times: np.ndarray  # (N,) datetime64[ns]
    columns: list[str]  # F names
    n_targets: int
    ids: list[str]  # S series ids ("" for a single series)
    offsets: np.ndarray  # (S + 1,) int64
    freq: str  # pandas offset alias naming the step, e.g. "h", "MS", "B"; each series keeps its own anchor
    time_format: str = ""  # how the file wrote its times (strftime, %q = quarter); "" = ISO-like default
    filled: np.ndarray | None = None  # (N, F) bool: cells data.fill made up, left out of scores
    holidays: tuple[str, ...] = ()  # business days: month-days ("12-25") the data skips every year
    day_first: bool | None = None  # dates like 03/04/2024 were read day first (None: the file had none)

    @property
    def targets(self) -> list[str]:
        return self.columns[: self.n_targets]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, keep: np.ndarray) -> Panel:
        """The panel without the series where `keep` (S,) is False."""
        rows = np.repeat(keep, self.lengths())
        return replace(
            self,
            values=self.values[rows],
            times=self.times[rows],
            ids=[i for i, k in zip(self.ids, keep, strict=True) if k],
            offsets=np.append(0, np.cumsum(self.lengths()[keep])).astype(np.int64),
            filled=None if self.filled is None else self.filled[rows],
        )


def check_missing(values: np.ndarray, columns: list[str], path: str) -> None:
    """Refuse missing values, naming how many and the first one; rows are the file's, in its order."""
    nan = np.isnan(values)
    if nan.any():
        i, j = (int(v[0]) for v in np.nonzero(nan))
        raise ForecastError(
            f"{int(nan.sum())} missing values in {path} (first: column {columns[j]!r}, {read.at_row(i, path)}); "
            "set data.fill to ffill or interpolate (--set data.fill=ffill), or clean the file"
        )


def fill_gaps(
    values: np.ndarray,
    offsets: np.ndarray,
    borders: np.ndarray,
    fill: str,
    columns: list[str],
    path: str,
    ids: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing cells per data.fill, all series at once; return the values and the (N, F) mask
    of filled cells. A value never comes from a later split or another series: `ffill` takes the
    last earlier value (from the next one only at a series' start), `interpolate` draws a line to
    the next value when it lies in the same split, else carries the last one forward."""
    missing = np.isnan(values)
    if fill == "none" or not missing.any():
        return values, np.zeros_like(missing)
    n = len(values)
    series = calendar.series_of_rows(offsets)
    position = np.arange(n) - offsets[series]
    segment = series * 4 + (position[:, None] >= borders[series]).sum(axis=1)  # one per (series, split)
    out = values.copy()
    for j in np.flatnonzero(missing.any(axis=0)):  # a few columns; all rows at once
        gap = missing[:, j]
        prev = np.maximum.accumulate(np.where(gap, -1, np.arange(n)))
        nxt = np.minimum.accumulate(np.where(gap, n, np.arange(n))[::-1])[::-1]
        p, q = np.maximum(prev, 0), np.minimum(nxt, n - 1)
        has_prev = (prev >= 0) & (series[p] == series)
        has_next = (nxt < n) & (segment[q] == segment)
        before, after = values[p, j], values[q, j]
        line = before + (after - before) * (np.arange(n) - p) / np.maximum(q - p, 1)
        both = has_prev & has_next if fill == "interpolate" else np.zeros(n, bool)
        filled = np.where(both, line, np.where(has_prev, before, after))
        unfillable = gap & ~has_prev & ~has_next
        if unfillable.any():
            raise_unfillable(unfillable, ~gap, series, ids, columns[j], path)
        out[gap, j] = filled[gap]
    return out, missing


def raise_unfillable(
    unfillable: np.ndarray, present: np.ndarray, series: np.ndarray, ids: list[str], col: str, path: str
) -> None:
    s = int(series[np.flatnonzero(unfillable)[0]])
    where = f" (series {ids[s]!r})" if ids[s] else ""
    if not present[series == s].any():
        raise ForecastError(f"column {col!r} in {path}{where} has no values at all")
    raise ForecastError(
        f"column {col!r} in {path}{where} starts with missing values that only a later split could fill; "
        "drop those rows"
    )


def check_order(times: np.ndarray, offsets: np.ndarray, ids: list[str], sort: bool, path: str) -> None:
    """Refuse duplicate timestamps within a series, and unsorted rows unless data.sort (all series at once)."""
    t = times.astype("datetime64[ns]").astype(np.int64)
    diffs, first = np.diff(t), calendar.series_of_rows(offsets)
    inner = first[1:] == first[:-1]  # steps between two rows of one series
    for bad, what in ((inner & (diffs == 0), "dup"), (inner & (diffs < 0) & (not sort), "order")):
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        sid = ids[first[i]]
        where = f" (series {sid!r})" if sid else ""
        a, b = pd.Timestamp(times[i]), pd.Timestamp(times[i + 1])
        if what == "dup":
            raise ForecastError(f"{path}{where} has duplicate timestamps: {b} appears twice")
        raise ForecastError(
            f"{path}{where} is not sorted by time ({b} comes after {a}); "
            "sort it or set data.sort: true (--set data.sort=true)"
        )


def load_panel(
    cfg: DataConfig,
    source: str | Path | pd.DataFrame | None = None,
    shard: tuple[int, int] | None = None,
    day_first: bool | None = None,
) -> Panel:
    """Read and validate a file (default cfg.path) or a DataFrame into a Panel in original units.
    shard (rank, ranks): keep only the series this rank owns (owners); a file with an id column is
    then read a batch at a time, keeping only those rows (sharded_read). day_first: the order of
    dates like 01/03/2024 where the values leave it open (read.day_order), as a run read them."""
    own = None
    if shard is not None and cfg.id_column and not isinstance(source, pd.DataFrame):
        rank, size = shard
        own = sharded_read.read_own_rows(cfg, str(source or cfg.path), lambda names: owners(names, size) == rank)
        if own is not None and len(own.frame) == 0:
            raise ForecastError(f"{own.path} has {own.n_series} series, too few to give each of {size} processes one")
    try:
        return _load_panel(cfg, source, shard, own, day_first)
    except ForecastError:
        if own is not None:  # its line was counted among this process's rows: the whole file names the true one
            load_panel(cfg, source, day_first=day_first)
        raise


def _load_panel(
    cfg: DataConfig,
    source: str | Path | pd.DataFrame | None,
    shard: tuple[int, int] | None,
    own: OwnRows | None,
    day_first: bool | None = None,
) -> Panel:
    lines = None  # the file's row of each row kept, where it is not the position
    distinct = None  # the whole file's distinct times, when this process holds its own rows only
    if own is not None:  # this process's rows only
        df, own.frame = own.frame, pd.DataFrame()  # the caller keeps `own`: not its rows, once read below
        path, date_col, lines, distinct, shard = own.path, own.date_column, own.lines, own.times, None
    else:
        df, path = read.read_source(cfg, source)
        date_col = read.detect_date_column(df, cfg.date_column, path, cfg.id_column)
    if cfg.id_column is not None and cfg.id_column not in df.columns:
        raise ForecastError(f"id column {cfg.id_column!r} not found in {path} (columns: {', '.join(df.columns)})")
    targets, features = read.resolve_targets(df, cfg, date_col, path)
    columns = targets + features
    times, time_format = read.read_times(df[date_col], date_col, path, distinct, day_first)
    day_first = read.day_first_read(df[date_col], times)
    values = read.to_numeric(df, columns, path)
    if cfg.fill == "none":
        check_missing(values, columns, path)  # before any reordering, so lines are the file's
    codes, names = read.read_ids(df, cfg.id_column, path)
    t = times.to_numpy(dtype="datetime64[ns]")
    del df, times  # the columns are read: keep only what the panel needs
    if shard is not None:
        values, codes, t, names, lines = own_series(values, codes, t, names, shard, path)
    if cfg.id_column and not cfg.sort:
        check_sorted_within(codes, names, t, path, lines)
    if cfg.sort or cfg.id_column:
        order = np.lexsort((t, codes))  # stable: by id, then time
        values, codes, t = values[order], codes[order], t[order]
        del order
    starts = np.append(0, np.flatnonzero(np.diff(codes)) + 1)  # rows of one series are together now
    offsets = np.append(starts, len(codes)).astype(np.int64)
    uniq = [names[c] for c in codes[starts]]
    del codes
    check_order(t, offsets, uniq, cfg.sort, path)
    freq = calendar.infer_freq(t, offsets, uniq, cfg.gaps, path)
    borders = split_borders(np.diff(offsets), cfg.split, strict=False)
    values, filled = fill_gaps(values, offsets, borders, cfg.fill, columns, path, uniq)
    holidays = calendar.infer_holidays(t) if calendar.step_of(freq)[0] == "bdays" else ()
    return Panel(values, t, columns, len(targets), uniq, offsets, freq, time_format, filled, holidays, day_first)


def owners(names: list[str], size: int) -> np.ndarray:
    """(S,) the process that owns each series when training is sharded over `size` processes: a
    stable hash of its id, the same in every process, run and machine."""
    return np.array([zlib.crc32(name.encode()) % size for name in names], dtype=np.int64)


def own_series(
    values: np.ndarray, codes: np.ndarray, t: np.ndarray, names: list[str], shard: tuple[int, int], path: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The rows of the series that rank `shard[0]` of `shard[1]` owns, with codes renumbered, and
    the file row of each (for errors that name a line)."""
    rank, size = shard
    mine = owners(names, size) == rank
    if not mine.any():
        raise ForecastError(f"{path} has {len(names)} series, too few to give each of {size} processes one")
    rows = mine[codes]
    renumber = np.cumsum(mine) - 1  # owned series keep their order
    kept = [n for n, m in zip(names, mine, strict=True) if m]
    return values[rows], renumber[codes[rows]], t[rows], kept, np.flatnonzero(rows)


def check_sorted_within(
    codes: np.ndarray, names: list[str], times: np.ndarray, path: str, lines: np.ndarray | None = None
) -> None:
    """Long format: rows of one series (same code) must be in time order among themselves.
    lines: the file row of each row, where rows were dropped before (default its position)."""
    grouped = np.argsort(codes, kind="stable")  # each series' rows together, in file order
    t, c = times[grouped], codes[grouped]
    back = grouped[1:][(c[1:] == c[:-1]) & (t[1:] < t[:-1])]
    if len(back):
        i = int(back.min())
        line = i if lines is None else int(lines[i])
        raise ForecastError(
            f"{path} is not sorted by time within series {names[codes[i]]!r} ({read.at_row(line, path)}); "
            "sort it or set data.sort: true (--set data.sort=true)"
        )


def split_borders(lengths: np.ndarray, split: dict[str, float], strict: bool = True) -> np.ndarray:
    """(S, 3) ends of train, val and test, in rows from each series' start.

    Row counts longer than a series are an error, or (strict=False, for new data given to a
    trained model) cut at the series' end.
    """
    if split_is_counts(split):
        parts = np.array([split["train"], split["val"], split["test"]], dtype=np.int64)
        ends = np.cumsum(parts)[None, :].repeat(len(lengths), axis=0)
        if not strict:
            return np.minimum(ends, lengths[:, None])
        short = np.flatnonzero(ends[:, 2] > lengths)
        if len(short):
            raise ForecastError(
                f"data.split asks for {int(ends[0, 2])} rows but a series has only {int(lengths[short[0]])}"
            )
        return ends

    def rows(fraction: float) -> np.ndarray:  # floor, but 0.29 * 100 = 28.999999999999996 is 29 rows
        return np.floor(np.round(lengths * fraction, 6)).astype(np.int64)

    n_train, n_val = rows(split["train"]), rows(split["val"])
    total = split["train"] + split["val"] + split["test"]
    n_test = lengths - n_train - n_val if abs(total - 1) < 1e-9 else rows(split["test"])
    return np.stack([n_train, n_train + n_val, n_train + n_val + n_test], axis=1)


@dataclass
class Scaler:
    """Per-series min/max of each column, from training rows only: scikit-learn's MinMaxScaler
    fitted on each series (data_min_, data_max_ and its formula), computed for every series in one
    vectorized pass, since MinMaxScaler itself would take a fit and a transform call per series."""

    data_min: np.ndarray  # (S, F)
    data_max: np.ndarray  # (S, F)

    @property
    def scale(self) -> np.ndarray:
        span = self.data_max - self.data_min
        # constant columns (a span under 10 float64 epsilons) get scale 1, as in MinMaxScaler
        return np.where(span < 10 * np.finfo(np.float64).eps, 1.0, span)

    def transform(self, panel: Panel) -> np.ndarray:
        """(N, F) float32 in [0, 1] on training rows; a column at a time, so the temporaries stay (N,)."""
        lengths, scale = panel.lengths(), self.scale
        out = np.empty(panel.values.shape, dtype=np.float32)
        for j in range(panel.values.shape[1]):
            out[:, j] = (panel.values[:, j] - np.repeat(self.data_min[:, j], lengths)) / np.repeat(scale[:, j], lengths)
        return out

    def inverse(self, y: np.ndarray, series: np.ndarray, n_targets: int) -> np.ndarray:
        """y (B, H, T) scaled -> original units, for windows of series `series` (B,)."""
        mn = self.data_min[series, None, :n_targets]
        return y * self.scale[series, None, :n_targets] + mn


def fit_scaler(panel: Panel, train_end: np.ndarray) -> Scaler:
    """MinMaxScaler's fit (NaN-ignoring min and max) on the first train_end[s] rows of each series s."""
    if (train_end == 0).any():
        raise ForecastError("the train split has 0 rows; use more data or a larger data.split.train")
    starts = panel.offsets[:-1]
    # reduceat over [start, start + train_end) and [start + train_end, next start): keep the first of each pair
    bounds = np.column_stack([starts, starts + train_end]).ravel()
    if bounds[-1] == len(panel.values):  # the last series is all training rows: its reduction runs to the end
        bounds = bounds[:-1]
    mins = np.fmin.reduceat(panel.values, bounds, axis=0)[0::2]
    maxs = np.fmax.reduceat(panel.values, bounds, axis=0)[0::2]
    return Scaler(mins, maxs)
