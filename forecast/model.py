"""The GRU-flatten-Linear forecaster: a GRU reads the window, one Linear reads its whole output."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TypeGuard

import torch
from torch import nn

from forecast.config import ModelConfig

# a CPU's BLAS multiplies (512, 64) by (64, N) 2-4x slower at N = 2..15 columns than at 16 (MKL,
# AVX2): cpu_gru_inference pads a narrow head to 16 columns
HEAD_WIDTH = 16
CPU_PASS_VALUES = 2**16  # windows x hidden units a step in one forward pass of cpu_gru_inference
CPU_PASS_STORED = 512  # windows a pass for the cells that store their output sequence (lstm, gru_explicit)
WINDOW_SCALE_FLOOR = 1e-3  # in scaled units (the training rows span 0..1): a flat window is not blown up


class Dropout(nn.Dropout):
    """nn.Dropout, with its mask drawn 16 bits at a time on a CPU: each element is zeroed with
    probability p (to within 1/65536, and the kept ones scaled to keep the mean exact). There,
    nn.Dropout's one Bernoulli draw per element costs about a seventh of a default training step;
    a quarter of the draws cost well under half of that. Elsewhere it is nn.Dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        dropped = min(round(self.p * 65536), 65535)  # of the 65536 values of a 16-bit draw
        bits = torch.randint(-(2**63), 2**63 - 1, (math.ceil(x.numel() / 4),), dtype=torch.int64)
        keep = bits.view(torch.int16)[: x.numel()].view(x.shape) >= dropped - 32768
        return torch.where(keep, x * (65536 / (65536 - dropped)), 0.0)


def gru_layer(rnn: nn.Module, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer k's (weight_ih, weight_hh, bias_ih, bias_hh), by nn.GRU's parameter names."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l{k}"), getattr(rnn, f"bias_hh_l{k}")
    return w_ih, w_hh, b_ih, b_hh


