"""Where the first-run set-up keeps what it makes: one `runtime` folder in the user's data folder.

The user's own things live beside it (models/ under the same folder, settings and results
elsewhere) and set-up never writes outside `runtime/`, so set-up, update and `--remove-runtime`
cannot touch them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_FOLDER = "dreamclear-studio"
"""The same folder name as the engine's model store (engine/weights/store.py, APP_FOLDER)."""


def data_dir() -> Path:
    """The platform's per-user data folder: the rule engine.weights.store.default_root follows.

    Repeated here because set-up runs before any dependency exists and may import nothing of
    the engine; tests/installers checks both give the same folder."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / APP_FOLDER


@dataclass(frozen=True)
class Runtime:
    """The set-up's folder and the names inside it."""

    root: Path

    @classmethod
    def default(cls) -> Runtime:
        return cls(data_dir() / "runtime")

    @property
    def env(self) -> Path:
        """The environment in use."""
        return self.root / "env"

    @property
    def env_new(self) -> Path:
        """Where a new environment is built; renamed to `env` only when it is complete."""
        return self.root / "env.new"

    @property
    def env_old(self) -> Path:
        """The previous environment for the moment of the swap."""
        return self.root / "env.old"

    @property
    def uv_dir(self) -> Path:
        return self.root / "uv"

    @property
    def cache(self) -> Path:
        """uv's download cache: here rather than ~/.cache so removing `runtime` frees it all."""
        return self.root / "cache"

    @property
    def log(self) -> Path:
        return self.root / "setup.log"


def env_python(env: Path) -> Path:
    """The Python of a virtual environment."""
    if sys.platform == "win32":
        return env / "Scripts" / "python.exe"
    return env / "bin" / "python"
