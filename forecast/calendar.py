"""Calendars: each series' frequency, season and holidays, the times after its end, calendar inputs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

DAY_NS = 86_400 * 10**9


WEEK_NS = 7 * DAY_NS


WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


MONTHS_PER_STEP = {"MS": 1, "ME": 1, "M": 1, "QS": 3, "QE": 3, "Q": 3, "YS": 12, "YE": 12, "Y": 12, "A": 12, "AS": 12}


OTHER_SEASONS = {"BMS": 12, "BME": 12, "BQS": 4, "BQE": 4, "SMS": 24, "SME": 24, "C": 5}


MONTH_DAY_SLACK = 3  # days before its day in the month a time of monthly data may fall (Feb 28 for Feb 29)


CALENDAR_COLUMNS = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "month_sin", "month_cos")


def series_of_rows(offsets: np.ndarray) -> np.ndarray:
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
    off_day: np.ndarray | None = None  # (S,) int64: months: the first row a few days before its day, else -1
    anchor: np.ndarray | None = None  # (S,) int64: the day in the month of each series (month_anchor)
    smallest: np.ndarray | None = None  # (S,) int64: the smallest step, as largest
    smallest_after: np.ndarray | None = None  # (S,) int64: the row before it


def infer_steps(times: np.ndarray, offsets: np.ndarray) -> Steps:
    """The calendar of every series, from one vectorized pass over all rows (series of 2+ rows)."""
    t = times.astype("datetime64[ns]")
    rows = series_of_rows(offsets)
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
    time_of_day = (t - day.astype("datetime64[ns]")).astype(np.int64)
    month_end = (day + 1).astype("datetime64[M]") != month
    weekend = ((day.astype(np.int64) + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    candidates: dict[str, np.ndarray] = {
        "ns": ns,
        "months": np.diff(month.astype(np.int64))[inner],
        "bdays": np.busday_count(day[inner], day[inner + 1]),
    }
    # every time on its series' day in the month, or its month's last day where that is shorter
    # (the 30th: January 30, February 28, March 30, ...; month ends are the 31st's case); where
    # the steps are not fixed and most times are on that day, a few a few days off it (February 28
    # in a leap year, a late reading) still read as months, with a warning that names one
    anchor = month_anchor(t, offsets)
    off = np.minimum(anchor[rows], days_in_month(t)) - day_of_month(t)
    same_clock = _constant(time_of_day, rows, n_series)
    on_its_day = _all(off == 0, rows, n_series) & same_clock
    mostly = np.bincount(rows, weights=off == 0, minlength=n_series) > np.diff(offsets) / 2
    near_its_day = _all(np.abs(off) <= MONTH_DAY_SLACK, rows, n_series) & same_clock & mostly & ~fixed
    monthly = (on_its_day | near_its_day) & ~_any(candidates["months"] < 1, sid, n_series)
    business = ~_any(weekend, rows, n_series) & _constant(time_of_day, rows, n_series)
    business &= ~_any(candidates["bdays"] < 1, sid, n_series) & (_mode(candidates["bdays"], sid, n_series) == 1)
    kind = np.where(monthly, "months", np.where(fixed, "ns", np.where(business, "bdays", "ns")))
    diffs = np.select(
        [kind[sid] == "months", kind[sid] == "bdays"], [candidates["months"], candidates["bdays"]], candidates["ns"]
    )
    step = _mode(diffs, sid, n_series)
    regular = ~_any(diffs != step[sid], sid, n_series)
    regular |= (kind == "bdays") & ~_any(diffs > 3, sid, n_series)  # 1 or 2 weekdays skipped: holidays
    regular &= (kind != "months") | on_its_day
    largest_at = _argmax(diffs, sid, n_series)
    smallest_at = _argmax(-diffs, sid, n_series)
    off_day = np.where(monthly & ~on_its_day, _argmax((off != 0).astype(np.int64), rows, n_series), -1)
    return Steps(
        kind=kind,
        step=step,
        regular=regular,
        largest=diffs[largest_at],
        largest_after=inner[largest_at],
        month_end=_all(month_end, rows, n_series) & monthly,
        off_day=off_day,
        anchor=anchor,
        smallest=diffs[smallest_at],
        smallest_after=inner[smallest_at],
    )


def day_of_month(t: np.ndarray) -> np.ndarray:
    """1..31 for each of the times `t` (datetime64)."""
    day = t.astype("datetime64[D]")
    return (day - day.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


def days_in_month(t: np.ndarray) -> np.ndarray:
    """28..31: the length of the month of each of the times `t` (datetime64)."""
    month = t.astype("datetime64[M]")
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)


def month_anchor(times: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(S,) each series' day in the month. Where every time is on one day, or on its month's last
    day where the month is shorter (the 30th: February 28), that day: the latest any time falls on,
    since a series' first or last time alone may not say. Otherwise (a time a few days off its
    day) the day most of its times fall on."""
    t = np.asarray(times, dtype="datetime64[ns]")
    days, n = day_of_month(t), len(offsets) - 1
    rows = series_of_rows(offsets)
    nonempty = np.diff(offsets) > 0
    latest = np.ones(n, dtype=np.int64)
    latest[nonempty] = np.maximum.reduceat(days, offsets[:-1][nonempty])
    clamped = _all(days == np.minimum(latest[rows], days_in_month(t)), rows, n)
    return np.where(clamped, latest, _mode(days, rows, n))


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
    kind, usual = steps.kind[s], describe_step(steps.kind[s], int(steps.step[s]))
    more = f" ({len(irregular)} series have irregular steps)" if len(irregular) > 1 else ""
    odd, after = "largest gap", int(steps.largest_after[s])
    odd_step = int(steps.largest[s])
    if odd_step == steps.step[s] and steps.off_day is not None and steps.off_day[s] >= 0:
        assert steps.anchor is not None  # every step a month, but not every time on its day
        msg = (
            f"{path}{where} is monthly on day {steps.anchor[s]} of the month (or its last day), but "
            f"{pd.Timestamp(times[steps.off_day[s]]).date()} is a few days off it{more}"
        )
    else:
        if odd_step == steps.step[s] and steps.smallest is not None and steps.smallest_after is not None:
            odd, after, odd_step = "but", int(steps.smallest_after[s]), int(steps.smallest[s])  # a shorter step
        msg = (
            f"{path}{where} has irregular time steps: usually {usual}, {odd} "
            f"{describe_step(kind, odd_step)} after {pd.Timestamp(times[after])}{more}"
        )
    if gaps == "error":
        raise ForecastError(msg + "; set data.gaps: warn to proceed anyway")
    warnings.warn(msg + "; proceeding as if regular (data.gaps: warn)", stacklevel=3)


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


