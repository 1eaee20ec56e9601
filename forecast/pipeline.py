"""The recipes behind each command: train, predict, evaluate, plot, info.

train(cfg) reads top to bottom: load, split, scale, window, fit, save, evaluate.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import math
import platform
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecast import __version__, checkpoint, choices, config, data, metrics
from forecast.config import Config
from forecast.errors import ForecastError
from forecast.model import Forecaster, build_model, count_parameters
from forecast.train import (
    FitResult,
    autocast,
    close_distributed,
    fit,
    init_distributed,
    pick_device,
    seed_everything,
    share,
)
from forecast.windows import PARTS, Windows, series_of, window_starts

Log = Callable[[str], None]
MAX_STAT_WINDOWS = 20_000  # the linear baseline and conformal quantiles use at most this many windows
CHUNK_WINDOWS = 4096  # backtests stream this many windows at a time
QUANTILE_LEVELS = np.linspace(0, 1, 201)  # stored conformal quantiles of |validation residual|
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


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr)


def quiet_log(msg: str) -> None:
    pass


# ---------------------------------------------------------------- preparing data


@dataclass
class Prepared:
    """A panel in original units plus what the model sees: its scaled (N, F) values."""

    panel: data.Panel
    borders: np.ndarray  # (S, 3) ends of train/val/test, rows from each series' start
    scaler: data.Scaler
    scaled: np.ndarray  # (N, F) float32, targets first, then features, then calendar columns
    test_rows: np.ndarray | None = None  # (S, 2) [from, to) rows whose targets are the test part, if not the split's
    windows_from: str = "the test split of the training data (data.split)"  # what "test" means here, for people

    def starts(self, part: str, lookback: int, horizon: int) -> np.ndarray:
        borders = self.borders
        if part == "test" and self.test_rows is not None:  # new data: test is the rows after the training data
            borders = np.column_stack([self.test_rows[:, 0], self.test_rows[:, 0], self.test_rows[:, 1]])
        return window_starts(self.panel.offsets, borders, part, lookback, horizon)


def n_future(cfg: Config) -> int:
    """Known-future input columns: the calendar's, when data.calendar is on."""
    return len(data.CALENDAR_COLUMNS) if cfg.data.calendar else 0


def model_inputs(panel: data.Panel, scaler: data.Scaler, cfg: Config) -> np.ndarray:
    scaled = scaler.transform(panel)
    if cfg.data.calendar:
        scaled = np.hstack([scaled, data.calendar_features(panel.times)])
    return scaled.astype(np.float32)


def prepare(cfg: Config, panel: data.Panel, scaler: data.Scaler | None = None) -> Prepared:
    """Split and scale; given a trained scaler (new data for a trained model), row-count splits
    longer than a series are cut at its end rather than refused."""
    borders = data.split_borders(panel.lengths(), cfg.data.split, strict=scaler is None)
    borders = fit_borders(borders, cfg)
    if scaler is None:
        scaler = data.fit_scaler(panel, borders[:, 0])
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
            raise ForecastError(
                f"the {part} split of {path} has no complete window: it has {rows} rows (per series, at most) "
                f"and needs {need}; use more data, a shorter lookback/horizon, or change data.split"
            )
    return counts


def choose_sizes(cfg: Config, panel: data.Panel) -> list[str]:
    """Horizon, lookback, season and segment from the frequency and series lengths, where unset."""
    lengths = panel.lengths()
    train_rows = int(np.median(data.split_borders(lengths, cfg.data.split, strict=False)[:, 0]))
    return choices.choose_sizes(cfg, data.season_length(panel.freq), panel.freq, train_rows)


