"""Lay out the installed app, the same for every installer: `stage.py SRC OUT`.

SRC is a copy of the checkout's files (installers/*/build.sh makes it from `git ls-files`, so
nothing ignored leaks in). OUT receives:

    app/                     what goes on sys.path: desktop, engine, trainer, dreamclear,
                             setup_env, dreamclear_studio_resources (= resources/), launch.py,
                             requirements.txt (the dependencies the first run installs)
    icons/hicolor/NxN/apps/  the icon in the freedesktop sizes, made from one 512 px PNG
    icons/hicolor/scalable/apps/dreamclear-studio.svg
    icons/dreamclear-studio.ico   for Windows
    VERSION

torch is not in app/: the first run installs the build that fits the machine (docs/installers.md).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tomllib
from pathlib import Path

from PIL import Image

PACKAGES = ("desktop", "engine", "trainer", "dreamclear", "setup_env")
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICON_NAME = "dreamclear-studio"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_NAME = re.compile(r"^[A-Za-z0-9._-]+")


def requirements(pyproject: dict, pins: dict[str, str]) -> list[str]:
    """The project's dependencies with torch and torchvision replaced by their exact pins.

    The ranges in pyproject.toml are what the wheel accepts; an installer ships the releases
    we test, so a first run next year installs what works today."""
    lines = []
    for dep in pyproject["project"]["dependencies"]:
        name = _NAME.match(dep).group(0).lower()
        lines.append(f"{name}=={pins[name]}" if name in pins else dep)
    return lines


def stage(src: Path, out: Path) -> None:
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    sys.path.insert(0, str(src))
    from setup_env.pins import TORCH, TORCHVISION

    app = out / "app"
    app.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(src / package, app / package, ignore=_IGNORE)
    shutil.copytree(src / "resources", app / "dreamclear_studio_resources", ignore=_IGNORE)
    shutil.copy2(src / "installers" / "common" / "launch.py", app / "launch.py")
    reqs = requirements(pyproject, {"torch": TORCH, "torchvision": TORCHVISION})
    (app / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (out / "VERSION").write_text(pyproject["project"]["version"] + "\n")

    icons = src / "resources" / "icons"
    master = Image.open(icons / f"{ICON_NAME}.png").convert("RGBA")
    for size in ICON_SIZES:
        folder = out / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True)
        master.resize((size, size), Image.Resampling.LANCZOS).save(folder / f"{ICON_NAME}.png")
    scalable = out / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copy2(icons / f"{ICON_NAME}.svg", scalable / f"{ICON_NAME}.svg")
    master.save(out / "icons" / f"{ICON_NAME}.ico", sizes=[(s, s) for s in ICO_SIZES])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="a copy of the checkout's files")
    parser.add_argument("out", type=Path, help="an empty or missing folder")
    args = parser.parse_args()
    stage(args.src.resolve(), args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
