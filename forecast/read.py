"""A file or DataFrame to columns: separators, the time layouts people export, numeric checks."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from forecast.config import DataConfig
from forecast.errors import ForecastError

DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period", "month", "day", "quarter", "week", "year")


YEAR_NAMES = ("year", "years", "yr", "yyyy")


DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# layouts pandas does not read on its own, as regexes with named parts: y year, q quarter,
# m month name, n month number, w ISO week, d ISO weekday
MONTH = r"(?P<m>[A-Za-z]{3,9}\.?)"


SPECIAL_FORMATS = {
    "year": r"(?P<y>[12]\d{3})",
    "quarter": r"(?P<y>\d{4})[\s./-]*[Qq](?P<q>[1-4])",
    "quarter_first": r"[Qq](?P<q>[1-4])[\s./-]*(?P<y>\d{4})",
    "month_name": rf"(?P<y>\d{{4}})[\s./-]*{MONTH}",
    "month_name_first": rf"{MONTH}[\s./,-]*(?P<y>\d{{4}})",
    "week": r"(?P<y>\d{4})-?W(?P<w>\d{2})(?:-?(?P<d>[1-7]))?",
    "year_month": r"(?P<y>[12]\d{3})(?P<n>0[1-9]|1[0-2])",  # 199107, as an integer column holds it
    "month_number": r"(?P<y>\d{4})[\s-]?[Mm](?P<n>1[0-2]|0?[1-9])",  # 2015M01 (Eurostat), 2015M1 (IMF)
}


MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


MONTH_NUMBERS = {
    **{m: i + 1 for i, m in enumerate(MONTH_NAMES)},
    **{m[:3]: i + 1 for i, m in enumerate(MONTH_NAMES)},
    "sept": 9,
}


# a UTC offset or zone after the time of day: "...12:00+02:00", "...12:00:00Z", "...12:00 UTC"
TZ_SUFFIX = r"(?i)\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[+-]\d{2}(?::?\d{2})?|z|utc|gmt)$"


ZONE_SUFFIX = r"(?i)(?<=\d)\s*(?:[+-]\d{2}(?::?\d{2})?|z|utc|gmt)$"


def with_index_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A DataFrame whose index holds data (times in a DatetimeIndex, or named levels such as
    (id, date), as pandas writes a time-indexed frame to Parquet) with that index as columns; a
    plain row-number index is dropped."""
    index = df.index
    named = any(name is not None for name in index.names)
    if named or isinstance(index, pd.DatetimeIndex):
        return df.reset_index()  # an unnamed DatetimeIndex becomes the column `index`, found by content
    return df.reset_index(drop=True)


DATAFRAME = "the DataFrame"  # the `path` of data given as a DataFrame, in messages


def at_row(i: int, path: str) -> str:
    """Where row i (from 0, after the header) is, for errors: its line in a file, or its row in a DataFrame."""
    return f"row {i}" if path == DATAFRAME else f"line {i + 2}"