class ExplicitGRU(nn.Module):
    """nn.GRU written out gate by gate, with nn.GRU's parameter names and layout.

    For each step, with x the input and h the previous state:
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)        update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     candidate (reset acts on the hidden term)
        h = (1 - z) * n + z * h
    The rows of weight_ih_l{k} / weight_hh_l{k} stack the r, z, n blocks, as in nn.GRU.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = Dropout(dropout)
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size, n_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(3 * hidden_size)))
        bound = hidden_size**-0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)  # nn.GRU's initialization

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, L, F) -> outputs (B, L, D), final states (num_layers, B, D)
        finals = []
        for k in range(self.num_layers):
            if k > 0:
                x = self.dropout(x)
            w_ih, w_hh, b_ih, b_hh = gru_layer(self, k)
            gates_x = x @ w_ih.T + b_ih  # all input terms at once: (B, L, 3D)
            h = x.new_zeros(x.shape[0], self.hidden_size)
            outputs = []
            for t in range(x.shape[1]):
                x_r, x_z, x_n = gates_x[:, t].chunk(3, dim=1)
                h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=1)
                r = torch.sigmoid(x_r + h_r)
                z = torch.sigmoid(x_z + h_z)
                n = torch.tanh(x_n + r * h_n)
                h = (1 - z) * n + z * h
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            finals.append(h)
        return x, torch.stack(finals)


def cpu_gru_inference(
    rnn: nn.GRU, x: torch.Tensor, head: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """nn.GRU's output sequence (B, L, F) -> (B, L, D), for inference on a CPU: ExplicitGRU's
    arithmetic rearranged into 6 ops a step, about 1.7x nn.GRU single-threaded at 512 windows of 56
    steps (nn.GRU projects every step's input at once, a (B*L, 3D) array that streams through
    memory, then runs about ten ops a step). The rearrangement, exact in real arithmetic:
      - the state is kept as u = (h + 1) / 2, so h = 2u - 1 is folded into the hidden weights
        (2 W_hh) and biases (- W_hh 1), and the state update becomes one lerp;
      - the candidate's tanh(a) = 2 sigmoid(2a) - 1, with the 2 folded into its weights: CPUs
        without a fast vector tanh (AVX2 ones among them) spend three sigmoids' time on a tanh;
      - W_in x + b_in + r * (W_hn h + b_hn) = lerp(n_x, n_x + n_h, r): the hidden product is added
        in place onto the input terms, which are kept once more for the candidate.
    With head = (weight (O, L*D), bias (O,)), a Linear over the flattened output sequence, it
    returns that Linear's output (B, O) instead: the last layer adds each step's share (its D
    columns of the weight, with h = 2u - 1 folded in) as the step is made, so its sequence is
    never stored and read back, a seventh of the pass at 512 windows of 56 steps.
    The outputs match nn.GRU's to float32 rounding (tests/test_model.py)."""
    D = rnn.hidden_size
    B, L = x.shape[:2]
    seq = x
    for k in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = gru_layer(rnn, k)
        double_n = torch.ones(3 * D, 1, dtype=x.dtype, device=x.device)
        double_n[2 * D :] = 2.0  # the candidate's pre-activation, doubled for 2 sigmoid(2a) - 1
        w_h = (2.0 * double_n * w_hh).T.contiguous()  # (D, 3D), acting on u
        w_x = (double_n * w_ih).T  # (F, 3D)
        row_sums = w_hh.sum(1)  # W_hh 1, from h = 2u - 1
        b_rz = b_ih[: 2 * D] + b_hh[: 2 * D] - row_sums[: 2 * D]
        b_n = 2.0 * (b_ih[2 * D :] + b_hh[2 * D :] - row_sums[2 * D :])
        # one product a step gives [r, z, n_x + n_h biases | n_x]: (F, 4D), (4D,)
        w_step = torch.cat([w_x, w_x[:, 2 * D :]], dim=1).contiguous()
        b_step = torch.cat([b_rz, b_n, 2.0 * b_ih[2 * D :]])
        # a one-column input: an outer product, cheaper than a K=1 matmul
        input_terms = torch.addcmul if seq.shape[2] == 1 else torch.addmm
        step = x.new_empty(B, 4 * D)  # the views below are made once: a step is six calls (seven with a head)
        gates, n_x = step[:, : 3 * D], step[:, 3 * D :]
        rz, n_sum = gates[:, : 2 * D], gates[:, 2 * D :]
        r, z = rz[:, :D], rz[:, D:]
        u = x.new_full((B, D), 0.5)  # h = 0
        fused = head if k == rnn.num_layers - 1 else None  # the last layer's steps feed the head
        targets: Sequence[torch.Tensor]
        if fused is not None:  # W h + b = 2 W u + (b - W 1), each step adding its D columns' share
            weight, bias = fused
            n_out = len(weight)
            width = HEAD_WIDTH if 1 < n_out < HEAD_WIDTH else n_out  # zero columns pad a narrow product
            padded = weight.new_zeros(L, D, width)
            padded[:, :, :n_out] = (2.0 * weight).view(n_out, L, D).permute(1, 2, 0)
            w_out = padded.unbind(0)  # L x (D, width)
            out = x.new_zeros(B, width)
            out[:, :n_out] = bias - weight.sum(1)
            pair = x.new_empty(2, B, D).unbind(0)  # a step reads only the state before it
            targets = [pair[t % 2] for t in range(L)]
        else:
            states = x.new_empty(B, L, D)  # u at every step, then h = 2u - 1 in place
            targets = states.unbind(1)
        for t, (x_t, u_next) in enumerate(zip(seq.unbind(1), targets, strict=True)):
            input_terms(b_step, x_t, w_step, out=step)
            torch.addmm(gates, u, w_h, out=gates)  # + the hidden terms
            rz.sigmoid_()
            torch.lerp(n_x, n_sum, r, out=n_x).sigmoid_()  # (n + 1) / 2
            u = torch.lerp(n_x, u, z, out=u_next)  # (1 - z) n + z h, in u units
            if fused is not None:
                torch.addmm(out, u, w_out[t], out=out)
        if fused is not None:
            return out[:, :n_out].contiguous()
        seq = states.mul_(2.0).sub_(1.0)
    return seq


