"""Damaged checkpoints: whatever the damage, loading gives a clean ForecastError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from forecast import checkpoint
from forecast.errors import ForecastError

PAYLOAD = {
    "format_version": 1,
    "config": {"model": {"lookback": 4}},
    "state_dict": {"w": torch.arange(40.0)},
    "scaler": {"min": torch.zeros(1, 1), "max": torch.ones(1, 1)},
    "columns": ["y"],
    "n_targets": 1,
    "freq": "h",
    "ids": [""],
    "history": {"train_loss": [0.5]},
    "season": 24,
    "train_std": torch.ones(1, 1),
    "mase_scale": torch.ones(1, 1),
    "linear": torch.zeros(5, 2),
}
with tempfile.TemporaryDirectory() as _folder:
    checkpoint.save_payload(Path(_folder) / "model.pt", PAYLOAD)
    RAW = (Path(_folder) / "model.pt").read_bytes()


@given(
    st.one_of(
        st.integers(0, len(RAW) - 1).map(lambda cut: RAW[:cut]),  # truncated
        st.lists(st.tuples(st.integers(0, len(RAW) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
            lambda flips: bytes(b if i not in dict(flips) else dict(flips)[i] for i, b in enumerate(RAW))
        ),  # bit rot
        st.binary(max_size=200),  # anything at all
    )
)
@example(RAW[:489] + bytes([74]) + RAW[490:])  # one byte of the pickle: torch.load raised AssertionError
def test_damaged_checkpoints_fail_cleanly(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        path.write_bytes(raw)
        try:
            loaded = checkpoint.load(path)
        except ForecastError as e:
            assert "model.pt" in str(e)
        else:
            assert isinstance(loaded, checkpoint.RunState) and isinstance(loaded.record, checkpoint.Record)
