"""The classic GRU tutorial, the reference forecast is measured against: its model, windows, loader and loop.

Used qualified, as the tutorial's own: tutorial.Model, tutorial.windows(...), tutorial.train_pass(...).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import Ett, ModelConfig, sync
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# the tutorial's settings: lookback, horizon, hidden size, layers, batch size
SETTINGS = {"lookback": 96, "horizon": 96, "hidden_size": 64, "num_layers": 2, "batch_size": 32}


class Model(nn.Module):
    """The classic tutorial model: nn.GRU(batch_first=True) -> flatten -> nn.Linear(hidden*lookback, horizon)."""

    def __init__(self, hidden_size: int, num_layers: int, lookback: int, horizon: int):
        super().__init__()
        self.gru = nn.GRU(1, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size * lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)  # (B, L, D)
        return self.fc(out.flatten(1))  # (B, H)


def seeded_model(seed: int = 0) -> Model:
    """The tutorial's model with its settings, its weights drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    t = SETTINGS
    return Model(t["hidden_size"], t["num_layers"], t["lookback"], t["horizon"])


def scaled(ett: Ett) -> np.ndarray:
    """The tutorial's own scaling of ETTh1 OT: pandas + MinMaxScaler fitted on the first 70% of rows."""
    import pandas as pd
    from sklearn.preprocessing import MinMaxScaler

    ot = pd.read_csv(ett.path)["OT"].to_numpy().reshape(-1, 1)
    scaler = MinMaxScaler().fit(ot[: ett.n_train_rows])
    return scaler.transform(ot).astype(np.float32)[:, 0]


def windows(series: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's windows: a Python loop over every start, stacked into (N, L, 1) and (N, H)."""
    xs, ys = [], []
    for i in range(len(series) - lookback - horizon + 1):
        xs.append(series[i : i + lookback])
        ys.append(series[i + lookback : i + lookback + horizon])
    return np.array(xs, dtype=np.float32)[:, :, None], np.array(ys, dtype=np.float32)


def loader(x: np.ndarray, y: np.ndarray, batch: int, seed: int = 0) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch, shuffle=True, generator=gen
    )


def train_pass(
    model: nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, n_batches: int | None, device: torch.device
) -> tuple[int, float, float]:
    """The tutorial's training loop over n_batches batches (None = one epoch); (windows, seconds, mean loss)."""
    loss_fn = nn.MSELoss()
    model.train()
    sync(device)
    t0 = time.perf_counter()
    seen, running = 0, 0.0
    batches = loader if n_batches is None else (b for _, b in zip(range(n_batches), loader, strict=False))
    for xb, yb in batches:
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item() * len(xb)  # the tutorial's running loss
        seen += len(xb)
    sync(device)
    return seen, time.perf_counter() - t0, running / max(seen, 1)


def rate(
    model: nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, n_batches: int, device: torch.device
) -> float:
    seen, sec, _ = train_pass(model, opt, loader, n_batches, device)
    return seen / sec


def model_config(norm: str = "none") -> ModelConfig:
    """The tutorial's model in forecast's config, every field that changes the arithmetic pinned."""
    t = SETTINGS
    return ModelConfig(
        lookback=t["lookback"],
        horizon=t["horizon"],
        hidden_size=t["hidden_size"],
        num_layers=t["num_layers"],
        dropout=0.0,
        cell="gru",
        norm=norm,
        segment=1,
        channels="joint",
        highway=False,  # the tutorial has no linear path beside the GRU
        window_scale=False,
    )
