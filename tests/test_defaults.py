"""Settings chosen from the data: sizes, normalization, the highway's start, the training budget,
and the validation part that always fits one horizon."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import Cli, assert_user_error, write_csv

from forecast import choices, config, pipeline, prepare
from forecast.config import Config, TrainConfig
from forecast.model import seasonal_base
from forecast.run import load_run
from forecast.train import distinct_draw, epoch_batches, shared_generator

FIXTURES = Path(__file__).parent / "fixtures"


def monthly_frame(n: int = 72, seed: int = 0) -> pd.DataFrame:
    """Monthly sales: a yearly season, a trend and a little noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    return pd.DataFrame({"month": pd.date_range("2015-01-01", periods=n, freq="MS"), "sales": y})


@pytest.mark.parametrize(
    ("season", "seconds", "horizon"),
    [(12, None, 12), (4, None, 8), (1, None, 6), (5, None, 10), (52, None, 13), (7, 86_400, 14), (24, 3600, 24)],
)
def test_default_horizon_by_frequency(season: int, seconds: float | None, horizon: int) -> None:
    assert choices.default_horizon(season, seconds) == horizon


def test_default_lookback_leaves_training_windows() -> None:
    assert choices.default_lookback(12, 12, train_rows=500) == 36  # three seasons
    assert choices.default_lookback(24, 24, train_rows=10_000) == 72
    assert choices.default_lookback(24, 24, train_rows=10_000, step=3600) == 168  # hourly: a week
    assert choices.default_lookback(48, 48, train_rows=10_000, step=1800) == 336  # half-hourly: a week
    assert choices.default_lookback(288, 288, train_rows=30_000, step=300) == 864  # 5-minute: a week is too long
    assert choices.default_lookback(12, 12, train_rows=45) == 16  # (45 - 12) // 2: half the rows stay starts


def test_default_segment_keeps_the_recurrence_short() -> None:
    assert choices.default_segment(96) == 1
    assert choices.default_segment(338) == 13  # 26 steps of 13 rows
    assert 336 // choices.default_segment(336) <= choices.MAX_RNN_STEPS


def test_six_years_of_monthly_data_train_with_sizes_from_the_data(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "sales.csv", monthly_frame(72))
    run = tmp_path / "run"
    result = cli.ok("train", "--data", data, "--out", run, "--device", "cpu", "--epochs", "2", "--quiet")
    assert "chosen from the data: horizon 12, lookback" in result.stderr
    assert "budget: up to 2 epochs x 25 batches of 16" in result.stderr
    cfg = load_run(run).cfg
    assert (cfg.model.horizon, cfg.model.season, cfg.model.segment) == (12, 12, 1)
    assert cfg.model.norm in ("seasonal", "last") and cfg.train.batch_size == 16
    assert cfg.model.lookback >= 12
    cli.ok("predict", run)
    forecast = pd.read_csv(run / "forecast.csv")
    assert list(forecast["timestamp"].str[:10]) == [f"2021-{m:02d}-01" for m in range(1, 13)]


@pytest.mark.parametrize(
    ("rows", "horizon", "lookback"),
    [
        (72, 12, 19),  # six years: a year ahead, as before
        (50, 10, 12),  # a short series: a fifth of its rows ahead, and one whole season seen
        (40, 8, 12),
        (30, 6, 7),  # too short to see a season and keep 4 training windows
        (10, 2, 2),
    ],
)
def test_short_monthly_series_get_sizes_that_leave_every_part_a_window(rows: int, horizon: int, lookback: int) -> None:
    cfg = Config()
    train_rows = int(rows * 0.7)
    chosen = choices.choose_sizes(cfg, season=12, freq="MS", train_rows=train_rows, rows=rows)
    assert (cfg.model.horizon, cfg.model.lookback) == (horizon, lookback)
    assert ("a short series" in chosen[0]) == (horizon < 12)
    # validation and test get a horizon each (fit_borders); training keeps windows
    borders = prepare.fit_borders(np.array([[train_rows, int(rows * 0.8), rows]]), cfg)
    assert borders[0, 0] - horizon - lookback + 1 >= 1


