"""The malloc thresholds the command sets: training steps stop faulting their buffers' pages in again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forecast import allocator

STEPS = """
import resource, torch
from forecast import allocator
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
def faults_per_step(warm, steps):
    for _ in range(warm):
        trainer.step(starts[torch.randint(len(starts), (512,))])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        trainer.step(starts[torch.randint(len(starts), (512,))])
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps
default = faults_per_step(10, 10)
assert allocator.keep_freed_memory()
print(default, faults_per_step(5, 10))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_keep_their_pages() -> None:
    """The same training steps in one process, with glibc's adaptive thresholds, then with ours."""
    env = {k: v for k, v in os.environ.items() if k not in allocator.user_settings()}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    default, kept = map(float, done.stdout.split())
    if default < 200:
        pytest.skip(f"this C library keeps the pages already ({default:.0f} page faults a step)")
    assert kept < default / 4, (kept, default)


def test_the_users_own_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("MALLOC_TRIM_THRESHOLD_", "1000000"), ("MALLOC_ARENA_MAX", "2"), ("GLIBC_TUNABLES", "x=1")):
        monkeypatch.setenv(name, value)
        assert allocator.keep_freed_memory() is False
        monkeypatch.delenv(name)
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    assert allocator.keep_freed_memory() is False
