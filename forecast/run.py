"""A trained run, loaded: its model and state, the data it forecasts from, its forecasts and scores."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast import calendar, checkpoint, choices, config, files, read
from forecast.checkpoint import RunState
from forecast.distributed import pick_device, total, world
from forecast.errors import ForecastError, Log, stderr_log
from forecast.inference import Predictor, backtest_frames, conformal_half_width, forecast_frame
from forecast.model import build_model
from forecast.panel import Panel, Scaler, load_panel, split_borders
from forecast.prepare import Prepared, n_future, prepare, select_series
from forecast.scoring import score

READ_KEYS = ("data.fill", "data.sort", "data.gaps")  # how a file is read: settable after training


@dataclass
class Run(Predictor):
    """A run directory made by `forecast train`, loaded for use."""

    path: Path
    state: RunState
    read_otherwise: bool = False  # files read with other data settings than training's (read_with)

    @property
    def columns(self) -> list[str]:
        return list(self.state.columns)

    @property
    def n_targets(self) -> int:
        return self.state.n_targets

    def forecast(self, source: str | pd.DataFrame | None = None, coverage: float | None = None) -> pd.DataFrame:
        """The `horizon` steps after the last row of each series, as a long DataFrame."""
        return forecast_frame(self, self.data_for(source), self.half_width(coverage))

    def backtest(
        self, source: str | pd.DataFrame | None = None, split: str = "test", coverage: float | None = None
    ) -> pd.DataFrame:
        """Stride-1 forecasts with actuals for every window of `split` (train, val, test or all)."""
        prep = self.data_for(source)
        starts = prep.starts(split, self.cfg.model.lookback, self.cfg.model.horizon)
        return pd.concat(backtest_frames(self, prep, starts, self.half_width(coverage)), ignore_index=True)

    def evaluate(
        self, source: str | pd.DataFrame | None = None, split: str = "test", log: Log = stderr_log
    ) -> dict[str, Any]:
        """Metrics of the model and the baselines; writes metrics.json when scoring the training data's test split."""
        prep = self.data_for(source, log)
        new_data = source is not None or prep.new_data or self.read_otherwise
        return evaluate(self, prep, split, new_data=new_data, log=log)

    def half_width(self, coverage: float | None) -> np.ndarray | None:
        """(H, T) scaled half-widths of intervals at `coverage` (default predict.coverage), or None."""
        return conformal_half_width(self.state, coverage if coverage is not None else self.cfg.predict.coverage)

    def read_with(self, pairs: list[str] | None) -> Run:
        """Read files with other READ_KEYS settings (`key=value`, as --set takes them) than training did."""
        if pairs:
            keys = [pair.split("=", 1)[0].strip() for pair in pairs]
            other = next((key for key in keys if key not in READ_KEYS), None)
            if other is not None:
                raise ForecastError(
                    f"--set {other}: here only how a file is read can be set ({', '.join(READ_KEYS)}); "
                    "the model's settings are those it was trained with"
                )
            read_as_trained = dataclasses.replace(self.cfg.data)
            self.cfg = config.check(config.apply_overrides(self.cfg, pairs))
            self.read_otherwise = self.cfg.data != read_as_trained  # its scores are not the run's own
        return self

    def scaler_for(self, ids: list[str]) -> Scaler:
        rows = self.state.rows_for(ids)
        return Scaler(self.state.scaler["min"].numpy()[rows], self.state.scaler["max"].numpy()[rows])

    def data_for(self, source: str | pd.DataFrame | None, log: Log = stderr_log) -> Prepared:
        """The training data (default), or a newer file or DataFrame with the same columns, scaled as in training."""
        cfg = self.cfg
        digest = self.state.record.data.sha256
        new_data = source is not None and not is_file_with_digest(source, digest)
        if source is None:
            source = cfg.data.path
            if Path(source).is_file() and digest and read.file_digest(source) != digest:
                log(f"warning: {source} has changed since this model was trained on it; it is read as new data")
                new_data = True
        path = read.DATAFRAME if isinstance(source, pd.DataFrame) else str(source)
        panel = load_panel(cfg.data, source, day_first=self.state.day_first)
        if panel.columns != self.columns:
            missing = [c for c in self.columns if c not in panel.columns]
            raise ForecastError(
                f"{path} does not have the columns the model was trained on: missing {', '.join(missing) or '-'} "
                f"(trained on {', '.join(self.columns)})"
            )
        if calendar.step_of(panel.freq) != calendar.step_of(self.state.freq):  # as steps: 'D' == '24h'
            raise ForecastError(f"{path} has frequency {panel.freq!r} but the model was trained on {self.state.freq!r}")
        panel = on_the_runs_clock(panel, self.state.time_format)
        if self.state.holidays:  # business days: a file too short to show the holidays skips them still
            panel = dataclasses.replace(panel, holidays=tuple(sorted({*panel.holidays, *self.state.holidays})))
        known = set(self.state.ids)
        keep = np.array([sid in known for sid in panel.ids])
        if not keep.any():
            raise ForecastError(f"{path} has none of the series the model was trained on")
        panel = select_series(panel, keep, "the model was not trained on", log)
        prep = prepare(cfg, panel, self.scaler_for(panel.ids))
        if not new_data:
            return prep
        prep.new_data = True
        return choose_test_rows(prep, cfg, self.state, path)


