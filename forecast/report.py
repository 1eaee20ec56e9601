"""What a person reads: the metrics table, the plots of a run, and its summary for `forecast info`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast import config
from forecast.config import Config
from forecast.errors import ForecastError
from forecast.model import build_model, count_parameters
from forecast.pipeline import (
    BACKTEST_PLOT_ORIGINS,
    Log,
    Prepared,
    Run,
    forecast_frame,
    long_frame,
    n_future,
    predict_chunks,
    run_data,
    stderr_log,
    y_true_of,
)
from forecast.windows import series_of


def score_cell(value: float | None) -> str:
    """One right-aligned table cell; an undefined score (null in metrics.json, or NaN) shows as '-'."""
    if value is None or not math.isfinite(value):
        return f"{'-':>10}"
    return f"{value:>10.4g}"


def metrics_table(result: dict[str, Any]) -> str:
    cols = ("mse_z", "mae_z", "mae", "rmse", "mape", "smape", "mase")
    lines = [
        f"{result['split']} split: {result['windows']} windows x {result['horizon']} steps "
        f"x {len(result['targets'])} target(s)",
        f"{'model':<16}" + "".join(f"{c:>10}" for c in cols),
    ]
    for name, m in result["models"].items():
        lines.append(f"{name:<16}" + "".join(score_cell(m[c]) for c in cols))
    if "intervals" in result:
        iv = result["intervals"]
        lines.append(
            f"intervals: nominal {iv['coverage']:.0%}, empirical {iv['empirical_coverage']:.1%}, "
            f"mean width {iv['mean_width']:.4g}"
        )
    return "\n".join(lines)


def plot(run: Run, out: str | None = None, series: str | None = None, log: Log = stderr_log) -> list[Path]:
    """loss.png, backtest.png and forecast.png. The last two draw RUN/predictions.csv and
    RUN/forecast.csv when `predict` wrote them (intervals included), and compute only what is missing."""
    from forecast import plots

    out_dir = Path(out) if out else run.path
    prep = run_data(run, None, log)
    pick = pick_series(prep.panel.ids, series)
    sid = prep.panel.ids[pick]
    name = f" (series {sid})" if sid else ""
    H = run.cfg.model.horizon
    history = pd.DataFrame({"epoch": range(1, len(run.ckpt["history"]["train_loss"]) + 1), **run.ckpt["history"]})
    plots.plot_loss(history, out_dir / "loss.png")
    paths = [out_dir / "loss.png"]
    backtest, source = backtest_to_plot(run, prep, pick)
    if backtest is not None:
        title = f"{source}{name}: actual vs forecast, last {backtest['origin'].nunique()} origins"
        plots.plot_backtest(backtest, H, title, out_dir / "backtest.png")
        paths.append(out_dir / "backtest.png")
    forecast, source = forecast_to_plot(run, prep, pick)
    title = f"Forecast of the next {H} steps{name}{source}"
    plots.plot_forecast(history_tail(run, prep, pick, forecast), forecast, title, out_dir / "forecast.png")
    paths.append(out_dir / "forecast.png")
    return paths


def pick_series(ids: list[str], series: str | None) -> int:
    if series is not None and series not in ids:
        more = " ..." if len(ids) > 10 else ""
        raise ForecastError(f"series {series!r} not found (series: {', '.join(ids[:10])}{more})")
    return ids.index(series) if series is not None else 0


def read_written(path: Path, series: str) -> pd.DataFrame | None:
    """A predictions or forecast CSV that `predict` wrote, limited to one series; None when absent."""
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"series": str, "target": str})
    for column in ("origin", "timestamp"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    if "series" in frame:
        frame = frame[frame["series"] == series]
    return frame.reset_index(drop=True)


def backtest_to_plot(run: Run, prep: Prepared, pick: int) -> tuple[pd.DataFrame | None, str]:
    """The last origins of RUN/predictions.csv, or else a backtest of the test split (None: no window)."""
    written = read_written(run.path / "predictions.csv", prep.panel.ids[pick])
    if written is not None and len(written):
        last = np.sort(written["origin"].unique())[-BACKTEST_PLOT_ORIGINS:]
        return written[written["origin"].isin(last)], "Backtest in predictions.csv"
    L, H = run.cfg.model.lookback, run.cfg.model.horizon
    starts = prep.starts("test", L, H)
    starts = starts[series_of(starts, prep.panel.offsets) == pick][-BACKTEST_PLOT_ORIGINS:]
    if not len(starts):
        return None, ""
    frames = [
        long_frame(run, prep, c, series_of(c, prep.panel.offsets), p, y_true_of(prep, c, run), None)
        for c, p in predict_chunks(run.model, prep.scaled, starts, run.cfg, run.device)
    ]
    return pd.concat(frames, ignore_index=True), "Test split"


def forecast_to_plot(run: Run, prep: Prepared, pick: int) -> tuple[pd.DataFrame, str]:
    """RUN/forecast.csv, or else the forecast after the training data, with the title's note on its source."""
    sid = prep.panel.ids[pick]
    written = read_written(run.path / "forecast.csv", sid)
    if written is not None and len(written):
        return written, " (forecast.csv)"
    forecast = forecast_frame(run, prep, run.cfg.predict.coverage)
    if "series" in forecast:
        forecast = forecast[forecast["series"] == sid]
    return forecast, ""


