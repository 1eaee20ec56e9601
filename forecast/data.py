"""Load a CSV (or Parquet) into a validated panel of series, split it, and scale it."""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.config import DataConfig, split_is_counts
from forecast.errors import ForecastError

DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period", "month", "day", "quarter", "week", "year")
YEAR_NAMES = ("year", "years", "yr", "yyyy")
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# layouts pandas does not read on its own, as regexes with named parts: y year, q quarter,
# m month name, w ISO week, d ISO weekday
MONTH = r"(?P<m>[A-Za-z]{3,9}\.?)"
SPECIAL_FORMATS = {
    "year": r"(?P<y>[12]\d{3})",
    "quarter": r"(?P<y>\d{4})[\s./-]*[Qq](?P<q>[1-4])",
    "quarter_first": r"[Qq](?P<q>[1-4])[\s./-]*(?P<y>\d{4})",
    "month_name": rf"(?P<y>\d{{4}})[\s./-]*{MONTH}",
    "month_name_first": rf"{MONTH}[\s./,-]*(?P<y>\d{{4}})",
    "week": r"(?P<y>\d{4})-?W(?P<w>\d{2})(?:-?(?P<d>[1-7]))?",
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
DAY_NS = 86_400 * 10**9
WEEK_NS = 7 * DAY_NS
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MONTHS_PER_STEP = {"MS": 1, "ME": 1, "M": 1, "QS": 3, "QE": 3, "Q": 3, "YS": 12, "YE": 12, "Y": 12, "A": 12, "AS": 12}
OTHER_SEASONS = {"BMS": 12, "BME": 12, "BQS": 4, "BQE": 4, "SMS": 24, "SME": 24, "C": 5}
CALENDAR_COLUMNS = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "month_sin", "month_cos")


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


# ---------------------------------------------------------------- reading


def read_table(path: str | Path, text_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame of strings/numbers, with clear errors.
    `text_columns` (series ids) are read as text: "001" stays "001"."""
    if not str(path):
        raise ForecastError("no data file given: pass --data FILE.csv or set data.path in the config")
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"data file {str(path)!r} not found")
    if path.stat().st_size == 0:
        raise ForecastError(f"{path} is empty")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise ForecastError(f"reading {path} needs pyarrow: pip install pyarrow") from None
        except Exception as e:  # pyarrow raises many types for a bad file
            raise ForecastError(f"{path} is not a readable Parquet file ({type(e).__name__})") from None
    with path.open("rb") as f:
        head = f.read(4096)
    if b"\x00" in head:
        raise ForecastError(f"{path} is not a CSV file (it holds binary data)")
    text = head.decode("utf-8-sig", errors="replace")
    if text.lstrip().lower().startswith(("<!doctype", "<html", "<?xml")):
        raise ForecastError(f"{path} is an HTML/XML page, not a CSV file")
    header = text.splitlines()[0] if text.splitlines() else ""
    sep = max([",", ";", "\t", "|"], key=header.count)
    if header.count(sep) == 0:
        raise ForecastError(
            f"{path} has a single column ({header[:60]!r}); a CSV needs a time column and "
            "numeric columns separated by ',', ';' or tabs"
        )
    names = [_clean_name(h) for h in header.split(sep)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ForecastError(f"{path} has duplicate column names: {', '.join(dupes)}")
    try:
        df = _read_csv_fast(path, sep, [c for c in text_columns or [] if c in names])
    except pd.errors.EmptyDataError:
        raise ForecastError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ForecastError(f"{path} could not be parsed as CSV: {msg}") from None
    df.columns = [_clean_name(c) for c in df.columns]
    zoned = [i for i, c in enumerate(df.columns) if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    if zoned:  # pyarrow turned times with UTC offsets into UTC: read_times wants them as written
        text = pd.read_csv(path, sep=sep, usecols=zoned, dtype=str, encoding="utf-8-sig", skipinitialspace=True)
        for i in zoned:
            df[df.columns[i]] = text.iloc[:, zoned.index(i)].to_numpy()
    if len(df) == 0:
        raise ForecastError(f"{path} has a header but no data rows")
    return df


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
    """pandas' fastest reader: the pyarrow engine when installed, else the C engine."""
    dtype = dict.fromkeys(text_columns, str)
    # pandas up to 3.0 applies dtype after the pyarrow engine has parsed ids as numbers ("001" ->
    # "1"), so a file with an id column is read by the C engine, which reads the ids as written
    if not text_columns:
        try:
            import pyarrow  # noqa: F401

            return pd.read_csv(path, sep=sep, engine="pyarrow", encoding="utf-8", dtype=dtype)
        except Exception:  # no pyarrow, or its engine refuses some valid file: the C engine decides
            pass
    return pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True, dtype=dtype)


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- validating


