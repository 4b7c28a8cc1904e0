"""The pinned uv: beside the app (an installer may bundle it), already fetched, in the
wheelhouse, or downloaded from PyPI and checked against its published sha256.

uv ships on PyPI as a wheel holding one executable (`uv-VERSION.data/scripts/uv`), so the
standard library's zipfile is all it takes to unpack it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import stat
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from setup_env.errors import SetupError
from setup_env.pins import UV_VERSION, UV_WHEELS

UV_EXE = "uv.exe" if sys.platform == "win32" else "uv"


def platform_key() -> tuple[str, str]:
    family = "linux" if sys.platform.startswith("linux") else sys.platform
    return family, platform.machine().lower()


def is_pinned_uv(path: Path) -> bool:
    """Whether PATH runs and is the pinned version."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.split()[1:2] == [UV_VERSION]


def unpack(wheel: Path, target: Path) -> Path:
    """Take the executable out of a uv wheel into TARGET/uv (atomically: a half-written uv
    would pass for a complete one on the next run)."""
    member = f"uv-{UV_VERSION}.data/scripts/{UV_EXE}"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(member)
        except KeyError:
            raise SetupError(
                f"{wheel.name} holds no {member}",
                hint=f"put the uv {UV_VERSION} wheel for this machine in the wheelhouse",
            ) from None
    with tempfile.NamedTemporaryFile(dir=target, delete=False) as part:
        part.write(data)
    os.chmod(part.name, 0o755 | stat.S_IRUSR)
    os.replace(part.name, target / UV_EXE)
    return target / UV_EXE


def _download(url: str, sha256: str, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    wheel = target / url.rsplit("/", 1)[1]
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(wheel, "wb") as file:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                file.write(chunk)
    except OSError as error:
        raise SetupError(
            f"could not download uv {UV_VERSION} from PyPI: {error}",
            hint="check the internet connection, or set up offline with --wheelhouse DIR",
        ) from error
    if digest.hexdigest() != sha256:
        wheel.unlink()
        raise SetupError(
            f"the uv wheel downloaded from {url} is not the one PyPI published "
            f"(sha256 {digest.hexdigest()})",
            hint="try again later; if it persists, your network changes downloads",
        )
    return wheel


def find_uv(uv_dir: Path, app_dir: Path, wheelhouse: Path | None) -> Path:
    """The pinned uv's executable, fetching it into UV_DIR/VERSION when needed."""
    bundled = app_dir.parent / UV_EXE
    if bundled.is_file() and is_pinned_uv(bundled):
        return bundled
    fetched = uv_dir / UV_VERSION / UV_EXE
    if fetched.is_file() and is_pinned_uv(fetched):
        return fetched
    if wheelhouse is not None:
        family, machine = platform_key()
        url, _ = UV_WHEELS.get((family, machine), ("", ""))
        wanted = url.rsplit("/", 1)[-1]
        candidates = sorted(wheelhouse.glob(f"uv-{UV_VERSION}-*.whl"))
        chosen = [wheel for wheel in candidates if wheel.name == wanted] or candidates
        if not chosen:
            raise SetupError(
                f"no uv {UV_VERSION} wheel in the wheelhouse {wheelhouse}",
                hint=f"add it: pip download uv=={UV_VERSION} --no-deps -d {wheelhouse}",
            )
        return unpack(chosen[0], fetched.parent)
    key = platform_key()
    if key not in UV_WHEELS:
        raise SetupError(
            f"no pinned uv for {key[0]} on {key[1]}",
            hint="set up offline with --wheelhouse DIR holding a uv wheel for this machine",
        )
    url, sha256 = UV_WHEELS[key]
    with tempfile.TemporaryDirectory(dir=uv_dir.parent if uv_dir.parent.exists() else None) as tmp:
        return unpack(_download(url, sha256, Path(tmp)), fetched.parent)