def fast_cpu_gru(rnn: nn.Module, x: torch.Tensor) -> TypeGuard[nn.GRU]:
    """Whether cpu_gru_inference computes this call: an nn.GRU of ours, in eval mode (no dropout),
    float32 on a CPU, no gradient."""
    return (
        isinstance(rnn, nn.GRU)
        and not rnn.training
        and rnn.bias
        and not rnn.bidirectional
        and rnn.batch_first
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and rnn.weight_hh_l0.dtype == torch.float32
        and not torch.is_grad_enabled()
    )


SEASONAL_DRIFT = 0.5  # of the window's trend a season carried into each season ahead: damped, as Theta halves it


def seasonal_base(
    x: torch.Tensor, horizon: int, season: int, smoothed: bool = True, trend_share: float = SEASONAL_DRIFT
) -> torch.Tensor:
    """A seasonal forecast from each window alone: (B, L, T) -> (B, H, T), for 1 < season <= L.

    naive (smoothed=False): step h repeats the value `season` (or a multiple) steps back.
    smoothed: the seasonal shape at the last season's level, plus trend_share (SEASONAL_DRIFT) x
    the window's trend per season for each season ahead. The trend is the mean seasonal difference
    (x_t - x_{t-season}). Where the window holds k >= 2 whole seasons (its last k * season
    steps), the shape is averaged over them (each season's values less its mean) and set at the
    last season's mean, and the trend is taken over them (the last season's mean less the
    first's, over k - 1). With fewer, the shape is the last season, and the trend that of the
    L - season differences the window holds. Averaging seasons cuts the noise one season
    carries; the damped trend follows a level that grows or falls. On a series that repeats
    exactly it is seasonal naive, and it is seasonal naive where L = season.
    """
    L = x.shape[1]
    h = torch.arange(horizon, device=x.device)
    ahead = h // season + 1  # seasons between step h and the value seasonal naive repeats
    naive = x[:, L - season * ahead + h, :]
    if not smoothed or L <= season:
        return naive
    steps = (trend_share * ahead).to(x.dtype)[None, :, None]
    k = L // season
    if k < 2:  # the last season, plus half the trend of the seasonal differences there are
        return naive + steps * (x[:, season:] - x[:, :-season]).mean(dim=1, keepdim=True)
    seasons = x[:, L - k * season :, :].unflatten(1, (k, season))  # (B, k, season, T), oldest first
    means = seasons.mean(dim=2)  # (B, k, T)
    shape = seasons.mean(dim=1) - means.mean(dim=1, keepdim=True)  # (B, season, T)
    trend = (means[:, -1:] - means[:, :1]) / (k - 1)  # (B, 1, T) per season
    return means[:, -1:] + shape[:, h % season] + steps * trend  # step h: the naive value's phase


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Module:
    inner_dropout = dropout if num_layers > 1 else 0.0
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=inner_dropout)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=inner_dropout)
    return ExplicitGRU(input_size, hidden_size, num_layers, inner_dropout)