def read_table(path: str | Path, text_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame of strings/numbers, with clear errors.
    `text_columns` (series ids) are read as text: "001" stays "001"."""
    path = check_file(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:  # series ids as categories and dates as datetime64: no Python object per row
            import pyarrow.parquet as pq

            table = pq.read_table(path, read_dictionary=text_columns or None)
            return with_index_columns(table.to_pandas(date_as_object=False))
        except ImportError:
            raise ForecastError(f"reading {path} needs pyarrow: pip install pyarrow") from None
        except Exception as e:  # pyarrow raises many types for a bad file
            raise ForecastError(f"{path} is not a readable Parquet file ({type(e).__name__})") from None
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        raise ForecastError(f"{path} is a spreadsheet workbook, which is not read: save its sheet as CSV and pass that")
    sep, names = csv_header(path)
    try:
        df = _read_csv_fast(path, sep, [c for c in text_columns or [] if c in names])
    except pd.errors.EmptyDataError:
        raise ForecastError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ForecastError(f"{path} could not be parsed as CSV: {msg}") from None
    df.columns = [_clean_name(c) for c in df.columns]
    keep = list(range(len(df.columns)))  # the file's columns left, by position
    if len(df.columns) == len(names):  # a trailing separator (Excel's `a,b,`): blank, empty columns
        keep = [j for j, name in enumerate(names) if name or not df.iloc[:, j].isna().all()]
        if sum(not names[j] for j in keep) > 1:
            raise ForecastError(f"{path} has more than one column without a name that holds values; name them")
        df = df.iloc[:, keep]
    zoned = [k for k, dtype in enumerate(df.dtypes) if isinstance(dtype, pd.DatetimeTZDtype)]
    if zoned:  # pyarrow turned times with UTC offsets into UTC: read_times wants them as written
        usecols = [keep[k] for k in zoned]
        text = pd.read_csv(path, sep=sep, usecols=usecols, dtype=str, encoding="utf-8-sig", skipinitialspace=True)
        for i, k in enumerate(zoned):  # usecols ascend, as read_csv returns them
            df[df.columns[k]] = text.iloc[:, i].to_numpy()
    if len(df) == 0:
        raise ForecastError(f"{path} has a header but no data rows")
    return df


def check_file(path: str | Path) -> Path:
    """The path of a data file that exists and is not empty."""
    if not str(path):
        raise ForecastError("no data file given: pass --data FILE.csv or set data.path in the config")
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"data file {str(path)!r} not found")
    if path.stat().st_size == 0:
        raise ForecastError(f"{path} is empty")
    return path


def csv_header(path: Path) -> tuple[str, list[str]]:
    """A CSV file's separator and column names, refusing what is not a CSV file of columns."""
    with path.open("rb") as f:
        head = f.read(4096)
    if b"\x00" in head:
        raise ForecastError(f"{path} is not a CSV file (it holds binary data)")
    text = head.decode("utf-8-sig", errors="replace")
    if text.lstrip().lower().startswith(("<!doctype", "<html", "<?xml")):
        raise ForecastError(f"{path} is an HTML/XML page, not a CSV file")
    lines = text.splitlines()
    filled = [i for i, line in enumerate(lines) if line.strip()]  # readers skip blank lines
    first = filled[0] if filled else 0
    header = lines[first] if lines else ""
    sep = max([",", ";", "\t", "|"], key=header.count)
    # notes above the header, as statistics offices export them: a first line without separators,
    # or one followed by a line without any ("Retail sales, monthly" then "Source: ..."); the
    # header is the first later line with separators that is not all numbers (0,5: a decimal comma)
    second = lines[filled[1]] if len(filled) > 1 else ""
    if header.count(sep) == 0 or (second.count(sep) == 0 and not _names_columns(second)):
        later = next((i for i, line in enumerate(lines[first + 1 : 20], first + 2) if _names_columns(line)), None)
        if later is not None:
            raise ForecastError(
                f"{path} starts with {later - 1} line(s) of notes ({header[:60]!r}); the columns begin at "
                f"line {later}: delete the lines above it"
            )
    if header.count(sep) == 0:
        raise ForecastError(
            f"{path} has a single column ({header[:60]!r}); a CSV needs a time column and "
            "numeric columns separated by ',', ';' or tabs"
        )
    names = [_clean_name(h) for h in header.split(sep)]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise ForecastError(f"{path} has duplicate column names: {', '.join(dupes)}")
    return sep, names


def _names_columns(line: str) -> bool:
    """Whether a line could be a header: separated fields, not every one of them a number."""
    fields = re.split(r"[,;\t|]", line)
    return len(fields) > 1 and not all(re.fullmatch(r"\s*[-+]?[\d.]*\s*", f) for f in fields)


def _clean_name(name: object) -> str:
    """A header cell without surrounding spaces and quotes: ` "a" ` -> `a`."""
    return str(name).strip().strip('"').strip()


def _is_text(col: pd.Series) -> bool:
    """Object or string dtype (pandas >= 3 reads text as `str`, not `object`)."""
    return pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)


def _show(value: object) -> str:
    """A cell value for an error message: strings quoted, numbers plain (not `np.int64(1)`)."""
    return repr(value) if isinstance(value, str) else str(value)


def _read_csv_fast(path: Path, sep: str, text_columns: list[str]) -> pd.DataFrame:
    """pandas' fastest reader: Arrow's when pyarrow is installed, else the C engine."""
    try:
        return _read_csv_arrow(path, sep, text_columns)
    except Exception:  # no pyarrow, or Arrow refuses some valid file: the C engine decides
        pass
    dtype = dict.fromkeys(text_columns, "string[pyarrow]")  # text in Arrow buffers: no Python object per row
    return pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True, dtype=dtype)


