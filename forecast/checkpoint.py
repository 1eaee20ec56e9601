"""model.pt: the run's state as one dict of plain data and tensors, its schema and version in one place."""

from __future__ import annotations

import dataclasses
import enum
import functools
import pickle
import re
import struct
import types
import typing
import warnings
import zipfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from forecast import files
from forecast.errors import ForecastError

FORMAT_VERSION = 1


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
    AssertionError,  # torch.load's own checks on a damaged pickle ("saved_id must be a tuple")
)


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


class Status(str, enum.Enum):
    """How training ended; its value is what the run's record says."""

    RUNNING = "running"
    COMPLETED = "completed"  # every epoch ran
    EARLY_STOPPED = "early_stopped"  # validation stopped improving for `patience` epochs
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: the best weights so far are kept, and can resume
    DIVERGED = "diverged"  # the loss became NaN or inf


@dataclass
class DataRecord:
    """The file a run was trained on."""

    path: str = ""
    rows: int | None = None
    sha256: str | None = None  # None for a DataFrame


@dataclass
class Record:
    """How a run was made: the command, versions, device, data file, times and its outcome."""

    command: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    seed: int | None = None
    data: DataRecord = field(default_factory=DataRecord)
    started: str | None = None
    ended: str | None = None
    status: str = "unknown"  # a Status value

    @property
    def finished(self) -> bool:
        """Training ran to its end: the run is complete."""
        return self.status in (Status.COMPLETED, Status.EARLY_STOPPED)


@dataclass
class RunState:
    """Everything model.pt holds. Fields without a default are required in every checkpoint;
    their types are checked on load. Version 1 of the format; the payload is this, as a dict."""

    config: dict[str, Any]  # the resolved config, as config.Config.to_dict() wrote it
    state_dict: dict[str, torch.Tensor]
    scaler: dict[str, torch.Tensor]  # min and max, (S, F) per series and column, training rows only
    columns: list[str]  # targets first, then features
    n_targets: int
    freq: str
    ids: list[str]  # series ids, "" for a single series
    history: dict[str, list[float]]  # train_loss, val_loss, lr, seconds per epoch
    season: int
    train_std: torch.Tensor  # (S, T) per series: the scale of mse_z / mae_z
    mase_scale: torch.Tensor  # (S, T) in-sample seasonal naive MAE
    linear: torch.Tensor  # (L + 1, H) the closed-form linear baseline
    format_version: int = FORMAT_VERSION
    time_format: str = ""  # how the data wrote its times: outputs write them alike
    holidays: list[str] = field(default_factory=list)  # business days: month-days ("12-25") the data skipped
    day_first: bool | None = None  # dates like 03/04/2024 were read day first; newer files are read alike
    last_timestamp: str | None = None  # the latest time of any series
    series_last: torch.Tensor | None = None  # (S,) int64 ns: each series' last time in the training data
    best_epoch: int = 0
    record: Record = field(default_factory=Record)
    conformal: torch.Tensor | None = None  # (levels, H, T) quantiles of |validation residual|, scaled
    n_val_windows: int = 0
    val_mse: dict[str, float] = field(default_factory=dict)  # model and baselines on validation, scaled

    def rows_for(self, ids: list[str]) -> list[int]:
        """Where each series id sits in the per-series arrays (scaler, train_std, mase_scale)."""
        known = {sid: i for i, sid in enumerate(self.ids)}
        unknown = [sid for sid in ids if sid not in known]
        if unknown:
            raise ForecastError(f"series not seen in training: {', '.join(unknown[:5])}")
        return [known[sid] for sid in ids]

    def payload(self) -> dict[str, Any]:
        """Plain data and tensors: what torch.save writes and torch.load(weights_only=True) reads."""
        out = asdict(self)
        return {k: v for k, v in out.items() if v is not None}


@functools.cache
def kinds(cls: type) -> dict[str, type]:
    """The runtime type of each field of a dataclass: dict for dict[str, Any] and for a nested
    dataclass (stored as a dict), the X of X | None."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        options = (
            [a for a in typing.get_args(hint) if a is not type(None)]
            if typing.get_origin(hint)
            in (
                typing.Union,
                types.UnionType,
            )
            else [hint]
        )
        kind = typing.get_origin(options[0]) or options[0]
        out[name] = dict if dataclasses.is_dataclass(kind) else kind
    return out


def required() -> list[str]:
    """The fields of RunState every checkpoint must have."""
    return [f.name for f in fields(RunState) if f.default is MISSING and f.default_factory is MISSING]


def save(path: str | Path, state: RunState) -> None:
    save_payload(path, state.payload())


def save_payload(path: str | Path, payload: dict[str, Any]) -> None:
    with files.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path) -> RunState:
    """model.pt as a RunState, refusing what is not one (with the reason) before anything uses it."""
    payload = load_any(path)
    missing = [k for k in ["format_version", *required()] if k not in payload]
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
    wrong = [
        f"{k} ({type(payload[k]).__name__})"
        for k, kind in kinds(RunState).items()
        if k in payload and not isinstance(payload[k], kind)
    ]
    scaler = payload["scaler"]
    if isinstance(scaler, dict) and not all(isinstance(scaler.get(k), torch.Tensor) for k in ("min", "max")):
        wrong.append("scaler (min/max must be tensors)")
    if wrong:
        raise ForecastError(f"{path} is not a valid forecast checkpoint (wrong type: {', '.join(wrong)})")
    record = known_fields(Record, payload.get("record", {}))
    record["data"] = DataRecord(**known_fields(DataRecord, record.get("data", {})))
    return RunState(**{**known_fields(RunState, payload), "record": Record(**record)})


def known_fields(cls: type, values: Any) -> dict[str, Any]:
    """The entries of `values` that are fields of `cls` with a value of the field's type; others
    (written by a newer forecast, or damaged) are left out, so the field keeps its default."""
    if not isinstance(values, dict):
        return {}
    fields_of = kinds(cls)
    return {k: v for k, v in values.items() if k in fields_of and (v is None or isinstance(v, fields_of[k]))}