class Forecaster(nn.Module):
    """GRU (or LSTM) over the lookback window -> flatten -> Linear -> every horizon step.

    Inputs hold the T targets first, then features. With `norm`, each window is normalized on its
    own and the forecast is mapped back, which makes the model robust to level shifts between
    train and test:
        last      subtract the window's last value; the forecast starts from repeat-last
        seasonal  subtract the last value from the inputs; the forecast starts from the seasonal
                  base (seasonal_base: by default the window's seasons averaged, at the last one's
                  level, plus half their trend), so the network learns what the season misses
        revin     subtract the window's mean, divide by its std (per column)
    With last or seasonal and `window_scale`, the inputs are also divided by the window's std and
    the correction multiplied back, so a season that grows gets corrections that grow with it.
    With `highway`, a linear map from each target's normalized window to its horizon (LSTNet's
    "highway", NLinear's map) is added to the head. pipeline.train sets it to the closed-form
    least-squares fit and the head starts at zero, so training starts from that linear forecast.
    """

    def __init__(self, n_inputs: int, n_targets: int, cfg: ModelConfig, n_future: int = 0):
        super().__init__()
        self.n_targets = n_targets
        self.n_future = n_future  # known-future columns (calendar), also fed to the head
        self.lookback, self.horizon, self.norm = cfg.lookback, cfg.horizon, cfg.norm
        self.season = cfg.season or 1
        self.seasonal_smoothed = cfg.seasonal_base == "smoothed"
        self.window_scale = cfg.window_scale and cfg.norm in ("last", "seasonal", "auto")
        self.independent = cfg.channels == "independent"
        # independent: every target is its own sequence of (value, other inputs), one head output each
        rnn_inputs = n_inputs - n_targets + 1 if self.independent else n_inputs
        outputs = cfg.horizon if self.independent else cfg.horizon * n_targets
        # segment: the GRU reads lookback/segment steps, each holding `segment` consecutive rows
        self.segment = cfg.segment or 1
        steps = cfg.lookback // self.segment
        self.rnn = make_rnn(cfg.cell, rnn_inputs * self.segment, cfg.hidden_size, cfg.num_layers, cfg.dropout)
        self.dropout = Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size * steps + cfg.horizon * n_future, outputs)
        # one map shared by every target column: (L, H) weights plus an (H,) bias
        self.highway = nn.Linear(cfg.lookback, cfg.horizon) if cfg.highway else None
        if self.highway is not None:  # start from the base forecast; pipeline.train fits the highway
            for layer in (self.highway, self.head):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def starts_from_forecast(self) -> bool:
        """Whether the untrained model forecasts something: the base forecast of norm last or
        seasonal, plus the highway (at its closed-form fit, prepare.init_highway), with the head at zero."""
        return self.highway is not None and self.norm in ("last", "seasonal")

    def cpu_pass_windows(self) -> int:
        """Windows per forward pass without gradients on a CPU. With cpu_gru_inference (nn.GRU),
        about 65,536 hidden values a step, from 256 to 2,048 windows: a pass's per-step buffers stay
        in a core's cache while its op calls (seven a step, each taking the GIL) are spread over as
        many windows as that allows. Two single-threaded passes side by side on this project's
        2-core CPU: 1,024 windows beat 512 by 5-18% at hidden 32 and 64, 512 beat 1,024 by 10% at
        128, and 256 beat 512 by 5% at 256. The cells that store their (B, L, D) output sequence
        keep 512 windows: at 1,024 an LSTM of hidden 64 ran 15% slower, ExplicitGRU 22%."""
        if isinstance(self.rnn, nn.GRU):
            return int(min(max(CPU_PASS_VALUES // self.rnn.hidden_size, 256), 2048))
        return CPU_PASS_STORED

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The forecast the network corrects, in input units: (B, L, T) -> (B, H, T)."""
        if self.norm == "seasonal" and 1 < self.season <= self.lookback:
            return seasonal_base(x, self.horizon, self.season, self.seasonal_smoothed)
        return x[:, -1:, :].expand(-1, self.horizon, -1)

    def forward(self, x: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        # B batch, L lookback, F inputs, D hidden, H horizon, T targets, C known-future columns
        B, L, F = x.shape
        T, C = self.n_targets, self.n_future
        n_scaled = F - C  # calendar columns are already in [-1, 1]: not normalized per window
        x, shift, spread = self.normalize(x, n_scaled)
        out = self.network(x, future)  # (B, H, T)
        if self.highway is not None:
            out = out + self.highway(x[:, :, :T].transpose(1, 2)).transpose(1, 2)  # (B, T, L) -> (B, H, T)
        return self.denormalize(out, shift, spread)

    def normalize(
        self, x: torch.Tensor, n_scaled: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Per-window normalization of the scaled columns; returns (x, shift (B, 1|H, T), spread)."""
        if self.norm == "none":
            return x, None, None
        T = self.n_targets
        if self.norm == "revin":
            mean = x[:, :, :n_scaled].mean(dim=1, keepdim=True)  # (B, 1, F - C)
            std = (x[:, :, :n_scaled].var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt()
            scaled = (x[:, :, :n_scaled] - mean) / std
            return torch.cat([scaled, x[:, :, n_scaled:]], dim=2), mean[:, :, :T], std[:, :, :T]
        # the inputs lose their level; the forecast returns to the base (repeat-last or seasonal naive)
        centered = x[:, :, :n_scaled] - x[:, -1:, :n_scaled]  # (B, L, F - C)
        spread = None
        if self.window_scale:  # and their spread: corrections grow with a season's amplitude
            spread = centered.std(dim=1, keepdim=True, unbiased=False) + WINDOW_SCALE_FLOOR  # (B, 1, F - C)
            centered = centered / spread
            spread = spread[:, :, :T]
        return torch.cat([centered, x[:, :, n_scaled:]], dim=2), self.base(x[:, :, :T]), spread

    def denormalize(self, y: torch.Tensor, shift: torch.Tensor | None, spread: torch.Tensor | None) -> torch.Tensor:
        if spread is not None:
            y = y * spread
        return y if shift is None else y + shift

    def network(self, x: torch.Tensor, future: torch.Tensor | None) -> torch.Tensor:
        """The GRU-flatten-Linear part on normalized inputs: (B, L, F) -> (B, H, T)."""
        B, L, F = x.shape
        T, C = self.n_targets, self.n_future
        if self.independent:
            own = x[:, :, :T].permute(0, 2, 1).reshape(B * T, L, 1)  # (B*T, L, 1)
            rest = x[:, None, :, T:].expand(B, T, L, F - T).reshape(B * T, L, F - T)
            x = torch.cat([own, rest], dim=2)  # (B*T, L, 1 + F - T)
        if self.segment > 1:
            x = x.reshape(x.shape[0], L // self.segment, -1)  # (., L/S, S*F): S consecutive rows a step
        ahead = None
        if C:
            assert future is not None, "this model needs the known-future columns of the forecast steps"
            ahead = future.flatten(1)  # (B, H*C)
            if self.independent:
                ahead = ahead.repeat_interleave(T, dim=0)  # (B*T, H*C)
        if fast_cpu_gru(self.rnn, x):  # eval mode, so no dropout: the head is fused into the GRU's steps
            n_out = self.head.in_features - self.horizon * C  # the head's columns for the GRU outputs
            y = cpu_gru_inference(self.rnn, x, head=(self.head.weight[:, :n_out], self.head.bias))
            if ahead is not None:
                y = torch.addmm(y, ahead, self.head.weight[:, n_out:].T)
        else:
            flat = self.dropout(self.rnn(x)[0].flatten(1))  # (B or B*T, L/S*D)
            y = self.head(flat if ahead is None else torch.cat([flat, ahead], dim=1))  # (B, H*T) or (B*T, H)
        if self.independent:
            return y.view(B, T, self.horizon).transpose(1, 2)  # (B, H, T)
        return y.view(B, self.horizon, T)  # (B, H, T)


def build_model(n_inputs: int, n_targets: int, cfg: ModelConfig, n_future: int = 0) -> Forecaster:
    return Forecaster(n_inputs, n_targets, cfg, n_future)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(cfg: ModelConfig, n_inputs: int, n_targets: int, n_future: int = 0) -> dict[str, dict[str, int]]:
    """Parameters per part (recurrent layers, head, highway) of this config with each cell, gru and lstm."""
    out = {}
    for cell in ("gru", "lstm"):
        m = build_model(n_inputs, n_targets, dataclasses.replace(cfg, cell=cell), n_future)
        highway = count_parameters(m.highway) if m.highway is not None else 0
        out[cell] = {"recurrent": count_parameters(m.rnn), "head": count_parameters(m.head), "highway": highway}
    return out