def detect_date_column(df: pd.DataFrame, name: str | None, path: str) -> str:
    if name is not None:
        if name not in df.columns:
            raise ForecastError(f"time column {name!r} not found in {path} (columns: {', '.join(df.columns)})")
        return name
    for col in df.columns:
        # by name, but never a numeric column such as a `day` counter
        if str(col).lower() in DATE_NAMES and not pd.api.types.is_numeric_dtype(df[col]):
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
    raise ForecastError(f"no time column found in {path} (columns: {', '.join(df.columns)}); set data.date_column")


def _all_times(sample: pd.Series) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(pd.to_datetime(sample, errors="coerce").notna().all())


def _is_year_ints(col: pd.Series) -> bool:
    """Integers that can only be years (1000..2999): `year` columns such as 1871, 1872, ..."""
    if not pd.api.types.is_integer_dtype(col) or col.isna().all():
        return False
    return bool(col.between(1000, 2999).all())


def parse_times(col: pd.Series, name: str, path: str) -> pd.Series:
    """The time column as naive datetimes (see read_times)."""
    return read_times(col, name, path)[0]


def read_times(col: pd.Series, name: str, path: str) -> tuple[pd.Series, str]:
    """The time column as naive datetime64[ns], and how it was written (a Panel.time_format).

    Quarters, month names, ISO weeks and integer years map to the start of their period. Times
    with UTC offsets keep their local wall time when there is one offset, or when each row is at
    the same time of day (daily data across a DST change: a day stays a calendar day); otherwise
    (sub-daily data across DST changes) they become UTC, which alone keeps the steps regular.
    """
    if pd.api.types.is_datetime64_any_dtype(col):
        times, fmt = col, ""
    else:
        raw = col.astype(str).str.strip()
        kind = special_format(raw[col.notna()].head(20)) if _is_text(col) or _is_year_ints(col) else None
        times, fmt = parse_special(raw, kind) if kind else _to_datetime(col, raw, name, path)
    missing = times.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        value = "an empty cell" if pd.isna(col.iloc[i]) else _show(col.iloc[i])
        raise ForecastError(f"time column {name!r} in {path} has a value that is not a time at line {i + 2}: {value}")
    if getattr(times.dt, "tz", None) is not None:  # a datetime column with a zone (pyarrow, Parquet, DataFrames)
        times, fmt = _wall_time(times)
    try:
        times = times.astype("datetime64[ns]")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ForecastError(
            f"time column {name!r} in {path} has times outside 1678-2261, which pandas cannot hold"
        ) from None
    if not fmt and (times.to_numpy().astype(np.int64) % 1_000_000_000).any():
        fmt = DEFAULT_TIME_FORMAT + ".%f"  # sub-second times keep their fractions when written
    return times, fmt


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
    codes = {"y": "%G" if kind == "week" else "%Y", "q": "%q", "w": "%V", "d": "%u"}
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


def is_day_first(raw: pd.Series) -> bool:
    """Whether dates like 03/04/2024 put the day first: true when a first field exceeds 12."""
    fields = raw.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")
    first = pd.to_numeric(fields[0], errors="coerce")
    return bool((first > 12).any())


