"""A fake uv for the set-up tests: real venvs (python -m venv, fast), fake installs.

`uv venv` makes a real environment without pip, so the set-up's own steps (the .pth, the
stamp, the swap) run for real; `uv pip install` only records its arguments in the
environment, or fails when FAKE_UV_FAIL is set, as a failed download would.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from setup_env.pins import UV_VERSION

FAKE_UV = f"""#!{sys.executable}
import os, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
if args == ["--version"]:
    print("uv {UV_VERSION}")
    sys.exit(0)
if args[0] == "venv":
    python = args[args.index("--python") + 1]
    subprocess.run([python, "-m", "venv", "--without-pip", args[-1]], check=True)
elif args[:2] == ["pip", "install"]:
    if os.environ.get("FAKE_UV_FAIL"):
        print("error: no matching distribution found for torch")
        sys.exit(2)
    env = Path(args[args.index("--python") + 1]).parent.parent
    with open(env / "fake-installs.txt", "a") as file:
        file.write(" ".join(args) + "\\n")
"""


@pytest.fixture
def app_dir(tmp_path) -> Path:
    """An installed app's folder with a fake uv bundled beside it (as Windows' installer does)
    and a `dreamclear.cli` that reports where it runs."""
    app = tmp_path / "install" / "app"
    (app / "dreamclear").mkdir(parents=True)
    (app / "requirements.txt").write_text("torch==2.14.1\nnumpy>=1.26\n")
    (app / "dreamclear" / "__init__.py").write_text("")
    (app / "dreamclear" / "cli.py").write_text(
        "import sys\nprint('RAN', sys.executable, sys.argv[1:])\n"
    )
    uv = app.parent / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    return app


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A user's home with the platform folders pointed inside it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("DREAMCLEAR_MODEL_STORE", raising=False)
    monkeypatch.delenv("FAKE_UV_FAIL", raising=False)
    return home
