"""metrics: error sums checked by hand, and the three baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast import metrics, report


def tiny_scores() -> metrics.Scores:
    # one series, 2 windows x 2 steps x 1 target; std 2 and MASE scale 0.5 from "training rows"
    scores = metrics.Scores(std=np.array([[2.0]]), mase_scale=np.array([[0.5]]))
    y_true = np.array([[[1.0], [2.0]], [[0.0], [4.0]]])
    y_pred = np.array([[[2.0], [2.0]], [[1.0], [2.0]]])
    scores.add(np.array([0, 0]), y_true, y_pred)
    return scores


def test_scores_by_hand() -> None:
    # errors 1, 0, 1, -2
    m = tiny_scores().result()
    assert m["mae"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(math.sqrt(1.5))
    assert m["mape"] == pytest.approx(100 * (1 / 1 + 0 / 2 + 2 / 4) / 3)  # the zero actual is skipped
    assert m["smape"] == pytest.approx(100 * (2 / 3 + 0 + 2 / 1 + 4 / 6) / 4)
    assert m["mase"] == pytest.approx(4 / 0.5 / 4)
    assert m["mse_z"] == pytest.approx((0.25 + 0 + 0.25 + 1) / 4)
    assert m["mae_z"] == pytest.approx(0.5)
    assert set(m) == set(metrics.METRICS)


def test_scores_accumulate_in_chunks_and_per_series() -> None:
    rng = np.random.default_rng(0)
    series = np.array([0, 1, 1, 2, 1, 0, 1])
    y_true, y_pred = rng.normal(size=(7, 3, 2)), rng.normal(size=(7, 3, 2))
    std, scale = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]])
    whole, chunked = metrics.Scores(std, scale), metrics.Scores(std, scale)
    whole.add(series, y_true, y_pred)
    for part in (slice(0, 2), slice(2, 2), slice(2, 4), slice(4, 7)):  # [1, 2] and an empty chunk among them
        chunked.add(series[part], y_true[part], y_pred[part])
    for key, value in whole.result().items():
        assert chunked.result()[key] == pytest.approx(value)
    for i in range(3):
        assert chunked.result(i) == pytest.approx(whole.result(i))
    one = series == 1
    assert whole.result(1)["mae"] == pytest.approx(np.abs(y_pred[one] - y_true[one]).mean())
    z = (y_pred[one] - y_true[one]) / std[1]
    assert whole.result(1)["mse_z"] == pytest.approx((z**2).mean())


def test_scores_zero_std_and_empty() -> None:
    scores = metrics.Scores(np.array([[0.0]]), np.array([[0.0]]))  # a constant training series
    scores.add(np.array([0]), np.ones((1, 2, 1)), np.full((1, 2, 1), 3.0))
    assert scores.result()["mse_z"] == pytest.approx(4.0) and scores.result()["mase"] == pytest.approx(2.0)
    assert all(math.isnan(v) for v in metrics.Scores(np.ones((1, 1)), np.ones((1, 1))).result().values())


def test_train_stats() -> None:
    values = np.array([[0.0], [1.0], [0.0], [1.0], [5.0], [9.0]])  # rows 4, 5 are not training rows
    std, scale = metrics.train_stats(values, np.array([0, 6]), np.array([4]), 1, season=2)
    assert std[0, 0] == pytest.approx(0.5)  # population std of 0, 1, 0, 1
    assert scale[0, 0] == pytest.approx(0.0)  # lag-2 differences of 0, 1, 0, 1
    std, scale = metrics.train_stats(values, np.array([0, 6]), np.array([4]), 1, season=24)
    assert scale[0, 0] == pytest.approx(1.0)  # too short for the season: lag 1


def test_repeat_last() -> None:
    x = np.arange(12.0).reshape(2, 3, 2)
    out = metrics.repeat_last(x, 4)
    assert out.shape == (2, 4, 2)
    assert (out == x[:, -1:, :]).all()


def test_seasonal_naive_repeats_the_last_season() -> None:
    x = np.arange(6.0).reshape(1, 6, 1)  # window values 0..5
    assert metrics.seasonal_naive(x, 5, season=3)[0, :, 0].tolist() == [3, 4, 5, 3, 4]
    assert metrics.seasonal_naive(x, 3, season=6)[0, :, 0].tolist() == [0, 1, 2]
    assert metrics.seasonal_naive(x, 2, season=2)[0, :, 0].tolist() == [4, 5]


@pytest.mark.parametrize("season", [1, 7, 100])
def test_seasonal_naive_falls_back_to_repeat_last(season: int) -> None:
    x = np.random.default_rng(0).normal(size=(3, 6, 2))
    np.testing.assert_array_equal(metrics.seasonal_naive(x, 4, season), metrics.repeat_last(x, 4))


def test_seasonal_naive_is_exact_on_a_periodic_series() -> None:
    period, L, H = 24, 48, 30
    series = np.sin(2 * np.pi * np.arange(L + H) / period)
    x, y = series[None, :L, None], series[None, L:, None]
    np.testing.assert_allclose(metrics.seasonal_naive(x, H, period), y, atol=1e-12)


def test_fit_linear_recovers_an_exact_linear_map() -> None:
    rng = np.random.default_rng(0)
    L, H, N, T = 6, 3, 200, 2
    weights, bias = rng.normal(size=(L, H)), rng.normal(size=H)
    weights[-1] = 0  # the last input minus itself is always 0: its weight is not identifiable
    x = rng.normal(size=(N, L, T))
    last = x[:, -1:, :]
    y = last + np.einsum("nlt,lh->nht", x - last, weights) + bias[None, :, None]
    fitted = metrics.fit_linear(x, y, ridge=1e-12)
    assert fitted.shape == (L + 1, H)
    np.testing.assert_allclose(fitted[:-1], weights, atol=1e-6)
    np.testing.assert_allclose(fitted[-1], bias, atol=1e-6)
    np.testing.assert_allclose(metrics.predict_linear(fitted, x), y, atol=1e-6)
    # the default touch of ridge barely moves it
    np.testing.assert_allclose(metrics.predict_linear(metrics.fit_linear(x, y), x), y, atol=1e-2)


def test_fit_linear_is_shared_by_target_columns() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4, 1))
    y = np.repeat(x[:, -1:, :], 2, axis=1) * 2
    one = metrics.fit_linear(x, y)
    two = metrics.fit_linear(np.concatenate([x, x], axis=2), np.concatenate([y, y], axis=2))
    np.testing.assert_allclose(one, two, rtol=1e-6, atol=1e-9)


def test_scores_mask_leaves_points_out() -> None:
    # the masked point (error -2, actual 4) counts nowhere: the rest score as if it were absent
    scores = metrics.Scores(std=np.array([[2.0]]), mase_scale=np.array([[0.5]]))
    y_true = np.array([[[1.0], [2.0]], [[0.0], [4.0]]])
    y_pred = np.array([[[2.0], [2.0]], [[1.0], [2.0]]])
    mask = np.array([[[True], [True]], [[True], [False]]])
    scores.add(np.array([0, 0]), y_true, y_pred, mask)
    alone = metrics.Scores(std=np.array([[2.0]]), mase_scale=np.array([[0.5]]))
    alone.add(np.array([0, 0, 0]), y_true.reshape(4, 1, 1)[:3], y_pred.reshape(4, 1, 1)[:3])
    assert scores.result() == pytest.approx(alone.result())
    assert scores.result()["mae"] == pytest.approx(2 / 3)


def test_train_stats_match_a_loop_over_series() -> None:
    """The one-pass per-series std and MASE scale equal the obvious loop, on ragged panels."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(1, 40, rng.integers(1, 6))
        offsets = np.append(0, np.cumsum(lengths))
        values = rng.normal(0, 10, (offsets[-1], 3))
        train_end = np.array([rng.integers(1, n + 1) for n in lengths])
        season, n_targets = int(rng.integers(1, 13)), int(rng.integers(1, 4))
        std, scale = metrics.train_stats(values, offsets, train_end, n_targets, season)
        for s in range(len(lengths)):
            rows = values[offsets[s] : offsets[s] + train_end[s], :n_targets]
            lag = season if len(rows) > season else 1
            diffs = np.abs(rows[lag:] - rows[:-lag]) if len(rows) > lag else np.ones((1, n_targets))
            np.testing.assert_allclose(std[s], rows.std(axis=0), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(scale[s], diffs.mean(axis=0), rtol=1e-9, atol=1e-12)


def test_the_table_says_when_seasonal_naive_cannot_reach_a_season() -> None:
    scores = dict.fromkeys(("mse_z", "mae_z", "mae", "rmse", "mape", "smape", "mase"), 1.0)
    result = {"split": "test", "windows": 3, "horizon": 6, "targets": ["y"], "models": {"model": scores}}
    note = "seasonal_naive: the lookback (7) is under a season (12), so it repeats the last value"
    assert note in report.metrics_table({**result, "season": 12, "lookback": 7})
    assert "seasonal_naive:" not in report.metrics_table({**result, "season": 12, "lookback": 24})
    no_season = "seasonal_naive: this frequency has no season, so it repeats the last value"
    assert no_season in report.metrics_table({**result, "season": 1, "lookback": 7})  # annual data
    assert "seasonal_naive:" not in report.metrics_table(result)  # a result that does not say
