"""Model options, from the model's shapes to a trained run: segments, independent or joint channels,
the parameter counts `forecast info` gives for GRU and LSTM cells, and bf16 autocast."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import HORIZON, LOOKBACK, SMALL, Cli, assert_user_error, read_times, set_flags
from torch import nn

from forecast import config, report
from forecast.config import Config, ModelConfig
from forecast.errors import ForecastError
from forecast.model import build_model, count_parameters
from forecast.run import load_run


def small(**kwargs) -> ModelConfig:
    return ModelConfig(**{"lookback": LOOKBACK, "horizon": HORIZON, "hidden_size": 8, "highway": False, **kwargs})


# ---------------------------------------------------------------- model.segment


def test_segment_shapes() -> None:
    # lookback 24 read as 4 segments of 6 rows: the GRU takes 4 steps of 6 * F inputs each
    torch.manual_seed(0)
    model = build_model(3, 2, small(segment=6)).eval()
    assert model.rnn.input_size == 6 * 3
    assert model.head.in_features == 8 * (LOOKBACK // 6)
    y = model(torch.randn(5, LOOKBACK, 3))
    assert y.shape == (5, HORIZON, 2) and torch.isfinite(y).all()


def test_segment_groups_consecutive_rows() -> None:
    # segment 6 of a 24-row window equals a segment-1 GRU fed the (4, 6*F) reshaped window
    torch.manual_seed(0)
    seg = build_model(2, 1, small(segment=6, norm="none")).eval()
    plain = build_model(12, 1, small(lookback=4, norm="none")).eval()
    plain.load_state_dict(seg.state_dict())
    x = torch.randn(3, LOOKBACK, 2)
    torch.testing.assert_close(seg(x), plain(x.reshape(3, 4, 12)))


@pytest.mark.parametrize(("lookback", "segment"), [(25, 6), (24, 5), (6, 24)])
def test_segment_must_divide_lookback(lookback: int, segment: int) -> None:
    cfg = config.Config()
    cfg.model.lookback, cfg.model.segment = lookback, segment
    with pytest.raises(ForecastError) as e:
        config.check(cfg)
    for fragment in ("model.lookback", "model.segment", str(lookback), str(segment)):
        assert fragment in str(e.value)


def test_segment_error_from_the_command_line(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    result = cli("train", "--data", multi_csv, "--out", tmp_path / "run", *SMALL, "--set", "model.segment=5")
    assert_user_error(result, "model.lookback (24)", "model.segment (5)")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- model.channels


@pytest.mark.parametrize("norm", ["none", "last", "revin"])
@pytest.mark.parametrize(("n_inputs", "n_targets"), [(2, 2), (3, 3), (4, 2)])
def test_independent_channels_shape(norm: str, n_inputs: int, n_targets: int) -> None:
    torch.manual_seed(0)
    model = build_model(n_inputs, n_targets, small(channels="independent", norm=norm)).eval()
    # each target is its own sequence of (its value, the features); one head output per step
    assert model.rnn.input_size == 1 + n_inputs - n_targets
    assert model.head.out_features == HORIZON
    y = model(torch.randn(4, LOOKBACK, n_inputs))
    assert y.shape == (4, HORIZON, n_targets) and torch.isfinite(y).all()


@pytest.mark.parametrize("n_targets", [2, 3])
def test_independent_channels_permute_with_the_targets(n_targets: int) -> None:
    # shared weights per channel: permuting the target columns permutes the forecasts identically
    torch.manual_seed(0)
    model = build_model(n_targets, n_targets, small(channels="independent", norm="none")).eval()
    x = torch.randn(5, LOOKBACK, n_targets)
    perm = torch.roll(torch.arange(n_targets), 1)
    torch.testing.assert_close(model(x[:, :, perm]), model(x)[:, :, perm])
    # and each channel's forecast depends on that channel alone
    changed = x.clone()
    changed[:, :, 0] += 1.0
    torch.testing.assert_close(model(changed)[:, :, 1:], model(x)[:, :, 1:])


def test_joint_channels_do_not_permute() -> None:
    # the check above can fail: one GRU over all columns mixes them
    torch.manual_seed(0)
    model = build_model(3, 3, small(channels="joint", norm="none")).eval()
    x = torch.randn(5, LOOKBACK, 3)
    perm = torch.tensor([2, 0, 1])
    assert not torch.allclose(model(x[:, :, perm]), model(x)[:, :, perm], atol=1e-4)


def test_segment_and_independent_channels_train_and_predict(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    columns = ["--target", "a", "--target", "b", "--features", "c"]
    cli.train(multi_csv, run, *columns, *set_flags("model.segment=6", "model.channels=independent"))
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["config"]["model"]["segment"] == 6 and ckpt["config"]["model"]["channels"] == "independent"
    loaded = load_run(run)
    assert loaded.model.independent and loaded.model.rnn.input_size == 6 * 2  # (own value, c) x 6 rows
    cli.ok("predict", run)
    future = read_times(run / "forecast.csv")
    assert len(future) == 2 * HORIZON and sorted(future["target"].unique()) == ["a", "b"]
    assert np.isfinite(future["y_pred"]).all()
    assert "each target its own sequence (channels independent)" in cli.ok("info", run).stdout


def test_segments_train_without_validation_windows(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"  # no validation windows: nothing to pass through the model there
    split = set_flags("data.split.train=0.8", "data.split.val=0", "data.split.test=0.2")
    cli.train(multi_csv, run, "--target", "a", *set_flags("model.segment=6"), *split)
    history = pd.read_csv(run / "history.csv")
    assert history["val_loss"].isna().all() and np.isfinite(history["train_loss"]).all()


# ---------------------------------------------------------------- forecast info: parameter counts

PARAMS = re.compile(
    r"parameters: ([\d,]+) \(recurrent ([\d,]+), head ([\d,]+), highway ([\d,]+)\); "
    r"as (\w+): ([\d,]+) \(recurrent ([\d,]+)\)"
)


def parse_parameters(text: str) -> tuple[int, int, int, str, int, int]:
    """(total, recurrent, head + highway, other cell, its total, its recurrent) from `info`."""
    match = PARAMS.search(text)
    assert match, text
    total, rec, head, highway, other, other_total, other_rec = match.groups()
    num = lambda s: int(s.replace(",", ""))  # noqa: E731
    return num(total), num(rec), num(head) + num(highway), other, num(other_total), num(other_rec)


def rnn_count(cls: type[nn.Module], n_in: int, hidden: int, layers: int) -> int:
    return count_parameters(cls(n_in, hidden, layers, batch_first=True))


def test_info_parameter_counts_gru(cli: Cli, trained_run: Path) -> None:
    total, rec, head, other, other_total, other_rec = parse_parameters(cli.ok("info", trained_run).stdout)
    gru, lstm = rnn_count(nn.GRU, 1, 8, 1), rnn_count(nn.LSTM, 1, 8, 1)
    highway = (LOOKBACK + 1) * HORIZON  # one (L -> H) map shared by the target columns
    assert (rec, head, other, other_rec) == (gru, (8 * LOOKBACK + 1) * HORIZON + highway, "lstm", lstm)
    assert total == rec + head == count_parameters(load_run(trained_run).model)
    assert other_total == lstm + head and lstm * 3 == gru * 4


def test_info_parameter_counts_lstm(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # LSTMs are slow on CPU: one epoch of one batch is enough to count parameters
    one_batch = ["--epochs", "1", *set_flags("train.steps_per_epoch=1")]
    cli.train(multi_csv, run, "--target", "a", "--features", "b", *one_batch, *set_flags("model.cell=lstm"))
    total, rec, head, other, other_total, other_rec = parse_parameters(cli.ok("info", run).stdout)
    lstm, gru = rnn_count(nn.LSTM, 2, 8, 1), rnn_count(nn.GRU, 2, 8, 1)
    assert (rec, other, other_rec) == (lstm, "gru", gru)
    assert rec * 3 == other_rec * 4  # four gate blocks instead of three: a third more
    assert head == (8 * LOOKBACK + 1) * HORIZON + (LOOKBACK + 1) * HORIZON and other_total == gru + head
    model = load_run(run).model
    assert isinstance(model.rnn, nn.LSTM) and total == count_parameters(model) == rec + head


# ---------------------------------------------------------------- train.precision


def test_bf16_autocast_path_trains_on_cpu(cli: Cli, multi_csv: Path, tmp_path: Path) -> None:
    # train.precision=bf16 autocasts on CUDA only; on CPU the same setting must still train and predict
    run = tmp_path / "run"
    cli.train(multi_csv, run, "--target", "a", "--set", "train.precision=bf16")
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["config"]["train"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    cli.ok("predict", run, "--backtest")
    frame = pd.read_csv(run / "predictions.csv")
    assert np.isfinite(frame["y_pred"]).all() and len(frame) > 0


def test_info_names_the_seasonal_base() -> None:
    cfg = Config()
    cfg.model.norm, cfg.model.season, cfg.model.lookback = "seasonal", 12, 36
    assert report.describe_forecast(cfg).startswith("smoothed seasonal (season 12: 3 seasons averaged")
    cfg.model.seasonal_base = "naive"
    assert report.describe_forecast(cfg).startswith("seasonal naive (season 12)")
    cfg.model.seasonal_base, cfg.model.lookback = "smoothed", 20  # under two seasons: no averaging
    assert report.describe_forecast(cfg).startswith("seasonal naive plus half its trend (season 12)")
    cfg.model.lookback = 12  # one season: no trend either
    assert report.describe_forecast(cfg).startswith("seasonal naive (season 12)")
