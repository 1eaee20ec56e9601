"""Writes that never leave half a file behind: atomic text, CSV and JSON."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from forecast.errors import ForecastError


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


def json_ready(value: Any) -> Any:
    """`value` with every NaN or infinite float as None: JSON has no NaN, and other readers refuse it."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, value: Any) -> None:
    """Indented JSON; an undefined score (e.g. MAPE when every actual is zero) is written as null."""
    write_text(path, json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
