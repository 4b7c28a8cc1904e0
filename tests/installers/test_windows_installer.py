"""The Windows installer builds with makensis (apt install nsis; .ci/run does). It is not run:
no Windows or wine here (installers/README.md says what is verified)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("makensis") is None, reason="makensis is missing (apt install nsis)"
)
def test_the_nsis_installer_builds(tmp_path):
    # A stand-in for uv.exe keeps the test offline; .ci/run builds it with the real one.
    uv = tmp_path / "uv.exe"
    uv.write_bytes(b"MZ stand-in")
    done = subprocess.run(
        [str(ROOT / "installers" / "windows" / "build.sh"), str(tmp_path / "out"), str(uv)],
        env={**os.environ, "BUILD_PYTHON": sys.executable, "NSIS_FAST": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    exe = Path(done.stdout.strip())
    assert exe.name == "DreamClear-Studio-0.1.0-setup.exe"
    data = exe.read_bytes()
    assert data[:2] == b"MZ" and len(data) > 5_000_000  # the app and its starter model inside
    assert b"Nullsoft" in data


def test_the_installer_associates_every_photo_type_and_keeps_the_users_files():
    script = (ROOT / "installers" / "windows" / "dreamclear-studio.nsi").read_text()
    for extension in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"):
        assert f'!insertmacro OpenWith "{extension}"' in script
        assert f'!insertmacro NoOpenWith "{extension}"' in script
    assert "RequestExecutionLevel user" in script
    assert "$LOCALAPPDATA\\Programs\\${APP_NAME}" in script
    uninstall = script[script.index('Section "Uninstall"') :]
    # Only the install folder and, when the user says so, the runtime folder are removed.
    removed = [
        line.split()[-1] for line in uninstall.splitlines() if line.strip().startswith("RMDir")
    ]
    assert removed == ['"$INSTDIR\\app"', '"$INSTDIR"', '"${RUNTIME}"']
    assert "/SD IDNO" in uninstall  # a silent uninstall keeps the runtime too
