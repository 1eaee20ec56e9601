"""Speed and memory of forecast's training and inference paths, against the classic GRU tutorial: the runner.

Run on purpose, never as a test:

    .venv/bin/python bench/speed.py [--quick] [--only SECTION...] [--threads N] [--out bench/results/speed.json]

One JSON object goes to stdout (and to --out); progress goes to stderr. Every figure is the median of
several repeats, and every ratio compares paths measured in the same run, on the same data, model
and batch size, interleaved so that a busy machine slows all of them alike.

Sections (pick some with --only); each is also a script of its own, `bench/FILE.py --quick`:
  throughput  (throughput.py) windows/s on CPU of the tutorial's loop, forecast's loop and the model's
              ceiling, at batch 32 and at forecast's default batch size; --no-extras skips the probes.
  accuracy    (train_accuracy.py) test MSE of the tutorial's loop and of forecast's after equal epochs.
  memory      (memory.py) peak RSS, each case in a fresh process: training on a long synthetic series,
              and a streaming backtest (forecast predict --backtest --split all).
  latency     (latency.py) wall time of `forecast --help` and of `forecast predict RUN_DIR` on ETTh1.
  gpu         (gpu.py) when CUDA is available: throughput at batch 1024 and 4096, fp32 and bf16, as a
              fraction of the ceiling, and the tutorial loop at 1024 (--gpu-on-cpu: a smoke test).
The acceptance targets are in thresholds.py. Figures, machines and commands of recorded runs are in
docs/benchmarks.md.
"""

from __future__ import annotations

import sys

import gpu
import latency
import memory
import runner
import throughput
import train_accuracy

SECTIONS = [throughput.SECTION, train_accuracy.SECTION, memory.SECTION, latency.SECTION, gpu.SECTION]

if __name__ == "__main__":
    sys.exit(runner.run(SECTIONS, __doc__, choose=True))
