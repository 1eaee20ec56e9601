"""One typed config: code defaults, then a YAML file, then CLI flags and `--set key=value`."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from forecast.errors import ForecastError


@dataclass
class DataConfig:
    path: str = ""  # CSV or Parquet file with a time column and numeric columns
    date_column: str | None = None  # the time column; None = detect (date, time, timestamp, ds, ...)
    target: list[str] = field(default_factory=list)  # columns to forecast; [] = last numeric column
    features: list[str] = field(default_factory=list)  # extra input columns (past covariates)
    id_column: str | None = None  # long format: the column naming each series
    split: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "val": 0.1, "test": 0.2}
    )  # fractions of each series, or row counts (ints)
    fill: Literal["none", "ffill", "interpolate"] = "none"  # missing values: none is an error
    sort: bool = False  # sort rows by time instead of refusing unsorted data
    gaps: Literal["warn", "error"] = "warn"  # irregular time steps
    calendar: bool = False  # add known-future calendar inputs (hour, weekday, month as sin/cos)


@dataclass
class ModelConfig:
    lookback: int = 0  # input window length L; 0 = chosen from the frequency, horizon and length
    horizon: int = 0  # steps H forecast at once; 0 = chosen from the frequency (12 for monthly, ...)
    hidden_size: int = 64  # recurrent state size D
    num_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.2  # between recurrent layers and before the head
    cell: Literal["gru", "lstm", "gru_explicit"] = "gru"  # gru_explicit: nn.GRU written gate by gate, for reading
    norm: Literal["auto", "none", "last", "seasonal", "revin"] = "auto"  # per-window normalization (model.py)
    season: int = 0  # seasonal period in steps for norm seasonal; 0 = from the frequency
    # norm seasonal's base forecast: smoothed = the window's seasons averaged, at the last one's
    # level, plus half its trend (model.seasonal_base); naive = the last season repeated
    seasonal_base: Literal["smoothed", "naive"] = "smoothed"
    highway: bool = True  # add a linear map from the window to the forecast, fitted in closed form first
    window_scale: bool = True  # norm last/seasonal: also divide each window by its std (scale-free corrections)
    segment: int = 0  # rows per recurrent step (SegRNN-style); 0 = 1, or more for long lookbacks
    channels: Literal["joint", "independent"] = "joint"  # independent: each target alone, shared weights


@dataclass
class TrainConfig:
    epochs: int = 20  # upper bound; early stopping may end sooner
    batch_size: int = 0  # 0 = 256, or less for small data (an epoch of at least 8 batches)
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam (decoupled, AdamW) weight decay
    lr_schedule: Literal["none", "cosine"] = "cosine"  # cosine: decay to 10% over the epochs
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    patience: int = 5  # epochs without validation improvement before stopping; 0 = off
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast, on cuda
    steps_per_epoch: int | None = None  # batches per epoch, drawn at random; 0 = every window once;
    # None = every window once, but at least 25 batches (small data) and at most 100 (long data)


@dataclass
class PredictConfig:
    coverage: float | None = None  # e.g. 0.9 adds split-conformal y_lo / y_hi columns


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


POSITIVE = ("model.hidden_size", "model.num_layers", "train.epochs", "train.lr")
NON_NEGATIVE = (  # 0 = chosen from the data, for the sizes
    "model.lookback",
    "model.horizon",
    "model.segment",
    "model.season",
    "train.batch_size",
    "train.weight_decay",
    "train.grad_clip",
    "train.patience",
    "train.steps_per_epoch",
)


def _sections() -> dict[str, type]:
    return {f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)}


def choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of every `section.key` that has a fixed set of them (its Literal type)."""
    out = {}
    for section, cls in _sections().items():
        for key, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is Literal:
                out[f"{section}.{key}"] = typing.get_args(hint)
    return out


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check `value` against the field type `typ`; return it in that type or raise."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is Literal:
        if value not in args:
            raise ForecastError(f"{key} must be one of {', '.join(args)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    if origin is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ForecastError(f"{key} must be a column name or a list of them, got {value!r}")
        return list(items)
    if origin is dict:
        return _coerce_split(key, value)
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads `lr: 1e-3` (no dot) as a string
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ForecastError(f"{key} must be a finite number, got {value!r}")
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[typ]
    shown = repr(value) if isinstance(value, (str, int, float, bool, list, dict, type(None))) else type(value).__name__
    raise ForecastError(f"{key} must be {name}, got {shown}")


def _coerce_split(key: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) - {"train", "val", "test"}:
        raise ForecastError(
            f"{key} must be a mapping with keys train, val, test (fractions or row counts), got {value!r}"
        )
    for part, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ForecastError(f"{key}.{part} must be a fraction or a row count >= 0, got {v!r}")
    return dict(value)


def split_is_counts(split: dict[str, float]) -> bool:
    """Row counts (ints) rather than fractions; zeros fit either."""
    kinds = [isinstance(v, int) for v in split.values() if v != 0]
    return bool(kinds) and all(kinds)


def check(cfg: Config) -> Config:
    """Validate every value: its type (a Config built in Python skips the checks YAML and --set
    make), then what types alone do not catch; return cfg."""
    for name, section in _sections().items():
        part = getattr(cfg, name)
        for key, hint in typing.get_type_hints(section).items():
            setattr(part, key, _coerce(f"{name}.{key}", getattr(part, key), hint))
    flat = {f"{s}.{k}": v for s, sec in cfg.to_dict().items() for k, v in sec.items()}
    for key, allowed in choices().items():
        if flat[key] not in allowed:
            raise ForecastError(f"{key} must be one of {', '.join(allowed)}, got {flat[key]!r}")
    for key in POSITIVE:
        if flat[key] <= 0:
            raise ForecastError(f"{key} must be > 0, got {flat[key]!r}")
    for key in NON_NEGATIVE:
        if flat[key] is not None and flat[key] < 0:
            raise ForecastError(f"{key} must be >= 0, got {flat[key]!r}")
    if cfg.model.lookback and cfg.model.segment and cfg.model.lookback % cfg.model.segment:
        raise ForecastError(
            f"model.lookback ({cfg.model.lookback}) must be a multiple of model.segment ({cfg.model.segment})"
        )
    if not 0 <= cfg.model.dropout < 1:
        raise ForecastError(f"model.dropout must be in [0, 1), got {cfg.model.dropout!r}")
    cov = cfg.predict.coverage
    if cov is not None and not 0 < cov < 1:
        raise ForecastError(f"predict.coverage must be between 0 and 1 (e.g. 0.9), got {cov!r}")
    split = cfg.data.split
    missing = {"train", "val", "test"} - set(split)
    if missing:
        raise ForecastError(f"data.split needs train, val and test; missing {', '.join(sorted(missing))}")
    counts = [isinstance(v, int) for v in split.values() if v != 0]  # a 0 fits either kind
    if any(counts) and not all(counts):
        raise ForecastError(
            f"data.split mixes fractions and row counts ({split}); give all three as fractions or as row "
            "counts, e.g. --set data.split.train=8640 --set data.split.val=2880 --set data.split.test=2880"
        )
    if not split_is_counts(split) and sum(split.values()) > 1 + 1e-9:
        raise ForecastError(f"data.split fractions sum to {sum(split.values()):g}; they must sum to at most 1")
    if split["train"] == 0:
        raise ForecastError("data.split.train must be > 0: the model needs training rows")
    if cfg.predict.coverage is not None and split["val"] == 0:
        raise ForecastError("predict.coverage needs validation rows for its intervals; set data.split.val > 0")
    if not -(2**63) <= cfg.train.seed < 2**64:
        raise ForecastError(f"train.seed must fit in 64 bits (-2**63 .. 2**64 - 1), got {cfg.train.seed}")
    for key, names in (("data.target", cfg.data.target), ("data.features", cfg.data.features)):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ForecastError(f"{key} names {', '.join(map(repr, twice))} more than once; list each column once")
    overlap = set(cfg.data.target) & set(cfg.data.features)
    if overlap:
        raise ForecastError(f"column(s) {', '.join(sorted(overlap))} are in both data.target and data.features")
    return cfg


def from_dict(raw: Any, source: str = "config") -> Config:
    """Build a Config from nested plain data, rejecting unknown keys and wrong types."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ForecastError(
            f"{source} must be a mapping of sections (data, model, train, predict), got a {type(raw).__name__}"
        )
    sections = _sections()
    cfg = Config()
    for name, body in raw.items():
        if name not in sections:
            raise ForecastError(f"unknown section {name!r} in {source} (sections: {', '.join(sections)})")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ForecastError(f"section {name!r} in {source} must be a mapping, got {body!r}")
        for key, value in body.items():
            set_value(cfg, f"{name}.{key}", value, source)
    return cfg


def set_value(cfg: Config, dotted: str, value: Any, source: str = "config") -> None:
    """Set `section.key` (or `data.split.part`) on cfg, type-checked."""
    parts = dotted.split(".")
    sections = _sections()
    if len(parts) < 2 or parts[0] not in sections:
        raise ForecastError(
            f"unknown key {dotted!r} in {source}: use section.key with a section among {', '.join(sections)}"
        )
    section = getattr(cfg, parts[0])
    hints = typing.get_type_hints(type(section))
    key = parts[1]
    if key not in hints:
        raise ForecastError(f"unknown key {dotted!r} in {source} (keys of {parts[0]}: {', '.join(hints)})")
    if len(parts) == 3 and dotted.startswith("data.split."):
        value = {**cfg.data.split, parts[2]: value}
    elif len(parts) > 2:
        raise ForecastError(f"unknown key {dotted!r} in {source}")
    try:
        setattr(section, key, _coerce(f"{parts[0]}.{key}", value, hints[key]))
    except ForecastError as e:
        raise ForecastError(f"{e} (in {source})") from None


def field_type(dotted: str) -> Any:
    """The declared type of `section.key` (or of data.split for `data.split.part`); None if unknown."""
    section, _, key = dotted.partition(".")
    cls = _sections().get(section)
    return typing.get_type_hints(cls).get(key.split(".")[0]) if cls is not None else None


def _takes_text(typ: Any) -> bool:
    """Whether a field holds text (str, str | None, list[str]): `--set data.target=2024` means '2024'."""
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    return typ is str or (typing.get_origin(typ) in (typing.Union, types.UnionType, list) and args == [str])


def yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's reason and where, on one line: 'found character '\\t' ... (line 3, column 1)'."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def check_unique_keys(node: yaml.Node | None, path: Path, visited: set[int] | None = None) -> None:
    """A key given twice in one mapping is an error: YAML readers keep the last and drop the other."""
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:  # an alias of a node already checked (anchors may nest)
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise ForecastError(f"{path} gives {name!r} twice (line {key.start_mark.line + 1}); give it once")
            seen.add(name)
            check_unique_keys(value, path, visited)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            check_unique_keys(item, path, visited)


def load_yaml(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"config file {str(path)!r} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
        check_unique_keys(yaml.compose(text, Loader=yaml.SafeLoader), path)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ForecastError(f"{path} is not a YAML config (it is not UTF-8 text)") from None
    except yaml.YAMLError as e:
        raise ForecastError(f"{path} is not valid YAML: {yaml_problem(e)}") from None
    if raw is None:
        raise ForecastError(f"{path} is empty; give it sections such as data: and model:")
    cfg = from_dict(raw, str(path))
    data = Path(cfg.data.path)
    if cfg.data.path and not data.is_absolute() and not data.exists():
        # a relative data path may be written from the config's folder or the project root
        for base in (path.parent, path.parent.parent):
            if (base / data).is_file():
                cfg.data.path = str((base / data).resolve())
                break
    return cfg


def apply_overrides(cfg: Config, pairs: list[str]) -> Config:
    """Apply `--set section.key=value` pairs; values are read as YAML scalars/lists."""
    for pair in pairs:
        if "=" not in pair:
            raise ForecastError(f"--set {pair!r} needs the form section.key=value, e.g. train.epochs=5")
        key, text = pair.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, (bool, int, float)) and _takes_text(field_type(key.strip())):
            value = text.strip()  # a name that YAML would read as a number or a boolean
        if key.strip() in ("data.target", "data.features") and isinstance(value, str) and "," in value:
            value = [v.strip() for v in value.split(",") if v.strip()]
        set_value(cfg, key.strip(), value, "--set")
    return cfg


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