def _to_datetime(col: pd.Series, raw: pd.Series, name: str, path: str) -> tuple[pd.Series, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the common case, vectorized: ISO 8601 times in one zone
            fast = pd.to_datetime(raw, format="ISO8601")
            if pd.api.types.is_datetime64_any_dtype(fast):
                return _wall_time(fast, raw)
        except (ValueError, TypeError):
            pass  # the slower row-by-row parse below finds and names what is wrong
        try:
            dayfirst = is_day_first(raw)
            times = pd.to_datetime(raw, errors="coerce", format="mixed", dayfirst=dayfirst)
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
        present = col.notna().to_numpy()
        aware = raw.str.contains(TZ_SUFFIX, regex=True, na=False).to_numpy()
        if not aware[present].all():
            first = int(np.flatnonzero(present)[0])
            i = int(np.flatnonzero(present & (aware != aware[first]))[0])
            raise ForecastError(
                f"time column {name!r} in {path} mixes time zones: line {i + 2} ({raw.iloc[i]!r}) and "
                f"line {first + 2} ({raw.iloc[first]!r}) differ in having a UTC offset; convert it to one zone (or UTC)"
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
            values = pd.to_numeric(raw, errors="coerce")
            text = raw.astype(str).str.strip().str.lower()
            empty = raw.isna() | text.isin(["", "nan", "na", "null", "none", "n/a"])
            bad = (values.isna() & ~empty).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                value = str(raw.iloc[i]).strip()
                hint = "; use '.' as the decimal point" if re.fullmatch(r"[-+]?\d+,\d+", value) else ""
                raise ForecastError(
                    f"column {col!r} in {path} has a non-numeric value at line {i + 2}: {raw.iloc[i]!r}{hint}"
                )
        else:
            raise ForecastError(f"column {col!r} in {path} is not numeric (it holds {raw.dtype} values)")
        out[:, j] = values.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(out).any():
        i, j = (int(v[0]) for v in np.nonzero(np.isinf(out)))
        raise ForecastError(f"column {columns[j]!r} in {path} has an infinite value at line {i + 2}")
    return out


def check_missing(values: np.ndarray, columns: list[str], path: str) -> None:
    """Refuse missing values, naming how many and the first one; rows are the file's, in its order."""
    nan = np.isnan(values)
    if nan.any():
        i, j = (int(v[0]) for v in np.nonzero(nan))
        raise ForecastError(
            f"{int(nan.sum())} missing values in {path} (first: column {columns[j]!r}, line {i + 2}); "
            "set data.fill to ffill or interpolate, or clean the file"
        )


def fill_missing(values: np.ndarray, columns: list[str], fill: str, path: str) -> np.ndarray:
    """One series' values, all of one split, with gaps filled per data.fill (see fill_gaps)."""
    n = len(values)
    ends = np.array([[n, n, n]], dtype=np.int64)
    return fill_gaps(values, np.array([0, n]), ends, fill, columns, path, [""])[0]


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
    series = _series_of_rows(offsets)
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
    diffs, first = np.diff(t), _series_of_rows(offsets)
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
            f"{path}{where} is not sorted by time ({b} comes after {a}); sort it or set data.sort: true"
        )


def _series_of_rows(offsets: np.ndarray) -> np.ndarray:
    """(N,) the series of each row."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


@dataclass
class Steps:
    """How each series' times advance: kind "ns" (a fixed step), "months" (calendar months, each
    series keeping its day in the month, or month ends) or "bdays" (business days, Mon-Fri)."""

    kind: np.ndarray  # (S,) str
    step: np.ndarray  # (S,) int64: the usual step, in nanoseconds, months or business days
    regular: np.ndarray  # (S,) bool: every step is the usual one (business days: skipping up to 2 holidays)
    largest: np.ndarray  # (S,) int64: the largest step, in the same unit
    largest_after: np.ndarray  # (S,) int64: the row before the largest step
    month_end: np.ndarray  # (S,) bool: every time is on the last day of its month


def infer_steps(times: np.ndarray, offsets: np.ndarray) -> Steps:
    """The calendar of every series, from one vectorized pass over all rows (series of 2+ rows)."""
    t = times.astype("datetime64[ns]")
    rows = _series_of_rows(offsets)
    n_series = len(offsets) - 1
    inner = np.flatnonzero(rows[1:] == rows[:-1])  # steps i -> i+1 inside one series
    sid = rows[inner + 1]
    ns = np.diff(t.astype(np.int64))[inner]
    fixed = _constant(ns, sid, n_series)
    step = _first(ns, sid, n_series) if fixed.all() else _mode(ns, sid, n_series)
    if fixed.all() and (step < 28 * DAY_NS).all():  # the common case: nothing calendar to look at
        at = np.zeros(n_series, dtype=np.int64)
        no = np.zeros(n_series, dtype=bool)
        return Steps(np.full(n_series, "ns"), step, fixed, step, at, no)
    day = t.astype("datetime64[D]")
    month = t.astype("datetime64[M]")
    into_month = (t - month.astype("datetime64[ns]")).astype(np.int64)
    time_of_day = (t - day.astype("datetime64[ns]")).astype(np.int64)
    month_end = (day + 1).astype("datetime64[M]") != month
    weekend = ((day.astype(np.int64) + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    candidates: dict[str, np.ndarray] = {
        "ns": ns,
        "months": np.diff(month.astype(np.int64))[inner],
        "bdays": np.busday_count(day[inner], day[inner + 1]),
    }
    same_day = _constant(into_month, rows, n_series) | (
        _all(month_end, rows, n_series) & _constant(time_of_day, rows, n_series)
    )
    monthly = same_day & ~_any(candidates["months"] < 1, sid, n_series)
    business = ~_any(weekend, rows, n_series) & _constant(time_of_day, rows, n_series)
    business &= ~_any(candidates["bdays"] < 1, sid, n_series) & (_mode(candidates["bdays"], sid, n_series) == 1)
    kind = np.where(monthly, "months", np.where(fixed, "ns", np.where(business, "bdays", "ns")))
    diffs = np.select(
        [kind[sid] == "months", kind[sid] == "bdays"], [candidates["months"], candidates["bdays"]], candidates["ns"]
    )
    step = _mode(diffs, sid, n_series)
    regular = ~_any(diffs != step[sid], sid, n_series)
    regular |= (kind == "bdays") & ~_any(diffs > 3, sid, n_series)  # 1 or 2 weekdays skipped: holidays
    largest_at = _argmax(diffs, sid, n_series)
    return Steps(
        kind=kind,
        step=step,
        regular=regular,
        largest=diffs[largest_at],
        largest_after=inner[largest_at],
        month_end=_all(month_end, rows, n_series) & monthly,
    )


def _any(flags: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(group, weights=flags, minlength=n) > 0


def _all(flags: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    return ~_any(~flags, group, n)


def _first(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """(n,) the first value of each group (groups are contiguous and sorted; 0 where empty)."""
    if len(values) == 0:
        return np.zeros(n, dtype=values.dtype)
    return values[np.minimum(np.searchsorted(group, np.arange(n)), len(values) - 1)]


def _constant(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """(n,) whether `values` is the same within each group."""
    return ~_any(values != _first(values, group, n)[group], group, n)


def _mode(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """(n,) the most common value of each group; ties go to the smallest, so the choice is deterministic."""
    counts = pd.DataFrame({"g": group, "v": values}).groupby(["g", "v"]).size().reset_index(name="n")
    top = counts.sort_values(["g", "n", "v"], ascending=[True, False, True], kind="stable").drop_duplicates("g")
    out = np.zeros(n, dtype=np.int64)
    out[top["g"].to_numpy()] = top["v"].to_numpy()
    return out


def _argmax(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """(n,) index into `values` of each group's largest value (its first, on ties)."""
    out = np.zeros(n, dtype=np.int64)
    if len(values):
        top = pd.Series(values).groupby(group).idxmax()
        out[top.index.to_numpy()] = top.to_numpy()
    return out