def test_a_series_too_short_to_train_and_test_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "tiny.csv", monthly_frame(9))
    result = cli("train", "--data", data, "--out", tmp_path / "run", "--device", "cpu", "--quiet")
    assert_user_error(result, "a series of 9 rows is too short", "at least 10")
    assert not (tmp_path / "run").exists()


def test_a_highway_too_short_to_fit_says_why_it_starts_at_zero(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "short.csv", monthly_frame(48))
    args = ("--out", tmp_path / "run", "--device", "cpu", "--epochs", "1", "--set", "model.hidden_size=8")
    result = cli.ok("train", "--data", data, *args)
    assert "highway starts at zero: too few windows to fit it" in result.stderr
    assert "did better" not in result.stderr  # nothing was compared


def test_a_short_validation_part_takes_one_horizon_from_train() -> None:
    cfg = Config()
    cfg.model.horizon = 12
    # 72 rows at 0.7/0.1/0.2: 50 train, 7 validation, 15 test; validation needs 12
    borders = prepare.fit_borders(np.array([[50, 57, 72]]), cfg)
    assert borders.tolist() == [[45, 57, 72]]
    cfg.data.split = {"train": 0.8, "val": 0.0, "test": 0.2}  # no validation asked for: none made
    assert prepare.fit_borders(np.array([[57, 57, 72]]), cfg).tolist() == [[57, 57, 72]]


def test_budget_counts_steps_for_small_and_long_data() -> None:
    cfg = Config()
    small = choices.training_budget(cfg, 95)  # a 200-row monthly series
    assert (small.batch_size, small.steps_per_epoch, small.epochs) == (16, 25, 20)
    long = choices.training_budget(cfg, 2_000_000)
    assert (long.batch_size, long.steps_per_epoch) == (256, choices.MAX_STEPS_PER_EPOCH)
    cfg.train.batch_size, cfg.train.steps_per_epoch = 64, 0  # what the config sets is kept
    kept = choices.training_budget(cfg, 95)
    assert (kept.batch_size, kept.steps_per_epoch) == (64, 0)
    assert "20 epochs x 2 batches of 64" in kept.describe(95)


def test_epochs_of_small_data_make_several_passes() -> None:
    cfg = TrainConfig(batch_size=16, steps_per_epoch=25)
    batches = epoch_batches(95, cfg, torch.device("cpu"))
    assert len(batches) == 25 and all(len(b) == 16 for b in batches)
    drawn = torch.cat(batches)
    assert set(drawn[:95].tolist()) == set(range(95))  # the first pass holds every window once
    once = epoch_batches(95, TrainConfig(batch_size=16, steps_per_epoch=0), torch.device("cpu"))
    assert sorted(torch.cat(once).tolist()) == list(range(95))


def test_a_small_part_of_many_windows_is_drawn_without_a_full_shuffle() -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(batch_size=256, steps_per_epoch=4)
    batches = epoch_batches(40_000_000, cfg, torch.device("cpu"))
    drawn = torch.cat(batches)
    assert [len(b) for b in batches] == [256] * 4
    assert len(set(drawn.tolist())) == 1024 and 0 <= int(drawn.min()) and int(drawn.max()) < 40_000_000
    every = distinct_draw(20, 20, torch.device("cpu"))  # a repeat on nearly every try: still each once
    assert sorted(every.tolist()) == list(range(20))
    firsts = torch.stack([distinct_draw(8, 3, torch.device("cpu")) for _ in range(4000)])
    for position in range(3):  # each position is uniform over the 8 values, as in a shuffle
        counts = torch.bincount(firsts[:, position], minlength=8)
        assert int(counts.min()) > 400 and int(counts.max()) < 600, counts


def test_processes_draw_the_same_batches_however_much_else_they_drew() -> None:
    cpu = torch.device("cpu")
    for n, cfg in (
        (95, TrainConfig(batch_size=16, steps_per_epoch=25)),
        (10_000, TrainConfig(batch_size=16, steps_per_epoch=4)),
    ):
        first = torch.cat(epoch_batches(n, cfg, cpu, shared_generator(3, 2, cpu)))
        torch.rand(1000)  # another process's dropout drew more from torch's global generator
        again = torch.cat(epoch_batches(n, cfg, cpu, shared_generator(3, 2, cpu)))
        assert torch.equal(first, again)
        assert not torch.equal(first, torch.cat(epoch_batches(n, cfg, cpu, shared_generator(3, 3, cpu))))  # next epoch
        assert not torch.equal(first, torch.cat(epoch_batches(n, cfg, cpu, shared_generator(4, 2, cpu))))  # other seed