def run_directory(run_dir: str | Path) -> Path:
    """`run_dir` as a Path, when it is a folder: a missing one, or a file (the data, given by
    mistake), is an error."""
    path = Path(run_dir)
    if not path.is_dir():
        what = "is a file, not a run directory made by forecast train" if path.is_file() else "not found"
        raise ForecastError(f"run directory {str(path)!r} {what}")
    return path


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    path = run_directory(run_dir)
    state = checkpoint.load(path / "model.pt")
    model_cfg = state.config.get("model", {})
    for key in ("highway", "window_scale"):  # runs from before these options had neither
        model_cfg.setdefault(key, False)
    model_cfg.setdefault("seasonal_base", "naive")  # nor this one: their seasonal base was seasonal naive
    cfg = config.from_dict(state.config, f"{path / 'model.pt'}")
    model = build_model(len(state.columns) + n_future(cfg), state.n_targets, cfg.model, n_future(cfg))
    try:
        model.load_state_dict(state.state_dict)
    except (RuntimeError, KeyError, TypeError) as e:
        raise ForecastError(f"{path / 'model.pt'} does not match its own config: {str(e).splitlines()[0]}") from None
    dev = pick_device(device)
    return Run(model.to(dev).eval(), cfg, state.columns[: state.n_targets], dev, path, state)


def on_the_runs_clock(panel: Panel, run_format: str) -> Panel:
    """A panel whose times carry a UTC offset other than the run's (a file in summer time, +02:00,
    for a run kept in UTC across a DST change), moved to the run's clock, so that "newer than the
    training data" compares like with like and forecasts are written as the run writes them."""
    ours, theirs = read.zone_of(run_format), read.zone_of(panel.time_format)
    if ours is None or theirs is None or ours == theirs:
        return panel
    step = choices.step_seconds(panel.freq)
    if step is None or step >= 86_400:  # a day is a calendar day: daily dates stay as written
        return panel
    times = panel.times - (theirs - ours).astype("timedelta64[ns]")
    return dataclasses.replace(panel, times=times, time_format=run_format)


def is_file_with_digest(source: str | pd.DataFrame, digest: str | None) -> bool:
    """Whether `source` is the training file itself (same bytes), given again with --data."""
    if isinstance(source, pd.DataFrame) or not digest or not Path(source).is_file():
        return False
    return read.file_digest(source) == digest


