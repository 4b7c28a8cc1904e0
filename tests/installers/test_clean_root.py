"""The .deb installed into a clean Debian root and used as a person would (offline after set-up),
then purged: installers/linux/test-clean-root.sh. It needs root, mmdebstrap, a Debian mirror
and a few minutes, so it runs only when asked: .ci/run calls the script itself, and
DREAMCLEAR_CLEAN_ROOT_TEST=1 runs it from here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("DREAMCLEAR_CLEAN_ROOT_TEST") != "1",
    reason="installs into a clean Debian root (minutes, root, a mirror): .ci/run runs "
    "installers/linux/test-clean-root.sh; DREAMCLEAR_CLEAN_ROOT_TEST=1 runs it here",
)
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is missing")
@pytest.mark.skipif(os.geteuid() != 0, reason="the clean root needs root (mounts /proc, /dev)")
@pytest.mark.timeout(3600)
def test_the_deb_installs_sets_up_offline_restores_and_purges_cleanly(tmp_path):
    done = subprocess.run(
        [str(ROOT / "installers" / "linux" / "test-clean-root.sh"), str(tmp_path)],
        env={**os.environ, "BUILD_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "clean root: passed" in done.stderr
    assert (tmp_path / "app-under-xvfb.png").stat().st_size > 10_000