def name_step(kind: str, step: int, first: np.datetime64, month_end: bool) -> str:
    """A pandas alias for a series' calendar: 'h', 'D', 'W-WED', 'B', 'MS', 'QS-JAN', 'YE-DEC', ..."""
    t = pd.Timestamp(first)
    times = "" if step == 1 else str(step)
    if kind == "bdays":
        return f"{times}B"
    if kind == "months":
        edge = "E" if month_end else "S"
        if step % 12 == 0:
            n = step // 12
            return pd.tseries.frequencies.to_offset(f"{n if n > 1 else ''}Y{edge}-{MONTH_CODES[t.month - 1]}").freqstr
        if step % 3 == 0:
            n = step // 3
            anchor = MONTH_CODES[(t.month - 1) % 3 + (9 if month_end else 0)]
            return pd.tseries.frequencies.to_offset(f"{n if n > 1 else ''}Q{edge}-{anchor}").freqstr
        return f"{times}M{edge}"
    if step % WEEK_NS == 0:
        n = step // WEEK_NS
        return f"{n if n > 1 else ''}W-{WEEKDAYS[t.weekday()]}"
    if step % DAY_NS == 0:
        n = step // DAY_NS
        return f"{n if n > 1 else ''}D"
    return pd.tseries.frequencies.to_offset(pd.Timedelta(int(step))).freqstr


