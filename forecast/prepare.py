"""A panel made ready for the model: split, scaled, windowed, with the choices its windows decide."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from forecast import calendar, choices, config
from forecast.config import Config
from forecast.distributed import gather, total
from forecast.errors import ForecastError, Log
from forecast.model import Forecaster, seasonal_base
from forecast.panel import Panel, Scaler, fit_scaler, split_borders
from forecast.windows import PARTS, Windows, series_of, window_starts

MAX_STAT_WINDOWS = 20_000  # the linear baseline, conformal quantiles and the highway's fit use at most this many


TRAINING_TEST = "the test split of the training data (data.split)"  # the windows metrics.json scores


@dataclass
class Prepared:
    """A panel in original units plus what the model sees: its scaled (N, F) values."""

    panel: Panel
    borders: np.ndarray  # (S, 3) ends of train/val/test, rows from each series' start
    scaler: Scaler
    scaled: np.ndarray  # (N, F) float32, targets first, then features, then calendar columns
    test_rows: np.ndarray | None = None  # (S, 2) [from, to) rows whose targets are the test part, if not the split's
    windows_from: str = TRAINING_TEST  # what "test" means here, for people
    new_data: bool = False  # not the data the model was trained on: another file, or the training file changed since

    def starts(self, part: str, lookback: int, horizon: int) -> np.ndarray:
        if part not in (*PARTS, "all"):
            raise ForecastError(f"split must be one of {', '.join(PARTS)} or all, got {part!r}")
        borders = self.borders
        if part == "test" and self.test_rows is not None:  # new data: test is the rows after the training data
            borders = np.column_stack([self.test_rows[:, 0], self.test_rows[:, 0], self.test_rows[:, 1]])
        return window_starts(self.panel.offsets, borders, part, lookback, horizon)

    def windows(self, cfg: Config, scaled: bool = True) -> Windows:
        """Windows over the scaled inputs (numpy), or with scaled=False over the values in original units."""
        values = self.scaled if scaled else self.panel.values
        return Windows(values, self.panel.n_targets, cfg.model.lookback, cfg.model.horizon)


def n_future(cfg: Config) -> int:
    """Known-future input columns: the calendar's, when data.calendar is on."""
    return len(calendar.CALENDAR_COLUMNS) if cfg.data.calendar else 0


def model_inputs(panel: Panel, scaler: Scaler, cfg: Config) -> np.ndarray:
    scaled = scaler.transform(panel)
    if cfg.data.calendar:
        scaled = np.hstack([scaled, calendar.calendar_features(panel.times).astype(np.float32)])
    return scaled


def prepare(cfg: Config, panel: Panel, scaler: Scaler | None = None) -> Prepared:
    """Split and scale; given a trained scaler (new data for a trained model), row-count splits
    longer than a series are cut at its end rather than refused."""
    asked = split_borders(panel.lengths(), cfg.data.split, strict=scaler is None)
    borders = fit_borders(asked, cfg)
    if scaler is None:
        empty = (borders[:, 0] == 0) & (asked[:, 0] > 0)
        if empty.any():
            H, s = cfg.model.horizon, int(np.argmax(empty))
            where = f"series {panel.ids[s]!r}, " if panel.ids[s] else ""
            raise ForecastError(
                f"the horizon ({H}) is too long for this data: validation and test take {H} rows each, leaving no "
                f"rows to train on ({where}{int(panel.lengths()[s])} rows); use a shorter horizon or more data"
            )
        scaler = fit_scaler(panel, borders[:, 0])
    return Prepared(panel, borders, scaler, model_inputs(panel, scaler, cfg))


def fit_borders(borders: np.ndarray, cfg: Config) -> np.ndarray:
    """Give a requested validation or test part at least `horizon` rows, taken from the parts before it.

    Six years of monthly data split 0.7/0.1/0.2 has a 7-row validation part: too short for one
    12-month window. Borders move earlier rather than refuse the file; train keeps what is left.
    """
    H, borders = cfg.model.horizon, borders.copy()
    for i, part in ((2, "test"), (1, "val")):
        if cfg.data.split[part] > 0:
            short = borders[:, i] - borders[:, i - 1] < H
            borders[short, i - 1] = np.maximum(borders[short, i] - H, 0)
            if i == 2:  # a longer test part may leave val shorter than train's end
                borders[:, 0] = np.minimum(borders[:, 0], borders[:, 1])
    return borders


