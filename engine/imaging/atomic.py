"""Writing a file so that it either appears complete under its final name or not at all.

The temporary file lives beside the result (so the final rename stays on one file system) and
its name says whose it is: `.NAME.dreamclear-HOST-PID-RANDOM.tmp`, HOST a hash of the machine's
name and PID the writer's process id. A writer killed with kill -9 cannot remove its own, so
every write first sweeps the stale ones of ours from its folder: those whose writer no longer
runs on this machine, and any left untouched for `STALE_AFTER_S`. Other files are never touched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from engine.errors import OutputError

logger = logging.getLogger(__name__)


def check_output_folder(path: Path) -> None:
    """Raise OutputError unless `path`'s folder exists and can be written to."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(
            f"{path}: the output folder {folder} does not exist",
            hint="create the folder or choose another output folder",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"{path}: the output folder {folder} is not writable",
            hint="choose a folder you can write to",
        )


def _publish(temp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        # A hard link fails if `path` appeared meanwhile, so nothing is ever clobbered.
        os.link(temp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # the file system has no hard links (FAT, some network shares)
        if path.exists():
            raise _exists_error(path) from None
        os.replace(temp, path)
    else:
        temp.unlink()


def _exists_error(path: Path) -> OutputError:
    return OutputError(
        f"{path}: a file with this name already exists",
        hint="choose another name, or allow overwriting",
    )


def sync_folder(folder: Path) -> None:
    """Make the names in `folder` durable (POSIX; a no-op elsewhere or where it fails)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


STALE_AFTER_S = 24 * 3600.0
"""A temp file of ours untouched this long is stale, whoever wrote it (a pid reused by another
process, a writer on another machine that shares the folder)."""

_TEMP_NAME = re.compile(
    r"^\..*\.dreamclear-(?P<host>[0-9a-f]{8})-(?P<pid>\d{1,9})-[a-z0-9_]{8}\.tmp$"
)


@functools.cache
def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _temp_prefix(path: Path) -> str:
    # A bounded part of the name: the longest names would leave no room for the rest.
    return f".{path.name[:40]}.dreamclear-{_host_tag()}-{os.getpid()}-"


def process_exists(pid: int) -> bool:
    """Whether process `pid` runs on this machine (always True where that cannot be asked)."""
    if os.name != "posix":  # os.kill(pid, 0) would kill it on Windows: only the age rule there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def remove_stale_temp_files(folder: Path) -> None:
    """Delete our temp files in `folder` whose writer is gone (see the module docstring)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            untouched = now - entry.stat(follow_symlinks=False).st_mtime
            writer_gone = match["host"] == _host_tag() and not process_exists(int(match["pid"]))
            if writer_gone or untouched > STALE_AFTER_S:
                os.unlink(entry.path)
                logger.info("Removed %s, left by a write that never finished.", entry.path)
        except OSError as error:  # cleaning up is a courtesy; the write goes on regardless
            logger.debug("Could not remove %s: %s", entry.path, error)


def _current_umask() -> int:
    # The only portable way to read the umask is to set it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(
    path: Path,
    write: Callable[[BinaryIO], None],
    *,
    overwrite: bool = False,
    fixed_temp: bool = False,
) -> None:
    """Call `write` on a temp file next to `path`, fsync it, then move it to `path`.

    On any failure the temp file is removed and `path` is left as it was. Without
    `overwrite`, an existing `path` raises OutputError. With `fixed_temp` the temp file is
    `.NAME.partial` instead of a fresh random name: for a single writer (a journalled job)
    whose next attempt, after a kill, overwrites what the killed one left.
    """
    check_output_folder(path)
    if not overwrite and path.exists():
        raise _exists_error(path)
    remove_stale_temp_files(path.parent)
    try:
        if fixed_temp:
            name = str(path.with_name(f".{path.name}.partial"))
            # Never write through it: a killed attempt may have left it hard-linked to `path`.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OutputError(
            f"{path}: cannot create a file here ({error.strerror})",
            hint="choose a folder you can write to",
        ) from error
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            # mkstemp makes 0600 files; a result should get the permissions any new file
            # of this user gets.
            os.fchmod(file.fileno(), 0o666 & ~_current_umask())
            os.fsync(file.fileno())
        _publish(temp, path, overwrite)
    except OSError as error:
        raise OutputError(
            f"{path}: writing failed ({error.strerror or error})",
            hint="check free disk space and folder permissions",
        ) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    sync_folder(path.parent)
    logger.debug("wrote %s", path)


def unique_output_path(folder: Path | str, stem: str, suffix: str) -> Path:
    """The first free name among "stem.suffix", "stem (1).suffix", "stem (2).suffix"...

    `suffix` may be given with or without its dot. The name is free when checked; pair it
    with `save_image(..., overwrite=False)`, which refuses if another writer took it meanwhile.
    """
    folder = Path(folder)
    suffix = suffix if suffix.startswith(".") else f".{suffix}"
    candidate = folder / f"{stem}{suffix}"
    number = 1
    while candidate.exists():
        candidate = folder / f"{stem} ({number}){suffix}"
        number += 1
    return candidate
