"""The Python API: forecast.fit / forecast.load / Run.forecast, backtest, evaluate, and lazy imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import HORIZON, LOOKBACK, Cli, synthetic_frame, train_on_multi

import forecast
from forecast import checkpoint
from forecast.errors import ForecastError

FORECAST_COLUMNS = ["target", "origin", "timestamp", "step", "y_pred"]
BACKTEST_COLUMNS = [*FORECAST_COLUMNS, "y_true"]
LAST = pd.Timestamp("2024-01-13 11:00:00")  # row 300 of the synthetic hourly data


def small_config(path: Path) -> forecast.Config:
    """The helpers' SMALL settings as a Config."""
    cfg = forecast.Config()
    cfg.data.path, cfg.data.target = str(path), ["c"]
    cfg.model.lookback, cfg.model.horizon, cfg.model.hidden_size = LOOKBACK, HORIZON, 8
    cfg.train.epochs, cfg.train.device = 2, "cpu"
    return cfg


def same_weights(a: Path, b: Path) -> bool:
    sa = torch.load(a / "model.pt", weights_only=True)["state_dict"]
    sb = torch.load(b / "model.pt", weights_only=True)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_with_a_config_and_with_a_dict(multi_csv: Path, tmp_path: Path) -> None:
    run = forecast.fit(small_config(multi_csv), out=str(tmp_path / "a"))
    assert isinstance(run, forecast.Run)
    assert run.path == tmp_path / "a" and (run.path / "model.pt").is_file() and (run.path / "metrics.json").is_file()
    assert run.columns == ["c"] and run.cfg.model.lookback == LOOKBACK and not run.model.training

    raw = small_config(multi_csv).to_dict()
    assert isinstance(raw, dict)
    from_dict = forecast.fit(raw, out=str(tmp_path / "b"))
    assert isinstance(from_dict, forecast.Run) and from_dict.cfg == run.cfg
    assert same_weights(run.path, from_dict.path)  # the same config and seed: the same model

    with pytest.raises(ForecastError, match="already exists"):
        forecast.fit(raw, out=str(tmp_path / "b"))  # never overwrites silently


def test_train_reports_its_stage_seconds(multi_csv: Path, tmp_path: Path) -> None:
    """train's summary times its five stages; they are consecutive, so they add up to the call's time."""
    import time

    t0 = time.perf_counter()
    summary = forecast.api.train(small_config(multi_csv), out=str(tmp_path / "run"), quiet=True, log=lambda _: None)
    wall = time.perf_counter() - t0
    assert list(summary.seconds) == ["set_up", "training", "baselines", "saving", "test_evaluation"]
    assert all(s > 0 for s in summary.seconds.values())
    assert wall * 0.9 < sum(summary.seconds.values()) <= wall
    history = forecast.load(tmp_path / "run").state.history
    assert summary.seconds["training"] >= sum(history["seconds"])  # epochs, and their validation
    assert summary.metrics is not None and summary.metrics["windows"] > 0


def test_fit_rejects_bad_configs(multi_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ForecastError, match="model.hidden_sise"):
        forecast.fit({"model": {"hidden_sise": 8}}, out=str(tmp_path / "x"))
    cfg = small_config(multi_csv)
    cfg.model.segment = 5
    with pytest.raises(ForecastError, match="model.segment"):
        forecast.fit(cfg, out=str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    for key, value, says in (
        ("train.epochs", 1.5, "train.epochs must be an integer, got 1.5"),
        ("model.hidden_size", "8", "model.hidden_size must be an integer, got '8'"),
        ("data.path", pd.DataFrame({"y": [1.0]}), "data.path must be a string, got DataFrame"),
    ):
        cfg = small_config(multi_csv)
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)  # a Config built in Python skips YAML's and --set's checks
        with pytest.raises(ForecastError, match=re.escape(says)):
            forecast.fit(cfg, out=str(tmp_path / "z"))
        assert not (tmp_path / "z").exists()


def test_load(trained_run: Path) -> None:
    run = forecast.load(trained_run)
    assert isinstance(run, forecast.Run) and run.path == trained_run
    assert run.cfg.model.hidden_size == 8 and run.n_targets == 1 and run.device == torch.device("cpu")
    with pytest.raises(ForecastError, match="not found"):
        forecast.load(trained_run.parent / "nowhere")


def test_forecast_a_dataframe(trained_run: Path, tmp_path: Path) -> None:
    run = forecast.load(trained_run)
    frame = run.forecast(synthetic_frame(columns=("a", "b", "c")))
    assert list(frame.columns) == FORECAST_COLUMNS and len(frame) == HORIZON
    assert (frame["target"] == "c").all() and frame["step"].tolist() == list(range(1, HORIZON + 1))
    assert (frame["origin"] == LAST).all()
    assert list(frame["timestamp"]) == list(pd.date_range(LAST, periods=HORIZON + 1, freq="h")[1:])
    assert np.isfinite(frame["y_pred"]).all()
    # the same numbers as `forecast predict`
    Cli().ok("predict", trained_run, "--out", tmp_path / "f.csv")
    np.testing.assert_allclose(frame["y_pred"], pd.read_csv(tmp_path / "f.csv")["y_pred"], rtol=1e-9)
    # a longer frame forecasts after its own last row
    longer = run.forecast(synthetic_frame(n=320, columns=("a", "b", "c")))
    assert (longer["origin"] == LAST + pd.Timedelta(hours=20)).all()
    # times in the index, as a time-indexed frame has them, and as pandas writes it to Parquet
    indexed = synthetic_frame(columns=("a", "b", "c")).set_index("date")
    pd.testing.assert_frame_equal(run.forecast(indexed), frame)
    indexed.to_parquet(tmp_path / "indexed.parquet")
    pd.testing.assert_frame_equal(run.forecast(str(tmp_path / "indexed.parquet")), frame)


