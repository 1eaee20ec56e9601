"""The recipes behind the commands: train, predict, plot and info, each read top to bottom."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.resources
import math
import platform
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecast import __version__, checkpoint, choices, config, files, read, report
from forecast.checkpoint import DataRecord, Record, RunState, Status
from forecast.config import Config
from forecast.distributed import (
    close_distributed,
    gather,
    gather_series,
    init_distributed,
    pick_device,
    share,
    total,
    world,
)
from forecast.errors import ForecastError, Log, quiet_log, stderr_log
from forecast.inference import Predictor, backtest_frames, forecast_frame
from forecast.model import Forecaster, build_model, count_parameters, parameter_counts
from forecast.panel import load_panel
from forecast.prepare import (
    Prepared,
    check_windows,
    choose_norm,
    choose_sizes,
    drop_short_series,
    init_highway,
    n_future,
    prepare,
    share_calendar,
    subsample,
)
from forecast.run import Run, evaluate, scored_rows_note
from forecast.scoring import reference_stats
from forecast.train import FitResult, fit, seed_everything
from forecast.windows import PARTS, Windows, series_of

TIME_COLUMNS = ("origin", "timestamp")  # written in the data's own time format
BACKTEST_PLOT_ORIGINS = 720  # backtest.png shows the test split's last origins, readable at a glance
RUN_FILES = (
    "config.yaml",
    "model.pt",
    "state.pt",
    "history.csv",
    "metrics.json",
    "predictions.csv",
    "forecast.csv",
    "loss.png",
    "backtest.png",
    "forecast.png",
)


@dataclass
class TrainSummary:
    """What `train` tells its caller: where the run is, how training ended, and the test scores."""

    run_dir: Path | None  # None: interrupted before the first epoch ended, nothing kept
    status: Status
    best_epoch: int
    rank: int = 0  # under torchrun, rank 0 writes the run and reports
    metrics: dict[str, Any] | None = None
    # wall seconds of train's stages: set_up (load, validate, scale, choose sizes, starting
    # weights), training (every epoch with its validation), baselines (the linear baseline's fit,
    # the validation statistics), saving (model.pt, history.csv, loss.png) and test_evaluation
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def resumable(self) -> bool:
        """Interrupted after an epoch ended: the best weights so far are saved, and `--resume` continues."""
        return self.status == Status.INTERRUPTED and self.run_dir is not None


@dataclass
class Setup:
    """The data and sizes of a training run, resolved from the config and the file."""

    cfg: Config
    prep: Prepared
    counts: dict[str, int]  # windows per part
    chosen: list[str] = field(default_factory=list)  # what was chosen from the data, in words
    budget: choices.Budget | None = None
    sharded: bool = False  # under torchrun with an id column: this process holds only its own series


# ---------------------------------------------------------------- train


def train(
    cfg: Config,
    out: str | None = None,
    force: bool = False,
    resume: str | None = None,
    log: Log = stderr_log,
    quiet: bool = False,
) -> TrainSummary:
    """Train a model from `cfg` into a new run directory: load, choose sizes, split, scale, fit,
    save, then score the test split. The caller's `cfg` is left as given."""
    marks = [time.perf_counter()]
    rank, world_size = init_distributed(cfg.train.device)  # first: sharded processes load their own series
    log = log if rank == 0 else quiet_log
    setup = set_up(cfg, log)
    cfg = setup.cfg
    run_dir = Path(share(str(resume or new_run_dir(cfg, out, force))))
    announce(setup, log)
    seed_everything(cfg.train.seed)
    device = pick_device(cfg.train.device)
    model = start_model(setup, log).to(device)
    log(
        f"model: {cfg.model.cell}, {count_parameters(model):,} parameters, on {device}"
        f"{f' x {world_size} processes' if world_size > 1 else ''}; run directory {run_dir}"
    )
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        files.write_text(run_dir / "config.yaml", config.to_yaml(cfg))
    record = run_record(cfg, device, len(setup.prep.panel.values))
    if resume and rank == 0:
        warn_if_changed(run_dir, record, log)
    marks.append(time.perf_counter())
    result = fit_model(setup, model, device, run_dir, resume, quiet)
    if result.kept_start:
        log(result.kept_start)
    marks.append(time.perf_counter())
    record.ended = dt.datetime.now().astimezone().isoformat(timespec="seconds")  # training's end
    if not setup.sharded:  # every process holds every series: rank 0 alone saves and scores
        close_distributed()
        if rank > 0:
            return TrainSummary(run_dir, result.status, result.best_epoch, rank)
    try:
        if not result.history and not resume and result.status in (Status.DIVERGED, Status.INTERRUPTED):
            return nothing_to_keep(run_dir, result, cfg)
        model.load_state_dict(result.best_state)
        model.eval()
        predictor = Predictor(model, cfg, setup.prep.panel.columns[: setup.prep.panel.n_targets], device)
        stats = reference_stats(predictor, setup.prep, setup.sharded)
        marks.append(time.perf_counter())
        if resume and rank == 0:
            drop_outputs(run_dir, log)
        run = save_run(run_dir, setup, predictor, result, record, stats)  # rank 0 writes
        marks.append(time.perf_counter())
        summary = finish(run, setup, result, log)
        marks.append(time.perf_counter())
        stages = ("set_up", "training", "baselines", "saving", "test_evaluation")
        summary.seconds = {name: b - a for name, a, b in zip(stages, marks[:-1], marks[1:], strict=True)}
        return summary if rank == 0 else TrainSummary(run_dir, result.status, result.best_epoch, rank)
    finally:
        close_distributed()


