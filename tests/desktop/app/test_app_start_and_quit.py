"""`dreamclear-studio` as a process (offscreen Qt, the fake engine): it takes photos on its
command line and quits with exit code 0 and no traceback, by Ctrl+Q or by closing the window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

DRIVER = Path(__file__).with_name("quit_driver.py")
ROOT = Path(__file__).resolve().parents[3]


def run_app(how: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(cwd)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(DRIVER), how, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["ctrl-q", "close"])
def test_quitting_exits_0_without_a_traceback(how, tmp_path):
    done = run_app(how, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    assert "queue: []" in done.stdout


def test_photos_and_folders_on_the_command_line_wait_in_the_queue(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "more").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "more" / "b.jpg")
    done = run_app("close", "a.png", "more", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "('a.png'," in done.stdout and "('b.jpg'," in done.stdout, done.stdout


def test_help_says_what_it_takes():
    done = subprocess.run(
        [sys.executable, "-m", "desktop.app", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0
    assert "usage: dreamclear-studio [-h]" in done.stdout and "PATHS" in done.stdout
