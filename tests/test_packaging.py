"""The wheel holds every package and every resource; scripts/wheel_check.sh runs it in CI."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dreamclear_studio_resources import resource_path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = "dreamclear_studio_resources"
"""The package resources/ is installed as (docs/decisions.md)."""


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [str(ROOT / "scripts" / "build_wheel.sh"), str(out)],
        env={**os.environ, "BUILD_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(result.stdout.strip()) as wheel:
        return set(wheel.namelist())


def test_the_wheel_ships_the_manifest_the_starter_and_the_configs(wheel_files):
    for name in (
        "__init__.py",
        "models/manifest.toml",
        "models/starter/restorer.safetensors",
        "models/starter/restorer-gentle.safetensors",
        "models/starter/gate/config.json",
        "models/starter/gate/diffusion_pytorch_model.safetensors",
        "models/starter/estimator/config.json",
        "models/starter/estimator/diffusion_pytorch_model.safetensors",
        "configs/starter.toml",
        "photos/bridge.jpg",
    ):
        assert f"{RESOURCES}/{name}" in wheel_files


def test_the_wheel_ships_every_resource_and_every_package(wheel_files):
    root = resource_path()
    resources = {
        f"{RESOURCES}/{path.relative_to(root).as_posix()}"
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    packages = {
        path.relative_to(ROOT).as_posix()
        for top in ("dreamclear", "engine", "trainer", "desktop")
        for path in (ROOT / top).rglob("__init__.py")
    }
    assert resources - wheel_files == set()
    assert packages - wheel_files == set()
    assert not [name for name in wheel_files if name.endswith(".pyc")]
