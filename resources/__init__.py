"""DreamClear Studio's resources: configs, the models manifest, the bundled starter, photos.

This folder is installed as the package `dreamclear_studio_resources` (setup.py maps it; why:
docs/decisions.md), so the files ship inside the wheel and are found the same way from a
source checkout, an installed wheel or a frozen app. Torch-free and Qt-free: the engine, the
trainer and the desktop all find resources here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """The path of a resource, e.g. `resource_path("models", "manifest.toml")`; the resources
    folder itself without parts. Weights are memory-mapped, so it must be a real folder."""
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"DreamClear Studio's resources are not in a folder on disk ({root}): "
            "install it unpacked (pip installs wheels unpacked)."
        )
    return root.joinpath(*parts)
