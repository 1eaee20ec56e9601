"""Loss curves, actual-vs-predicted on the test split, and the future forecast, as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecast.files import atomic_path  # noqa: E402

MAX_PANELS = 4


def _save(fig: plt.Figure, path: Path) -> None:
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


def _label(ax: plt.Axes, target: object) -> None:
    ax.set_ylabel(str(target))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")


def _panels(n: int, title: str) -> tuple[plt.Figure, list[plt.Axes]]:
    n = min(n, MAX_PANELS)
    fig, axes = plt.subplots(n, 1, figsize=(11, 3.2 * n), squeeze=False, sharex=True)
    fig.suptitle(title)
    return fig, list(axes[:, 0])


def plot_loss(history: pd.DataFrame, path: Path, best_epoch: int) -> None:
    """Loss per epoch, with the epoch whose weights the run kept (0: the starting weights)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(history["epoch"], history["train_loss"], marker="o", label="train")
    if history["val_loss"].notna().any():
        ax.plot(history["epoch"], history["val_loss"], marker="o", label="validation")
        kept = f"kept (epoch {best_epoch})" if best_epoch else "kept: the start, before epoch 1"
        ax.axvline(best_epoch, color="grey", ls=":", label=kept)
    ax.set(xlabel="epoch", ylabel="MSE (scaled units)", title="Training and validation loss")
    losses = history[["train_loss", "val_loss"]].to_numpy()
    if (losses[~pd.isna(losses)] > 0).all():  # a constant series can reach a loss of exactly 0
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_backtest(pred: pd.DataFrame, horizon: int, title: str, path: Path) -> None:
    """pred: the long backtest frame (target, timestamp, step, y_pred, y_true[, y_lo, y_hi]) of one series."""
    targets = list(pred["target"].unique())
    fig, axes = _panels(len(targets), title)
    for ax, target in zip(axes, targets, strict=False):
        rows = pred[pred["target"] == target]
        actual = rows.drop_duplicates("timestamp").sort_values("timestamp")
        ax.plot(actual["timestamp"], actual["y_true"], color="black", lw=1, label="actual")
        for step, color in ((1, "tab:blue"), (horizon, "tab:orange")):
            part = rows[rows["step"] == step].sort_values("timestamp")
            ax.plot(
                part["timestamp"],
                part["y_pred"],
                color=color,
                lw=1,
                alpha=0.85,
                label=f"forecast {step} step{'s' if step > 1 else ''} ahead",
            )
            if "y_lo" in part:  # predict --coverage wrote intervals
                ax.fill_between(part["timestamp"], part["y_lo"], part["y_hi"], color=color, alpha=0.15, lw=0)
            if step == horizon == 1:
                break
        _label(ax, target)
    axes[-1].set_xlabel("time")
    fig.autofmt_xdate()
    _save(fig, path)


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, title: str, path: Path) -> None:
    """history: long frame (target, timestamp, y_true) of the series' tail; forecast: forecast.csv's rows
    (origin, timestamp, y_pred[, y_lo, y_hi]) of one series."""
    targets = list(forecast["target"].unique())
    fig, axes = _panels(len(targets), title)
    for ax, target in zip(axes, targets, strict=False):
        past = history[history["target"] == target]
        future = forecast[forecast["target"] == target]
        ax.plot(past["timestamp"], past["y_true"], color="black", lw=1, label="history")
        ax.plot(future["timestamp"], future["y_pred"], color="tab:orange", lw=1.5, label="forecast")
        if "y_lo" in future:
            ax.fill_between(
                future["timestamp"], future["y_lo"], future["y_hi"], color="tab:orange", alpha=0.2, label="interval"
            )
        ax.axvline(np.asarray(future["origin"])[0], color="grey", ls=":")  # the last input row
        _label(ax, target)
    axes[-1].set_xlabel("time")
    fig.autofmt_xdate()
    _save(fig, path)