def test_bad_split_and_coverage_are_clear_errors(trained_run: Path) -> None:
    run = forecast.load(trained_run)
    with pytest.raises(ForecastError, match="split must be one of train, val, test or all, got 'bogus'"):
        run.backtest(split="bogus")
    with pytest.raises(ForecastError, match="split must be one of"):
        run.evaluate(split="bogus")
    with pytest.raises(ForecastError, match="coverage must be between 0 and 1"):
        run.forecast(coverage=1.5)


def test_backtest_equals_predict_backtest(trained_run: Path, tmp_path: Path) -> None:
    run = forecast.load(trained_run)
    frame = run.backtest(split="test")
    Cli().ok("predict", trained_run, "--backtest", "--out", tmp_path / "p.csv")
    written = pd.read_csv(tmp_path / "p.csv", parse_dates=["origin", "timestamp"])
    assert list(frame.columns) == list(written.columns) == BACKTEST_COLUMNS
    assert len(frame) == len(written) == (60 - HORIZON + 1) * HORIZON
    for col in ("target", "origin", "timestamp", "step"):
        assert frame[col].tolist() == written[col].tolist(), col
    np.testing.assert_allclose(frame["y_pred"], written["y_pred"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(frame["y_true"], written["y_true"], atol=1e-6, rtol=0)


def test_evaluate_returns_the_model_and_baselines(run_copy: Path) -> None:
    result = forecast.load(run_copy).evaluate()
    assert set(result["models"]) == {"model", "repeat_last", "seasonal_naive", "linear"}
    assert result["split"] == "test" and result["windows"] == 60 - HORIZON + 1 and result["targets"] == ["c"]
    for scores in result["models"].values():
        assert scores["mse_z"] >= 0 and np.isfinite(scores["mae"])
    val = forecast.load(run_copy).evaluate(split="val")
    assert val["windows"] == 30 - HORIZON + 1


@pytest.mark.parametrize("call", ["forecast", "backtest", "evaluate"])
def test_dataframe_missing_a_column(trained_run: Path, call: str) -> None:
    run = forecast.load(trained_run)
    frame = synthetic_frame(columns=("a", "b"))  # no `c`, the target
    with pytest.raises(ForecastError, match="'c'"):
        getattr(run, call)(frame)


def test_errors_about_a_dataframe_name_its_row_not_a_file_line(trained_run: Path) -> None:
    run = forecast.load(trained_run)
    frame = synthetic_frame(columns=("a", "b", "c"))
    frame.loc[5, "c"] = np.nan
    with pytest.raises(ForecastError, match=r"the DataFrame \(first: column 'c', row 5\)"):
        run.forecast(frame)
    frame = synthetic_frame(columns=("a", "b", "c"))
    frame["c"] = frame["c"].astype(object)
    frame.loc[7, "c"] = "n/a?"
    with pytest.raises(ForecastError, match="non-numeric value at row 7"):
        run.forecast(frame)


def test_dataframe_missing_a_feature(multi_csv: Path, tmp_path: Path) -> None:
    cfg = small_config(multi_csv)
    cfg.data.features = ["a"]
    cfg.train.epochs = 1
    run = forecast.fit(cfg, out=str(tmp_path / "run"))
    with pytest.raises(ForecastError, match="'a'"):
        run.forecast(synthetic_frame(columns=("b", "c")))


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_forecast_does_not_import_torch() -> None:
    result = python("import forecast, sys; assert 'torch' not in sys.modules, 'torch'; print(forecast.__version__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == forecast.__version__
    # the API itself is there, loaded on first use
    result = python("import forecast, sys; forecast.Config; assert 'torch' in sys.modules")
    assert result.returncode == 0, result.stderr
    result = python("import forecast; print(forecast.api.predict.__name__)")  # the module too, without importing it
    assert result.returncode == 0 and result.stdout.strip() == "predict", result.stderr


def test_cli_module_does_not_import_torch() -> None:
    result = python("from forecast import cli; import sys; assert 'torch' not in sys.modules")
    assert result.returncode == 0, result.stderr


def test_help_does_not_import_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "forecast", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "typer" in imported  # the report is there...
    assert not {m for m in imported if m.split(".")[0] in ("torch", "pandas", "matplotlib", "sklearn")}


def test_runs_from_before_the_smoothed_seasonal_base_still_forecast_with_seasonal_naive(tmp_path: Path) -> None:
    run_dir = train_on_multi(
        tmp_path, "--epochs", "1", "--set", "model.norm=seasonal", "--set", "model.season=6",
        "--set", "model.seasonal_base=naive",
    )  # fmt: skip
    frame = synthetic_frame(columns=("a", "b", "c"))
    written = forecast.load(run_dir).forecast(frame)["y_pred"]

    def saved_with(base: str | None) -> forecast.Run:
        payload = torch.load(run_dir / "model.pt", weights_only=True)
        if base is None:  # what runs saved before model.seasonal_base hold
            del payload["config"]["model"]["seasonal_base"]
        else:
            payload["config"]["model"]["seasonal_base"] = base
        checkpoint.save_payload(run_dir / "model.pt", payload)
        return forecast.load(run_dir)

    old = saved_with(None)
    assert old.cfg.model.seasonal_base == "naive"
    np.testing.assert_array_equal(old.forecast(frame)["y_pred"], written)
    # the base matters here (4 seasons of 6 in the lookback of 24): smoothed forecasts differ
    assert not np.allclose(saved_with("smoothed").forecast(frame)["y_pred"], written)