def subsample(starts: np.ndarray, n: int) -> np.ndarray:
    """At most n of `starts`, a fixed random choice in order."""
    if len(starts) <= n:
        return starts
    return np.sort(np.random.default_rng(0).choice(starts, n, replace=False))


def check_windows(prep: Prepared, cfg: Config, path: str) -> dict[str, int]:
    """Count windows per part; a part that has rows but no window is an error."""
    L, H = cfg.model.lookback, cfg.model.horizon
    counts = {part: len(prep.starts(part, L, H)) for part in PARTS}
    sizes = np.diff(np.hstack([np.zeros((len(prep.borders), 1), np.int64), prep.borders]), axis=1)
    for i, part in enumerate(PARTS):
        rows = int(sizes[:, i].max())
        if counts[part] == 0 and (rows > 0 or part == "train"):
            need = f"lookback + horizon = {L + H}" if part == "train" else f"horizon = {H}"
            asked = split_borders(prep.panel.lengths(), cfg.data.split, strict=False)[:, 0].max()
            why = f", after validation and test took {H} rows (the horizon) each" if i == 0 and rows < asked else ""
            raise ForecastError(
                f"the {part} split of {path} has no complete window: it has {rows} rows (per series, at most){why} "
                f"and needs {need}; use more data, a shorter lookback/horizon, or change data.split"
            )
    return counts


def share_calendar(panel: Panel, path: str) -> Panel:
    """Sharded: the calendar one process reading the whole file finds. Every process's series are
    of one frequency (each process infers that of its own series), and business days skip the
    holidays that the days of every series show."""
    business = calendar.step_of(panel.freq)[0] == "bdays"
    days = np.unique(panel.times.astype("datetime64[D]")) if business else None
    first, *rest = gather((panel.freq, panel.ids[0], days))
    for freq, sid, _ in rest:
        if freq != first[0]:
            raise ForecastError(
                f"{path} mixes frequencies: series {first[1]!r} is {first[0]} but series {sid!r} is {freq}; "
                "put series of one frequency in one file"
            )
    if not business:
        return panel
    every = np.unique(np.concatenate([first[2], *(d for _, _, d in rest)]))
    return dataclasses.replace(panel, holidays=calendar.infer_holidays(every))


def choose_sizes(cfg: Config, panel: Panel) -> list[str]:
    """Horizon, lookback, season and segment from the frequency and series lengths (of every
    process's series, under sharding), where unset."""
    lengths = np.concatenate(gather(panel.lengths()))  # unsharded, every process adds the same lengths
    train_rows = int(np.median(split_borders(lengths, cfg.data.split, strict=False)[:, 0]))
    rows = int(np.median(lengths))
    return choices.choose_sizes(cfg, calendar.season_length(panel.freq), panel.freq, train_rows, rows)


def drop_short_series(panel: Panel, cfg: Config, log: Log) -> Panel:
    """Skip (with a warning) the series of a multi-series file too short for one training window."""
    if len(panel.ids) == 1:
        return panel
    if config.split_is_counts(cfg.data.split):  # row counts: series shorter than the split are skipped
        need = int(sum(cfg.data.split.values()))
        covered = panel.lengths() >= need
        if not covered.any():
            split_borders(panel.lengths(), cfg.data.split)  # raises, naming the rows asked for
        panel = select_series(panel, covered, f"shorter than data.split's {need} rows", log)
    borders = split_borders(panel.lengths(), cfg.data.split)
    keep = borders[:, 0] >= cfg.model.lookback + cfg.model.horizon
    if not keep.any():
        raise ForecastError("no series is long enough for one training window (lookback + horizon rows)")
    return select_series(panel, keep, "too short for one training window", log)


def select_series(panel: Panel, keep: np.ndarray, why: str, log: Log) -> Panel:
    """The panel without the series where `keep` is False, named in a warning."""
    if keep.all():
        return panel
    skipped = [panel.ids[i] for i in np.flatnonzero(~keep)]
    more = " ..." if len(skipped) > 10 else ""
    log(f"warning: skipping {len(skipped)} series {why}: {', '.join(skipped[:10])}{more}")
    return panel.select(keep)


