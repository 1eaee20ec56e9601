"""Load a CSV (or Parquet) into a validated panel of series, split it, and scale it."""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.config import DataConfig, split_is_counts
from forecast.errors import ForecastError

DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period", "month", "day")
# a UTC offset or zone after the time of day: "...12:00+02:00", "...12:00:00Z", "...12:00 UTC"
TZ_SUFFIX = r"(?i)\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[+-]\d{2}(?::?\d{2})?|z|utc|gmt)$"
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
    freq: str  # pandas offset alias, e.g. "h"

    @property
    def targets(self) -> list[str]:
        return self.columns[: self.n_targets]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


# ---------------------------------------------------------------- reading


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame of strings/numbers, with clear errors."""
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
        df = _read_csv_fast(path, sep)
    except pd.errors.EmptyDataError:
        raise ForecastError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ForecastError(f"{path} could not be parsed as CSV: {msg}") from None
    df.columns = [_clean_name(c) for c in df.columns]
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


def _read_csv_fast(path: Path, sep: str) -> pd.DataFrame:
    """pandas' fastest reader: the pyarrow engine when installed, else the C engine."""
    try:
        import pyarrow  # noqa: F401

        return pd.read_csv(path, sep=sep, engine="pyarrow", encoding="utf-8")
    except Exception:  # no pyarrow, or its engine refuses some valid file: the C engine decides
        pass
    return pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True)


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
            sample = df[col].dropna().astype(str).head(20)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if len(sample) and pd.to_datetime(sample, errors="coerce").notna().all():
                    return str(col)
    raise ForecastError(f"no time column found in {path} (columns: {', '.join(df.columns)}); set data.date_column")


def parse_times(col: pd.Series, name: str, path: str) -> pd.Series:
    """The time column as naive datetimes; times that carry a UTC offset are converted to UTC."""
    times = col if pd.api.types.is_datetime64_any_dtype(col) else _to_datetime(col, name, path)
    missing = times.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        value = "an empty cell" if pd.isna(col.iloc[i]) else _show(col.iloc[i])
        raise ForecastError(f"time column {name!r} in {path} has a value that is not a time at line {i + 2}: {value}")
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def is_day_first(raw: pd.Series) -> bool:
    """Whether dates like 03/04/2024 put the day first: true when a first field exceeds 12."""
    fields = raw.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")
    first = pd.to_numeric(fields[0], errors="coerce")
    return bool((first > 12).any())


def _to_datetime(col: pd.Series, name: str, path: str) -> pd.Series:
    raw = col.astype(str).str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the common case, vectorized: ISO 8601 times in one zone
            fast = pd.to_datetime(raw, format="ISO8601")
            if pd.api.types.is_datetime64_any_dtype(fast):
                return fast
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
            return times
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
        return pd.to_datetime(raw, errors="coerce", format="mixed", utc=True, dayfirst=dayfirst)


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


def fill_missing(values: np.ndarray, columns: list[str], fill: str, path: str, where: str = "") -> np.ndarray:
    """One series' values with gaps filled per data.fill (`none` leaves them: load_panel refused them)."""
    if fill == "none" or not np.isnan(values).any():
        return values
    frame = pd.DataFrame(values)
    frame = frame.ffill() if fill == "ffill" else frame.interpolate(limit_direction="both")
    frame = frame.bfill()
    if frame.isna().any().any():
        j = int(np.flatnonzero(frame.isna().any().to_numpy())[0])
        raise ForecastError(f"column {columns[j]!r} in {path}{where} has no values at all")
    return frame.to_numpy()


def infer_freq(times: pd.DatetimeIndex, gaps: str, path: str, series: str) -> str:
    """The series' frequency as an offset alias; irregular steps warn or fail per data.gaps."""
    where = f" (series {series!r})" if series else ""
    if len(times) < 3:
        raise ForecastError(f"{path}{where} has fewer than 3 rows; cannot tell its frequency")
    with warnings.catch_warnings():
        # pandas 3.1 announces that infer_freq will return an offset; either way we keep its string
        warnings.filterwarnings("ignore", message=".*infer_freq", category=Warning)
        freq = pd.infer_freq(times)
    if freq is not None:
        return str(getattr(freq, "freqstr", freq))
    diffs = np.diff(times.to_numpy().astype("datetime64[ns]").astype(np.int64))  # in ns, whatever the unit
    values, counts = np.unique(diffs, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]))
    largest = pd.Timedelta(int(diffs.max()))
    where_gap = times[int(np.argmax(diffs))]
    msg = f"{path}{where} has irregular time steps: usually {step}, largest gap {largest} after {where_gap}"
    if gaps == "error":
        raise ForecastError(msg + "; set data.gaps: warn to proceed anyway")
    warnings.warn(msg + "; proceeding as if regular (data.gaps: warn)", stacklevel=2)
    return pd.tseries.frequencies.to_offset(step).freqstr


