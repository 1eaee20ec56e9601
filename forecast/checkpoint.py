"""Run files: atomic writes, and model.pt as one dict of plain data and tensors."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from forecast.errors import ForecastError

FORMAT_VERSION = 1
REQUIRED = ("format_version", "config", "state_dict", "scaler", "columns", "n_targets", "freq")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_with(path: str | Path, writer: Callable[[IO[Any]], None], mode: str = "w") -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        writer(f)


def save(path: str | Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_any(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """torch.load with weights_only=True: plain data and tensors only, never code."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"{what} {str(path)!r} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ForecastError(
            f"{path} holds objects that are not plain data and was refused as unsafe to load ({first[:120]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise ForecastError(f"{path} is not a readable {what} (truncated or corrupt: {type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise ForecastError(f"{path} is not a forecast {what}")
    return payload


def load(path: str | Path) -> dict[str, Any]:
    payload = load_any(path)
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ForecastError(f"{path} is not a forecast checkpoint (missing {', '.join(missing)})")
    version = payload["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ForecastError(
            f"{path} has checkpoint format {version!r}, newer than this forecast reads ({FORMAT_VERSION}); "
            "upgrade forecast"
        )
    return payload