def choose_norm(cfg: Config, prep: Prepared) -> list[str]:
    """norm auto: seasonal when the season fits the lookback and the seasonal base forecast
    (model.seasonal_base) beats repeat-last on the training windows, else last."""
    if cfg.model.norm != "auto":
        return []
    season = cfg.model.season or 1
    seasonal = False
    if 1 < season <= cfg.model.lookback:  # the season fits the lookback
        starts = subsample(prep.starts("train", cfg.model.lookback, cfg.model.horizon), MAX_STAT_WINDOWS)
        windows = prep.windows(cfg)
        x, y = windows.past_targets(starts), windows.targets(starts)
        smoothed = cfg.model.seasonal_base == "smoothed"
        base = seasonal_base(torch.from_numpy(x), cfg.model.horizon, season, smoothed).numpy()
        # the errors are summed over processes, so that each makes the same choice (under torchrun
        # without sharding every process holds the same windows: the sums scale alike)
        seasonal = choices.seasonal_beats_last(x, y, base, pool=total)
    cfg.model.norm = "seasonal" if seasonal else "last"
    return [f"norm {cfg.model.norm}" + (f" (season {season})" if seasonal else "")]


def init_highway(model: Forecaster, prep: Prepared, cfg: Config) -> str:
    """Start the highway at the ridge fit of what the base forecast misses on the training windows.

    The ridge strength, and the weight of the fit beside the base forecast, are the ones that best
    forecast held-out windows (the last quarter of each series' training rows, then the validation
    windows) from a fit on the earlier ones; where the base alone does better, the highway starts
    at zero. Returns the choice, in words.
    """
    highway = model.highway
    if highway is None or not model.starts_from_forecast():
        return ""  # with norm none or revin the highway sees raw or standardized windows: it starts at zero
    L, H, T = cfg.model.lookback, cfg.model.horizon, prep.panel.n_targets
    starts = subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS)
    series = series_of(starts, prep.panel.offsets)
    first_target = starts + L - prep.panel.offsets[series]  # row within its series
    cut = (0.75 * prep.borders[series, 0]).astype(np.int64)
    val = subsample(prep.starts("val", L, H), MAX_STAT_WINDOWS)
    earlier = starts[first_target + H <= cut]  # targets end before the held-out targets begin
    held_out = np.concatenate([starts[first_target >= cut], val])
    windows = prep.windows(cfg)

    def residuals(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalized target windows (W, L, T) and the residuals (W, H, T) the highway should predict,
        in the units the model's own normalization gives them."""
        if len(s) == 0:  # none here (a short series, or another process's share): nothing to normalize
            return np.zeros((0, L, T)), np.zeros((0, H, T))
        x, y = torch.from_numpy(windows.past_targets(s)), torch.from_numpy(windows.targets(s))
        xn, base, spread = model.normalize(x, T)
        assert base is not None  # norm last or seasonal: the base forecast
        resid = (y - base) / spread if spread is not None else y - base
        return xn.double().numpy(), resid.double().numpy()

    n_fit, n_held = (int(n) for n in total(np.array([len(earlier), len(held_out)])))
    if not choices.enough_windows(n_fit, n_held):
        return (
            f"highway starts at zero: too few windows to fit it and check the fit ({n_fit} to fit, {n_held} "
            f"held out; {choices.MIN_HELD_OUT} held out needed)"
        )
    # sums over every process: sharded, each holds its own series and all make one choice and fit
    chosen = choices.choose_ridge(residuals(earlier), residuals(held_out), pool=total)
    if chosen is None:
        return "highway starts at zero: the base forecast alone did better on held-out windows"
    lam, w = chosen
    weight, bias = choices.ridge_fit(choices.ridge_path(*residuals(starts), pool=total), lam)
    with torch.no_grad():
        highway.weight.copy_(torch.from_numpy(w * weight))
        highway.bias.copy_(torch.from_numpy(w * bias))
    return f"highway starts at {w:g} x the ridge fit (strength {lam:.3g}) of the training windows"