def test_highway_fit_recovers_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8, 1)).cumsum(axis=1)
    y = np.stack([x[:, -1, 0] + 0.5 * (x[:, -2, 0] - x[:, -1, 0]), x[:, -3, 0]], axis=1)[..., None]  # (N, 2, 1)
    base = np.repeat(x[:, -1:, :], 2, axis=1)
    weight, bias = choices.ridge_fit(choices.ridge_path(x - x[:, -1:, :], y - base), 1e-6)
    want = np.zeros((2, 8))
    want[0, -2], want[1, -3] = 0.5, 1.0
    np.testing.assert_allclose(weight, want, atol=1e-2)
    np.testing.assert_allclose(bias, 0, atol=1e-2)


def test_ridge_strength_is_chosen_on_later_windows() -> None:
    rng = np.random.default_rng(0)

    def windows(n: int, rule: bool) -> tuple[np.ndarray, ...]:
        x = rng.normal(size=(n, 8, 1)).cumsum(axis=1)
        last = x[:, -1:, :]
        y = (x[:, -2:-1, :] if rule else last + rng.normal(size=(n, 1, 1))).repeat(2, axis=1)
        return x - last, y - np.repeat(last, 2, axis=1)  # normalized windows, residuals to repeat-last

    assert choices.choose_ridge(windows(300, True), windows(50, True)) is not None  # the rule carries over
    fit_on = windows(300, False)
    chosen = choices.choose_ridge(fit_on, windows(50, False))  # noise: the base alone, or next to nothing
    if chosen is not None:
        lam, w = chosen
        weight, bias = choices.ridge_fit(choices.ridge_path(*fit_on), lam)
        assert w * np.abs(weight).max() < 0.05 and w * np.abs(bias).max() < 0.05


def test_too_few_held_out_windows_keep_the_base_forecast() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8, 1)).cumsum(axis=1)
    x = x - x[:, -1:, :]
    r = x[:, -2:-1, :].repeat(2, axis=1)  # a rule the ridge finds exactly
    held = choices.MIN_HELD_OUT
    assert choices.choose_ridge((x[:200], r[:200]), (x[200 : 200 + held], r[200 : 200 + held])) is not None
    assert choices.choose_ridge((x[:200], r[:200]), (x[200 : 199 + held], r[200 : 199 + held])) is None


def test_a_drift_that_slows_is_damped() -> None:
    """Residuals to the base that drift by 1 on the fitting windows and by 0.5 on later ones: the
    ridge's unshrunk bias forecasts the old drift, so its correction gets a weight of about half."""
    rng = np.random.default_rng(0)

    def windows(n: int, drift: float) -> tuple[np.ndarray, ...]:
        x = rng.normal(size=(n, 8, 1)).cumsum(axis=1)
        return x - x[:, -1:, :], drift + 0.1 * rng.normal(size=(n, 2, 1))

    chosen = choices.choose_ridge(windows(300, 1.0), windows(50, 0.5))
    assert chosen is not None and chosen[1] == 0.5
    held = choices.choose_ridge(windows(300, 1.0), windows(50, 1.0))
    assert held is not None and held[1] == 1.0  # a drift that holds: all of it