def _read_csv_arrow(path: Path, sep: str, text_columns: list[str]) -> pd.DataFrame:
    """Arrow's multi-threaded columnar reader. pandas up to 3.0 applies dtype only after Arrow has
    parsed ids as numbers ("001" -> "1"), so a file with an id column is read by pyarrow itself,
    its ids typed as dictionary text (categories: no Python string per row)."""
    if not text_columns:
        return pd.read_csv(path, sep=sep, engine="pyarrow", encoding="utf-8")
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=sep)
    with pacsv.open_csv(path, parse_options=parse) as reader:  # the header as Arrow names it
        names = {_clean_name(name): name for name in reader.schema.names}
    text = pa.dictionary(pa.int32(), pa.string())
    convert = pacsv.ConvertOptions(column_types={names[c]: text for c in text_columns})
    table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)  # frees Arrow as it goes


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_date_column(df: pd.DataFrame, name: str | None, path: str, id_column: str | None = None) -> str:
    """The time column: `name`, else found by name, then by content; never the id column."""
    if name is not None:
        if name not in df.columns:
            raise ForecastError(f"time column {name!r} not found in {path} (columns: {', '.join(df.columns)})")
        return name
    names = [str(c) for c in df.columns]
    df = df[[c for c in df.columns if c != id_column]]  # ids such as 001 or 1001 would read as years
    for col in df.columns:
        # by name, but never a numeric column such as a `day` counter
        if str(col).lower() in DATE_NAMES and (
            not pd.api.types.is_numeric_dtype(df[col]) or _date_digits(df[col], str(col))
        ):
            return str(col)
    for col in df.columns:
        if _is_text(df[col]) or pd.api.types.is_datetime64_any_dtype(df[col]):
            sample = df[col].dropna().astype(str).str.strip().head(20)
            if len(sample) and (special_format(sample) is not None or _all_times(sample)):
                return str(col)
    # an integer `year` column: an annual series, unless other columns split the year (year, month)
    finer = any(str(c).lower() in ("month", "quarter", "week", "day", "mon", "qtr") for c in df.columns)
    for col in df.columns:
        if str(col).lower() in YEAR_NAMES and _is_year_ints(df[col]) and not finer:
            return str(col)
    skipped = f"; the id column {id_column!r} is not one" if id_column in names else ""
    raise ForecastError(f"no time column found in {path} (columns: {', '.join(names)}{skipped}); set data.date_column")


def _all_times(sample: pd.Series) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(pd.to_datetime(sample, errors="coerce").notna().all())


MONTH_INT_NAMES = ("date", "ds", "period", "month", "mon", "yyyymm", "ym", "yearmonth", "year_month")


def _date_digits(col: pd.Series, name: str) -> int:
    """8 for integers that are all dates written YYYYMMDD (20240131), 6 for YYYYMM (202401) in a
    column named for months or dates (not 199001 in a `quarter` or `week` column), else 0."""
    if not pd.api.types.is_integer_dtype(col) or col.isna().all():
        return 0
    values = col.dropna()
    layouts = ((8, "%Y%m%d"), (6, "%Y%m")) if name.lower() in MONTH_INT_NAMES else ((8, "%Y%m%d"),)
    for digits, fmt in layouts:
        if values.between(10 ** (digits - 1), 3 * 10 ** (digits - 1) - 1).all():
            as_dates = pd.to_datetime(values.drop_duplicates().astype(str), format=fmt, errors="coerce")
            return digits if as_dates.notna().all() else 0
    return 0


def _is_year_ints(col: pd.Series) -> bool:
    """Integers that can only be years (1000..2999): `year` columns such as 1871, 1872, ..."""
    if not pd.api.types.is_integer_dtype(col) or col.isna().all():
        return False
    return bool(col.between(1000, 2999).all())


LAYOUT_SAMPLE = 20  # the first non-empty rows whose values decide a layout (quarters, month names, ...)


@dataclass
class DistinctTimes:
    """A time column's distinct values, each parsed once, and what read_times decides from rows."""

    values: pd.Series  # in the order they first appear
    sample: np.ndarray  # codes of the first LAYOUT_SAMPLE non-empty rows: a layout is decided on them
    empty: bool  # some row has no time


def distinct_times(col: pd.Series) -> tuple[np.ndarray, DistinctTimes]:
    """(N,) codes (-1 where empty) into the column's distinct values, and those values."""
    codes, uniques = pd.factorize(col)  # a Categorical: the categories rows use, in the order they appear
    if isinstance(uniques, pd.Categorical):
        uniques = uniques.categories.take(uniques.codes)
    codes = codes.astype(np.int64)
    return codes, DistinctTimes(pd.Series(uniques), _first_present(codes, LAYOUT_SAMPLE), bool((codes < 0).any()))


def _first_present(codes: np.ndarray, k: int) -> np.ndarray:
    """The first k codes that are not -1, looking at no more of a long column than it takes."""
    found: list[int] = []
    start, step = 0, 1024
    while len(found) < k and start < len(codes):
        chunk = codes[start : start + step]
        found += chunk[chunk >= 0][: k - len(found)].tolist()
        start, step = start + step, step * 2
    return np.array(found, dtype=np.int64)