def history_tail(run: Run, prep: Prepared, pick: int, forecast: pd.DataFrame) -> pd.DataFrame:
    """Long frame (target, timestamp, y_true) of the training data's last rows up to the forecast's origin."""
    H, L, T = run.cfg.model.horizon, run.cfg.model.lookback, run.n_targets
    a, b = prep.panel.offsets[pick], prep.panel.offsets[pick + 1]
    origin = np.datetime64(pd.Timestamp(forecast["origin"].max()).tz_localize(None))
    b = a + int(np.searchsorted(prep.panel.times[a:b], origin, side="right"))  # data newer than the origin: unseen
    tail = max(a, b - max(4 * H, L))
    return pd.DataFrame(
        {
            "target": np.tile(np.array(run.columns[:T], dtype=object), b - tail),
            "timestamp": np.repeat(prep.panel.times[tail:b], T),
            "y_true": prep.panel.values[tail:b, :T].reshape(-1),
        }
    )


def parameter_counts(cfg: Config, n_inputs: int, n_targets: int) -> dict[str, dict[str, int]]:
    """Parameters per part (recurrent layers, head, highway) for this config's cell and the alternative."""
    out = {}
    for cell in ("gru", "lstm"):
        model_cfg = config.ModelConfig(**{**cfg.model.__dict__, "cell": cell})
        m = build_model(n_inputs, n_targets, model_cfg, n_future(cfg))
        highway = count_parameters(m.highway) if m.highway is not None else 0
        out[cell] = {"recurrent": count_parameters(m.rnn), "head": count_parameters(m.head), "highway": highway}
    return out


def describe_forecast(cfg: Config) -> str:
    """What the model's forecast is made of, in words."""
    model = cfg.model
    base = {"seasonal": f"seasonal naive (season {model.season})", "last": "repeat-last"}.get(model.norm)
    parts = [f"{base}" if base else f"norm {model.norm}"]
    if model.highway:
        parts.append("highway (linear map of the window)")
    segment = f", {model.segment} rows a step" if (model.segment or 1) > 1 else ""
    parts.append(f"{model.cell.upper()}-flatten-Linear{segment}")
    return " + ".join(parts)


def info(run: Run) -> str:
    cfg, ckpt = run.cfg, run.ckpt
    record = ckpt.get("record", {})
    counts = parameter_counts(cfg, len(run.columns) + n_future(cfg), run.n_targets)
    mine = "lstm" if cfg.model.cell == "lstm" else "gru"
    other = "lstm" if mine == "gru" else "gru"
    status = record.get("status", "unknown")
    lines = [
        f"run: {run.path}  ({'complete' if status == 'completed' else 'INCOMPLETE: ' + status})",
        f"model: {cfg.model.cell}, lookback {cfg.model.lookback}, horizon {cfg.model.horizon}, "
        f"hidden {cfg.model.hidden_size} x {cfg.model.num_layers} layer(s), norm {cfg.model.norm}",
        f"forecast: {describe_forecast(cfg)}",
        f"parameters: {count_parameters(run.model):,} (recurrent {counts[mine]['recurrent']:,}, "
        f"head {counts[mine]['head']:,}, highway {counts[mine]['highway']:,}); as {other}: "
        f"{sum(counts[other].values()):,} "
        f"(recurrent {counts[other]['recurrent']:,})",
        f"data: {record.get('data', {}).get('path', cfg.data.path)}, {record.get('data', {}).get('rows', '?')} rows, "
        f"{len(ckpt['ids'])} series, frequency {ckpt['freq']}, last timestamp {ckpt.get('last_timestamp')}",
        f"targets: {', '.join(run.columns[: run.n_targets])}; "
        f"features: {', '.join(run.columns[run.n_targets :]) or '-'}",
        f"training: {len(ckpt['history']['train_loss'])} epochs, best epoch {ckpt.get('best_epoch')}, "
        f"device {record.get('device')}, seed {record.get('seed')}",
        f"started {record.get('started')}, ended {record.get('ended')}",
        f"command: {record.get('command')}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items()),
    ]
    metrics_path = run.path / "metrics.json"
    if metrics_path.is_file():
        lines += ["", metrics_table(json.loads(metrics_path.read_text()))]
    lines += ["", "config:", config.to_yaml(cfg).rstrip()]
    return "\n".join(lines)