def check_order(times: pd.Series, sort: bool, path: str, where: str) -> None:
    diffs = np.diff(times.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (diffs == 0).any():
        i = int(np.flatnonzero(diffs == 0)[0])
        raise ForecastError(f"{path}{where} has duplicate timestamps: {times.iloc[i + 1]} appears twice")
    if (diffs < 0).any() and not sort:
        i = int(np.flatnonzero(diffs < 0)[0])
        raise ForecastError(
            f"{path}{where} is not sorted by time ({times.iloc[i + 1]} comes after {times.iloc[i]}); "
            "sort it or set data.sort: true"
        )


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
    if isinstance(source, pd.DataFrame):
        df, path = source.reset_index(drop=True), "the DataFrame"
        df.columns = [str(c).strip() for c in df.columns]
        if len(df) == 0:
            raise ForecastError("the DataFrame has no rows")
    else:
        path = str(source or cfg.path)
        df = read_table(path)
    date_col = detect_date_column(df, cfg.date_column, path)
    if cfg.id_column is not None and cfg.id_column not in df.columns:
        raise ForecastError(f"id column {cfg.id_column!r} not found in {path} (columns: {', '.join(df.columns)})")
    targets, features = resolve_targets(df, cfg, date_col, path)
    columns = targets + features
    times = parse_times(df[date_col], date_col, path)
    values = to_numeric(df, columns, path)
    if cfg.fill == "none":
        check_missing(values, columns, path)  # before any reordering, so lines are the file's
    ids = df[cfg.id_column].astype(str).to_numpy() if cfg.id_column else np.full(len(df), "")
    frame = pd.DataFrame({"id": ids, "t": times.to_numpy()})
    order = frame.sort_values(["id", "t"], kind="stable").index.to_numpy() if cfg.sort or cfg.id_column else None
    if cfg.id_column and not cfg.sort:
        # long format: rows of one series must be in time order among themselves
        within = frame.groupby("id", sort=False)["t"].diff().dt.total_seconds().to_numpy()
        if (within < 0).any():
            i = int(np.flatnonzero(within < 0)[0])
            raise ForecastError(
                f"{path} is not sorted by time within series {ids[i]!r} (line {i + 2}); sort it or set data.sort: true"
            )
    if order is not None:
        values, ids, times = values[order], ids[order], times.iloc[order].reset_index(drop=True)
    uniq, starts = np.unique(ids, return_index=True)
    uniq, starts = uniq[np.argsort(starts)], np.sort(starts)
    offsets = np.append(starts, len(ids)).astype(np.int64)
    freqs = []
    for s, sid in enumerate(uniq):
        a, b = offsets[s], offsets[s + 1]
        where = f" (series {sid!r})" if sid else ""
        check_order(times.iloc[a:b], cfg.sort, path, where)
        values[a:b] = fill_missing(values[a:b], columns, cfg.fill, path, where)
        if s < 3 or len(uniq) <= 10:  # the frequency of a few series stands for all
            freqs.append(infer_freq(pd.DatetimeIndex(times.iloc[a:b]), cfg.gaps, path, str(sid)))
    freq = max(set(freqs), key=freqs.count)
    return Panel(
        values=values,
        times=times.to_numpy(dtype="datetime64[ns]"),
        columns=columns,
        n_targets=len(targets),
        ids=[str(u) for u in uniq],
        offsets=offsets,
        freq=freq,
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


def season_length(freq: str) -> int:
    """The natural seasonal period of a frequency: 24 for hourly, 7 for daily, 12 for monthly."""
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        step = pd.Timedelta(offset)
    except ValueError:  # calendar offsets: months, quarters, years, weeks anchored on a day
        name = offset.rule_code.split("-")[0].upper()
        return {
            "M": 12,
            "MS": 12,
            "ME": 12,
            "BM": 12,
            "BMS": 12,
            "BME": 12,
            "Q": 4,
            "QS": 4,
            "QE": 4,
            "BQ": 4,
            "W": 52,
        }.get(name, 1)
    day = pd.Timedelta(days=1)
    if step < day and day % step == pd.Timedelta(0):
        return int(day / step)
    if step == day:
        return 7
    if step == pd.Timedelta(weeks=1):
        return 52
    return 1


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