def set_up(cfg: Config, log: Log) -> Setup:
    """A resolved copy of `cfg` and the prepared data: sizes chosen, short series skipped, split,
    scaled, windows counted, the base forecast and the training budget chosen."""
    cfg = copy.deepcopy(config.check(cfg))
    if cfg.data.path and Path(cfg.data.path).is_file():
        # saved in the run: predict, evaluate and --resume then work from any folder
        cfg.data.path = str(Path(cfg.data.path).absolute())
    rank, size = world()
    sharded = size > 1 and bool(cfg.data.id_column)  # many series: each process keeps its own
    panel = load_panel(cfg.data, shard=(rank, size) if sharded else None)
    if sharded:
        panel = share_calendar(panel, cfg.data.path)
    chosen = choose_sizes(cfg, panel)
    panel = drop_short_series(panel, cfg, log)
    cfg.data.target = panel.targets  # fix the resolved choice, e.g. the default last column
    prep = prepare(cfg, panel)
    counts = check_windows(prep, cfg, cfg.data.path)
    if sharded:
        counts = dict(zip(PARTS, total(np.array([counts[p] for p in PARTS])).tolist(), strict=True))
    chosen += choose_norm(cfg, prep)
    budget = choices.training_budget(cfg, counts["train"])
    if sharded and not budget.steps_per_epoch:  # every process takes the same number of steps
        budget.steps_per_epoch = math.ceil(counts["train"] / budget.batch_size)
    cfg.train.batch_size, cfg.train.steps_per_epoch = budget.batch_size, budget.steps_per_epoch
    return Setup(cfg, prep, counts, chosen, budget, sharded)


def announce(setup: Setup, log: Log) -> None:
    """The resolved config, the data, what was chosen from it and the training budget."""
    cfg, panel, counts = setup.cfg, setup.prep.panel, setup.counts
    log(f"config:\n{config.to_yaml(cfg).rstrip()}")
    rows, n_series = len(panel.values), len(panel.ids)
    series = f"{n_series} series"
    if setup.sharded:  # counted over every process; this one holds its own series only
        rows, n_series = total(np.array([rows, n_series])).tolist()
        series = f"{n_series} series (sharded by id over {world()[1]} processes, {len(panel.ids)} in the first)"
    log(
        f"data: {cfg.data.path}, {rows} rows, {series}, frequency {panel.freq}, "
        f"windows train/val/test {counts['train']}/{counts['val']}/{counts['test']}"
    )
    if setup.chosen:
        log(f"chosen from the data: {', '.join(setup.chosen)} (set them to override)")
    assert setup.budget is not None
    log(
        f"budget: {setup.budget.describe(counts['train'])}, "
        + (
            f"early stopping after {cfg.train.patience} epochs without gain"
            if cfg.train.patience
            else "no early stopping"
        )
    )


def start_model(setup: Setup, log: Log) -> Forecaster:
    """The model at its starting weights: the highway at its closed-form fit where it helps."""
    cfg, prep = setup.cfg, setup.prep
    model = build_model(prep.scaled.shape[1], prep.panel.n_targets, cfg.model, n_future(cfg))
    start = init_highway(model, prep, cfg)
    if start:
        log(start)
    return model


