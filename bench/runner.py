"""How a benchmark runs: its flags, its cases in fresh processes, its section of the report and the report itself.

Each benchmark module declares a Section (its name, its measure function, its flags, its cases) and
ends with `sys.exit(runner.run([SECTION], __doc__))`; bench/speed.py runs them all, choose=True.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from common import ROOT, Ett, environment, log, rnd, train_tiny_run, write_json
from thresholds import targets

# ---------------------------------------------------------------- cases in fresh processes

Case = Callable[[dict[str, Any]], dict[str, Any]]


def run_case(
    script: str,
    case: str,
    params: dict[str, Any],
    threads: int,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`python SCRIPT --case CASE --params JSON --threads N` in a fresh process; the last line it prints, as JSON.

    A fresh process is how a case gets a peak RSS of its own (a process's high-water mark never goes
    down) and an OpenMP runtime that reads the environment it is given (OMP_WAIT_POLICY). The script
    answers through its Section's `cases` (see run).
    """
    cmd = [sys.executable, script, "--case", case, "--params", json.dumps(params), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} of {Path(script).name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- sections and their runner


# flag: (default, default with --quick, help): the integer flags of a section, resolved by parse_args
Sizes = dict[str, tuple[int, int, str]]
COMMON_SIZES: Sizes = {"--repeats": (5, 2, "repeats per measurement")}


class Inputs:
    """What several sections use, each made once, on first use: ETTh1 OT, and a tiny run in a temporary folder."""

    def __init__(self, args: argparse.Namespace, tmp: Path, result: dict[str, Any]):
        self.args, self.tmp, self.result = args, tmp, result

    @functools.cached_property
    def ett(self) -> Ett:
        return Ett(self.args.data)

    @functools.cached_property
    def run_dir(self) -> Path:
        """configs/default.yaml trained 5 steps on --data; the report records it as "tiny_run"."""
        run_dir = self.tmp / "run"
        self.result["tiny_run"] = train_tiny_run(self.args, run_dir)
        return run_dir


@dataclasses.dataclass
class Section:
    """One benchmark as a runner sees it: bench/speed.py runs them all, bench/NAME.py its own."""

    name: str  # its key in the report, and its name for --only
    measure: Callable[[argparse.Namespace, Inputs], dict[str, Any]]
    sizes: Sizes = dataclasses.field(default_factory=dict)  # its integer flags
    flags: Callable[[argparse.ArgumentParser], None] | None = None  # adds its other flags
    cases: dict[str, Case] = dataclasses.field(default_factory=dict)  # what it runs in fresh processes
    needs: tuple[str, ...] = ()  # the Inputs it uses, made before its clock starts
    report_seconds: bool = False  # the report gives its wall time as "section_seconds"


def run(sections: list[Section], doc: str | None, choose: bool = False, argv: list[str] | None = None) -> int:
    """The command line of `sections`: the sections and their report, or one case of theirs alone (--case).

    With choose (bench/speed.py), --only picks some of the sections. Without it, --case NAME --params JSON
    runs that one case in this process and prints its JSON: this is how run_case starts a fresh process.
    """
    more = [s.flags for s in sections if s.flags]
    cases = {name: case for s in sections for name, case in s.cases.items()}
    if choose:
        names = [s.name for s in sections]
        more.insert(0, lambda ap: ap.add_argument("--only", nargs="+", choices=names, help="run only these sections"))
    elif cases:
        more.append(functools.partial(add_case_arguments, cases=cases))
    args = parse_args(argv, doc, {k: v for s in sections for k, v in s.sizes.items()}, *more)
    if getattr(args, "case", None):
        print(json.dumps(cases[args.case](args.params)))
        return 0
    chosen = getattr(args, "only", None) or [s.name for s in sections]
    t_start = time.perf_counter()
    result = start_report(args, chosen)
    with workdir(args) as tmp:
        inputs = Inputs(args, tmp, result)
        for s in sections:
            if s.name in chosen:
                result[s.name] = measure_section(s, args, inputs)
    finish_report(result, args, t_start)
    return 0


def measure_section(section: Section, args: argparse.Namespace, inputs: Inputs) -> dict[str, Any]:
    """One section's part of the report, its inputs made first (off its clock)."""
    for need in section.needs:
        getattr(inputs, need)
    t0 = time.perf_counter()
    out = section.measure(args, inputs)
    if section.report_seconds:
        out["section_seconds"] = rnd(time.perf_counter() - t0)
    return out


def add_case_arguments(ap: argparse.ArgumentParser, cases: dict[str, Case]) -> None:
    ap.add_argument("--case", choices=sorted(cases), help="run this one case in this process, print its JSON")
    ap.add_argument("--params", type=json.loads, default={}, help="the case's parameters, a JSON object")


def parse_args(
    argv: list[str] | None,
    doc: str | None,
    sizes: Sizes,
    *more: Callable[[argparse.ArgumentParser], Any],
) -> argparse.Namespace:
    """The common flags, the integer `sizes` and the flags `more` adds; then torch's threads set from --threads."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shrink everything for a smoke run")
    ap.add_argument("--out", help="also write the JSON to this file")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the usable CPU cores)")
    ap.add_argument("--data", default=str(ROOT / "data" / "ETTh1.csv"), help="ETTh1.csv")
    all_sizes = {**COMMON_SIZES, **sizes}
    for flag, (full, quick, text) in all_sizes.items():
        ap.add_argument(flag, type=int, default=None, help=f"{text} (default {full:,}, with --quick {quick:,})")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (run directory, CSVs)")
    for add in more:
        add(ap)
    args = ap.parse_args(argv)
    for flag, (full, quick, _) in all_sizes.items():
        dest = flag.lstrip("-").replace("-", "_")
        if getattr(args, dest) is None:
            setattr(args, dest, quick if args.quick else full)
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(args.threads)
    return args


# ---------------------------------------------------------------- the report


def start_report(args: argparse.Namespace, sections: list[str]) -> dict[str, Any]:
    """The report's opening fields: what ran, where, with which settings."""
    log(f"torch {torch.__version__}, {args.threads} thread(s), sections {', '.join(sections)}")
    return {
        "benchmark": f"forecast bench/{Path(sys.argv[0]).name}",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "environment": environment(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("case", "params", "out", "only")},
        "sections": sections,
    }


def finish_report(result: dict[str, Any], args: argparse.Namespace, t_start: float) -> None:
    """The targets met or missed, the total time, then the JSON (stdout, and --out)."""
    result["targets"] = targets(result)
    result["all_pass"] = all(t["pass"] for t in result["targets"].values())
    result["elapsed_s"] = rnd(time.perf_counter() - t_start)
    write_json(result, args.out)
    for name, t in result["targets"].items():
        log(f"{'PASS' if t['pass'] else 'FAIL'} {name}: {t['value']} (target {t['target']})")


@contextlib.contextmanager
def workdir(args: argparse.Namespace) -> Iterator[Path]:
    """A temporary folder for run directories and CSVs, removed afterwards unless --keep."""
    tmp = Path(tempfile.mkdtemp(prefix="forecast-speed-"))
    try:
        yield tmp
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
