"""Run files: atomic writes, and model.pt as one dict of plain data and tensors."""

from __future__ import annotations

import os
import pickle
import re
import secrets
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from forecast.errors import ForecastError

FORMAT_VERSION = 1
# key -> type of every entry pipeline.train writes and predict/evaluate/plot/info read
REQUIRED = {
    "format_version": int,
    "config": dict,
    "state_dict": dict,
    "scaler": dict,
    "columns": list,
    "n_targets": int,
    "freq": str,
    "ids": list,
    "history": dict,
    "season": int,
    "train_std": torch.Tensor,
    "mase_scale": torch.Tensor,
    "linear": torch.Tensor,
}
# exceptions torch.load raises on a truncated or corrupt file (found by fuzzing real checkpoints)
CORRUPT = (
    RuntimeError,
    EOFError,
    zipfile.BadZipFile,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    struct.error,
    MemoryError,
)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The block creates the temporary file itself, so it gets the usual permissions (umask), not
    mkstemp's owner-only 0600.
    """
    path = Path(path)
    if path.is_dir():
        raise ForecastError(f"cannot write {path}: it is a folder; give a file name")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise ForecastError(f"cannot write {path}: {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise ForecastError(f"cannot write {path}: no permission to write in {folder}")
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_with(path: str | Path, writer: Callable[[IO[Any]], None], mode: str = "w") -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        writer(f)


def save(path: str | Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _unpickler_detail(error: Exception) -> str:
    """The informative line of torch's long weights_only refusal, e.g. `Unsupported global: ...`."""
    text = str(error)
    lines = [line.strip() for line in text.split("WeightsUnpickler error:")[-1].splitlines() if line.strip()]
    lines = [line for line in lines if "GLOBAL" in line.upper()] or lines or [type(error).__name__]
    # name the refused global only: torch's advice to allow-list it would be unsafe to follow here
    found = re.search(r"GLOBAL ([\w.]+)", lines[0])
    return f"global {found.group(1)}" if found else lines[0][:160]


def load_any(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """torch.load with weights_only=True: plain data and tensors only, never code."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"{what} {str(path)!r} not found")
    try:
        with warnings.catch_warnings():
            # torch warns about a foreign pickle protocol just before it refuses the file
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = _unpickler_detail(e)
        if "global" in detail.lower():
            raise ForecastError(
                f"{path} was refused as unsafe to load: it holds objects that are not plain data ({detail}); "
                "load only run directories you trust"
            ) from None
        raise ForecastError(f"{path} is not a readable {what} (corrupt, or not made by forecast: {detail})") from None
    except CORRUPT as e:
        raise ForecastError(f"{path} is not a readable {what} (truncated or corrupt: {type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise ForecastError(f"{path} is not a forecast {what} (it holds a {type(payload).__name__}, not a dict)")
    return payload


def load(path: str | Path) -> dict[str, Any]:
    payload = load_any(path)
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ForecastError(f"{path} is not a forecast checkpoint (missing {', '.join(missing)})")
    version = payload["format_version"]
    if type(version) is not int or version < 1:
        raise ForecastError(f"{path} has an unknown checkpoint format {version!r}; it was not written by forecast")
    if version > FORMAT_VERSION:
        raise ForecastError(
            f"{path} has checkpoint format {version!r}, newer than this forecast reads ({FORMAT_VERSION}); "
            "upgrade forecast"
        )
    wrong = [f"{k} ({type(payload[k]).__name__})" for k, t in REQUIRED.items() if not isinstance(payload[k], t)]
    scaler = payload["scaler"]
    if isinstance(scaler, dict) and not all(isinstance(scaler.get(k), torch.Tensor) for k in ("min", "max")):
        wrong.append("scaler (min/max must be tensors)")
    if wrong:
        raise ForecastError(f"{path} is not a valid forecast checkpoint (wrong type: {', '.join(wrong)})")
    return payload
