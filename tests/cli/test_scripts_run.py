"""`scripts/run`: photos and folders open the app with them; subcommands go to the CLI, even
where a folder has a subcommand's name. Run against a stand-in venv whose `dreamclear-studio`
says what it was given and whose `dreamclear` is the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path):
    scripts = tmp_path / "repo" / "scripts"
    scripts.mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", scripts / "run")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (scripts / "_venv.sh").write_text(f'root="{tmp_path / "repo"}"\nvenv="{tmp_path / "venv"}"\n')
    (venv_bin / "dreamclear-studio").write_text('#!/bin/sh\necho "studio: $*"\n')
    (venv_bin / "dreamclear").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m dreamclear.cli "$@"\n'
    )
    for stub in venv_bin.iterdir():
        stub.chmod(0o755)
    work = tmp_path / "work"
    (work / "holiday").mkdir(parents=True)
    (work / "engine").mkdir()  # a folder with a subcommand's name
    (work / "photo.jpg").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> str:
        done = subprocess.run(
            ["bash", str(scripts / "run"), *args], cwd=work, env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_photos_and_folders_open_the_app_with_them(run):
    assert run() == "studio: \n"
    assert run("photo.jpg", "holiday") == "studio: photo.jpg holiday\n"


def test_subcommands_go_to_the_command_line(run):
    assert run("engine", "--help").startswith("usage: dreamclear engine")
    assert run("restore", "--help").startswith("usage: dreamclear restore")