def test_ridge_over_shards_is_the_ridge_over_every_window() -> None:
    # two processes, each with half the windows, add their sums up (an all-reduce, here by threads)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8, 2)).cumsum(axis=1)
    r = 0.3 * x[:, -2:-1, :].repeat(3, axis=1) + rng.normal(scale=0.5, size=(300, 3, 2))
    fit_on, held_out = (x[:200], r[:200]), (x[200:], r[200:])
    alone = choices.choose_ridge(fit_on, held_out)
    assert alone is not None
    want = choices.ridge_fit(choices.ridge_path(*fit_on), alone[0])

    barrier, parts = threading.Barrier(2), [np.zeros(0), np.zeros(0)]

    def pool_for(rank: int) -> Callable[[np.ndarray], np.ndarray]:
        def pool(value: np.ndarray) -> np.ndarray:
            parts[rank] = value
            barrier.wait()
            out = parts[0] + parts[1]
            barrier.wait()
            return out

        return pool

    def shard(rank: int) -> tuple[tuple[float, float] | None, tuple[np.ndarray, np.ndarray]]:
        mine = slice(rank, None, 2)  # every other window: each process holds half the series
        pool = pool_for(rank)
        chosen = choices.choose_ridge((x[:200][mine], r[:200][mine]), (x[200:][mine], r[200:][mine]), pool=pool)
        lam = chosen[0] if chosen else 1.0
        return chosen, choices.ridge_fit(choices.ridge_path(x[:200][mine], r[:200][mine], pool=pool), lam)

    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(shard, [0, 1]))
    for chosen, (weight, bias) in results:
        assert chosen is not None and chosen == pytest.approx(alone)
        np.testing.assert_allclose(weight, want[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(bias, want[1], rtol=1e-4, atol=1e-6)


def test_seasonal_base_chosen_where_the_season_repeats() -> None:
    t = np.arange(200)
    seasonal = np.sin(2 * np.pi * t / 12)
    x = np.stack([seasonal[i : i + 36] for i in range(150)])[..., None]
    y = np.stack([seasonal[i + 36 : i + 48] for i in range(150)])[..., None]
    for smoothed in (True, False):
        assert choices.seasonal_beats_last(x, y, seasonal_base(torch.from_numpy(x), 12, 12, smoothed).numpy())
    walk = np.random.default_rng(0).normal(size=200).cumsum()
    x = np.stack([walk[i : i + 36] for i in range(150)])[..., None]
    y = np.stack([walk[i + 36 : i + 48] for i in range(150)])[..., None]
    for smoothed in (True, False):
        assert not choices.seasonal_beats_last(x, y, seasonal_base(torch.from_numpy(x), 12, 12, smoothed).numpy())


def test_baseline_warning_names_the_winner_and_both_scores() -> None:
    line = pipeline.baseline_warning({"model": 0.5, "repeat_last": 0.9, "seasonal_naive": 0.25, "linear": 0.6})
    assert line is not None and line.startswith("warning:")
    assert "seasonal naive" in line and "0.25" in line and "0.5" in line
    assert pipeline.baseline_warning({"model": 0.1, "repeat_last": 0.9, "seasonal_naive": 0.25}) is None
    assert pipeline.baseline_warning({}) is None


def test_train_saves_validation_scores_of_model_and_baselines(trained_run: Path) -> None:
    val = load_run(trained_run).state.val_mse
    assert set(val) == {"model", "repeat_last", "seasonal_naive", "linear"}
    assert all(np.isfinite(v) and v >= 0 for v in val.values())


def test_run_from_before_the_highway_predicts_the_same(tmp_path: Path) -> None:
    """tests/fixtures/run_v1 was trained by the release before the highway and the data-chosen
    sizes (and its forecast.csv written then): it loads with no highway and forecasts the same."""
    run = load_run(FIXTURES / "run_v1")
    assert run.model.highway is None and run.cfg.model.highway is False and not run.model.window_scale
    got = run.forecast(str(FIXTURES / "run_v1" / "data.csv"))
    want = pd.read_csv(FIXTURES / "run_v1" / "forecast.csv")
    np.testing.assert_allclose(got["y_pred"].to_numpy(), want["y_pred"].to_numpy(), rtol=1e-6)
    assert list(pd.to_datetime(got["timestamp"])) == list(pd.to_datetime(want["timestamp"]))


def test_explicit_sizes_are_kept() -> None:
    cfg = config.check(config.apply_overrides(Config(), ["model.lookback=48", "model.horizon=6", "model.segment=1"]))
    assert choices.choose_sizes(cfg, season=24, freq="h", train_rows=1000, rows=1500) == []
    assert (cfg.model.lookback, cfg.model.horizon, cfg.model.season) == (48, 6, 24)
