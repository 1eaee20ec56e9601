"""The malloc thresholds the command sets: training steps stop faulting their buffers' pages in again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forecast import allocator

STEPS = """
import resource, sys, torch
from forecast import allocator
if sys.argv[1] == "set":
    assert allocator.keep_freed_memory()
from forecast.config import ModelConfig, TrainConfig
from forecast.model import build_model
from forecast.train import Trainer
from forecast.windows import Windows
torch.manual_seed(0)
values = torch.rand(100_000, 1)
starts = torch.arange(len(values) - 70)
model = build_model(1, 1, ModelConfig(lookback=56, horizon=14, norm="seasonal", season=7), 0)
trainer = Trainer(model, Windows(values, 1, 56, 14), starts, starts[:10], TrainConfig(batch_size=512), quiet=True)
model.train()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    trainer.step(starts[torch.randint(len(starts), (512,))])
before = faults()
for _ in range(10):
    trainer.step(starts[torch.randint(len(starts), (512,))])
print((faults() - before) / 10)
"""


def faults_per_step(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=env, check=True, timeout=300
    )
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_keep_their_pages() -> None:
    default = faults_per_step("default")
    if default < 200:
        pytest.skip(f"this C library keeps the pages already ({default:.0f} page faults a step)")
    kept = faults_per_step("set")
    assert kept < default / 4, (kept, default)


def test_the_users_own_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    assert allocator.keep_freed_memory() is False
