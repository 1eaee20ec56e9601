"""Where the work runs: the device, bf16 autocast, and torchrun's process group."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from threadpoolctl import threadpool_limits

from forecast.errors import ForecastError

Item = TypeVar("Item")
Result = TypeVar("Result")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ForecastError("train.device is cuda but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ForecastError("train.device is mps but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); return (rank, world size)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return world()


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def share(value: Any) -> Any:
    """Rank 0's value on every rank (identity without torchrun)."""
    if world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order; [value] without torchrun. For small things: counts,
    per-series arrays, moments."""
    size = world()[1]
    if size == 1:
        return [value]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, value)
    return out


def total(value: Any) -> Any:
    """The sum of `value` (a number or an array) over every rank."""
    parts = gather(value)
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


def gather_series(series: dict[str, Any]) -> dict[str, Any]:
    """Per-series arrays of every process (sharded: each holds its own series), stacked and sorted
    by series id (the "ids" entry) into the order one process would hold them in."""
    parts = gather(series)
    stacked = {key: np.concatenate([part[key] for part in parts]) for key in series}
    order = np.argsort(stacked["ids"], kind="stable")
    return {key: value[order] for key, value in stacked.items()}


def autocast(device: torch.device, precision: str) -> Any:
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16" and device.type == "cuda"
    )


def side_by_side(fn: Callable[[Item], Result], items: Iterable[Item], device: torch.device) -> Iterator[Result]:
    """fn over items, results in order. On a CPU with several torch threads, items run side by side
    on one worker thread per thread, each single-threaded: a recurrent forward pass is a long chain
    of small ops that splits poorly across cores but runs well beside itself (about 2x on 2 cores).
    A few items run ahead of the consumer, so it works while the workers compute. fn must only read
    shared state (a model in eval mode does)."""
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers < 2:
        yield from map(fn, items)
        return
    torch.set_num_threads(1)  # for the whole process while the workers run; put back below
    try:
        # numpy's BLAS would start threads of its own for the consumer's matrix products (scores,
        # baselines), and they spin on the cores the workers hold: a fifth of an evaluation's time
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers, thread_name_prefix="forecast") as pool:
            pending: deque[Future[Result]] = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        torch.set_num_threads(workers)
