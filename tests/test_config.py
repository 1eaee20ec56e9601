"""config: code defaults, YAML files, --set overrides, and the errors that name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from forecast import config
from forecast.config import Config
from forecast.errors import ForecastError
from forecast.panel import split_borders


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_complete_and_valid() -> None:
    cfg = config.check(Config())
    assert cfg.data.split == {"train": 0.7, "val": 0.1, "test": 0.2}
    # sizes, season, segment and normalization left to the data; train chooses and saves them
    model = cfg.model
    assert (model.lookback, model.horizon, model.season, model.segment) == (0, 0, 0, 0)
    assert (model.cell, model.norm, model.highway) == ("gru", "auto", True)
    assert (cfg.data.target, cfg.data.features, cfg.data.fill, cfg.data.gaps) == ([], [], "none", "warn")
    assert cfg.train.device == "auto" and cfg.predict.coverage is None


def test_defaults_are_not_shared_between_configs() -> None:
    a, b = Config(), Config()
    a.data.split["train"] = 0.5
    a.data.target.append("x")
    assert b.data.split["train"] == 0.7 and b.data.target == []


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = Config()
    cfg.model.hidden_size, cfg.data.target, cfg.data.split = 8, ["OT"], {"train": 100, "val": 20, "test": 30}
    loaded = config.load_yaml(write(tmp_path, config.to_yaml(cfg)))
    assert loaded == cfg


def test_load_yaml_values_and_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "data:\n  target: OT\n  split: {train: 8640, val: 2880, test: 2880}\n"
        "model:\n  lookback: 336\n  dropout: 0\ntrain:\n  lr: 1e-3\n  seed: 7\n",
    )
    cfg = config.load_yaml(path)
    assert cfg.data.target == ["OT"]  # one name becomes a list
    assert cfg.data.split == {"train": 8640, "val": 2880, "test": 2880}
    assert cfg.model.lookback == 336 and cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.train.lr == 1e-3 and cfg.train.seed == 7
    assert cfg.model.horizon == 0  # untouched keys keep the code default (0: chosen from the data)


def test_load_yaml_resolves_data_path_beside_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "data.csv").write_text("date,y\n")
    path = write(tmp_path / "configs", "data:\n  path: data.csv\n")
    monkeypatch.chdir(tmp_path / "configs")  # not found from here: looked up from the config's parent
    assert Path(config.load_yaml(path).data.path) == (tmp_path / "data.csv").resolve()


def test_empty_section_keeps_defaults(tmp_path: Path) -> None:
    assert config.load_yaml(write(tmp_path, "model:\ntrain:\n  epochs: 3\n")).model == Config().model


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("model:\n  hiden_size: 3\n", ["'model.hiden_size'", "hidden_size"]),
        ("modle:\n  lookback: 3\n", ["'modle'", "sections: data, model, train, predict"]),
        ("model:\n  lookback: ten\n", ["model.lookback", "integer", "'ten'", "cfg.yaml"]),
        ("model:\n  lookback: 3.5\n", ["model.lookback", "integer", "3.5"]),
        ("train:\n  lr: fast\n", ["train.lr", "a number", "'fast'"]),
        ("train:\n  lr: .nan\n", ["train.lr", "finite"]),
        ("data:\n  sort: maybe\n", ["data.sort", "true or false", "'maybe'"]),
        ("data:\n  target: [a, 1]\n", ["data.target", "column name"]),
        ("data:\n  split: 0.8\n", ["data.split", "train, val, test"]),
        ("data:\n  split: {train: 0.7, val: -0.1, test: 0.2}\n", ["data.split.val", "-0.1"]),
        ("model:\n  - lookback\n", ["section 'model'", "mapping"]),
        ("- data\n- model\n", ["must be a mapping of sections", "list"]),
        ("just a string\n", ["must be a mapping of sections", "str"]),
        ("", ["is empty"]),
        ("# only a comment\n", ["is empty"]),
        ("data: [unclosed\n", ["not valid YAML"]),
        ("model:\n  hidden_size: 8\n\tlookback: 4\n", ["not valid YAML", "'\\t'", "(line 3, column 1)"]),
        ("model: {hidden_size: 8}\ndata: {target: y}\nmodel: {lookback: 4}\n", ["gives 'model' twice (line 3)"]),
        ("model:\n  lookback: 4\n  lookback: 8\n", ["gives 'lookback' twice (line 3)"]),
        ("a: &x {b: 1}\nmodel: *x\n", ["unknown section 'a'"]),  # an alias is not a repeated key
    ],
)
def test_bad_yaml_names_the_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    with pytest.raises(ForecastError) as info:
        config.load_yaml(write(tmp_path, text))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_yaml_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(ForecastError, match="not UTF-8"):
        config.load_yaml(path)


def test_missing_yaml(tmp_path: Path) -> None:
    with pytest.raises(ForecastError, match="nope.yaml.*not found"):
        config.load_yaml(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda c: setattr(c.model, "cell", "rnn"), ["model.cell", "gru, lstm", "'rnn'"]),
        (lambda c: setattr(c.model, "norm", "batch"), ["model.norm", "'batch'"]),
        (lambda c: setattr(c.data, "fill", "zero"), ["data.fill", "ffill"]),
        (lambda c: setattr(c.model, "horizon", -1), ["model.horizon", ">= 0", "-1"]),  # 0: chosen from the data
        (lambda c: setattr(c.model, "lookback", -3), ["model.lookback", ">= 0", "-3"]),
        (lambda c: setattr(c.train, "patience", -1), ["train.patience", ">= 0"]),
        (lambda c: setattr(c.model, "dropout", 1.0), ["model.dropout", "[0, 1)"]),
        (lambda c: setattr(c.predict, "coverage", 1.5), ["predict.coverage", "1.5"]),
        (lambda c: setattr(c.train, "seed", 2**64), ["train.seed", "64 bits"]),
        (lambda c: setattr(c.data, "split", {"train": 0.8, "val": 0.2, "test": 0.2}), ["sum to 1.2", "at most 1"]),
        (
            lambda c: setattr(c.data, "split", {"train": 100, "val": 0.1, "test": 0.2}),
            ["mixes fractions and row counts"],
        ),
        (lambda c: setattr(c.data, "split", {"train": 0, "val": 10, "test": 10}), ["data.split.train must be > 0"]),
        (lambda c: setattr(c.data, "split", {"train": 0.7, "val": 0.1}), ["missing test"]),
        (
            lambda c: (setattr(c.data, "target", ["a"]), setattr(c.data, "features", ["a", "b"])),
            ["column(s) a ", "both"],
        ),
        (lambda c: setattr(c.data, "target", ["a", "b", "a"]), ["data.target", "'a'", "more than once"]),
    ],
)
def test_check_rejects_bad_values(mutate, fragments: list[str]) -> None:
    cfg = Config()
    mutate(cfg)
    with pytest.raises(ForecastError) as info:
        config.check(cfg)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("split", "counts", "borders"),
    [
        ({"train": 8640, "val": 2880, "test": 2880}, True, [8640, 11520, 14400]),
        ({"train": 0.5, "val": 0.1, "test": 0.1}, False, [10000, 12000, 14000]),  # rows past the parts: unused
    ],
    ids=["row counts", "partial fractions"],
)
def test_check_accepts_row_counts_and_partial_fractions(split: dict, counts: bool, borders: list[int]) -> None:
    cfg = Config()
    cfg.data.split = split
    assert config.check(cfg) is cfg  # accepted: no error, the same config back
    assert cfg.data.split == split  # kept as given: the values, and ints still ints
    assert [type(v) for v in cfg.data.split.values()] == [type(v) for v in split.values()]
    assert config.split_is_counts(cfg.data.split) is counts
    assert split_borders(np.array([20000]), cfg.data.split).tolist() == [borders]


def test_zero_parts_fit_either_kind_of_split() -> None:
    fractions = config.check(config.from_dict({"data": {"split": {"train": 0.8, "val": 0, "test": 0.2}}}))
    counts = config.check(config.from_dict({"data": {"split": {"train": 200, "val": 0, "test": 50}}}))
    assert split_borders(np.array([300]), fractions.data.split).tolist() == [[240, 240, 300]]
    assert split_borders(np.array([300]), counts.data.split).tolist() == [[200, 200, 250]]


def test_set_overrides_read_yaml_scalars() -> None:
    cfg = config.apply_overrides(
        Config(),
        [
            "model.hidden_size=8",
            "train.lr=0.01",
            "data.sort=true",
            "data.target=a,b",
            "data.features=[c]",
            "predict.coverage=0.9",
            "data.date_column=null",
            " model.cell = lstm ",
        ],
    )
    assert cfg.model.hidden_size == 8 and cfg.train.lr == 0.01 and cfg.data.sort is True
    assert cfg.data.target == ["a", "b"] and cfg.data.features == ["c"]
    assert cfg.predict.coverage == 0.9 and cfg.data.date_column is None and cfg.model.cell == "lstm"


def test_set_split_parts_one_at_a_time() -> None:
    cfg = config.apply_overrides(Config(), ["data.split.train=8640", "data.split.val=2880", "data.split.test=2880"])
    assert cfg.data.split == {"train": 8640, "val": 2880, "test": 2880}
    config.check(cfg)


def test_set_split_part_alone_mixes_and_is_refused() -> None:
    cfg = config.apply_overrides(Config(), ["data.split.train=8640"])
    assert cfg.data.split == {"train": 8640, "val": 0.1, "test": 0.2}
    with pytest.raises(ForecastError, match="mixes fractions and row counts"):
        config.check(cfg)


def test_set_text_fields_keep_their_text() -> None:
    # column names that YAML would read as numbers or booleans stay names
    cfg = config.apply_overrides(Config(), ["data.target=2024", "data.id_column=007", "data.date_column=yes"])
    assert cfg.data.target == ["2024"] and cfg.data.id_column == "007" and cfg.data.date_column == "yes"


@pytest.mark.parametrize(
    ("pair", "fragments"),
    [
        ("train.epochs", ["'train.epochs'", "section.key=value"]),
        ("model.hiden_size=3", ["'model.hiden_size'", "hidden_size", "--set"]),
        ("lookback=3", ["'lookback'", "section.key"]),
        ("optim.lr=3", ["'optim.lr'"]),
        ("model.lookback.x=3", ["'model.lookback.x'"]),
        ("train.epochs=abc", ["train.epochs", "integer", "'abc'", "--set"]),
        ("train.epochs=2.5", ["train.epochs", "integer"]),
        ("data.split=0.5", ["data.split", "mapping"]),
        ("data.split.holdout=0.5", ["data.split", "train, val, test"]),
        ("train.weight_decay=.inf", ["train.weight_decay", "finite"]),
    ],
)
def test_set_errors_name_the_key(pair: str, fragments: list[str]) -> None:
    with pytest.raises(ForecastError) as info:
        config.apply_overrides(Config(), [pair])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_from_dict_of_a_saved_config_round_trips() -> None:
    cfg = config.apply_overrides(Config(), ["data.target=[a, b]", "model.cell=gru_explicit", "train.epochs=3"])
    assert config.from_dict(yaml.safe_load(config.to_yaml(cfg))) == cfg
    assert config.from_dict(cfg.to_dict()) == cfg


def test_the_readme_lists_every_key_with_its_code_default() -> None:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("The code defaults, every key")[1].split("```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(block) == config.Config().to_dict()
