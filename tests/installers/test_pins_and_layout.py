"""The installers' pins agree with the development set-up; the set-up's data folder is the
engine's; the staged app lists the dependencies with torch pinned."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from setup_env.paths import data_dir
from setup_env.pins import TORCH, TORCHVISION, UV_VERSION, UV_WHEELS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installers" / "common"))

from stage import requirements  # noqa: E402  (a script's folder, not a package)


def test_torch_pins_are_the_ones_the_developers_install_and_the_wheel_allows():
    venv_script = (ROOT / "scripts" / "_venv.sh").read_text()
    assert f'"torch=={TORCH}"' in venv_script and f'"torchvision=={TORCHVISION}"' in venv_script
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(dep.startswith("torch>") and dep.endswith(f"<={TORCH}") for dep in dependencies)
    assert any(dep.endswith(f"<={TORCHVISION}") for dep in dependencies)


def test_every_pinned_uv_wheel_is_that_version():
    for url, sha256 in UV_WHEELS.values():
        assert url.rsplit("/", 1)[1].startswith(f"uv-{UV_VERSION}-") and len(sha256) == 64


def test_the_set_up_uses_the_engines_data_folder(monkeypatch, tmp_path):
    from engine.weights.store import default_root

    monkeypatch.delenv("DREAMCLEAR_MODEL_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_root() == data_dir() / "models"


def test_the_staged_requirements_pin_torch_and_keep_the_other_ranges():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = requirements(pyproject, {"torch": TORCH, "torchvision": TORCHVISION})
    assert lines[:2] == [f"torch=={TORCH}", f"torchvision=={TORCHVISION}"]
    assert "PySide6-Essentials>=6.7,<6.12" in lines
    assert len(lines) == len(pyproject["project"]["dependencies"])