def describe_step(kind: str, step: int) -> str:
    if kind == "ns":
        return str(pd.Timedelta(int(step)))
    unit = {"months": "month", "bdays": "business day"}[kind]
    return f"{step} {unit}{'s' if step != 1 else ''}"


def infer_freq(times: np.ndarray, offsets: np.ndarray, ids: list[str], gaps: str, path: str) -> str:
    """The file's frequency as an offset alias, checking every series; mixed frequencies are an
    error, irregular steps warn or fail per data.gaps."""
    lengths = np.diff(offsets)
    usable = np.flatnonzero(lengths >= 3)
    if len(usable) == 0:
        sid = ids[0]
        where = f" (series {sid!r})" if sid else ""
        raise ForecastError(f"{path}{where} has fewer than 3 rows; cannot tell its frequency")
    steps = infer_steps(times, offsets)
    first = int(usable[0])
    if len(lengths) == 1 and not steps.regular[0]:
        named = pandas_calendar(times)  # e.g. business month ends, semi-month starts
        if named:
            return named
    differs = (steps.kind[usable] != steps.kind[first]) | (steps.step[usable] != steps.step[first])
    if differs.any():  # the first series, and the first one after it on another calendar
        pair = (first, int(usable[np.argmax(differs)]))
        a, b = (f"series {ids[s]!r} is {name_of(steps, s, times, offsets)}" for s in pair)
        raise ForecastError(f"{path} mixes frequencies: {a} but {b}; put series of one frequency in one file")
    irregular = usable[~steps.regular[usable]]
    if len(irregular):
        report_gaps(steps, irregular, times, ids, gaps, path)
    return name_of(steps, first, times, offsets)


def pandas_calendar(times: np.ndarray) -> str | None:
    """The alias pandas infers for one series' times, for the rarer calendars (BME, SMS, ...)
    that infer_steps does not know."""
    with warnings.catch_warnings():
        # pandas 3.1 announces that infer_freq will return an offset; either way we keep its string
        warnings.filterwarnings("ignore", message=".*infer_freq", category=Warning)
        freq = pd.infer_freq(pd.DatetimeIndex(times))
    return None if freq is None else str(getattr(freq, "freqstr", freq))


def name_of(steps: Steps, s: int, times: np.ndarray, offsets: np.ndarray) -> str:
    return name_step(str(steps.kind[s]), int(steps.step[s]), times[offsets[s]], bool(steps.month_end[s]))