def fit_model(
    setup: Setup, model: Forecaster, device: torch.device, run_dir: Path, resume: str | None, quiet: bool
) -> FitResult:
    """Train on the device, snapshotting state.pt after every epoch so that training can resume."""
    cfg, prep = setup.cfg, setup.prep
    L, H = cfg.model.lookback, cfg.model.horizon
    values = torch.from_numpy(prep.scaled).to(device)
    windows = Windows(values, prep.panel.n_targets, L, H, n_future(cfg))
    starts = {p: prep.starts(p, L, H) for p in PARTS}
    if cfg.train.steps_per_epoch:  # capped epochs validate on a fixed random subset of the same size
        share = world()[1] if setup.sharded else 1  # of which each process holds its part
        starts["val"] = subsample(starts["val"], cfg.train.steps_per_epoch * cfg.train.batch_size // share)
    on_device = {p: torch.from_numpy(s).to(device) for p, s in starts.items()}
    return fit(
        model,
        windows,
        on_device["train"],
        on_device["val"],
        cfg.train,
        quiet=quiet,
        on_epoch=lambda s: checkpoint.save_payload(run_dir / "state.pt", s),
        resume=resume_state(run_dir) if resume else None,
        sharded=setup.sharded,
    )


def nothing_to_keep(run_dir: Path, result: FitResult, cfg: Config) -> TrainSummary:
    """No epoch finished: leave no half-made run behind; divergence is an error."""
    rank = world()[0]
    if rank == 0:
        for name in ("config.yaml", "state.pt"):
            (run_dir / name).unlink(missing_ok=True)
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
    if result.status == Status.DIVERGED:
        raise ForecastError(
            f"training diverged (loss became NaN or inf) in the first epoch; lower train.lr (now {cfg.train.lr})"
        )
    return TrainSummary(None, result.status, 0, rank)


def finish(run: Run, setup: Setup, result: FitResult, log: Log) -> TrainSummary:
    """After saving: divergence is an error; otherwise warn when a baseline wins, and score the test split."""
    summary = TrainSummary(run.path, result.status, result.best_epoch)
    if result.status == Status.DIVERGED:
        raise ForecastError(
            f"training diverged (loss became NaN or inf) after epoch {len(result.history)}; the best weights "
            f"so far (epoch {result.best_epoch}) are saved in {run.path}; lower train.lr (now {run.cfg.train.lr})"
        )
    if result.status == Status.INTERRUPTED:
        return summary
    warning = baseline_warning(run.state.val_mse)
    if warning:
        log(warning)
    if setup.counts["test"]:
        summary.metrics = evaluate(run, setup.prep, "test", new_data=False, log=log, sharded=setup.sharded)
    return summary


def save_run(
    run_dir: Path, setup: Setup, p: Predictor, result: FitResult, record: Record, stats: dict[str, Any]
) -> Run:
    """model.pt (plain data and tensors only), history.csv and loss.png, written by the first
    process; returns the run. `stats` are scoring.reference_stats' (popped here). Sharded, the run
    holds every process's series."""
    from forecast import plots

    cfg, panel, model = setup.cfg, setup.prep.panel, p.model
    record.status = result.status.value
    series = {
        "ids": np.array(panel.ids, dtype=object),
        "min": setup.prep.scaler.data_min,
        "max": setup.prep.scaler.data_max,
        "train_std": stats.pop("train_std").numpy(),
        "mase_scale": stats.pop("mase_scale").numpy(),
        "last": panel.times[panel.offsets[1:] - 1].astype("datetime64[ns]").astype(np.int64),
    }
    last = pd.Timestamp(panel.times.max())
    if setup.sharded:
        series, last = gather_series(series), max(gather(last))
        record.data.rows = int(total(record.data.rows or 0))
    state = RunState(
        config=cfg.to_dict(),
        state_dict={k: v.cpu() for k, v in model.state_dict().items()},
        scaler={"min": torch.from_numpy(series["min"]), "max": torch.from_numpy(series["max"])},
        columns=panel.columns,
        n_targets=panel.n_targets,
        freq=panel.freq,
        ids=[str(sid) for sid in series["ids"]],
        history={k: [h[k] for h in result.history] for k in ("train_loss", "val_loss", "lr", "seconds")},
        time_format=panel.time_format,
        holidays=list(panel.holidays),
        day_first=panel.day_first,
        last_timestamp=str(last),
        series_last=torch.from_numpy(series["last"]),
        best_epoch=result.best_epoch,
        record=record,
        train_std=torch.from_numpy(series["train_std"]),
        mase_scale=torch.from_numpy(series["mase_scale"]),
        **stats,
    )
    if world()[0] == 0:
        checkpoint.save(run_dir / "model.pt", state)
        if result.status not in (Status.INTERRUPTED, Status.DIVERGED):
            (run_dir / "state.pt").unlink(missing_ok=True)
        plots.plot_loss(write_history(run_dir, result.history), run_dir / "loss.png", result.best_epoch)
    return Run(model, cfg, p.targets, p.device, run_dir, state)


MODEL_OUTPUTS = ("forecast.csv", "predictions.csv", "forecast.png", "backtest.png")  # made from model.pt


def drop_outputs(run_dir: Path, log: Log) -> None:
    """Remove what predict and plot made from the model that a resumed run replaces, so that no
    file of the earlier model passes for the new one's."""
    dropped = [name for name in MODEL_OUTPUTS if (run_dir / name).is_file()]
    for name in dropped:
        (run_dir / name).unlink()
    if dropped:
        log(f"removed {', '.join(dropped)}: made from the model before resuming; run predict and plot again")


def new_run_dir(cfg: Config, out: str | None, force: bool) -> Path:
    if out:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ForecastError(f"--out {str(path)!r} is a file, not a run directory")
        if path.exists() and any(path.iterdir()):
            if not force:
                raise ForecastError(f"run directory {str(path)!r} already exists; choose another --out or pass --force")
            for name in RUN_FILES:  # --force: no file of the earlier run may pass for this one's
                (path / name).unlink(missing_ok=True)
        return path
    stem = Path(cfg.data.path).stem or "run"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"{stem}-{stamp}"
    n = 2
    while path.exists():
        path, n = Path("runs") / f"{stem}-{stamp}-{n}", n + 1
    return path


def warn_if_changed(run_dir: Path, record: Record, log: Log) -> None:
    """Resuming: a warning when the data file is not the one the interrupted training read."""
    earlier = checkpoint.load(run_dir / "model.pt").record.data.sha256 if (run_dir / "model.pt").is_file() else None
    if earlier and record.data.sha256 and earlier != record.data.sha256:
        log(f"warning: {record.data.path} has changed since this run began training; it goes on with the file as it is")


def run_record(cfg: Config, device: torch.device, n_rows: int) -> Record:
    return Record(
        command=shlex.join(sys.argv),
        versions={
            "forecast": __version__,
            "torch": str(torch.__version__),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        device=str(device),
        seed=cfg.train.seed,
        data=DataRecord(str(Path(cfg.data.path).resolve()), n_rows, read.file_digest(cfg.data.path)),
        started=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        status=Status.RUNNING.value,
    )


def write_history(run_dir: Path, history: list[dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss", "lr", "seconds"])
    files.write_with(run_dir / "history.csv", lambda f: frame.to_csv(f, index=False))
    return frame


def state_path(run_dir: Path) -> Path:
    """The run's state.pt, which --resume continues from; an error where there is none."""
    path = run_dir / "state.pt"
    if not path.is_file():
        raise ForecastError(f"{run_dir} has no state.pt to resume from (it completed, or never finished an epoch)")
    return path


def resume_state(run_dir: Path) -> dict[str, Any]:
    return checkpoint.load_any(state_path(run_dir), "training state")


def baseline_warning(val_mse: dict[str, float]) -> str | None:
    """One line naming the best baseline when it beats the model on the validation windows."""
    others = [n for n in val_mse if n != "model"]
    if not others:
        return None
    name = min(others, key=val_mse.__getitem__)
    if val_mse[name] >= val_mse["model"]:
        return None
    return (
        f"warning: on the validation windows the {name.replace('_', ' ')} baseline beats the model "
        f"(MSE {val_mse[name]:.4g} against {val_mse['model']:.4g}, scaled units); "
        "its forecasts may serve better here, or try more data or another lookback"
    )


# ---------------------------------------------------------------- predict


def write_forecast(
    run: Run, data: str | pd.DataFrame | None, out: str | None, coverage: float | None, log: Log
) -> tuple[Path, int]:
    """forecast.csv (or `out`): the horizon after each series' last row; returns the path and row count."""
    path = output_path(run, out, "forecast.csv")
    prep = run.data_for(data, log)
    frame = forecast_frame(run, prep, run.half_width(coverage), log)
    return path, write_csv_stream(path, iter([frame]), prep.panel.time_format)


def write_backtest(
    run: Run, data: str | pd.DataFrame | None, out: str | None, split: str, coverage: float | None, log: Log
) -> tuple[Path, int]:
    """predictions.csv (or `out`): every window of `split` with its actuals; returns the path and row count."""
    path = output_path(run, out, "predictions.csv")
    prep = run.data_for(data, log)
    if data is not None and split == "test":
        log(f"test windows: {prep.windows_from}")
    H = run.cfg.model.horizon
    starts = prep.starts(split, run.cfg.model.lookback, H)
    if len(starts) == 0:
        raise ForecastError(f"the {split} split has no complete window to backtest{scored_rows_note(prep, split, H)}")
    frames = backtest_frames(run, prep, starts, run.half_width(coverage), progress=True)
    return path, write_csv_stream(path, frames, prep.panel.time_format)


PREDICTION_HEADERS = ("target,origin,timestamp,step,", "series,target,origin,timestamp,step,")


def output_path(run: Run, out: str | None, name: str) -> Path:
    """Where predict writes: RUN/name, or `out`. An existing `out` is replaced only when it is
    empty or a file predict wrote (its header says so): never the data, a run's model.pt or any
    other file given by mistake."""
    if not out:
        return run.path / name
    path = Path(out)
    if path.is_dir():
        raise ForecastError(f"--out {out} is a folder; give a file name, e.g. {path / name}")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            head = f.read(64).decode("utf-8", errors="replace")
        if not head.startswith(PREDICTION_HEADERS):
            raise ForecastError(
                f"--out {out} exists and is not a file that forecast predict wrote; "
                "give another file name, or move that file first"
            )
    return path


def write_csv_stream(path: Path, frames: Iterator[pd.DataFrame], time_format: str = "") -> int:
    """Write frames one after another into `path` atomically; return the number of rows.
    Times are written in `time_format` (a Panel.time_format: as the data wrote them), else ISO."""
    rows = 0
    with files.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        for i, frame in enumerate(frames):
            if time_format:
                frame = frame.assign(**{c: read.format_times(frame[c].to_numpy(), time_format) for c in TIME_COLUMNS})
            frame.to_csv(f, index=False, header=i == 0, date_format=read.DEFAULT_TIME_FORMAT)
            rows += len(frame)
    return rows


# ---------------------------------------------------------------- plot and info


def plot(
    run: Run,
    out: str | None = None,
    series: str | None = None,
    log: Log = stderr_log,
    data: str | pd.DataFrame | None = None,
) -> list[Path]:
    """loss.png, backtest.png and forecast.png. The last two draw RUN/predictions.csv and
    RUN/forecast.csv when `predict` wrote them (intervals included), and compute only what is
    missing; the history drawn is the training data's, or `data`'s (the file predict read)."""
    from forecast import plots

    out_dir = Path(out) if out else run.path
    prep = run.data_for(data, log)
    pick = pick_series(prep.panel.ids, series)
    sid = prep.panel.ids[pick]
    if series is None and len(prep.panel.ids) > 1:
        log(f"drawing series {sid} of {len(prep.panel.ids)}; --series picks another")
    name = f" (series {sid})" if sid else ""
    H = run.cfg.model.horizon
    history = pd.DataFrame({"epoch": range(1, len(run.state.history["train_loss"]) + 1), **run.state.history})
    plots.plot_loss(history, out_dir / "loss.png", run.state.best_epoch)
    paths = [out_dir / "loss.png"]
    backtest, source = backtest_to_plot(run, prep, pick)
    if backtest is not None:
        title = f"{source}{name}: actual vs forecast, last {backtest['origin'].nunique()} origins"
        plots.plot_backtest(backtest, H, title, out_dir / "backtest.png")
        paths.append(out_dir / "backtest.png")
    else:  # an earlier backtest.png (another series, other data) must not pass for this one's
        stale = (out_dir / "backtest.png").is_file()
        (out_dir / "backtest.png").unlink(missing_ok=True)
        log(
            f"warning: no backtest to draw{name}: its test part has no complete window"
            + ("; the earlier backtest.png was removed" if stale else "")
        )
    forecast, source = forecast_to_plot(run, prep, pick)
    title = f"Forecast of the next {H} steps{name}{source}"
    plots.plot_forecast(history_tail(run, prep, pick, forecast, log), forecast, title, out_dir / "forecast.png")
    paths.append(out_dir / "forecast.png")
    return paths


def pick_series(ids: list[str], series: str | None) -> int:
    if series is not None and ids == [""]:
        raise ForecastError(f"--series {series}: this run has one series (its data has no data.id_column)")
    if series is not None and series not in ids:
        more = " ..." if len(ids) > 10 else ""
        raise ForecastError(f"series {series!r} not found (series: {', '.join(ids[:10])}{more})")
    return ids.index(series) if series is not None else 0


def read_written(path: Path, series: str, time_format: str) -> pd.DataFrame | None:
    """A predictions or forecast CSV that `predict` wrote, limited to one series; None when absent.
    Its times are in the data's layout (`time_format`, the training data's; a file predicted from
    other data may have another, which the reader then finds)."""
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"series": str, "target": str, **dict.fromkeys(TIME_COLUMNS, str)})
    for column in TIME_COLUMNS:
        if column not in frame:
            raise ForecastError(f"{path} has no {column!r} column; write it again with forecast predict")
        frame[column] = read.read_written_times(frame[column], time_format, column, str(path))
    if "series" in frame:
        frame = frame[frame["series"] == series]
    return frame.reset_index(drop=True)


def backtest_to_plot(run: Run, prep: Prepared, pick: int) -> tuple[pd.DataFrame | None, str]:
    """The last origins of RUN/predictions.csv, or else a backtest of the test split (None: no window)."""
    written = read_written(run.path / "predictions.csv", prep.panel.ids[pick], prep.panel.time_format)
    if written is not None and len(written):
        last = np.sort(written["origin"].unique())[-BACKTEST_PLOT_ORIGINS:]
        return written[written["origin"].isin(last)], "Backtest in predictions.csv"
    starts = prep.starts("test", run.cfg.model.lookback, run.cfg.model.horizon)
    starts = starts[series_of(starts, prep.panel.offsets) == pick][-BACKTEST_PLOT_ORIGINS:]
    if not len(starts):
        return None, ""
    return pd.concat(backtest_frames(run, prep, starts), ignore_index=True), "Test split"


def forecast_to_plot(run: Run, prep: Prepared, pick: int) -> tuple[pd.DataFrame, str]:
    """RUN/forecast.csv, or else the forecast after the training data, with the title's note on its source."""
    sid = prep.panel.ids[pick]
    written = read_written(run.path / "forecast.csv", sid, prep.panel.time_format)
    if written is not None and len(written):
        return written, " (forecast.csv)"
    forecast = forecast_frame(run, prep, run.half_width(None))
    if "series" in forecast:
        forecast = forecast[forecast["series"] == sid]
    return forecast, ""


def history_tail(run: Run, prep: Prepared, pick: int, forecast: pd.DataFrame, log: Log) -> pd.DataFrame:
    """Long frame (target, timestamp, y_true) of the data's last rows up to the forecast's origin;
    a warning where the forecast starts after them (it was made from newer data)."""
    H, L, T = run.cfg.model.horizon, run.cfg.model.lookback, run.n_targets
    a, b = prep.panel.offsets[pick], prep.panel.offsets[pick + 1]
    origin = np.datetime64(pd.Timestamp(forecast["origin"].max()).tz_localize(None))
    if b > a and origin > prep.panel.times[b - 1]:
        last = pd.Timestamp(prep.panel.times[b - 1])
        log(
            f"warning: the forecast starts after {pd.Timestamp(origin)}, later than the data drawn (to {last}); "
            "pass --data with the file it was made from to draw that"
        )
    b = a + int(np.searchsorted(prep.panel.times[a:b], origin, side="right"))  # data newer than the origin: unseen
    tail = max(a, b - max(4 * H, L))
    return pd.DataFrame(
        {
            "target": np.tile(np.array(run.targets, dtype=object), b - tail),
            "timestamp": np.repeat(prep.panel.times[tail:b], T),
            "y_true": prep.panel.values[tail:b, :T].reshape(-1),
        }
    )


def info(run: Run) -> str:
    """`forecast info`: the run's summary, its parameters per part, and its metrics when scored."""
    metrics_path = run.path / "metrics.json"
    scores = files.read_json(metrics_path) if metrics_path.is_file() else None
    counts = parameter_counts(run.cfg.model, len(run.columns) + n_future(run.cfg), run.n_targets, n_future(run.cfg))
    return report.info(run.path, run.cfg, run.state, count_parameters(run.model), counts, scores)


def default_config_path() -> Path:
    """The demo config shipped inside the package (configs/default.yaml is its copy for people to read)."""
    return Path(str(importlib.resources.files("forecast") / "default.yaml"))