def train_windows(prep: Prepared, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Target inputs (W, L, T) and targets (W, H, T) of at most MAX_STAT_WINDOWS training windows."""
    L, H = cfg.model.lookback, cfg.model.horizon
    return gather_numpy(
        prep.scaled, subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS), L, H, prep.panel.n_targets
    )


def choose_norm(cfg: Config, prep: Prepared) -> list[str]:
    """norm auto: seasonal when the season fits the lookback and seasonal naive beats repeat-last
    on the training windows, else last."""
    if cfg.model.norm != "auto":
        return []
    season = cfg.model.season or 1
    fits = 1 < season <= cfg.model.lookback
    cfg.model.norm = "seasonal" if fits and choices.seasonal_beats_last(*train_windows(prep, cfg), season) else "last"
    return [f"norm {cfg.model.norm}" + (f" (season {season})" if cfg.model.norm == "seasonal" else "")]


def init_highway(model: Forecaster, prep: Prepared, cfg: Config) -> str:
    """Start the highway at the ridge fit of what the base forecast misses on the training windows.

    The ridge strength is the one that best forecasts held-out windows (the last quarter of each
    series' training rows, then the validation windows) from a fit on the earlier ones; where the
    base alone does better, the highway starts at zero. Returns the choice, in words.
    """
    if model.highway is None or model.norm not in ("last", "seasonal"):
        return ""  # with norm none or revin the highway sees raw or standardized windows: it starts at zero
    L, H, T = cfg.model.lookback, cfg.model.horizon, prep.panel.n_targets
    starts = subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS)
    series = series_of(starts, prep.panel.offsets)
    first_target = starts + L - prep.panel.offsets[series]  # row within its series
    cut = (0.75 * prep.borders[series, 0]).astype(np.int64)
    val = subsample(prep.starts("val", L, H), MAX_STAT_WINDOWS)
    earlier = starts[first_target + H <= cut]  # targets end before the held-out targets begin
    held_out = np.concatenate([starts[first_target >= cut], val])

    def windows(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalized target windows (W, L, T) and the residuals (W, H, T) the highway should predict,
        in the units the model's own normalization gives them."""
        x, y = (torch.from_numpy(a) for a in gather_numpy(prep.scaled, s, L, H, T))
        xn, base, spread = model.normalize(x, T)
        assert base is not None  # norm last or seasonal: the base forecast
        resid = (y - base) / spread if spread is not None else y - base
        return xn.double().numpy(), resid.double().numpy()

    lam = choices.choose_ridge(windows(earlier), windows(held_out))
    if lam is None:
        return "highway starts at zero: the base forecast alone did better on held-out windows"
    weight, bias = choices.ridge_fit(choices.ridge_path(*windows(starts)), lam)
    with torch.no_grad():
        model.highway.weight.copy_(torch.from_numpy(weight))
        model.highway.bias.copy_(torch.from_numpy(bias))
    return f"highway starts at the ridge fit (strength {lam:.3g}) of the training windows"


def drop_short_series(panel: data.Panel, cfg: Config, log: Log) -> data.Panel:
    """Skip (with a warning) the series of a multi-series file too short for one training window."""
    if len(panel.ids) == 1:
        return panel
    if config.split_is_counts(cfg.data.split):  # row counts: series shorter than the split are skipped
        need = int(sum(cfg.data.split.values()))
        covered = panel.lengths() >= need
        if not covered.any():
            data.split_borders(panel.lengths(), cfg.data.split)  # raises, naming the rows asked for
        panel = select_series(panel, covered, f"shorter than data.split's {need} rows", log)
    borders = data.split_borders(panel.lengths(), cfg.data.split)
    keep = borders[:, 0] >= cfg.model.lookback + cfg.model.horizon
    if not keep.any():
        raise ForecastError("no series is long enough for one training window (lookback + horizon rows)")
    return select_series(panel, keep, "too short for one training window", log)


def select_series(panel: data.Panel, keep: np.ndarray, why: str, log: Log) -> data.Panel:
    """The panel without the series where `keep` is False, named in a warning."""
    if keep.all():
        return panel
    skipped = [panel.ids[i] for i in np.flatnonzero(~keep)]
    more = " ..." if len(skipped) > 10 else ""
    log(f"warning: skipping {len(skipped)} series {why}: {', '.join(skipped[:10])}{more}")
    return panel.select(keep)


# ---------------------------------------------------------------- run directories


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


def run_record(cfg: Config, device: torch.device, n_rows: int) -> dict[str, Any]:
    return {
        "command": shlex.join(sys.argv),
        "versions": {
            "forecast": __version__,
            "torch": str(torch.__version__),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "device": str(device),
        "seed": cfg.train.seed,
        "data": {"path": str(Path(cfg.data.path).resolve()), "rows": n_rows, "sha256": data.file_digest(cfg.data.path)},
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "ended": None,
        "status": "running",
    }


def write_history(run_dir: Path, history: list[dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss", "lr", "seconds"])
    checkpoint.write_with(run_dir / "history.csv", lambda f: frame.to_csv(f, index=False))
    return frame


# ---------------------------------------------------------------- train


def train(
    cfg: Config,
    out: str | None = None,
    force: bool = False,
    resume: str | None = None,
    log: Log = stderr_log,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a model from `cfg` into a new run directory; return a summary for the CLI."""
    config.check(cfg)
    if cfg.data.path and Path(cfg.data.path).is_file():
        # saved in the run: predict, evaluate and --resume then work from any folder
        cfg.data.path = str(Path(cfg.data.path).absolute())
    panel = data.load_panel(cfg.data)
    chosen = choose_sizes(cfg, panel)
    panel = drop_short_series(panel, cfg, log)
    cfg.data.target = panel.targets  # fix the resolved choice, e.g. the default last column
    prep = prepare(cfg, panel)
    counts = check_windows(prep, cfg, cfg.data.path)
    chosen += choose_norm(cfg, prep)
    budget = choices.training_budget(cfg, counts["train"])
    cfg.train.batch_size, cfg.train.steps_per_epoch = budget.batch_size, budget.steps_per_epoch
    rank, world_size = init_distributed(cfg.train.device)
    if rank > 0:
        log = quiet_log
    run_dir = Path(share(str(resume or new_run_dir(cfg, out, force))))
    log(f"config:\n{config.to_yaml(cfg).rstrip()}")
    log(
        f"data: {cfg.data.path}, {len(panel.values)} rows, {len(panel.ids)} series, frequency {panel.freq}, "
        f"windows train/val/test {counts['train']}/{counts['val']}/{counts['test']}"
    )
    if chosen:
        log(f"chosen from the data: {', '.join(chosen)} (set them to override)")
    log(f"budget: {budget.describe(counts['train'])}, early stopping after {cfg.train.patience} epochs without gain")

    seed_everything(cfg.train.seed)
    device = pick_device(cfg.train.device)
    model = build_model(prep.scaled.shape[1], panel.n_targets, cfg.model, n_future(cfg))
    start = init_highway(model, prep, cfg)
    if start:
        log(start)
    model = model.to(device)
    windows = Windows(
        torch.from_numpy(prep.scaled).to(device), panel.n_targets, cfg.model.lookback, cfg.model.horizon, n_future(cfg)
    )
    starts = {p: torch.from_numpy(prep.starts(p, cfg.model.lookback, cfg.model.horizon)).to(device) for p in PARTS}
    if cfg.train.steps_per_epoch:  # capped epochs validate on a fixed random subset of the same size
        budget_windows = cfg.train.steps_per_epoch * cfg.train.batch_size
        starts["val"] = torch.from_numpy(
            subsample(prep.starts("val", cfg.model.lookback, cfg.model.horizon), budget_windows)
        ).to(device)
    log(
        f"model: {cfg.model.cell}, {count_parameters(model):,} parameters, on {device}"
        f"{f' x {world_size} processes' if world_size > 1 else ''}; run directory {run_dir}"
    )

    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text(run_dir / "config.yaml", config.to_yaml(cfg))
    record = run_record(cfg, device, len(panel.values))
    state = resume_state(run_dir) if resume else None
    result = fit(
        model,
        windows,
        starts["train"],
        starts["val"],
        cfg.train,
        quiet=quiet,
        on_epoch=lambda s: checkpoint.save(run_dir / "state.pt", s),
        resume=state,
    )
    close_distributed()
    if rank > 0:  # rank 0 alone writes the run directory
        return {"run_dir": run_dir, "status": result.status, "best_epoch": result.best_epoch, "rank": rank}
    if result.status in ("diverged", "interrupted") and not result.history and not resume:
        for name in ("config.yaml", "state.pt"):  # no epoch finished: leave no half-made run behind
            (run_dir / name).unlink(missing_ok=True)
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        if result.status == "interrupted":
            raise KeyboardInterrupt  # before the first epoch ended: nothing to keep or resume
        raise ForecastError(
            f"training diverged (loss became NaN or inf) in the first epoch; lower train.lr (now {cfg.train.lr})"
        )
    model.load_state_dict(result.best_state)
    record["status"] = {"diverged": "diverged", "interrupted": "interrupted"}.get(result.status, "completed")
    record["ended"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    save_run(run_dir, cfg, prep, model, result, record, device)
    summary: dict[str, Any] = {"run_dir": run_dir, "status": result.status, "best_epoch": result.best_epoch, "rank": 0}
    if result.status == "diverged":
        raise ForecastError(
            f"training diverged (loss became NaN or inf) after epoch {len(result.history)}; the best weights "
            f"so far (epoch {result.best_epoch}) are saved in {run_dir}; lower train.lr (now {cfg.train.lr})"
        )
    if result.status == "interrupted":
        return summary
    run = load_run(run_dir, device.type)
    warning = baseline_warning(run.ckpt.get("val_mse", {}))
    if warning:
        log(warning)
    if counts["test"]:
        summary["metrics"] = evaluate(run, log=log, prep=prep)
    return summary


def save_run(
    run_dir: Path,
    cfg: Config,
    prep: Prepared,
    model: Forecaster,
    result: FitResult,
    record: dict[str, Any],
    device: torch.device,
) -> None:
    """model.pt (plain data and tensors only), history.csv and loss.png."""
    from forecast import plots

    panel = prep.panel
    history = write_history(run_dir, result.history)
    payload = {
        "format_version": checkpoint.FORMAT_VERSION,
        "config": cfg.to_dict(),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "scaler": {"min": torch.from_numpy(prep.scaler.data_min), "max": torch.from_numpy(prep.scaler.data_max)},
        "columns": panel.columns,
        "n_targets": panel.n_targets,
        "ids": panel.ids,
        "freq": panel.freq,
        "time_format": panel.time_format,  # how the data wrote its times: outputs write them alike
        "last_timestamp": str(pd.Timestamp(panel.times.max())),
        "history": {k: [h[k] for h in result.history] for k in ("train_loss", "val_loss", "lr", "seconds")},
        "best_epoch": result.best_epoch,
        "record": record,
        **fit_reference_stats(prep, cfg, model, device),
    }
    checkpoint.save(run_dir / "model.pt", payload)
    if result.status not in ("interrupted", "diverged"):
        (run_dir / "state.pt").unlink(missing_ok=True)
    plots.plot_loss(history, run_dir / "loss.png")


def resume_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "state.pt"
    if not path.is_file():
        raise ForecastError(f"{run_dir} has no state.pt to resume from (it completed, or never finished an epoch)")
    return checkpoint.load_any(path, "training state")


def fit_reference_stats(prep: Prepared, cfg: Config, model: Forecaster, device: torch.device) -> dict[str, Any]:
    """What evaluation needs from training data: z-score and MASE scales, the closed-form
    linear baseline, and conformal quantiles of validation residuals."""
    panel, L, H, T = prep.panel, cfg.model.lookback, cfg.model.horizon, prep.panel.n_targets
    season = data.season_length(panel.freq)
    std, mase_scale = metrics.train_stats(panel.values, panel.offsets, prep.borders[:, 0], T, season)
    x, y = gather_numpy(prep.scaled, subsample(prep.starts("train", L, H), MAX_STAT_WINDOWS), L, H, T)
    linear = metrics.fit_linear(x.astype(np.float64), y.astype(np.float64))
    stats = {
        "season": season,
        "train_std": torch.from_numpy(std),
        "mase_scale": torch.from_numpy(mase_scale),
        "linear": torch.from_numpy(linear),
    }
    val = subsample(prep.starts("val", L, H), MAX_STAT_WINDOWS)  # exchangeable: a subset stays valid
    if len(val):
        residuals, sq = [], dict.fromkeys(("model", "repeat_last", "seasonal_naive", "linear"), 0.0)
        for chunk, pred in predict_chunks(model, prep.scaled, val, cfg, device):
            x, y = gather_numpy(prep.scaled, chunk, L, H, T)
            residuals.append(np.abs(pred - y))
            for name, guess in with_baselines(pred, x, season, linear):
                sq[name] += float(((guess - y) ** 2).sum())
        q = np.quantile(np.concatenate(residuals), QUANTILE_LEVELS, axis=0, method="higher")
        stats.update(conformal=torch.from_numpy(q), n_val_windows=len(val))  # (levels, H, T), scaled
        stats["val_mse"] = {name: v / (len(val) * H * T) for name, v in sq.items()}  # scaled units
    return stats


def with_baselines(
    pred: np.ndarray, x: np.ndarray, season: int, linear: np.ndarray
) -> tuple[tuple[str, np.ndarray], ...]:
    """The model's scaled forecasts (W, H, T) beside the three baselines' on the same windows x (W, L, T)."""
    H = pred.shape[1]
    return (
        ("model", pred),
        ("repeat_last", metrics.repeat_last(x, H)),
        ("seasonal_naive", metrics.seasonal_naive(x, H, season)),
        ("linear", metrics.predict_linear(linear, x)),
    )


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


# ---------------------------------------------------------------- loading a run


@dataclass
class Run:
    path: Path
    cfg: Config
    ckpt: dict[str, Any]
    model: Forecaster
    device: torch.device

    @property
    def columns(self) -> list[str]:
        return list(self.ckpt["columns"])

    @property
    def n_targets(self) -> int:
        return int(self.ckpt["n_targets"])

    def forecast(self, source: str | pd.DataFrame | None = None, coverage: float | None = None) -> pd.DataFrame:
        """The `horizon` steps after the last row of each series, as a long DataFrame."""
        return forecast_frame(self, run_data(self, source), coverage)

    def backtest(
        self, source: str | pd.DataFrame | None = None, split: str = "test", coverage: float | None = None
    ) -> pd.DataFrame:
        """Stride-1 forecasts with actuals for every window of `split` (train, val, test or all)."""
        return pd.concat(backtest_frames(self, run_data(self, source), split, coverage), ignore_index=True)

    def evaluate(self, source: str | pd.DataFrame | None = None, split: str = "test") -> dict[str, Any]:
        """Metrics of the model and the baselines; writes metrics.json when scoring the training data."""
        return evaluate(self, source, split)

    def rows_for(self, ids: list[str]) -> list[int]:
        """Where each series id sits in the checkpoint's per-series arrays."""
        known = {sid: i for i, sid in enumerate(self.ckpt["ids"])}
        unknown = [sid for sid in ids if sid not in known]
        if unknown:
            raise ForecastError(f"series not seen in training: {', '.join(unknown[:5])}")
        return [known[sid] for sid in ids]

    def scaler_for(self, ids: list[str]) -> data.Scaler:
        rows = self.rows_for(ids)
        return data.Scaler(self.ckpt["scaler"]["min"].numpy()[rows], self.ckpt["scaler"]["max"].numpy()[rows])


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    path = Path(run_dir)
    if not path.is_dir():
        raise ForecastError(f"run directory {str(path)!r} not found")
    ckpt = checkpoint.load(path / "model.pt")
    for key in ("highway", "window_scale"):  # runs from before these options had neither
        ckpt["config"].get("model", {}).setdefault(key, False)
    cfg = config.from_dict(ckpt["config"], f"{path / 'model.pt'}")
    n_inputs = len(ckpt["columns"]) + n_future(cfg)
    model = build_model(n_inputs, int(ckpt["n_targets"]), cfg.model, n_future(cfg))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise ForecastError(f"{path / 'model.pt'} does not match its own config: {str(e).splitlines()[0]}") from None
    dev = pick_device(device)
    return Run(path, cfg, ckpt, model.to(dev).eval(), dev)


def run_data(run: Run, source: str | pd.DataFrame | None, log: Log = stderr_log) -> Prepared:
    """The training data (default), or a newer file or DataFrame with the same columns, scaled as in training."""
    cfg = run.cfg
    digest = run.ckpt.get("record", {}).get("data", {}).get("sha256")
    new_data = source is not None and not is_file_with_digest(source, digest)
    if source is None:
        source = cfg.data.path
        if Path(source).is_file() and digest and data.file_digest(source) != digest:
            log(f"warning: {source} has changed since this model was trained on it")
    path = "the DataFrame" if isinstance(source, pd.DataFrame) else str(source)
    panel = data.load_panel(cfg.data, source)
    if panel.columns != run.columns:
        missing = [c for c in run.columns if c not in panel.columns]
        raise ForecastError(
            f"{path} does not have the columns the model was trained on: missing {', '.join(missing) or '-'} "
            f"(trained on {', '.join(run.columns)})"
        )
    if data.step_of(panel.freq) != data.step_of(run.ckpt["freq"]):  # as steps: 'D' == '24h', 'W-SUN' == '168h'
        raise ForecastError(f"{path} has frequency {panel.freq!r} but the model was trained on {run.ckpt['freq']!r}")
    known = set(run.ckpt["ids"])
    keep = np.array([sid in known for sid in panel.ids])
    if not keep.any():
        raise ForecastError(f"{path} has none of the series the model was trained on")
    panel = select_series(panel, keep, "the model was not trained on", log)
    prep = prepare(cfg, panel, run.scaler_for(panel.ids))
    return choose_test_rows(prep, cfg, run.ckpt.get("last_timestamp"), path) if new_data else prep


def is_file_with_digest(source: str | pd.DataFrame, digest: str | None) -> bool:
    """Whether `source` is the training file itself (same bytes), given again with --data."""
    if isinstance(source, pd.DataFrame) or not digest or not Path(source).is_file():
        return False
    return data.file_digest(source) == digest


def choose_test_rows(prep: Prepared, cfg: Config, last: str | None, path: str) -> Prepared:
    """Which windows of new data are "test": those whose targets are newer than the training data.
    When no row is newer (an older or unrelated file), the file's own split by data.split: row counts
    as given when the file holds them all, else as proportions of its rows."""
    panel, lengths = prep.panel, prep.panel.lengths()
    if last is not None:
        seen = panel.times <= pd.Timestamp(last).to_datetime64()  # rows are sorted within each series
        first_new = np.add.reduceat(seen.astype(np.int64), panel.offsets[:-1])  # (S,) rows up to `last`
        if (first_new < lengths).any():
            prep.test_rows = np.column_stack([first_new, lengths])
            prep.windows_from = f"rows after {last} (newer than the training data)"
            return prep
    split, why = cfg.data.split, f"no row of {path} is newer than the training data's last timestamp {last}"
    if config.split_is_counts(split) and sum(split.values()) > lengths.min():
        total = sum(split.values())
        split = {part: n / total for part, n in split.items()}
        prep.borders = data.split_borders(lengths, split)
        prep.windows_from = f"the last {split['test']:.0%} of the rows of {path} (data.split's counts as shares: {why})"
    else:
        prep.windows_from = f"the test split of {path} by data.split ({why})"
    return prep


# ---------------------------------------------------------------- inference


def gather_numpy(scaled: np.ndarray, starts: np.ndarray, L: int, H: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows for the baselines: inputs (W, L, T) and targets (W, H, T) of the target columns."""
    x = scaled[starts[:, None] + np.arange(L), :T]
    y = scaled[starts[:, None] + np.arange(L, L + H), :T]
    return x, y


def y_true_of(prep: Prepared, starts: np.ndarray, run: Run) -> np.ndarray:
    """Actual target values (W, H, T), original units, of the windows starting at `starts`."""
    L, H = run.cfg.model.lookback, run.cfg.model.horizon
    return prep.panel.values[starts[:, None] + np.arange(L, L + H), : run.n_targets]


def predict_chunks(
    model: Forecaster, scaled: np.ndarray, starts: np.ndarray, cfg: Config, device: torch.device, progress: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (starts chunk, scaled forecasts (W, H, T)) for every window, batched, in bounded memory."""
    from tqdm.auto import tqdm

    values = torch.from_numpy(scaled).to(device)
    windows = Windows(values, model.n_targets, cfg.model.lookback, cfg.model.horizon, model.n_future)
    model.eval()
    chunks = range(0, len(starts), CHUNK_WINDOWS)
    for i in tqdm(
        chunks,
        desc="forecasting",
        unit="chunk",
        disable=not progress or len(chunks) < 4,
        file=sys.stderr,
        mininterval=1.0,  # a readable log where stderr is not a terminal
        dynamic_ncols=True,
    ):
        chunk = starts[i : i + CHUNK_WINDOWS]
        index = torch.from_numpy(chunk).to(device)
        with torch.inference_mode(), autocast(device, cfg.train.precision):
            pred = model(windows.inputs(index), windows.future(index))
        yield chunk, pred.float().cpu().numpy()


def backtest_frames(
    run: Run, prep: Prepared, part: str, coverage: float | None = None, progress: bool = False
) -> Iterator[pd.DataFrame]:
    """The long predictions table for every window of `part`, chunk by chunk, in original units."""
    cfg = run.cfg
    L, H = cfg.model.lookback, cfg.model.horizon
    starts = prep.starts(part, L, H)
    half_width = conformal_half_width(run, coverage)
    for chunk, pred in predict_chunks(run.model, prep.scaled, starts, cfg, run.device, progress):
        series = series_of(chunk, prep.panel.offsets)
        yield long_frame(run, prep, chunk, series, pred, y_true_of(prep, chunk, run), half_width)


def long_frame(
    run: Run,
    prep: Prepared,
    chunk: np.ndarray,
    series: np.ndarray,
    pred: np.ndarray,
    y_true: np.ndarray | None,
    half_width: np.ndarray | None,
) -> pd.DataFrame:
    """One row per (window, step, target): series, target, origin, timestamp, step, y_pred[, y_true]."""
    L, H, T = run.cfg.model.lookback, run.cfg.model.horizon, run.n_targets
    scaler = prep.scaler
    y_pred = scaler.inverse(pred, series, T)  # (W, H, T)
    W = len(chunk)
    origin_rows = chunk + L - 1
    times = prep.panel.times
    target_times = (
        times[origin_rows[:, None] + np.arange(1, H + 1)]
        if y_true is not None
        else future_times(times[origin_rows], prep.panel.freq, H, prep.panel.holidays)
    )
    frame: dict[str, Any] = {}
    if run.cfg.data.id_column:
        frame["series"] = np.repeat(np.array(prep.panel.ids, dtype=object)[series], H * T)
    frame["target"] = np.tile(np.array(run.columns[:T], dtype=object), W * H)
    frame["origin"] = np.repeat(times[origin_rows], H * T)
    frame["timestamp"] = np.repeat(target_times.reshape(-1), T)
    frame["step"] = np.tile(np.repeat(np.arange(1, H + 1), T), W)
    frame["y_pred"] = y_pred.reshape(-1)
    if y_true is not None:
        frame["y_true"] = y_true.reshape(-1)
    if half_width is not None:
        width = half_width[None, :, :] * scaler.scale[series, None, :T]  # (W, H, T)
        frame["y_lo"] = (y_pred - width).reshape(-1)
        frame["y_hi"] = (y_pred + width).reshape(-1)
    return pd.DataFrame(frame)


def future_times(last: np.ndarray, freq: str, horizon: int, holidays: tuple[str, ...] = ()) -> np.ndarray:
    """(W, H) timestamps continuing each origin at the series' frequency (skipping `holidays`)."""
    return data.continue_times(last, freq, horizon, holidays)


def conformal_half_width(run: Run, coverage: float | None) -> np.ndarray | None:
    """(H, T) half-widths in scaled units: the finite-sample-corrected quantile of validation |residuals|."""
    coverage = coverage if coverage is not None else run.cfg.predict.coverage
    if coverage is None:
        return None
    if "conformal" not in run.ckpt:
        raise ForecastError(
            "this run has no validation windows, so it cannot give intervals; train with data.split.val > 0"
        )
    n = int(run.ckpt["n_val_windows"])
    level = min(1.0, math.ceil((n + 1) * coverage) / n)
    q = run.ckpt["conformal"].numpy()  # (levels, H, T)
    i = int(np.searchsorted(QUANTILE_LEVELS, level - 1e-12))
    return q[min(i, len(q) - 1)]


def write_csv_stream(path: Path, frames: Iterator[pd.DataFrame], time_format: str = "") -> int:
    """Write frames one after another into `path` atomically; return the number of rows.
    Times are written in `time_format` (a Panel.time_format: as the data wrote them), else ISO."""
    rows = 0
    with checkpoint.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        for i, frame in enumerate(frames):
            if time_format:
                frame = frame.assign(**{c: data.format_times(frame[c].to_numpy(), time_format) for c in TIME_COLUMNS})
            frame.to_csv(f, index=False, header=i == 0, date_format=data.DEFAULT_TIME_FORMAT)
            rows += len(frame)
    return rows


def forecast_frame(run: Run, prep: Prepared, coverage: float | None = None) -> pd.DataFrame:
    """The `horizon` steps after each series' last row."""
    L = run.cfg.model.lookback
    lengths = prep.panel.lengths()
    short = [sid or "the series" for sid, n in zip(prep.panel.ids, lengths, strict=True) if n < L]
    if short:
        raise ForecastError(f"{', '.join(short[:5])} has fewer rows than lookback ({L}); cannot forecast")
    last_starts = prep.panel.offsets[1:] - L
    frames = []
    half_width = conformal_half_width(run, coverage)
    for i in range(0, len(last_starts), CHUNK_WINDOWS):
        chunk = last_starts[i : i + CHUNK_WINDOWS]
        x = torch.from_numpy(prep.scaled[chunk[:, None] + np.arange(L)]).to(run.device)  # (W, L, F)
        future = None
        if run.model.n_future:  # calendar of the forecast steps, from their timestamps
            last = prep.panel.times[chunk + L - 1]
            times = future_times(last, prep.panel.freq, run.cfg.model.horizon, prep.panel.holidays)
            future = torch.from_numpy(data.calendar_features(times.reshape(-1)).reshape(*times.shape, -1))
            future = future.float().to(run.device)
        with torch.inference_mode(), autocast(run.device, run.cfg.train.precision):
            pred = run.model(x, future).float().cpu().numpy()
        frames.append(long_frame(run, prep, chunk, series_of(chunk, prep.panel.offsets), pred, None, half_width))
    return pd.concat(frames, ignore_index=True)


def predict(
    run: Run,
    data_path: str | pd.DataFrame | None = None,
    out: str | None = None,
    backtest: bool = False,
    split: str = "test",
    coverage: float | None = None,
    log: Log = stderr_log,
) -> tuple[Path, int]:
    prep = run_data(run, data_path, log)
    if backtest:
        path = Path(out) if out else run.path / "predictions.csv"
        if data_path is not None and split == "test":
            log(f"test windows: {prep.windows_from}")
        H = run.cfg.model.horizon
        if len(prep.starts(split, run.cfg.model.lookback, H)) == 0:
            note = scored_rows_note(prep, split, H)
            raise ForecastError(f"the {split} split has no complete window to backtest{note}")
        rows = write_csv_stream(
            path, backtest_frames(run, prep, split, coverage, progress=True), prep.panel.time_format
        )
        return path, rows
    path = Path(out) if out else run.path / "forecast.csv"
    frame = forecast_frame(run, prep, coverage)
    return path, write_csv_stream(path, iter([frame]), prep.panel.time_format)


# ---------------------------------------------------------------- evaluate


def evaluate(
    run: Run,
    data_path: str | pd.DataFrame | None = None,
    split: str = "test",
    log: Log = stderr_log,
    prep: Prepared | None = None,
) -> dict[str, Any]:
    """Score the model and the three baselines on the same windows; write metrics.json."""
    prep = prep or run_data(run, data_path, log)
    cfg, T = run.cfg, run.n_targets
    L, H = cfg.model.lookback, cfg.model.horizon
    starts = prep.starts(split, L, H)
    if data_path is not None and split == "test":
        log(f"test windows: {prep.windows_from}")
    if len(starts) == 0:
        raise ForecastError(f"the {split} split has no complete window to evaluate{scored_rows_note(prep, split, H)}")
    rows = run.rows_for(prep.panel.ids)
    std, scale = run.ckpt["train_std"].numpy()[rows], run.ckpt["mase_scale"].numpy()[rows]
    season, linear = int(run.ckpt["season"]), run.ckpt["linear"].numpy()
    names = ("model", "repeat_last", "seasonal_naive", "linear")
    scores = {name: metrics.Scores(std, scale) for name in names}
    half_width = conformal_half_width(run, cfg.predict.coverage)
    covered = width = 0.0
    filled, excluded = prep.panel.filled, 0  # actuals that data.fill made up are not scored
    filled = filled if filled is not None and filled.any() else None
    for chunk, pred in predict_chunks(run.model, prep.scaled, starts, cfg, run.device, progress=True):
        series = series_of(chunk, prep.panel.offsets)
        x, _ = gather_numpy(prep.scaled, chunk, L, H, T)
        y_true = y_true_of(prep, chunk, run)
        mask = None if filled is None else ~filled[chunk[:, None] + np.arange(L, L + H), :T]
        excluded += 0 if mask is None else int((~mask).sum())
        for name, scaled_pred in with_baselines(pred, x, season, linear):
            scores[name].add(series, y_true, prep.scaler.inverse(scaled_pred, series, T), mask)
        if half_width is not None:
            y_pred = prep.scaler.inverse(pred, series, T)
            w = half_width[None] * prep.scaler.scale[series, None, :T]
            scored = np.ones(w.shape, bool) if mask is None else mask
            covered += float(((np.abs(y_true - y_pred) <= w) & scored).sum())
            width += float(2 * (w * scored).sum())
    result: dict[str, Any] = {
        "split": split,
        **({"windows_from": prep.windows_from} if split == "test" else {}),
        "windows": int(len(starts)),
        "horizon": H,
        "lookback": L,
        "targets": run.columns[:T],
        "season": season,
        "models": {name: s.result() for name, s in scores.items()},
        "filled_points_excluded": excluded,
    }
    if half_width is not None:
        n = max(len(starts) * H * T - excluded, 1)
        result["intervals"] = {
            "coverage": cfg.predict.coverage,
            "empirical_coverage": covered / n,
            "mean_width": width / n,
        }
    if len(prep.panel.ids) > 1:
        result["series"] = {
            sid: {name: s.result(i) for name, s in scores.items()} for i, sid in enumerate(prep.panel.ids)
        }
    if data_path is None and split == "test":  # metrics.json holds the test scores of the training data
        write_metrics(run.path / "metrics.json", result)
    return result


def scored_rows_note(prep: Prepared, split: str, horizon: int) -> str:
    """For an empty test part of new data: what it was made of, and what a window needs."""
    if split != "test" or prep.test_rows is None:
        return ""
    rows = int((prep.test_rows[:, 1] - prep.test_rows[:, 0]).max())
    return f" (its windows are {prep.windows_from}: {rows} row(s), and a window needs horizon = {horizon})"


def json_ready(value: Any) -> Any:
    """`value` with every NaN or infinite float as None: JSON has no NaN, and other readers refuse it."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(path: Path, result: dict[str, Any]) -> None:
    """metrics.json: an undefined score (e.g. MAPE when every actual is zero) is written as null."""
    checkpoint.write_text(path, json.dumps(json_ready(result), indent=2, allow_nan=False) + "\n")


def default_config_path() -> Path:
    """The demo config shipped inside the package (configs/default.yaml is its copy for people to read)."""
    return Path(str(importlib.resources.files("forecast") / "default.yaml"))
