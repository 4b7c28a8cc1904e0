"""The .deb and the portable tarball: built by installers/linux/build.sh, checked with the tools
a distribution uses (dpkg-deb, desktop-file-validate). The install into a clean Debian root is
installers/linux/test-clean-root.sh (slow; .ci/run runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)

needs_dpkg = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb is missing (apt install dpkg)"
)


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is missing (apt install dpkg)")
    out = tmp_path_factory.mktemp("packages")
    done = subprocess.run(
        [str(ROOT / "installers" / "linux" / "build.sh"), str(out)],
        env={**os.environ, "BUILD_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    deb, tarball = (Path(line) for line in done.stdout.split())
    return deb, tarball


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


@needs_dpkg
def test_the_deb_declares_python_and_the_qt_libraries(packages):
    info = dpkg_deb("--info", str(packages[0]))
    assert "Package: dreamclear-studio" in info and "Architecture: all" in info
    depends = next(line for line in info.splitlines() if line.strip().startswith("Depends:"))
    for needed in ("python3 (>= 3.11)", "libxcb-cursor0", "libegl1", "libxkbcommon-x11-0"):
        assert needed in depends
    assert "torch" not in depends


@needs_dpkg
def test_the_deb_holds_the_app_launchers_entry_and_icons(packages):
    names = {
        line.split()[-1].removeprefix(".")
        for line in dpkg_deb("--contents", str(packages[0])).splitlines()
    }
    app = "/usr/lib/dreamclear-studio/app"
    for wanted in (
        "/usr/bin/dreamclear-studio",
        "/usr/bin/dreamclear",
        "/usr/share/applications/dreamclear-studio.desktop",
        "/usr/share/icons/hicolor/scalable/apps/dreamclear-studio.svg",
        f"{app}/launch.py",
        f"{app}/requirements.txt",
        f"{app}/setup_env/launch.py",
        f"{app}/desktop/app.py",
        f"{app}/dreamclear/cli.py",
        f"{app}/dreamclear_studio_resources/models/starter/restorer.safetensors",
        f"{app}/dreamclear_studio_resources/photos/bridge.jpg",
    ):
        assert wanted in names, wanted
    for size in ICON_SIZES:
        assert f"/usr/share/icons/hicolor/{size}x{size}/apps/dreamclear-studio.png" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith(f"{app}/tests")]


@needs_dpkg
@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None,
    reason="desktop-file-validate is missing (apt install desktop-file-utils; .ci/run does)",
)
def test_the_desktop_entry_is_valid_and_opens_photos(packages, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(packages[0]), str(tmp_path)], check=True)
    entry = tmp_path / "usr" / "share" / "applications" / "dreamclear-studio.desktop"
    done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout
    lines = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    assert set(lines["MimeType"].strip(";").split(";")) == {
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/webp",
    }
    assert lines["Exec"] == "dreamclear-studio %F"  # the files chosen in "Open with"
    launcher = (tmp_path / "usr" / "bin" / "dreamclear-studio").read_text()
    assert (
        '/usr/bin/python3 -I "/usr/lib/dreamclear-studio/app/launch.py" dreamclear-studio'
        in launcher
    )


def test_the_portable_tarball_runs_from_where_it_is_unpacked(packages, tmp_path):
    with tarfile.open(packages[1]) as archive:
        archive.extractall(tmp_path, filter="data")
    (top,) = tmp_path.iterdir()
    assert (top / "app" / "launch.py").is_file() and (top / "README.txt").is_file()
    assert (
        top / "share" / "icons" / "hicolor" / "48x48" / "apps" / "dreamclear-studio.png"
    ).is_file()
    # --help-setup runs the launcher and the set-up's code without setting anything up.
    done = subprocess.run(
        [str(top / "bin" / "dreamclear-studio"), "--help-setup"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "d")},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--wheelhouse DIR" in done.stdout and "--torch" in done.stdout
    assert not (tmp_path / "d").exists()
