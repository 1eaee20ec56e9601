"""End to end through the CLI: train -> predict -> predict --backtest -> evaluate -> plot -> info,
on one column or several, one series or many, from CSV or Parquet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import HORIZON, LOOKBACK, SMALL, Cli, assert_user_error, next_steps, read_times, set_flags, synthetic_frame

PRED_COLUMNS = ["target", "origin", "timestamp", "step", "y_pred", "y_true"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_help_lists_the_commands_without_importing_torch(cli: Cli) -> None:
    result = cli.ok("--help")
    for command in ("train", "predict", "evaluate", "plot", "info"):
        assert command in result.stdout
    code = "import sys, forecast.cli; print(sorted({'torch', 'pandas', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # heavy modules wait for a command that needs them


@pytest.mark.parametrize("args", [["--help"], ["info", "no-such-run"]])
def test_the_command_freezes_its_objects_before_shutdown(args: list[str]) -> None:
    """cli.main freezes the heap as it returns, after a success and after an error alike, so that
    Python's shutdown does not sweep torch's objects for cycles; the exit status is unchanged.
    (`info` imports the library, which pauses the collector while it loads: it runs again after.)"""
    code = (
        "import atexit, gc, sys; from forecast.cli import main\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, gc.isenabled()))\n"
        f"sys.argv = ['forecast', *{args!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "frozen True True"  # and the collector runs again
    assert done.returncode == (0 if args == ["--help"] else 1)


def test_version(cli: Cli) -> None:
    assert cli.ok("--version").stdout.startswith("forecast ")


def test_train_writes_the_run_directory(trained_run: Path) -> None:
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.yaml", "model.pt", "history.csv", "metrics.json", "loss.png"} <= names
    assert "state.pt" not in names  # a completed run leaves no resume state
    assert not [n for n in names if n.endswith(".tmp")]

    history = pd.read_csv(trained_run / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    assert history["epoch"].tolist() == [1, 2]
    assert (history[["train_loss", "val_loss", "seconds"]] > 0).all().all()

    ckpt = torch.load(trained_run / "model.pt", weights_only=True)
    assert ckpt["columns"] == ["c"] and ckpt["n_targets"] == 1 and ckpt["freq"] == "h"
    assert ckpt["config"]["model"]["lookback"] == LOOKBACK and ckpt["config"]["model"]["hidden_size"] == 8
    assert ckpt["last_timestamp"] == "2024-01-13 11:00:00"
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())

    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["windows"] == 60 - HORIZON + 1
    assert set(metrics["models"]) == {"model", "repeat_last", "seasonal_naive", "linear"}
    for scores in metrics["models"].values():
        assert scores["mse_z"] >= 0 and scores["mae_z"] >= 0 and np.isfinite(scores["mae"])

    saved = (trained_run / "config.yaml").read_text()
    assert "hidden_size: 8" in saved and "lookback: 24" in saved and "- c" in saved


def test_train_output_streams(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    result = cli.train(multi_csv, tmp_path / "run")
    # results on stdout; the resolved config and progress on stderr
    assert f"run directory: {tmp_path / 'run'}" in result.stdout
    assert "seasonal_naive" in result.stdout and "mse_z" in result.stdout
    assert "config:" in result.stderr and "config:" not in result.stdout


def test_predict_forecasts_after_the_last_row(cli: Cli, run_copy: Path) -> None:
    result = cli.ok("predict", run_copy)
    assert result.stdout.strip() == f"wrote {HORIZON} rows to {run_copy / 'forecast.csv'}"
    frame = read_times(run_copy / "forecast.csv")
    assert list(frame.columns) == ["target", "origin", "timestamp", "step", "y_pred"]
    assert frame["step"].tolist() == list(range(1, HORIZON + 1))
    last = pd.Timestamp("2024-01-13 11:00:00")  # row 300 of the hourly data
    assert (frame["origin"] == last).all()
    assert frame["timestamp"].tolist() == next_steps(last)
    assert np.isfinite(frame["y_pred"]).all() and (frame["target"] == "c").all()


def test_predict_out_elsewhere(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    cli.ok("predict", run_copy, "--out", tmp_path / "sub" / "f.csv")
    assert len(pd.read_csv(tmp_path / "sub" / "f.csv")) == HORIZON
    assert not (run_copy / "forecast.csv").exists()


def test_backtest_predictions(cli: Cli, run_copy: Path, trained_run: Path) -> None:
    cli.ok("predict", run_copy, "--backtest")
    frame = read_times(run_copy / "predictions.csv")
    assert list(frame.columns) == PRED_COLUMNS
    windows = 60 - HORIZON + 1
    assert len(frame) == windows * HORIZON
    assert frame.groupby("origin")["step"].apply(list).map(lambda s: s == list(range(1, HORIZON + 1))).all()
    assert ((frame["timestamp"] - frame["origin"]) == pd.to_timedelta(frame["step"], unit="h")).all()
    # the targets of the test split: rows 240..299, actual values beside the forecasts
    data = pd.read_csv(trained_run.parent / "multi.csv", parse_dates=["date"]).set_index("date")["c"]
    assert frame["timestamp"].min() == data.index[240] and frame["timestamp"].max() == data.index[-1]
    np.testing.assert_allclose(frame["y_true"], data.loc[frame["timestamp"]].to_numpy())
    assert np.isfinite(frame["y_pred"]).all()


@pytest.mark.parametrize(("split", "windows"), [("train", 210 - 30 + 1), ("val", 30 - 6 + 1), ("all", 300 - 30 + 1)])
def test_backtest_other_splits(cli: Cli, run_copy: Path, split: str, windows: int) -> None:
    cli.ok("predict", run_copy, "--backtest", "--split", split)
    assert len(pd.read_csv(run_copy / "predictions.csv")) == windows * HORIZON


def test_evaluate_plot_info(cli: Cli, run_copy: Path) -> None:
    (run_copy / "metrics.json").unlink()
    result = cli.ok("evaluate", run_copy)
    for name in ("model", "repeat_last", "seasonal_naive", "linear", "mse_z", "mae_z"):
        assert name in result.stdout
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert set(metrics["models"]) == {"model", "repeat_last", "seasonal_naive", "linear"}
    # seasonal naive on a daily sine with little noise is nearly exact
    assert metrics["models"]["seasonal_naive"]["mae"] < metrics["models"]["repeat_last"]["mae"]

    val = cli.ok("evaluate", run_copy, "--split", "val")
    assert "val split: 25 windows" in val.stdout

    for png in ("loss.png", "backtest.png", "forecast.png"):
        (run_copy / png).unlink(missing_ok=True)
    plotted = cli.ok("plot", run_copy)
    for png in ("loss.png", "backtest.png", "forecast.png"):
        assert (run_copy / png).read_bytes()[:8] == PNG
        assert str(run_copy / png) in plotted.stdout

    info = cli.ok("info", run_copy).stdout
    assert "(complete)" in info and "lookback 24, horizon 6" in info and "targets: c" in info
    assert "frequency h" in info and "mse_z" in info and "config:" in info


def test_plot_out_folder(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    cli.ok("plot", run_copy, "--out", tmp_path / "pngs")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["backtest.png", "forecast.png", "loss.png"]


@pytest.mark.filterwarnings("default:.*validation windows and this run has:UserWarning")  # the CLI shows it
def test_coverage_adds_intervals(cli: Cli, run_copy: Path) -> None:
    cli.ok("predict", run_copy, "--backtest", "--coverage", "0.9")
    frame = pd.read_csv(run_copy / "predictions.csv")
    assert list(frame.columns) == [*PRED_COLUMNS, "y_lo", "y_hi"]
    assert (frame["y_lo"] <= frame["y_pred"]).all() and (frame["y_pred"] <= frame["y_hi"]).all()
    assert (frame["y_hi"] > frame["y_lo"]).any()
    cli.ok("predict", run_copy, "--coverage", "0.9")
    future = pd.read_csv(run_copy / "forecast.csv")
    assert list(future.columns) == ["target", "origin", "timestamp", "step", "y_pred", "y_lo", "y_hi"]
    assert "warning" not in cli.ok("predict", run_copy, "--coverage", "0.9").stderr  # 25 windows: enough for 0.9
    wider = cli.ok("predict", run_copy, "--coverage", "0.99", "--out", run_copy / "wide.csv")
    assert "warning: 0.99 intervals need 99 validation windows and this run has 25" in wider.stderr
    wide = pd.read_csv(run_copy / "wide.csv")
    assert ((wide["y_hi"] - wide["y_lo"]) >= (future["y_hi"] - future["y_lo"]) - 1e-9).all()


def test_single_column_file(cli: Cli, single_csv: Path, tmp_path: Path) -> None:
    cli.train(single_csv, tmp_path / "run")
    cli.ok("predict", tmp_path / "run", "--backtest")
    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(frame.columns) == PRED_COLUMNS and (frame["target"] == "y").all()


def test_multi_target_and_features(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cli.train(multi_csv, run, "--target", "a", "--target", "b", "--features", "c")
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["columns"] == ["a", "b", "c"] and ckpt["n_targets"] == 2
    assert json.loads((run / "metrics.json").read_text())["targets"] == ["a", "b"]
    cli.ok("predict", run, "--backtest")
    frame = pd.read_csv(run / "predictions.csv")
    assert list(frame.columns) == PRED_COLUMNS
    assert sorted(frame["target"].unique()) == ["a", "b"]
    assert (frame.groupby(["origin", "step"]).size() == 2).all()
    data = pd.read_csv(multi_csv).set_index("date")
    for target in ("a", "b"):
        rows = frame[frame["target"] == target]
        np.testing.assert_allclose(rows["y_true"], data.loc[rows["timestamp"], target].to_numpy())
    cli.ok("predict", run)
    future = pd.read_csv(run / "forecast.csv")
    assert len(future) == 2 * HORIZON and sorted(future["target"].unique()) == ["a", "b"]
    assert "targets: a, b; features: c" in cli.ok("info", run).stdout


def test_columns_separated_by_commas(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    cli.train(multi_csv, tmp_path / "run", "--target", "a,b", "--features", "c")
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["columns"] == ["a", "b", "c"]


def test_columns_separated_by_spaces_say_how_to_give_several(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    # `--target a b` makes b the CONFIG.yaml argument
    result = cli("train", "--data", multi_csv, "--out", tmp_path / "run", "--target", "a", "b", *SMALL)
    assert_user_error(result, "'b' is not a config file", "--target a --target b", "--target a,b")
    assert not (tmp_path / "run").exists()


def test_long_format_series(cli: Cli, long_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cli.train(long_csv, run, "--set", "data.id_column=id", "--target", "y", "--features", "x")
    cli.ok("predict", run, "--backtest")
    frame = read_times(run / "predictions.csv")
    assert list(frame.columns) == ["series", *PRED_COLUMNS]
    assert sorted(frame["series"].unique()) == ["s1", "s2", "s3"]
    data = pd.read_csv(long_csv, parse_dates=["date"])
    for sid, rows in frame.groupby("series"):
        actual = data[data["id"] == sid].set_index("date")["y"]
        np.testing.assert_allclose(rows["y_true"], actual.loc[rows["timestamp"]].to_numpy())
    cli.ok("predict", run)
    future = read_times(run / "forecast.csv")
    assert list(future.columns) == ["series", "target", "origin", "timestamp", "step", "y_pred"]
    for sid, rows in future.groupby("series"):
        last = data[data["id"] == sid]["date"].max()  # each series continues from its own end
        assert (rows["origin"] == last).all()
        assert rows["timestamp"].tolist() == next_steps(last)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["series"]) == {"s1", "s2", "s3"}
    cli.ok("plot", run, "--series", "s2")


def test_parquet_trains_and_predicts_like_csv(cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    pq = tmp_path / "multi.parquet"
    synthetic_frame(columns=("a", "b", "c")).to_parquet(pq, index=False)  # trained_run's data
    run = tmp_path / "run"
    cli.train(pq, run)
    cli.ok("predict", run)
    frame = read_times(run / "forecast.csv")
    last = pd.Timestamp("2024-01-13 11:00:00")
    assert (frame["target"] == "c").all() and frame["timestamp"].tolist() == next_steps(last)
    # the same data and seed as the CSV run: the same forecasts and metrics
    cli.ok("predict", trained_run, "--out", tmp_path / "csv_forecast.csv")
    np.testing.assert_allclose(frame["y_pred"], pd.read_csv(tmp_path / "csv_forecast.csv")["y_pred"], rtol=1e-6)
    pq_metrics = json.loads((run / "metrics.json").read_text())["models"]
    csv_metrics = json.loads((trained_run / "metrics.json").read_text())["models"]
    assert pq_metrics["model"]["mae"] == pytest.approx(csv_metrics["model"]["mae"], rel=1e-6)
    # and Parquet as newer data for a CSV-trained run
    cli.ok("predict", trained_run, "--data", pq, "--out", tmp_path / "from_pq.csv")
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "from_pq.csv")["y_pred"], pd.read_csv(tmp_path / "csv_forecast.csv")["y_pred"], rtol=1e-9
    )


def test_newer_data_with_the_same_columns(cli: Cli, run_copy: Path, make_csv) -> None:
    newer = make_csv("newer.csv", n=350, columns=("a", "b", "c"))
    cli.ok("predict", run_copy, "--data", newer)
    frame = read_times(run_copy / "forecast.csv")
    last = pd.Timestamp("2024-01-15 13:00:00")  # row 350
    assert (frame["origin"] == last).all() and frame["timestamp"].iloc[0] == last + pd.Timedelta(hours=1)

    before = (run_copy / "metrics.json").read_bytes()
    result = cli.ok("evaluate", run_copy, "--data", newer)
    assert "test split: 45 windows" in result.stdout  # the 50 rows newer than the training data: 45 windows
    assert (run_copy / "metrics.json").read_bytes() == before  # other data: metrics.json stays the training's


def test_row_count_split_from_the_command_line(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    row_counts = set_flags("data.split.train=200", "data.split.val=40", "data.split.test=50")
    cli.train(multi_csv, tmp_path / "run", *row_counts)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["windows"] == 50 - HORIZON + 1  # rows 290..299 are not used


def test_refuses_to_overwrite_a_run_without_force(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cli.train(multi_csv, run)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    result = cli("train", "--data", multi_csv, "--out", run, *SMALL, "--seed", "1")
    assert_user_error(result, str(run), "--force")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before

    cli.ok("predict", run)  # a forecast of the first model...
    cli.train(multi_csv, run, "--seed", "1", "--force")
    assert not (run / "forecast.csv").exists()  # ...must not pass for the second's
    after = torch.load(run / "model.pt", weights_only=True)
    assert after["config"]["train"]["seed"] == 1
    assert (run / "model.pt").read_bytes() != before["model.pt"][0]


def test_default_run_directory_is_new_each_time(
    cli: Cli, multi_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli.ok("train", "--data", multi_csv, *SMALL)
    cli.ok("train", "--data", multi_csv, *SMALL)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(name.startswith("multi-") for name in runs)


def test_run_works_from_another_folder(
    cli: Cli, multi_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(multi_csv.parent)
    cli.train(Path(multi_csv.name), Path("run"))  # relative paths
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cli.ok("predict", multi_csv.parent / "run")
    assert (multi_csv.parent / "run" / "forecast.csv").is_file()


def test_config_file_and_flags(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"data:\n  path: {multi_csv}\n  target: a\nmodel:\n  lookback: 24\n  horizon: 6\n"
        "  hidden_size: 4\ntrain:\n  epochs: 1\n  lr: 1e-3\n  device: cpu\n"
    )
    cli.ok("train", cfg, "--out", tmp_path / "run", "--quiet", "--horizon", "3", "--set", "model.hidden_size=8")
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    # flags and --set override the file, which overrides the code defaults
    assert ckpt["columns"] == ["a"] and ckpt["config"]["model"]["horizon"] == 3
    assert ckpt["config"]["model"]["hidden_size"] == 8 and ckpt["config"]["train"]["epochs"] == 1


def test_the_library_loads_with_the_collector_paused_only_in_the_commands_own_process() -> None:
    """Run by main, a command imports forecast.api with the cycle collector off and freezes what it
    loaded; run by another program (no main), the collector is left alone."""
    probe = (
        "import gc, forecast.cli as cli; calls = []\n"
        "gc.callbacks.append(lambda phase, info: calls.append(phase))\n"
        "{setup}api = cli.library(); gc.callbacks.clear()\n"
        "print(len(calls), gc.get_freeze_count() > 0, gc.isenabled())"
    )
    own = subprocess.run(
        [sys.executable, "-c", probe.format(setup="cli.OWN_PROCESS = True; ")],
        capture_output=True,
        text=True,
        check=True,
    )
    embedded = subprocess.run(
        [sys.executable, "-c", probe.format(setup="")], capture_output=True, text=True, check=True
    )
    collections, frozen, enabled = own.stdout.split()
    assert (collections, frozen, enabled) == ("0", "True", "True")
    collections, frozen, enabled = embedded.stdout.split()
    assert int(collections) > 0 and (frozen, enabled) == ("False", "True")
