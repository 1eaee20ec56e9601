"""checkpoint: atomic writes, and model.pt as plain data that loads with weights_only=True."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
import torch
from helpers import ShellOnLoad, TouchOnLoad

from forecast import checkpoint, files
from forecast.errors import ForecastError


def payload() -> dict:
    return {
        "format_version": checkpoint.FORMAT_VERSION,
        "config": {"model": {"lookback": 4}},
        "state_dict": {"w": torch.arange(6.0).reshape(2, 3)},
        "scaler": {"min": torch.zeros(1, 1, dtype=torch.float64), "max": torch.ones(1, 1, dtype=torch.float64)},
        "columns": ["y"],
        "n_targets": 1,
        "freq": "h",
        "ids": [""],
        "season": 24,
        "history": {"train_loss": [0.5], "val_loss": [0.4], "lr": [1e-3], "seconds": [0.1]},
        "train_std": torch.ones(1, 1),
        "mase_scale": torch.ones(1, 1),
        "linear": torch.zeros(5, 2),
    }


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    checkpoint.save_payload(tmp_path / "model.pt", payload())
    loaded = checkpoint.load(tmp_path / "model.pt")
    assert torch.equal(loaded.state_dict["w"], payload()["state_dict"]["w"])
    assert loaded.columns == ["y"] and loaded.config == {"model": {"lookback": 4}}
    # plain data only: the safe loader reads it
    assert torch.load(tmp_path / "model.pt", weights_only=True)["freq"] == "h"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    files.write_text(tmp_path / "a.txt", "one")
    files.write_with(tmp_path / "b.csv", lambda f: f.write("x,y\n"))
    checkpoint.save_payload(tmp_path / "c.pt", payload())
    files.write_text(tmp_path / "a.txt", "two")  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.csv", "c.pt"]
    assert (tmp_path / "a.txt").read_text() == "two"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def broken(f) -> None:
        f.write("half")
        raise KeyboardInterrupt  # e.g. Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        files.write_with(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_creates_folders_and_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        files.write_text(tmp_path / "new" / "dir" / "f.txt", "x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "new" / "dir" / "f.txt").stat().st_mode)
    assert mode == 0o644  # like any file the user writes, not mkstemp's owner-only 0600


def test_atomic_write_to_a_folder_or_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ForecastError, match="is a folder"):
        files.write_text(tmp_path, "x")
    with pytest.raises(ForecastError, match="afile is a file, not a folder"):
        files.write_text(tmp_path / "afile" / "out.csv", "x")
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize(("cut", "fragment"), [(0.5, "truncated or corrupt"), (0.02, "truncated or corrupt")])
def test_truncated_checkpoint(tmp_path: Path, cut: float, fragment: str) -> None:
    path = tmp_path / "model.pt"
    checkpoint.save_payload(path, payload())
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(ForecastError, match=fragment):
        checkpoint.load(path)


def test_garbage_is_not_called_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"date,y\n2024-01-01,1\n")
    with pytest.raises(ForecastError, match="is not a readable checkpoint") as info:
        checkpoint.load(path)
    assert "unsafe" not in str(info.value)


def test_foreign_tensor_and_dicts(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ForecastError, match="not a forecast checkpoint .*Tensor"):
        checkpoint.load(path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ForecastError, match="missing format_version, config"):
        checkpoint.load(path)
    bad = payload()
    bad["scaler"] = [1, 2]
    torch.save(bad, path)
    with pytest.raises(ForecastError, match=r"wrong type: scaler \(list\)"):
        checkpoint.load(path)


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        (999, "format 999, newer than this forecast reads"),
        (0, "unknown checkpoint format 0"),
        ("1", "unknown checkpoint format '1'"),
        (True, "unknown checkpoint format True"),
    ],
)
def test_format_version(tmp_path: Path, version, fragment: str) -> None:
    bad = payload()
    bad["format_version"] = version
    torch.save(bad, tmp_path / "model.pt")
    with pytest.raises(ForecastError, match=fragment):
        checkpoint.load(tmp_path / "model.pt")


@pytest.mark.parametrize("evil", [TouchOnLoad, ShellOnLoad])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path, evil: type) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pt"
    torch.save({**payload(), "extra": evil(marker)}, path)
    with pytest.raises(ForecastError, match="refused as unsafe"):
        checkpoint.load(path)
    assert not marker.exists()


def test_plain_pickle_of_code_runs_nothing(tmp_path: Path) -> None:
    marker, path = tmp_path / "PWNED", tmp_path / "model.pt"
    with open(path, "wb") as f:
        pickle.dump(ShellOnLoad(marker), f, protocol=4)  # torch would warn about the protocol: not here
    with pytest.raises(ForecastError, match="model.pt"):
        checkpoint.load(path)
    assert not marker.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ForecastError, match="checkpoint .*model.pt' not found"):
        checkpoint.load(tmp_path / "model.pt")
