"""Sharded by series: one process reads only its own series' rows, and decides as if it read them all.

Every process streams the whole file through Arrow's reader a batch at a time and keeps the rows
of the series it owns, so its memory follows its share of the file. What a single process decides
from the whole file is decided from the whole file here too:
- the time column's layout (day first, quarters, zones) from every distinct time in the file, kept
  as the categories of the time column (read.read_times decides over those);
- the time column itself and the default target from the file's first rows, where those are the
  rows the whole-file read looks at; where they are not, or where the id or time column is odd,
  the caller reads the whole file instead (`read_own_rows` returns None).
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

BATCH_ROWS = 1 << 16  # Parquet rows a batch; CSV batches are Arrow's blocks


@dataclass
class OwnRows:
    frame: pd.DataFrame  # this process's rows, in file order; the time column a Categorical of the file's times
    lines: np.ndarray  # (N,) each row's position among the file's data rows
    date_column: str
    n_series: int  # series in the whole file


def read_own_rows(cfg: DataConfig, path: str, mine: Callable[[list[str]], np.ndarray]) -> OwnRows | None:
    """The rows of the series `mine` keeps (it gets distinct ids as read.read_ids names them and
    says which are this process's), or None where the whole file must be read to decide."""
    assert cfg.id_column
    file = read.check_file(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    parquet = file.suffix.lower() in (".parquet", ".pq")
    try:
        opened = _open_parquet(file, cfg.id_column) if parquet else _open_csv(file, cfg.id_column)
        if opened is None:
            return None
        first, stream = opened
        head = _to_frame(first)
        decided = _time_column(head, cfg, path)
        if decided is None or not _target_decided(head, cfg, decided[0]):
            return None
        date_col, check_years = decided
        own = _keep_own(stream(date_col), cfg.id_column, date_col, mine)
    except ForecastError:
        raise
    except Exception:  # Arrow refuses a batch (a value that does not fit the first rows' type, ...)
        return None
    if check_years and not _all_years(own.frame[date_col].cat.categories):
        return None
    if len(own.frame) == 0:
        raise ForecastError(f"{path} has {own.n_series} series, too few to give each process one")
    return own


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


def _to_frame(batch: Any) -> pd.DataFrame:
    frame = batch.to_pandas(date_as_object=False)
    frame.columns = [read._clean_name(c) for c in frame.columns]
    return frame


def _time_column(head: pd.DataFrame, cfg: DataConfig, path: str) -> tuple[str, bool] | None:
    """The time column the whole-file read finds, decided from the first rows where they are
    what that read looks at, and whether it is an integer year column (then every value must be
    a year: checked on the file's distinct values); None where the first rows cannot tell."""
    if cfg.date_column is not None:
        return (cfg.date_column, False) if cfg.date_column in head.columns else None
    try:
        col = read.detect_date_column(head, None, path)
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

    def categorical(self, codes: list[np.ndarray]) -> pd.Categorical:
        joined = np.concatenate(codes) if codes else np.zeros(0, np.int32)
        return pd.Categorical.from_codes(joined, categories=pd.Index(list(self.codes)))


def _keep_own(
    batches: Iterator[Any], id_column: str, date_col: str, mine: Callable[[list[str]], np.ndarray]
) -> OwnRows:
    """The rows of the series `mine` keeps; the id and time columns as Categoricals of every
    distinct value in the file (ids by name, as read.read_ids names them)."""
    import pyarrow as pa

    ids, times = _Distinct(), _Distinct()
    kept, id_codes, time_codes, lines, at = [], [], [], [], 0
    for batch in batches:
        names = [read._clean_name(n) for n in batch.schema.names]
        i, t = names.index(id_column), names.index(date_col)
        codes, uniques = pd.factorize(batch.column(i).to_pandas(date_as_object=False))
        series = read.id_names(uniques)
        keep = np.append(np.asarray(mine(series), dtype=bool), True)[codes]  # no id: kept, for read_ids to name
        rows = np.flatnonzero(keep)
        id_codes.append(ids.number(series, range(len(series)))[codes[rows]])
        time_codes.append(times.encode(batch.column(t))[rows])
        lines.append(at + rows)
        at += len(keep)
        rest = [k for k in range(len(names)) if k not in (i, t)]  # the other columns, as Arrow types them
        kept.append(batch.select(rest).filter(pa.array(keep)))
    table = pa.Table.from_batches(kept)
    kept.clear()
    frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)  # frees Arrow as it goes
    del table
    pa.default_memory_pool().release_unused()  # the batches' memory, which the pool would keep
    frame.columns = [read._clean_name(c) for c in frame.columns]
    for k, column, distinct, codes_of in sorted([(i, id_column, ids, id_codes), (t, date_col, times, time_codes)]):
        frame.insert(k, column, distinct.categorical(codes_of))
    return OwnRows(frame, np.concatenate(lines), date_col, len(ids.codes))
