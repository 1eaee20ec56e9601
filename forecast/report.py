"""What a person reads: the metrics table, and a run's summary for `forecast info`. Text only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from forecast import config, read
from forecast.checkpoint import RunState
from forecast.config import Config, ModelConfig


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
    season, lookback = result.get("season", 0), result.get("lookback", 0)
    if 1 < season and 0 < lookback < season:  # metrics.seasonal_naive reaches back no further than the window
        lines.append(
            f"seasonal_naive: the lookback ({lookback}) is under a season ({season}), so it repeats the last value"
        )
    elif season <= 1 and "season" in result:
        lines.append("seasonal_naive: this frequency has no season, so it repeats the last value")
    if "intervals" in result:
        iv = result["intervals"]
        lines.append(
            f"intervals: nominal {iv['coverage']:.0%}, empirical {iv['empirical_coverage']:.1%}, "
            f"mean width {iv['mean_width']:.4g}"
        )
    return "\n".join(lines)


def seasonal_words(model: ModelConfig) -> str:
    """norm seasonal's base forecast, in words."""
    seasons = model.lookback // model.season if model.season > 1 else 0
    if model.seasonal_base == "smoothed" and seasons >= 2:
        return f"smoothed seasonal (season {model.season}: {seasons} seasons averaged, plus half their trend)"
    if model.seasonal_base == "smoothed" and model.lookback > model.season > 1:
        return f"seasonal naive plus half its trend (season {model.season})"
    return f"seasonal naive (season {model.season})"


def describe_forecast(cfg: Config) -> str:
    """What the model's forecast is made of, in words."""
    model = cfg.model
    base = {"seasonal": seasonal_words(model), "last": "repeat-last"}.get(model.norm)
    parts = [f"{base}" if base else f"norm {model.norm}"]
    if model.highway:
        parts.append("highway (linear map of the window)")
    segment = f", {model.segment} rows a step" if (model.segment or 1) > 1 else ""
    parts.append(f"{model.cell.upper()}-flatten-Linear{segment}")
    return " + ".join(parts)


def written_time(state: RunState) -> str:
    """The training data's last time, written as its file wrote times (2010 Q2, 1871, ...)."""
    if not state.last_timestamp or not state.time_format:
        return str(state.last_timestamp)
    return str(read.format_times(np.array([np.datetime64(state.last_timestamp, "ns")]), state.time_format)[0])


def kept_epoch(epoch: int) -> str:
    return f"epoch {epoch}" if epoch else "the starting weights (epoch 0: training did not clearly beat them)"


def info(
    path: Path,
    cfg: Config,
    state: RunState,
    n_parameters: int,
    counts: dict[str, dict[str, int]],
    scores: dict[str, Any] | None,
) -> str:
    """`forecast info`: counts are parameters per part for each cell (model.parameter_counts);
    scores the run's metrics.json, when it has one."""
    record = state.record
    mine = "lstm" if cfg.model.cell == "lstm" else "gru"
    other = "lstm" if mine == "gru" else "gru"
    columns = state.columns
    lines = [
        f"run: {path}  ({'complete' if record.finished else 'INCOMPLETE: ' + record.status})",
        f"model: {cfg.model.cell}, lookback {cfg.model.lookback}, horizon {cfg.model.horizon}, "
        f"hidden {cfg.model.hidden_size} x {cfg.model.num_layers} layer(s), norm {cfg.model.norm}"
        + (", each target its own sequence (channels independent)" if cfg.model.channels == "independent" else ""),
        f"forecast: {describe_forecast(cfg)}",
        f"parameters: {n_parameters:,} (recurrent {counts[mine]['recurrent']:,}, "
        f"head {counts[mine]['head']:,}, highway {counts[mine]['highway']:,}); as {other}: "
        f"{sum(counts[other].values()):,} "
        f"(recurrent {counts[other]['recurrent']:,})",
        f"data: {record.data.path or cfg.data.path}, {record.data.rows or '?'} rows, "
        f"{len(state.ids)} series, frequency {state.freq}, last timestamp {written_time(state)}",
        f"targets: {', '.join(columns[: state.n_targets])}; features: {', '.join(columns[state.n_targets :]) or '-'}"
        + ("; calendar inputs: hour, weekday and month as sin/cos" if cfg.data.calendar else ""),
        f"training: {len(state.history['train_loss'])} epochs, kept {kept_epoch(state.best_epoch)}, "
        f"device {record.device}, seed {record.seed}",
        f"started {record.started}, ended {record.ended}",
        f"command: {record.command}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in record.versions.items()),
    ]
    if scores is not None:
        lines += ["", metrics_table(scores)]
    lines += ["", "config:", config.to_yaml(cfg).rstrip()]
    return "\n".join(lines)