def report_gaps(steps: Steps, irregular: np.ndarray, times: np.ndarray, ids: list[str], gaps: str, path: str) -> None:
    s = int(irregular[0])
    where = f" (series {ids[s]!r})" if ids[s] else ""
    kind = steps.kind[s]
    more = f" ({len(irregular)} series have irregular steps)" if len(irregular) > 1 else ""
    msg = (
        f"{path}{where} has irregular time steps: usually {describe_step(kind, int(steps.step[s]))}, largest gap "
        f"{describe_step(kind, int(steps.largest[s]))} after {pd.Timestamp(times[steps.largest_after[s]])}{more}"
    )
    if gaps == "error":
        raise ForecastError(msg + "; set data.gaps: warn to proceed anyway")
    warnings.warn(msg + "; proceeding as if regular (data.gaps: warn)", stacklevel=3)


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
    return bool(pd.to_numeric(col, errors="coerce").notna().sum() > col.notna().sum() / 2)


def load_panel(cfg: DataConfig, source: str | Path | pd.DataFrame | None = None) -> Panel:
    """Read and validate a file (default cfg.path) or a DataFrame into a Panel in original units."""
    df, path = read_source(cfg, source)
    date_col = detect_date_column(df, cfg.date_column, path)
    if cfg.id_column is not None and cfg.id_column not in df.columns:
        raise ForecastError(f"id column {cfg.id_column!r} not found in {path} (columns: {', '.join(df.columns)})")
    targets, features = resolve_targets(df, cfg, date_col, path)
    columns = targets + features
    times, time_format = read_times(df[date_col], date_col, path)
    values = to_numeric(df, columns, path)
    if cfg.fill == "none":
        check_missing(values, columns, path)  # before any reordering, so lines are the file's
    ids = read_ids(df, cfg.id_column, path)
    t = times.to_numpy(dtype="datetime64[ns]")
    codes = pd.factorize(ids, sort=True)[0]  # integers in the order of the ids: fast to sort and group
    if cfg.id_column and not cfg.sort:
        check_sorted_within(codes, ids, t, path)
    if cfg.sort or cfg.id_column:
        order = np.lexsort((t, codes))  # stable: by id, then time
        values, ids, t = values[order], ids[order], t[order]
    starts = np.append(0, np.flatnonzero(ids[1:] != ids[:-1]) + 1)  # rows of one series are together now
    offsets = np.append(starts, len(ids)).astype(np.int64)
    uniq = [str(u) for u in ids[starts]]
    check_order(t, offsets, uniq, cfg.sort, path)
    freq = infer_freq(t, offsets, uniq, cfg.gaps, path)
    borders = split_borders(np.diff(offsets), cfg.split, strict=False)
    values, filled = fill_gaps(values, offsets, borders, cfg.fill, columns, path, uniq)
    holidays = infer_holidays(t) if step_of(freq)[0] == "bdays" else ()
    return Panel(values, t, columns, len(targets), uniq, offsets, freq, time_format, filled, holidays)


def infer_holidays(times: np.ndarray) -> tuple[str, ...]:
    """Month-days ("01-01", "12-25") that no series has on any weekday they fell on, in two or
    more years: fixed-date holidays, which forecasts of business days skip too. Moving holidays
    (Easter) and observed days (a Monday after a Sunday holiday) cannot be told from gaps."""
    days = np.unique(times.astype("datetime64[D]"))
    span = np.arange(days[0], days[-1] + 1)
    weekday = np.is_busday(span)
    month_day = pd.DatetimeIndex(span[weekday]).strftime("%m-%d")
    skipped = pd.Series(~np.isin(span[weekday], days)).groupby(np.asarray(month_day)).agg(["all", "size"])
    return tuple(skipped.index[skipped["all"] & (skipped["size"] >= 2)])


def holiday_dates(holidays: tuple[str, ...], first: np.datetime64, years: int) -> np.ndarray:
    """datetime64[D] dates of `holidays` ("MM-DD") in the `years` years from `first`'s."""
    start = int(str(np.asarray(first).astype("datetime64[Y]")))
    text = [f"{y}-{md}" for y in range(start, start + years + 1) for md in holidays]
    return pd.to_datetime(pd.Series(text, dtype=object), errors="coerce").dropna().to_numpy().astype("datetime64[D]")


