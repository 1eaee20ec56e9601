"""The malloc thresholds the command sets: freed buffers keep their pages for the next step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forecast import allocator

CHURN = """
import resource, torch
from forecast import allocator
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def refaulted(n=64, size=2**18):
    bufs = [torch.ones(size) for _ in range(n)]  # 64 buffers of 1 MB, as a step's activations
    del bufs
    before = faults()
    bufs = [torch.ones(size) for _ in range(n)]  # the next step takes them again
    return faults() - before
torch.ones(2**18)  # a 1 MB buffer, freed: glibc's adaptive thresholds move up to it
default = refaulted()
assert allocator.keep_freed_memory()
refaulted()
print(default, refaulted())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_keep_their_pages() -> None:
    """Buffers freed and taken again, as by every training step: with glibc's adaptive thresholds
    the freed heap goes back to the OS and its pages are faulted in again; with ours they stay."""
    ours = {*allocator.user_settings(), "LD_PRELOAD"}  # glibc's malloc, at its defaults
    env = {k: v for k, v in os.environ.items() if k not in ours}
    done = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    default, kept = map(int, done.stdout.split())
    if default < 500:
        pytest.skip(f"this C library keeps freed pages already ({default} faults for 64 MB)")
    assert kept < 100, (kept, default)


def test_the_users_own_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("MALLOC_TRIM_THRESHOLD_", "1000000"), ("MALLOC_ARENA_MAX", "2"), ("GLIBC_TUNABLES", "x=1")):
        monkeypatch.setenv(name, value)
        assert allocator.keep_freed_memory() is False
        monkeypatch.delenv(name)
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    assert allocator.keep_freed_memory() is False