def read_times(
    col: pd.Series, name: str, path: str, distinct: DistinctTimes | None = None, day_first: bool | None = None
) -> tuple[pd.Series, str]:
    """The time column as naive datetime64[ns], and how it was written (a Panel.time_format).

    Quarters, month names, ISO weeks and integer years map to the start of their period. Times
    with UTC offsets keep their local wall time when there is one offset, or when each row is at
    the same time of day (daily data across a DST change: a day stays a calendar day); otherwise
    (sub-daily data across DST changes) they become UTC, which alone keeps the steps regular.

    Each distinct value is parsed once, and every choice (layout, day first, zone, fractions of a
    second) is made over the distinct values. Sharded, `distinct` holds the whole file's, and col
    is a Categorical of them holding this process's rows only: it then reads its rows exactly as
    one process reading every row does. `day_first` settles dates like 01/03/2024 that the values
    alone leave open (day_order): a run's order (day_first_read), for a newer file.
    """
    if distinct is None and pd.api.types.is_datetime64_dtype(col):  # naive times: nothing to choose
        times, fmt = _as_ns(col, name, path), ""
        parsed = times.to_numpy()
    else:
        if distinct is None:
            codes, distinct = distinct_times(col)
        else:
            codes = col.cat.codes.to_numpy(dtype=np.int64)

        def line(i: int) -> str:  # where distinct value i first appears, for errors: "?" if in no row here
            rows = np.flatnonzero(codes == i)
            return at_row(int(rows[0]), path) if len(rows) else "line ?"

        distinct_parsed, fmt = _read_distinct(distinct, name, path, line, day_first)
        parsed = distinct_parsed.to_numpy(dtype="datetime64[ns]")
        times = pd.Series(np.append(parsed, np.datetime64("NaT"))[codes], index=col.index)  # code -1: NaT
    missing = times.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        value = "an empty cell" if pd.isna(col.iloc[i]) else _show(col.iloc[i])
        raise ForecastError(
            f"time column {name!r} in {path} has a value that is not a time at {at_row(i, path)}: {value}"
        )
    if (distinct is not None and distinct.empty) or np.isnat(parsed).any():  # in another process's rows
        raise ForecastError(f"time column {name!r} in {path} has a value that is not a time")
    if not fmt and (parsed.astype(np.int64) % 1_000_000_000).any():
        fmt = DEFAULT_TIME_FORMAT + ".%f"  # sub-second times keep their fractions when written
    return times, fmt


def _read_distinct(
    distinct: DistinctTimes, name: str, path: str, line: Callable[[int], str], day_first: bool | None = None
) -> tuple[pd.Series, str]:
    """The distinct values as times (NaT where one is not a time) and the layout; line(i): the
    line where value i first appears, for errors."""
    col = distinct.values
    if pd.api.types.is_datetime64_any_dtype(col):
        times, fmt = col, ""
    else:
        raw = col.astype(str).str.strip()
        digits = _date_digits(col, name)
        kind = special_format(raw.iloc[distinct.sample]) if _is_text(col) or _is_year_ints(col) or digits else None
        if kind == "year_month" and name.lower() not in MONTH_INT_NAMES:
            kind = None  # 199001 in a `quarter` or `week` column is not January 1990
        times, fmt = parse_special(raw, kind) if kind else _to_datetime(raw, name, path, line, day_first)
        if digits == 8:
            fmt = "%Y%m%d"  # written back as read: 20240131
    if getattr(times.dt, "tz", None) is not None:  # a datetime column with a zone (pyarrow, Parquet, DataFrames)
        times, fmt = _wall_time(times)
    return _as_ns(times, name, path), fmt


def _as_ns(times: pd.Series, name: str, path: str) -> pd.Series:
    try:
        return times.astype("datetime64[ns]")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ForecastError(
            f"time column {name!r} in {path} has times outside 1678-2261, which pandas cannot hold"
        ) from None


def special_format(sample: pd.Series) -> str | None:
    """The SPECIAL_FORMATS pattern of the first value, if most of `sample` matches it (a stray
    bad value is then reported by its line, not taken for a different layout)."""
    if len(sample) == 0:
        return None
    for kind, pattern in SPECIAL_FORMATS.items():
        matches = sample.str.fullmatch(pattern)
        if matches.iloc[0] and matches.mean() > 0.5:
            return kind
    return None