def read_source(cfg: DataConfig, source: str | Path | pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """The DataFrame given, or the file (default cfg.path) read with its id column as text."""
    if isinstance(source, pd.DataFrame):
        df = source.reset_index(drop=True)
        df.columns = [str(c).strip() for c in df.columns]
        if len(df) == 0:
            raise ForecastError("the DataFrame has no rows")
        return df, "the DataFrame"
    path = str(source or cfg.path)
    return read_table(path, text_columns=[cfg.id_column] if cfg.id_column else []), path


def read_ids(df: pd.DataFrame, id_column: str | None, path: str) -> np.ndarray:
    """(N,) series ids as text ("001" stays "001"); "" for a single series. A blank id is an error."""
    if not id_column:
        return np.full(len(df), "", dtype=object)
    col = df[id_column]
    text = col.astype(str)
    blank = (col.isna() | (text.str.strip() == "")).to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise ForecastError(f"id column {id_column!r} in {path} is empty at line {i + 2}; every row needs a series id")
    return text.to_numpy(dtype=object)


def check_sorted_within(codes: np.ndarray, ids: np.ndarray, times: np.ndarray, path: str) -> None:
    """Long format: rows of one series (same code) must be in time order among themselves."""
    grouped = np.argsort(codes, kind="stable")  # each series' rows together, in file order
    t, c = times[grouped], codes[grouped]
    back = grouped[1:][(c[1:] == c[:-1]) & (t[1:] < t[:-1])]
    if len(back):
        i = int(back.min())
        raise ForecastError(
            f"{path} is not sorted by time within series {ids[i]!r} (line {i + 2}); sort it or set data.sort: true"
        )


# ---------------------------------------------------------------- splitting


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


def calendar_features(times: np.ndarray) -> np.ndarray:
    """(N, 6) sin/cos of hour of day, day of week and month: known for any future time."""
    t = pd.DatetimeIndex(times)
    hour = (t.hour + t.minute / 60) / 24
    week = (t.day_of_week + hour) / 7
    month = (t.month - 1 + (t.day - 1) / 31) / 12
    parts = [f(2 * np.pi * np.asarray(x)) for x in (hour, week, month) for f in (np.sin, np.cos)]
    return np.stack(parts, axis=1)


def step_of(freq: str) -> tuple[str, int]:
    """A frequency as a comparable step: ("ns", nanoseconds) for fixed steps (so 'D' == '24h' and
    'W-SUN' == '168h'), ("months", n) for month/quarter/year offsets, ("bdays", n) for business days.
    Calendar offsets go by rule code and fixed ones by `nanos`, which mean the same in every pandas
    version (pandas 3's 'D' is no longer a Tick, but still has nanos)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    code = offset.rule_code.split("-")[0]
    if code in MONTHS_PER_STEP:
        return "months", offset.n * MONTHS_PER_STEP[code]
    if code == "W":
        return "ns", offset.n * WEEK_NS
    if code == "B":
        return "bdays", offset.n
    try:
        return "ns", int(offset.nanos)
    except ValueError:
        return "other", 0  # custom calendars (C, SMS, BMS, ...): continued by pandas itself


def season_length(freq: str) -> int:
    """The natural seasonal period of a frequency: 24 for hourly, 7 for daily, 5 for business
    days, 52 for weekly, 12 for monthly, 4 for quarterly; a multiple divides it (2W -> 26,
    2MS -> 6) when it can, else there is no season (1)."""
    kind, step = step_of(freq)
    if kind == "other":  # calendars pandas continues itself: business months, semi-months, ...
        offset = pd.tseries.frequencies.to_offset(freq)
        return _divide(OTHER_SEASONS.get(offset.rule_code.split("-")[0], 1), offset.n)
    if kind == "months":
        return _divide(12, step)
    if kind == "bdays":
        return _divide(5, step)
    if kind != "ns" or step <= 0:
        return 1
    if step < DAY_NS:
        return _divide(DAY_NS, step)
    if step % WEEK_NS == 0:
        return _divide(52, step // WEEK_NS)
    if step % DAY_NS == 0:
        return _divide(7, step // DAY_NS)
    return 1


def _divide(period: int, n: int) -> int:
    return int(period // n) if period % n == 0 else 1


def continue_times(last: np.ndarray, freq: str, horizon: int, holidays: tuple[str, ...] = ()) -> np.ndarray:
    """(W, H) the `horizon` times after each of `last` (W,), each series keeping its own anchor:
    its weekday, its day in the month (or month ends), its time of day; business days skip
    weekends and `holidays` ("MM-DD", see infer_holidays)."""
    last = np.asarray(last, dtype="datetime64[ns]")
    k = np.arange(1, horizon + 1)
    kind, step = step_of(freq)
    if kind == "ns":
        return last[:, None] + (k * step).astype("timedelta64[ns]")
    day = last.astype("datetime64[D]")
    time_of_day = last - day.astype("datetime64[ns]")
    if kind == "bdays":
        skip: np.ndarray | list[str] = (
            holiday_dates(holidays, day.min(), 2 + horizon * step // 250) if len(day) and holidays else []
        )
        days = np.busday_offset(day[:, None], k * step, roll="forward", holidays=skip)
        return days.astype("datetime64[ns]") + time_of_day[:, None]
    if kind == "months":
        month = last.astype("datetime64[M]")
        target = month[:, None] + k * step  # (W, H) months
        if pd.tseries.frequencies.to_offset(freq).rule_code.split("-")[0].endswith("E"):  # month ends
            ends = (target + 1).astype("datetime64[D]") - 1
            return ends.astype("datetime64[ns]") + time_of_day[:, None]
        into_month = last - month.astype("datetime64[ns]")
        return target.astype("datetime64[ns]") + into_month[:, None]
    offset = pd.tseries.frequencies.to_offset(freq)
    uniq, inverse = np.unique(last, return_inverse=True)  # other calendars: pandas, once per distinct time
    table = np.stack([pd.date_range(t, periods=horizon + 1, freq=offset)[1:].to_numpy() for t in uniq])
    return table[inverse.reshape(-1)].astype("datetime64[ns]")


# ---------------------------------------------------------------- scaling


@dataclass
class Scaler:
    """Per-series min/max of each column, from training rows only (MinMaxScaler's arrays)."""

    data_min: np.ndarray  # (S, F)
    data_max: np.ndarray  # (S, F)

    @property
    def scale(self) -> np.ndarray:
        span = self.data_max - self.data_min
        return np.where(span > 0, span, 1.0)  # constant columns: scale 1, as MinMaxScaler does

    def transform(self, panel: Panel) -> np.ndarray:
        rows = np.repeat(np.arange(len(panel.ids)), panel.lengths())
        return (panel.values - self.data_min[rows]) / self.scale[rows]

    def inverse(self, y: np.ndarray, series: np.ndarray, n_targets: int) -> np.ndarray:
        """y (B, H, T) scaled -> original units, for windows of series `series` (B,)."""
        mn = self.data_min[series, None, :n_targets]
        return y * self.scale[series, None, :n_targets] + mn


def fit_scaler(panel: Panel, train_end: np.ndarray) -> Scaler:
    from sklearn.preprocessing import MinMaxScaler

    if (train_end == 0).any():
        raise ForecastError("the train split has 0 rows; use more data or a larger data.split.train")
    mins, maxs = [], []
    for s in range(len(panel.ids)):
        a = panel.offsets[s]
        scaler = MinMaxScaler().fit(panel.values[a : a + train_end[s]])
        mins.append(scaler.data_min_)
        maxs.append(scaler.data_max_)
    return Scaler(np.array(mins), np.array(maxs))