def choose_test_rows(prep: Prepared, cfg: config.Config, state: RunState, path: str) -> Prepared:
    """Which windows of new data are "test": those whose targets are newer than the series' own
    last time in the training data (series end at different times), or than the training data's
    last time (runs saved before per-series times were kept). When no row is newer (an older or
    unrelated file), the file's own split by data.split: row counts as given when the file holds
    them all, else as proportions of its rows."""
    panel, lengths, last = prep.panel, prep.panel.lengths(), state.last_timestamp
    if last is not None:
        cutoff = np.full(len(lengths), pd.Timestamp(last).to_datetime64().astype("datetime64[ns]"))
        each = state.series_last
        if each is not None:
            cutoff = each.numpy()[state.rows_for(panel.ids)].astype("datetime64[ns]")
        seen = panel.times <= np.repeat(cutoff, lengths)  # rows are sorted within each series
        first_new = np.add.reduceat(seen.astype(np.int64), panel.offsets[:-1])  # (S,) rows up to the cutoff
        if (first_new < lengths).any():
            prep.test_rows = np.column_stack([first_new, lengths])
            differ = each is not None and len(np.unique(cutoff)) > 1
            prep.windows_from = (
                f"rows after each series' last time in the training data (the latest {last})"
                if differ
                else f"rows after {last} (newer than the training data)"
            )
            return prep
    split, why = cfg.data.split, f"no row of {path} is newer than the training data's last timestamp {last}"
    if config.split_is_counts(split) and sum(split.values()) > lengths.min():
        total = sum(split.values())
        split = {part: n / total for part, n in split.items()}
        prep.borders = split_borders(lengths, split)
        prep.windows_from = f"the last {split['test']:.0%} of the rows of {path} (data.split's counts as shares: {why})"
    else:
        prep.windows_from = f"the test split of {path} by data.split ({why})"
    return prep


def scored_rows_note(prep: Prepared, split: str, horizon: int) -> str:
    """For an empty test part of new data: what it was made of, and what a window needs."""
    if split != "test" or prep.test_rows is None:
        return ""
    rows = int((prep.test_rows[:, 1] - prep.test_rows[:, 0]).max())
    return f" (its windows are {prep.windows_from}: {rows} row(s), and a window needs horizon = {horizon})"


def evaluate(
    run: Run, prep: Prepared, split: str, new_data: bool, log: Log = stderr_log, sharded: bool = False
) -> dict[str, Any]:
    """Score the model and the three baselines on the windows of `split`; the training data's test
    scores are also written to metrics.json (by the first process, sharded)."""
    cfg = run.cfg
    L, H = cfg.model.lookback, cfg.model.horizon
    starts = prep.starts(split, L, H)
    if new_data and split == "test":
        log(f"test windows: {prep.windows_from}")
    if (total(len(starts)) if sharded else len(starts)) == 0:
        raise ForecastError(f"the {split} split has no complete window to evaluate{scored_rows_note(prep, split, H)}")
    scores = score(run, run.state, prep, starts, run.half_width(None), sharded)
    result: dict[str, Any] = {
        "split": split,
        **({"windows_from": prep.windows_from} if split == "test" else {}),
        "windows": scores["windows"],
        "horizon": H,
        "lookback": L,
        "targets": run.targets,
        "season": run.state.season,
        "models": scores["models"],
        "filled_points_excluded": scores["filled_points_excluded"],
    }
    if "intervals" in scores:
        result["intervals"] = {"coverage": cfg.predict.coverage, **scores["intervals"]}
    if "series" in scores:
        result["series"] = scores["series"]
    if not new_data and split == "test" and world()[0] == 0:  # metrics.json: the training data's test scores
        try:
            files.write_json(run.path / "metrics.json", result)
            result["saved_to"] = str(run.path / "metrics.json")  # not in the file: it says where the file is
        except ForecastError as e:  # a run folder one may read but not write: the scores are still shown
            log(f"warning: {e}; the scores are not saved")
    return result