def continue_times(
    last: np.ndarray,
    freq: str,
    horizon: int,
    holidays: tuple[str, ...] = (),
    anchor: np.ndarray | None = None,
) -> np.ndarray:
    """(W, H) the `horizon` times after each of `last` (W,), each series keeping its own anchor:
    its weekday, its day in the month (or month ends), its time of day; business days skip
    weekends and `holidays` ("MM-DD", see infer_holidays). Monthly calendars keep each series'
    day in the month `anchor` (W,) (month_anchor; default: the day of `last`), on the month's
    last day where the month is shorter."""
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
        if anchor is not None:  # each series' own day (month ends: 31), whatever the file's first series has
            day = np.asarray(anchor, dtype=np.int64)
        elif pd.tseries.frequencies.to_offset(freq).rule_code.split("-")[0].endswith("E"):  # month ends
            day = np.full(len(last), 31, dtype=np.int64)
        else:
            day = day_of_month(last)
        lengths = days_in_month(target.astype("datetime64[D]"))
        days = target.astype("datetime64[D]") + (np.minimum(day[:, None], lengths) - 1)
        return days.astype("datetime64[ns]") + time_of_day[:, None]
    offset = pd.tseries.frequencies.to_offset(freq)
    uniq, inverse = np.unique(last, return_inverse=True)  # other calendars: pandas, once per distinct time
    table = np.stack([pd.date_range(t, periods=horizon + 1, freq=offset)[1:].to_numpy() for t in uniq])
    return table[inverse.reshape(-1)].astype("datetime64[ns]")
