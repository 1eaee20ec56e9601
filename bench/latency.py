"""Command latency: wall time of `forecast --help` and of `forecast predict RUN_DIR` on ETTh1.

    .venv/bin/python bench/latency.py [--quick] [--help-repeats N] [--predict-repeats N] [--out FILE]

RUN_DIR is a tiny run trained first (configs/default.yaml, 5 steps). Each command is called once
first, recorded apart as first_call_s (it may write .pyc files), then timed the repeats asked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import runner
from common import forecast_command, log, median, rnd, timed

SIZES: runner.Sizes = {
    "--help-repeats": (5, 2, "timed calls of forecast --help"),
    "--predict-repeats": (3, 2, "timed calls of forecast predict"),
}


def measure(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """The latency section of the report; run_dir is a trained run."""
    exe = forecast_command()
    help_cmd, predict_cmd = exe + ["--help"], exe + ["predict", str(run_dir)]
    help_first = timed(help_cmd)  # may include writing .pyc files
    helps = [timed(help_cmd) for _ in range(args.help_repeats)]
    log(f"latency: forecast --help {median(helps):.3f} s (first call {help_first:.3f} s)")
    predict_first = timed(predict_cmd)
    predicts = [timed(predict_cmd) for _ in range(args.predict_repeats)]
    log(f"latency: forecast predict {median(predicts):.3f} s (first call {predict_first:.3f} s)")
    return {
        "executable": exe[0],
        "help": {"median_s": rnd(median(helps)), "runs_s": [rnd(x) for x in helps], "first_call_s": rnd(help_first)},
        "predict": {
            "command": "forecast predict RUN_DIR",
            "data": Path(args.data).name,
            "median_s": rnd(median(predicts)),
            "runs_s": [rnd(x) for x in predicts],
            "first_call_s": rnd(predict_first),
        },
    }


SECTION = runner.Section("latency", lambda args, inputs: measure(args, inputs.run_dir), SIZES, needs=("run_dir",))

if __name__ == "__main__":
    sys.exit(runner.run([SECTION], __doc__))
