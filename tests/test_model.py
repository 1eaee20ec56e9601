"""model: the GRU-flatten-Linear forecaster, its norms and cells, and the gate-by-gate GRU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from forecast.config import ModelConfig
from forecast.model import (
    Dropout,
    ExplicitGRU,
    build_model,
    count_parameters,
    cpu_gru_inference,
    fast_cpu_gru,
    seasonal_base,
)


def small(**kwargs) -> ModelConfig:
    """The plain GRU-flatten-Linear (no highway) unless a test asks for more."""
    return ModelConfig(**{"lookback": 12, "horizon": 4, "hidden_size": 8, "highway": False, **kwargs})


@pytest.mark.parametrize("cell", ["gru", "lstm", "gru_explicit"])
@pytest.mark.parametrize("norm", ["none", "last", "revin"])
@pytest.mark.parametrize(("horizon", "n_inputs", "n_targets"), [(1, 1, 1), (4, 3, 1), (7, 3, 2)])
def test_output_shape(cell: str, norm: str, horizon: int, n_inputs: int, n_targets: int) -> None:
    torch.manual_seed(0)
    model = build_model(n_inputs, n_targets, small(cell=cell, norm=norm, horizon=horizon))
    y = model(torch.randn(5, 12, n_inputs))
    assert y.shape == (5, horizon, n_targets)
    assert torch.isfinite(y).all()


def test_head_reads_the_whole_flattened_sequence() -> None:
    model = build_model(3, 2, small())
    assert isinstance(model.rnn, nn.GRU) and model.rnn.batch_first
    assert model.head.in_features == 8 * 12 and model.head.out_features == 4 * 2
    gru = 3 * (8 * 3 + 8 * 8 + 2 * 8)
    assert count_parameters(model) == gru + (8 * 12 + 1) * 8


def test_norm_last_is_shift_equivariant() -> None:
    # subtracting each window's last value: a level shift of the inputs shifts the forecast
    torch.manual_seed(0)
    model = build_model(2, 1, small(norm="last")).eval()
    x = torch.randn(6, 12, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x + 5.0), model(x) + 5.0, rtol=0, atol=1e-5)


def test_norm_revin_is_affine_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small(norm="revin")).eval()
    x = torch.randn(6, 12, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * x + 2.0), 3.0 * model(x) + 2.0, rtol=1e-3, atol=1e-3)


def test_norm_none_is_not_shift_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small(norm="none")).eval()
    x = torch.randn(6, 12, 1)
    with torch.no_grad():
        assert not torch.allclose(model(x + 5.0), model(x) + 5.0, atol=1e-3)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_explicit_gru_equals_nn_gru(num_layers: int) -> None:
    torch.manual_seed(0)
    reference = nn.GRU(3, 6, num_layers, batch_first=True, dropout=0.3 if num_layers > 1 else 0.0).eval()
    explicit = ExplicitGRU(3, 6, num_layers, dropout=0.3).eval()
    explicit.load_state_dict(reference.state_dict())  # same parameter names and layout
    x = torch.randn(4, 9, 3)
    with torch.no_grad():
        out_ref, h_ref = reference(x)
        out, h = explicit(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("num_layers", "n_inputs"), [(1, 1), (1, 5), (2, 3)])
def test_cpu_gru_inference_equals_nn_gru(num_layers: int, n_inputs: int) -> None:
    torch.manual_seed(0)
    gru = nn.GRU(n_inputs, 16, num_layers, batch_first=True, dropout=0.3 if num_layers > 1 else 0.0).eval()
    x = torch.randn(37, 11, n_inputs) * 3  # large inputs: saturated gates too
    with torch.no_grad():
        assert fast_cpu_gru(gru, x)
        outputs = gru(x)[0]
        torch.testing.assert_close(cpu_gru_inference(gru, x), outputs, rtol=1e-5, atol=1e-6)
        for width in (1, 5, 20):  # a Linear over the flattened outputs: one column, padded to 16, wider
            weight, bias = torch.randn(width, 11 * 16) / 8, torch.randn(width)
            fused = cpu_gru_inference(gru, x, head=(weight, bias))
            reference = nn.functional.linear(outputs.flatten(1), weight, bias)
            torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)
        assert cpu_gru_inference(gru, x[:, :0]).shape == (37, 0, 16)
        assert not fast_cpu_gru(gru.train(), x)  # training mode: nn.GRU's dropout between layers


@pytest.mark.parametrize(
    "options", [{"num_layers": 2, "segment": 2}, {"channels": "independent"}, {"num_layers": 1, "segment": 3}]
)
@pytest.mark.parametrize("n_future", [0, 2])
def test_forecaster_uses_cpu_gru_inference_only_without_gradients(options: dict, n_future: int) -> None:
    torch.manual_seed(0)
    model = build_model(3 + n_future, 2, small(**options), n_future).eval()
    for p in model.parameters():  # the head and highway start at zero: give them weights to carry
        nn.init.normal_(p, std=0.3)
    x, future = torch.randn(9, 12, 3 + n_future), torch.randn(9, 4, n_future) if n_future else None
    with_grad = model(x, future)
    assert not fast_cpu_gru(model.rnn, x)
    with torch.inference_mode():
        assert fast_cpu_gru(model.rnn, x)
        torch.testing.assert_close(model(x, future), with_grad.detach(), rtol=1e-5, atol=1e-5)


def test_explicit_gru_forecaster_loads_a_gru_forecaster() -> None:
    torch.manual_seed(0)
    gru = build_model(2, 1, small(cell="gru", num_layers=2)).eval()
    explicit = build_model(2, 1, small(cell="gru_explicit", num_layers=2)).eval()
    explicit.load_state_dict(gru.state_dict())
    x = torch.randn(3, 12, 2)
    with torch.no_grad():
        torch.testing.assert_close(explicit(x), gru(x), rtol=1e-5, atol=1e-6)


def test_explicit_gru_gradients_match() -> None:
    torch.manual_seed(1)
    reference = nn.GRU(2, 4, batch_first=True)
    explicit = ExplicitGRU(2, 4)
    explicit.load_state_dict(reference.state_dict())
    x = torch.randn(3, 5, 2)
    reference(x)[0].sum().backward()
    explicit(x)[0].sum().backward()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(dict(explicit.named_parameters())[name].grad, p.grad, rtol=1e-4, atol=1e-6)


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small(dropout=0.5))
    x = torch.randn(4, 12, 1)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_zeroes_p_of_the_elements_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    y = Dropout(p)(x)  # a module is in training mode until told otherwise
    dropped = float((y == 0).float().mean())
    assert abs(dropped - p) < 0.003  # 400,000 draws: the standard error is under 0.001
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)
    y.sum().backward()  # the gradient flows through the kept elements only, with their scale
    assert torch.equal(x.grad, y.detach())
    nearly_all = Dropout(0.9999999)(torch.ones(100_000))  # p within 1/65536: all but about 1.5 kept
    assert float((nearly_all != 0).float().mean()) < 1e-4
    assert torch.equal(Dropout(p).eval()(x), x)


def test_model_trains_on_a_batch() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small())
    x = torch.sin(torch.linspace(0, 12, 16 * 16)).reshape(16, 16, 1)
    inputs, targets = x[:, :12], x[:, 12:]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = nn.functional.mse_loss(model(inputs), targets)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2


def test_highway_model_starts_at_its_base_forecast() -> None:
    """Head and highway start at zero, so an untrained model forecasts repeat-last or seasonal naive."""
    torch.manual_seed(0)
    x = torch.randn(5, 12, 2)
    last = build_model(2, 2, small(highway=True, norm="last"))
    assert torch.allclose(last(x), x[:, -1:, :].expand(5, 4, 2))
    naive = build_model(2, 2, small(highway=True, norm="seasonal", season=3, horizon=7, seasonal_base="naive"))
    want = torch.stack([x[:, 12 - 3 + (h % 3), :] for h in range(7)], dim=1)  # the last 3 steps, repeated
    assert torch.allclose(naive(x), want)
    smoothed = build_model(2, 2, small(highway=True, norm="seasonal", season=3, horizon=7))
    assert torch.allclose(smoothed(x), seasonal_base(x, 7, 3))


def test_smoothed_seasonal_base_averages_the_seasons_and_half_their_trend() -> None:
    t = torch.arange(12.0)
    season = torch.tensor([0.0, 3.0, -1.0, 2.0])
    repeats = (season.repeat(3) + 10.0)[None, :, None]  # (1, 12, 1): three equal seasons
    assert torch.equal(seasonal_base(repeats, 6, 4), seasonal_base(repeats, 6, 4, smoothed=False))
    trend = (season.repeat(3) + t)[None, :, None]  # rises 4 a season
    truth = (season.repeat(2)[:6] + torch.arange(12.0, 18.0))[None, :, None]
    naive = seasonal_base(trend, 6, 4, smoothed=False)
    assert torch.allclose(truth - naive, torch.tensor([4.0, 4, 4, 4, 8, 8])[None, :, None])  # a season behind
    smoothed = seasonal_base(trend, 6, 4)
    assert torch.allclose(truth - smoothed, torch.tensor([2.0, 2, 2, 2, 4, 4])[None, :, None])  # half that
    # one odd value 3 seasons back: its phase gets a third of it, less the shape's mean (1/12); the
    # season means fall 1/4 over 2 seasons, so half of 1/8 comes off every step of the next season
    noisy = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[None, :, None]
    want = torch.tensor([1 / 3, 0, 0, 0]) - 1 / 12 - 1 / 16
    assert torch.allclose(seasonal_base(noisy, 4, 4), want[None, :, None])
    # under two whole seasons: the last season, plus half the trend of the 3 seasonal differences
    short = torch.tensor([0.0, 1, 2, 3, 2, 4, 5])[None, :, None]  # differences 2, 3, 3
    want = torch.tensor([3.0, 2, 4, 5, 3])[None, :, None] + torch.tensor([1.0, 1, 1, 1, 2])[None, :, None] * 4 / 3
    assert torch.allclose(seasonal_base(short, 5, 4), want)
    one = torch.randn(2, 4, 1)  # a single season: seasonal naive
    assert torch.equal(seasonal_base(one, 5, 4), seasonal_base(one, 5, 4, smoothed=False))


def test_highway_adds_a_linear_map_of_the_normalized_window() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small(highway=True, norm="last"))
    with torch.no_grad():
        model.highway.weight.fill_(0.0)
        model.highway.weight[:, -2] = 1.0  # every step: x[L-2] - x[L-1] on top of the last value
    x = torch.randn(3, 12, 1)
    assert torch.allclose(model(x), x[:, -2:-1, :].expand(3, 4, 1), atol=1e-6)
    assert count_parameters(model.highway) == 12 * 4 + 4


def test_seasonal_norm_is_shift_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(1, 1, small(highway=True, norm="seasonal", season=4)).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(3, 12, 1)
    with torch.no_grad():
        assert torch.allclose(model(x + 5.0), model(x) + 5.0, atol=1e-5)


def test_cpu_passes_hold_about_65536_hidden_values_with_the_inference_gru_only() -> None:
    sizes = [build_model(1, 1, small(hidden_size=d)).cpu_pass_windows() for d in (8, 32, 64, 128, 256, 1024)]
    assert sizes == [2048, 2048, 1024, 512, 256, 256]
    for cell in ("lstm", "gru_explicit"):  # they store their output sequence: the smaller passes
        assert build_model(1, 1, small(cell=cell, hidden_size=32)).cpu_pass_windows() == 512
