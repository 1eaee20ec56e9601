"""Fixtures: tiny synthetic CSVs written into tmp_path, a CLI runner, and one shared trained run with
private copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Cli, long_frame, synthetic_frame, train_on_multi, write_csv

PROPERTIES = Path(__file__).parent / "properties"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "properties: hypothesis property tests, the files in tests/properties")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROPERTIES in item.path.parents:
            item.add_marker(pytest.mark.properties)


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """make_csv(name, n=300, columns=(...), ...) -> path of a synthetic CSV in tmp_path."""

    def make(name: str = "data.csv", **kwargs) -> Path:
        return write_csv(tmp_path / name, synthetic_frame(**kwargs))

    return make


@pytest.fixture
def single_csv(tmp_path: Path) -> Path:
    """One series, one numeric column `y`."""
    return write_csv(tmp_path / "single.csv", synthetic_frame(columns=("y",)))


@pytest.fixture
def multi_csv(tmp_path: Path) -> Path:
    """300 hourly rows from 2024-01-01, numeric columns a, b, c (the default target is the last, c)."""
    return write_csv(tmp_path / "multi.csv", synthetic_frame(columns=("a", "b", "c")))


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    """Long format: series s1, s2, s3 of 300, 260, 240 rows from different start dates, column `id`."""
    return write_csv(tmp_path / "long.csv", long_frame())


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small run on multi.csv, trained once for the tests that only read it (copy it to write)."""
    return train_on_multi(tmp_path_factory.mktemp("shared"))


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run, for tests that write into it (predict, evaluate, plot)."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
