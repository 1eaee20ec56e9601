"""An installed package (not only the source tree) keeps what `forecast` needs: its demo config."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import Cli, assert_user_error

from forecast import config, pipeline

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_demo_config_is_the_one_people_read() -> None:
    packaged = pipeline.default_config_path()
    assert packaged.parent.name == "forecast"  # inside the package, so a wheel carries it
    assert packaged.read_text() == (ROOT / "configs" / "default.yaml").read_text()


def test_demo_config_finds_the_demo_data_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    cfg = config.load_yaml(pipeline.default_config_path())
    assert Path(cfg.data.path).is_file()


def test_train_without_data_outside_the_repository_says_how_to_start(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "site-packages" / "forecast" / "default.yaml"  # as pip lays it out: no data/ beside
    installed.parent.mkdir(parents=True)
    shutil.copy(pipeline.default_config_path(), installed)
    monkeypatch.setattr(pipeline, "default_config_path", lambda: installed)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert_user_error(cli("train"), "no data given", "--data FILE.csv", "data/ETTh1.csv")
    assert not (tmp_path / "elsewhere" / "runs").exists()


@pytest.mark.slow
def test_installed_wheel_reads_its_own_demo_config(tmp_path: Path) -> None:
    """Build the wheel `pip install .` would install, and run `forecast train` from it outside the repository."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "forecast", source / "forecast", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", "dist", "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True)
    wheel = next((source / "dist").glob("forecast-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        assert "forecast/default.yaml" in zf.namelist()
        zf.extractall(site)
    (tmp_path / "elsewhere").mkdir()
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import forecast.cli; "
        f"assert forecast.cli.__file__.startswith({str(site)!r}), forecast.cli.__file__; "
        "sys.argv = ['forecast', 'train']; forecast.cli.main()"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "elsewhere", capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: no data given: pass --data FILE.csv (the bundled demo data/ETTh1.csv is only in the source repository)"
    ]
