"""Sharded by series: one process reads only its own series' rows, and decides as if it read them all.

Every process streams the whole file through Arrow's reader a batch at a time and keeps the rows
of the series it owns, so its memory follows its share of the file. What a single process decides
from the whole file is decided from the whole file here too:
- the time layout (day first, quarters, zones, fractions of a second) from every distinct time in
  the file, and the layout sample from its first rows (read.read_times, given read.DistinctTimes);
- the time column and the default target from the file's first block, where that is what the
  whole-file read looks at; where it is not, `read_own_rows` returns None and the caller reads the
  whole file, as it does when any process's rows hold a bad value, so that every process reports
  it at its line in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast import read
from forecast.config import DataConfig
from forecast.errors import ForecastError

BATCH_ROWS = 1 << 20  # Parquet rows a batch (a row group, as pyarrow writes them); CSV batches are Arrow's blocks


@dataclass
class OwnRows:
    path: str
    frame: pd.DataFrame  # this process's rows, in file order; the time column a Categorical of times.values
    lines: np.ndarray  # (N,) each row's position among the file's data rows
    date_column: str
    times: read.DistinctTimes  # the whole file's distinct times, for read.read_times
    n_series: int  # series in the whole file


def read_own_rows(cfg: DataConfig, path: str, mine: Callable[[list[str]], np.ndarray]) -> OwnRows | None:
    """The rows of the series `mine` keeps (it gets distinct ids as read.read_ids names them and
    says which are this process's), or None where the whole file must be read: to decide as the
    whole-file read does, or to report a problem in rows of any process (a value that is not a
    number, a missing or infinite value, a row without an id) at its line, in every process."""
    assert cfg.id_column
    file = read.check_file(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    csv = file.suffix.lower() not in (".parquet", ".pq")
    try:
        opened = _open_csv(file, cfg.id_column) if csv else _open_parquet(file, cfg.id_column)
        if opened is None or any(_null_typed(f.type) for f in opened[0].schema):
            return None  # a column empty in the first block: the whole file may type it otherwise
        first, stream = opened
        head = _to_frame(first, csv)
        decided = _time_column(head, cfg, path)
        if decided is None:
            return None
        date_col, check_years = decided
        targets, features = read.resolve_targets(head, cfg, date_col, path)
        if not _target_decided(head, cfg, date_col) or any(read._is_text(head[c]) for c in targets + features):
            return None  # text to convert: read.to_numeric names a bad value at its line in the whole file
        own = _keep_own(stream(date_col), cfg, path, date_col, targets + features, mine, csv)
    except ForecastError:
        raise
    except Exception:  # Arrow refuses a batch (a value that does not fit the first rows' type, ...)
        return None
    if own is None or (check_years and not _all_years(own.times.values)):
        return None
    return own


def _null_typed(arrow_type: Any) -> bool:
    import pyarrow.types as pat

    return bool(pat.is_null(arrow_type))


Opened = tuple[Any, Callable[[str], Iterator[Any]]]  # the first batch, and every batch given the time column


def _open_csv(path: Path, id_column: str) -> Opened | None:
    """The first batch as Arrow types it, and a reader of every batch with the time column as
    text. Arrow's streaming reader types each column from the first block and refuses a later
    value that does not fit, where reading the whole file widens the type: so integer columns are
    read as floats (the values the panel takes), and what still does not fit ends the stream."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep, names = read.csv_header(path)
    if id_column not in names:
        return None  # the whole-file read names the missing column
    parse = pacsv.ParseOptions(delimiter=sep)
    with pacsv.open_csv(path, parse_options=parse) as reader:  # the header as Arrow names it
        raw = {read._clean_name(name): name for name in reader.schema.names}
    text = pa.dictionary(pa.int32(), pa.string())

    def batches(types: dict[str, Any]) -> Iterator[Any]:
        convert = pacsv.ConvertOptions(column_types={raw[c]: t for c, t in types.items()})
        with pacsv.open_csv(path, parse_options=parse, convert_options=convert) as reader:
            yield from reader

    first = next(batches({id_column: text}), None)
    if first is None:
        return None

    def every_batch(date_col: str) -> Iterator[Any]:
        # times as written, each distinct one parsed once by read.read_times, as in the whole file
        widened = {read._clean_name(f.name): pa.float64() for f in first.schema if pa.types.is_integer(f.type)}
        return batches({**widened, id_column: text, date_col: text})

    return first, every_batch


def _open_parquet(path: Path, id_column: str) -> Opened | None:
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path, read_dictionary=[id_column])
    if id_column not in f.schema_arrow.names:
        return None
    batches = f.iter_batches(batch_size=BATCH_ROWS)
    first = next(batches, None)
    if first is None:
        return None
    return first, lambda _: chain([first], batches)


def _to_frame(batch: Any, csv: bool) -> pd.DataFrame:
    frame = batch.to_pandas(date_as_object=False)
    if csv:  # as read.read_table names a CSV file's columns
        frame.columns = [read._clean_name(c) for c in frame.columns]
    return frame