def parse_special(raw: pd.Series, kind: str) -> tuple[pd.Series, str]:
    """Quarters, month names, ISO weeks or years, parsed once per distinct value; NaT where a
    value does not match. The format is the first value's layout, kept only if it writes every
    distinct time back exactly as the file did."""
    codes, uniques = pd.factorize(raw)
    parts = pd.Series(uniques).str.extract(SPECIAL_FORMATS[kind])
    year = pd.to_numeric(parts["y"], errors="coerce")
    if kind == "week":
        text = parts["y"] + "-W" + parts["w"] + "-" + parts["d"].fillna("1")
        parsed = pd.to_datetime(text, format="%G-W%V-%u", errors="coerce")
        iso = parsed.dt.isocalendar()  # '2021-W53' does not exist: strptime would roll it into 2022
        exists = (iso["year"] == year) & (iso["week"] == pd.to_numeric(parts["w"], errors="coerce"))
        parsed = parsed.where(exists.fillna(False).astype(bool))
    else:
        if "q" in parts:
            month = pd.to_numeric(parts["q"], errors="coerce") * 3 - 2
        elif "m" in parts:
            month = parts["m"].str.lower().str.rstrip(".").map(MONTH_NUMBERS)
        elif "n" in parts:
            month = pd.to_numeric(parts["n"], errors="coerce")
        else:
            month = pd.Series(1.0, index=parts.index)
        ok = (year.between(1678, 2261) & month.notna()).to_numpy()  # pandas' nanosecond range
        stamps = np.full(len(parts), np.datetime64("NaT"), dtype="datetime64[M]")
        stamps[ok] = ((year[ok] - 1970) * 12 + month[ok] - 1).to_numpy(np.int64).astype("datetime64[M]")
        parsed = pd.Series(stamps.astype("datetime64[ns]"))
    values = parsed.to_numpy(dtype="datetime64[ns]")
    times = pd.Series(np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT")), index=raw.index)
    first = _layout_of(uniques[0], kind) if len(uniques) and not pd.isna(values[0]) else ""
    written = np.asarray(uniques, dtype=object)
    # 'May' reads as either month style: try both; a layout that varies between rows gets the default
    layouts = [first, first.replace("%b", "%B")] if "%b" in first else [first]
    fmt = next((f for f in layouts if f and (format_times(values, f) == written).all()), "")
    return times, fmt


def _layout_of(value: str, kind: str) -> str:
    """The strftime layout (plus %q for the quarter) that wrote `value`: '1998 Q1' -> '%Y Q%q'."""
    match = re.fullmatch(SPECIAL_FORMATS[kind], value)
    assert match is not None
    codes = {"y": "%G" if kind == "week" else "%Y", "q": "%q", "w": "%V", "d": "%u", "n": "%m"}
    if "m" in match.re.groupindex:
        codes["m"] = "%b" if len(match.group("m")) == 3 else "%B"
    spans = sorted((match.span(g), codes[g]) for g in match.re.groupindex if match.group(g) is not None)
    out, pos = "", 0
    for (a, b), code in spans:
        out, pos = out + value[pos:a].replace("%", "%%") + code, b
    return out + value[pos:].replace("%", "%%")


def format_times(times: np.ndarray, fmt: str) -> np.ndarray:
    """Times as text in `fmt` (strftime, plus %q for the quarter), formatted once per distinct time."""
    uniq, inverse = np.unique(np.asarray(times, dtype="datetime64[ns]"), return_inverse=True)
    index = pd.DatetimeIndex(uniq)
    pieces = fmt.split("%q")
    text = pd.Index(index.strftime(pieces[0]), dtype=object)
    for piece in pieces[1:]:
        text = text + index.quarter.astype(str) + pd.Index(index.strftime(piece), dtype=object)
    return np.asarray(text, dtype=object)[inverse.reshape(-1)].reshape(np.shape(times))


def zone_of(fmt: str) -> np.timedelta64 | None:
    """The UTC offset a Panel.time_format writes its times with ("...Z": 0, "...+05:30"), or None
    for times written without one."""
    if re.search(r"(?i)(?:z|utc|gmt)$", fmt):
        return np.timedelta64(0, "m")
    match = re.search(r"%S(?:\.%f)?\s*([+-])(\d{2}):?(\d{2})?$", fmt)  # after the seconds: +05:30, +0530, +05
    if not match:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    return np.timedelta64(-minutes if match.group(1) == "-" else minutes, "m")


def read_written_times(raw: pd.Series, fmt: str, name: str, path: str) -> pd.Series:
    """Times this tool wrote in `fmt` (a Panel.time_format; "" for ISO 8601) read back, naive, as
    read_times reads them from data. Text in another layout is read as data is."""
    text = raw.astype(str).str.strip()
    if fmt and "%q" not in fmt and "%V" not in fmt:  # strftime layouts read back directly
        times = pd.to_datetime(text, format=fmt, errors="coerce")
        if not times.isna().any():
            return times
    return read_times(text, name, path)[0]


def day_month_fields(raw: pd.Series) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """The first two fields of dates like 03/04/2024 or 3.4.24 (NaN where a value is not one), and
    where they differ, so that their order matters."""
    fields = raw.str.extract(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")
    first, second = (pd.to_numeric(fields[k], errors="coerce") for k in (0, 1))
    return first, second, (first.notna() & (first != second)).to_numpy()


def day_first_read(raw: pd.Series, times: pd.Series) -> bool | None:
    """Whether times read from text like 03/04/2024 were read day first (None: no such value among
    the first rows, or the fields are equal there), for a run to read newer files alike."""
    head = raw.head(1000)
    if not pd.api.types.is_string_dtype(head) and head.dtype != object:
        return None
    first, _, differ = day_month_fields(head.astype(str))
    if not differ.any():
        return None
    i = int(np.flatnonzero(differ)[0])
    return bool(pd.Timestamp(times.iloc[i]).day == first.iloc[i])


def day_order(
    raw: pd.Series, name: str, path: str, line: Callable[[int], str], known: bool | None = None
) -> tuple[bool, pd.Series | None]:
    """Whether dates like 03/04/2024 put the day first, and the times so read where choosing took
    reading them (else None): day first when a first field exceeds 12, month first when a second
    one does. When neither does (monthly data on the 1st: 01/07/1991, 01/08/1991, ...), the
    reading whose steps are regular wins: read month first, those are January 7, 8, ... Where
    both readings are as regular (a few days or months), the order `known` (a run's, for a newer
    file) holds; without it, the dates are refused, not guessed."""
    first, second, differ = day_month_fields(raw)  # differ: 03/04/2024, not 03/03/2024 or 2024-03-04
    if (first > 12).any():
        return True, None
    if (second > 12).any() or not differ.any():
        return False, None
    wall = raw.str.replace(ZONE_SUFFIX, "", regex=True)
    month_first, day_first = (parse_times(wall, dayfirst=d) for d in (False, True))
    by_month, by_day = _regularity(month_first), _regularity(day_first)
    if by_month == by_day and known is not None:
        by_day, by_month = float(known), float(not known)
    if by_month == by_day:
        i = int(np.flatnonzero(differ)[0])
        raise ForecastError(
            f"time column {name!r} in {path} could be day/month or month/day ({line(i)}: {raw.iloc[i]!r}), "
            "and both read as regular steps; write its times as YYYY-MM-DD"
        )
    chosen = day_first if by_day > by_month else month_first
    return by_day > by_month, chosen if wall.equals(raw) else None  # no zones stripped: the times


def parse_times(raw: pd.Series, dayfirst: bool) -> pd.Series:
    """Times in layouts other than ISO 8601 (NaT where a value is not one): in the first value's
    layout, vectorized, where every value has it; else value by value (format="mixed", slow)."""
    layout = guess_datetime_format(str(raw.iloc[0]), dayfirst=dayfirst) if len(raw) else None
    if layout:
        try:
            times = pd.to_datetime(raw, format=layout, errors="coerce")
            if pd.api.types.is_datetime64_dtype(times) and not (times.isna() & raw.notna()).any():
                return times
        except (ValueError, TypeError):
            pass  # zones, mixed offsets: the row-by-row parse decides
    return pd.to_datetime(raw, errors="coerce", format="mixed", dayfirst=dayfirst)


def _regularity(times: pd.Series) -> float:
    """The share of steps between consecutive distinct times that equal the most common step,
    counting a step from one day of the month to the same day (and time) months later as months."""
    t = np.unique(times.dropna().to_numpy(dtype="datetime64[ns]"))
    if len(t) < 2:
        return 1.0
    index = pd.DatetimeIndex(t)
    months = np.diff(index.year * 12 + index.month)
    same_day = np.diff(index.day) == 0
    same_day &= np.diff((t - t.astype("datetime64[D]")).astype(np.int64)) == 0
    steps = np.where(same_day, -months, np.diff(t).astype(np.int64))  # months negative: apart from ns
    return float(np.unique(steps, return_counts=True)[1].max() / len(steps))


def _to_datetime(
    raw: pd.Series, name: str, path: str, line: Callable[[int], str], day_first: bool | None = None
) -> tuple[pd.Series, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the common case, vectorized: ISO 8601 times in one zone
            fast = pd.to_datetime(raw, format="ISO8601")
            if pd.api.types.is_datetime64_any_dtype(fast):
                return _wall_time(fast, raw)
        except (ValueError, TypeError):
            pass  # the slower row-by-row parse below finds and names what is wrong
        try:
            dayfirst, times = day_order(raw, name, path, line, day_first)
            if times is None:
                times = parse_times(raw, dayfirst)
            mixed = times.dtype == object  # pandas < 3 returns objects for mixed offsets
        except (ValueError, TypeError) as e:
            text = str(e).lower()
            if not any(word in text for word in ("timezone", "time zone", "tz", "offset")):
                raise ForecastError(f"time column {name!r} in {path} could not be parsed: {e}") from None
            mixed = True
        if not mixed:
            return _wall_time(times, raw)
        # Offsets that change from row to row (daylight saving time) still name one instant each,
        # so UTC holds them all. Times without any offset among them are ambiguous: refuse.
        aware = raw.str.contains(TZ_SUFFIX, regex=True, na=False).to_numpy()
        if not aware.all():  # the first value that differs from the first one, at its first line
            i = int(np.flatnonzero(aware != aware[0])[0])
            raise ForecastError(
                f"time column {name!r} in {path} mixes time zones: {line(i)} ({raw.iloc[i]!r}) and "
                f"{line(0)} ({raw.iloc[0]!r}) differ in having a UTC offset; convert it to one zone (or UTC)"
            )
        utc = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True, dayfirst=dayfirst).dt.tz_localize(None)
        local = raw.str.replace(ZONE_SUFFIX, "", regex=True)
        wall = pd.to_datetime(local, errors="coerce", format="mixed", dayfirst=dayfirst)
        return choose_zone(wall, utc, None)


def _wall_time(times: pd.Series, raw: pd.Series | None = None) -> tuple[pd.Series, str]:
    """Naive times of a zoned column, and the zone to write back (see read_times)."""
    if getattr(times.dt, "tz", None) is None:
        return times, ""
    utc = times.dt.tz_convert("UTC").dt.tz_localize(None)
    suffix = re.search(ZONE_SUFFIX, str(raw.iloc[0])) if raw is not None else None
    return choose_zone(times.dt.tz_localize(None), utc, suffix.group(0) if suffix else None)


def choose_zone(wall: pd.Series, utc: pd.Series, suffix: str | None) -> tuple[pd.Series, str]:
    """Local wall times when there is one UTC offset (written back with it) or when every row is
    at the same time of day (daily data across DST: written as local dates); else UTC."""
    offsets = (wall - utc).dropna().unique()
    if len(offsets) <= 1:
        if suffix is None:
            minutes = int(pd.Timedelta(offsets[0]).total_seconds() // 60) if len(offsets) else 0
            sign = "+" if minutes >= 0 else "-"
            suffix = "Z" if minutes == 0 else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return wall, DEFAULT_TIME_FORMAT + suffix.replace("%", "%%")
    tod = (wall - wall.dt.normalize()).dropna()
    if (tod == tod.iloc[0]).all():
        return wall, ""
    return utc, DEFAULT_TIME_FORMAT + "Z"


def to_numeric(df: pd.DataFrame, columns: list[str], path: str) -> np.ndarray:
    """Columns as float64, with errors naming the first bad line and value."""
    out = np.empty((len(df), len(columns)))
    for j, col in enumerate(columns):
        raw = df[col]
        if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
            values = raw.astype(float)
        elif _is_text(raw):
            values, empty = text_numbers(raw)
            bad = (values.isna() & ~empty).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                value = str(raw.iloc[i]).strip()
                hint = ""
                if re.fullmatch(r"[-+]?\d+(,\d{3})+", value):  # 3,527: 3.527, or 3527 with a thousands comma?
                    hint = "; it could be a decimal comma or a thousands separator: write numbers as 3527 or 3.527"
                elif re.fullmatch(DECIMAL_COMMA, value):  # 1,5 among values like 12.573
                    hint = "; the column has numbers with a decimal comma and with a decimal point: write them one way"
                raise ForecastError(
                    f"column {col!r} in {path} has a non-numeric value at {at_row(i, path)}: {raw.iloc[i]!r}{hint}"
                )
        else:
            raise ForecastError(f"column {col!r} in {path} is not numeric (it holds {raw.dtype} values)")
        out[:, j] = values.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(out).any():
        i, j = (int(v[0]) for v in np.nonzero(np.isinf(out)))
        raise ForecastError(f"column {columns[j]!r} in {path} has an infinite value at {at_row(i, path)}")
    return out


EMPTY_CELLS = ("", "nan", "na", "null", "none", "n/a")
# numbers with a decimal comma, as spreadsheets in much of Europe write them: 3,25 or 1.234,5
DECIMAL_COMMA = r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"
# numbers with thousands commas, as US and UK exports write them: 1,234.5 or 1,234,567
THOUSANDS_COMMA = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def text_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A text column as numbers (NaN where a cell is not one), and where it is empty.

    Commas are read in the convention some value settles, and only then:
    - a decimal comma (3,25; 1.234,5) where a comma is followed by other than three digits, or a
      point comes before a comma, and no value has a point without a comma (12.573);
    - thousands commas (1,234.5; 1,234,567) where a comma group comes before a point or another
      comma group.
    3,527 alone could be 3.527 or 3527: such a column stays unread, an error. A column whose every
    value ends in % (5.2%) reads as the numbers before it. A cell that fits no convention stays
    NaN, for the caller to name by its line."""
    values = pd.to_numeric(raw, errors="coerce")
    text = raw.astype(str).str.strip()
    empty = raw.isna() | text.str.lower().isin(EMPTY_CELLS)
    if not (values.isna() & ~empty).any():
        return values, empty
    if text[~empty].str.endswith("%").all():  # 5.2%: percent, kept in percent
        text = text.str.removesuffix("%").str.strip()
        values = pd.to_numeric(text.where(~empty), errors="coerce")
    filled = text[~empty]
    comma = filled.str.fullmatch(DECIMAL_COMMA)
    decimal_comma = comma & (filled.str.contains(r",(?:\d{1,2}|\d{4,})$") | filled.str.contains(r"\..*,"))
    point_only = filled.str.contains(".", regex=False) & ~filled.str.contains(",", regex=False)  # 12.573
    if decimal_comma.any() and not point_only.any():
        points = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        return pd.to_numeric(points.where(text.str.fullmatch(DECIMAL_COMMA)), errors="coerce"), empty
    thousands = filled.str.fullmatch(THOUSANDS_COMMA) & filled.str.contains(r",\d{3}[.,]")
    if thousands.any():
        plain = text.str.replace(",", "", regex=False)
        return pd.to_numeric(plain.where(text.str.fullmatch(THOUSANDS_COMMA)), errors="coerce"), empty
    return values, empty


def resolve_targets(df: pd.DataFrame, cfg: DataConfig, date_col: str, path: str) -> tuple[list[str], list[str]]:
    reserved = {date_col, cfg.id_column}
    for col in [*cfg.target, *cfg.features]:
        if col not in df.columns:
            raise ForecastError(f"column {col!r} not found in {path} (columns: {', '.join(df.columns)})")
        if col in reserved:
            raise ForecastError(f"column {col!r} in {path} is the time or id column; it cannot be a target or feature")
    targets = list(cfg.target)
    if not targets:
        # the last numeric column, counting one whose stray bad cell to_numeric will then report
        numeric = [c for c in df.columns if c not in reserved and c not in cfg.features and _mostly_numeric(df[c])]
        if not numeric:
            raise ForecastError(f"{path} has no numeric column to forecast; set data.target")
        targets = [numeric[-1]]
    return targets, list(cfg.features)


def _mostly_numeric(col: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return True
    if not _is_text(col) or col.notna().sum() == 0:
        return False
    return bool(text_numbers(col)[0].notna().sum() > col.notna().sum() / 2)


def read_source(cfg: DataConfig, source: str | Path | pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """The DataFrame given, or the file (default cfg.path) read with its id column as text."""
    if isinstance(source, pd.DataFrame):
        df = with_index_columns(source)
        df.columns = [str(c).strip() for c in df.columns]
        if len(df) == 0:
            raise ForecastError("the DataFrame has no rows")
        return df, DATAFRAME
    path = str(source or cfg.path)
    return read_table(path, text_columns=[cfg.id_column] if cfg.id_column else []), path


def id_names(uniques: Any) -> list[str]:
    """Distinct ids (pd.factorize's uniques) as the names of their series."""
    return [str(u) for u in uniques]


def read_ids(df: pd.DataFrame, id_column: str | None, path: str) -> tuple[np.ndarray, list[str]]:
    """(N,) the series of each row, as codes into the sorted series ids (read as text: "001" stays
    "001"); one series "" without an id column. A blank id is an error naming its line."""
    if not id_column:
        return np.zeros(len(df), dtype=np.int64), [""]
    codes, uniques = pd.factorize(df[id_column])  # -1 for a missing id; uniques in order of appearance
    names = np.array(id_names(uniques), dtype=object)
    blank = np.append(np.char.strip(names.astype(str)) == "", True)[codes]  # codes -1 index the appended True
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise ForecastError(
            f"id column {id_column!r} in {path} is empty at {at_row(i, path)}; every row needs a series id"
        )
    order = np.argsort(names, kind="stable")  # series in the order of their ids as text
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], [str(n) for n in names[order]]