def _time_column(head: pd.DataFrame, cfg: DataConfig, path: str) -> tuple[str, bool] | None:
    """The time column the whole-file read finds, decided from the first rows where they are
    what that read looks at, and whether it is an integer year column (then every value must be
    a year: checked on the file's distinct values); None where the first rows cannot tell."""
    if cfg.date_column is not None:
        return (cfg.date_column, False) if cfg.date_column in head.columns else None
    try:
        col = read.detect_date_column(head, None, path, cfg.id_column)
    except ForecastError:
        return None  # the whole file may still hold one (in values past the first rows)
    if col.lower() in read.DATE_NAMES and not pd.api.types.is_numeric_dtype(head[col]):
        return col, False  # by name: Arrow types a column alike in every batch
    # by content, detect_date_column looks at the first 20 values of each text or time column up
    # to the one it takes; an integer year column is taken when none of them qualifies
    year = pd.api.types.is_integer_dtype(head[col])
    looked_at = list(head.columns) if year else list(head.columns)[: list(head.columns).index(col) + 1]
    for c in looked_at:
        if (read._is_text(head[c]) or pd.api.types.is_datetime64_any_dtype(head[c])) and head[c].notna().sum() < 20:
            return None
    return col, year


def _target_decided(head: pd.DataFrame, cfg: DataConfig, date_col: str) -> bool:
    """Whether the default target (the last numeric column) is the same in every batch: it is
    given, or no candidate column is text (Arrow types a column alike in every batch)."""
    if cfg.target:
        return True
    skip = {date_col, cfg.id_column, *cfg.features}
    return not any(read._is_text(head[c]) for c in head.columns if c not in skip)


def _all_years(distinct: pd.Index) -> bool:
    return read._is_year_ints(pd.Series(pd.to_numeric(pd.Series(distinct), errors="coerce")))


class _Distinct:
    """The distinct values of a column over every batch, numbered in the order they first appear."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def number(self, values: list[Any], order: Iterable[int]) -> np.ndarray:
        """(len(values) + 1,) the code of each value, numbering new ones in `order` (the order
        they appear), and a last entry -1 (for empty cells)."""
        local = np.full(len(values) + 1, -1, dtype=np.int32)
        for i in order:
            local[i] = self.codes.setdefault(values[i], len(self.codes))
        return local

    def encode(self, column: Any) -> np.ndarray:
        """(rows,) codes of an Arrow column's values, -1 where empty."""
        import pyarrow.compute as pc
        import pyarrow.types as pat

        encoded = column if pat.is_dictionary(column.type) else pc.dictionary_encode(column)
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        present = np.flatnonzero(indices >= 0)
        used, first = np.unique(indices[present], return_index=True)
        values = encoded.dictionary.to_pandas(date_as_object=False).tolist()
        return self.number(values, used[np.argsort(first, kind="stable")])[indices]

    def values(self) -> pd.Index:
        return pd.Index(list(self.codes))

    def categorical(self, codes: list[np.ndarray]) -> pd.Categorical:
        joined = np.concatenate(codes) if codes else np.zeros(0, np.int32)
        return pd.Categorical.from_codes(joined, categories=self.values())


def _keep_own(
    batches: Iterator[Any],
    cfg: DataConfig,
    path: str,
    date_col: str,
    value_columns: list[str],
    mine: Callable[[list[str]], np.ndarray],
    csv: bool,
) -> OwnRows | None:
    """The rows of the series `mine` keeps; the id and time columns as Categoricals of every
    distinct value in the file (ids by name, as read.read_ids names them). None when a row of
    any process holds a problem read.to_numeric, panel.check_missing or read.read_ids reports."""
    import pyarrow as pa

    assert cfg.id_column
    ids, times = _Distinct(), _Distinct()
    kept, id_codes, time_codes, lines, at = [], [], [], [], 0
    sample: list[int] = []  # the first non-empty times of the file, for read.read_times
    empty = False
    for batch in batches:
        names = [read._clean_name(n) for n in batch.schema.names] if csv else list(batch.schema.names)
        i, t = names.index(cfg.id_column), names.index(date_col)
        codes, uniques = pd.factorize(batch.column(i).to_pandas(date_as_object=False))
        series = read.id_names(uniques)
        if (codes < 0).any() or any(not s.strip() for s in series) or _bad_values(batch, names, value_columns, cfg):
            return None
        keep = np.asarray(mine(series), dtype=bool)[codes]
        rows = np.flatnonzero(keep)
        id_codes.append(ids.number(series, range(len(series)))[codes[rows]])
        every = times.encode(batch.column(t))
        empty = empty or bool((every < 0).any())
        if len(sample) < read.LAYOUT_SAMPLE:
            sample += every[every >= 0][: read.LAYOUT_SAMPLE - len(sample)].tolist()
        time_codes.append(every[rows])
        lines.append(at + rows)
        at += len(keep)
        rest = [k for k in range(len(names)) if k not in (i, t)]  # the other columns, as Arrow types them
        kept.append(batch.select(rest).filter(pa.array(keep)))
    table = pa.Table.from_batches(kept)
    kept.clear()
    frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)  # frees Arrow as it goes
    del table
    pa.default_memory_pool().release_unused()  # the batches' memory, which the pool would keep
    if csv:
        frame.columns = [read._clean_name(c) for c in frame.columns]
    for k, column, distinct, codes_of in sorted([(i, cfg.id_column, ids, id_codes), (t, date_col, times, time_codes)]):
        frame.insert(k, column, distinct.categorical(codes_of))
    distinct_times = read.DistinctTimes(pd.Series(times.values()), np.array(sample, dtype=np.int64), empty)
    return OwnRows(path, frame, np.concatenate(lines), date_col, distinct_times, len(ids.codes))


def _bad_values(batch: Any, names: list[str], columns: list[str], cfg: DataConfig) -> bool:
    """Whether a value column holds an infinite value, or a missing one where data.fill is none."""
    for c in columns:
        values = np.asarray(batch.column(names.index(c)).to_numpy(zero_copy_only=False), dtype=np.float64)
        if np.isinf(values).any() or (cfg.fill == "none" and np.isnan(values).any()):
            return True
    return False
