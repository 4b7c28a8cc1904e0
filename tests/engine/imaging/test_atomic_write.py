"""Temporary files of atomic writes never outlive their writer, even one killed with kill -9."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from engine.imaging.atomic import atomic_write

# Writes part of a file through atomic_write, says so, then hangs until it is killed.
SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine.imaging.atomic import atomic_write

    def write(file):
        file.write(b"half a photo")
        file.flush()
        Path(sys.argv[2]).touch()
        time.sleep(600)

    atomic_write(Path(sys.argv[1]), write)
    """
)

NOT_OURS = (  # never touched, whatever they look like
    ".photo_x4.ab12cd34.tmp",  # another program's (or an older version's) temp file
    ".hidden",
    "notes.tmp",
    ".photo.png.dreamclear-00000000-1-abcdefgh.tmp.keep",
)


@contextlib.contextmanager
def writer_mid_write(target: Path) -> Iterator[subprocess.Popen]:
    """A process writing `target` through atomic_write, stopped halfway; SIGKILLed on exit."""
    ready = target.parent.parent / f"{target.name}-ready"
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, "the writer died before writing"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.02)
        yield process
    finally:
        process.kill()  # SIGKILL: no finally clause, no atexit
        process.wait()


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def write_photo(path: Path) -> None:
    atomic_write(path, lambda file: file.write(b"a photo"))


def test_a_later_write_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    folder = tmp_path / "restored"
    folder.mkdir()
    for name in NOT_OURS:
        (folder / name).write_bytes(b"keep me")

    with writer_mid_write(folder / "photo_x4.png"):
        pass
    assert len(names(folder)) == len(NOT_OURS) + 1, "the killed writer left no temp file"
    assert not (folder / "photo_x4.png").exists()

    write_photo(folder / "other_x4.png")
    assert names(folder) == sorted([*NOT_OURS, "other_x4.png"])


def test_temp_files_of_running_writers_stay(tmp_path: Path) -> None:
    folder = tmp_path / "restored"
    folder.mkdir()
    with writer_mid_write(folder / "slow_x4.png"):
        (temp,) = folder.iterdir()
        # The same name from another machine (a shared folder): its pid means nothing here.
        remote = folder / re.sub(r"dreamclear-[0-9a-f]+-\d+-", "dreamclear-0badcafe-1-", temp.name)
        assert remote != temp
        remote.write_bytes(b"in progress elsewhere")
        # No process has this id: not one of ours, whatever made it.
        odd = folder / re.sub(r"-\d+-(\w+\.tmp)$", r"-99999999999999999999-\1", temp.name)
        odd.write_bytes(b"?")

        write_photo(folder / "a_x4.png")
        assert names(folder) == sorted(["a_x4.png", temp.name, remote.name, odd.name])

        # Untouched for two days: its writer hangs or its pid was reused; it goes.
        two_days_ago = time.time() - 2 * 86400
        for path in (temp, remote):
            os.utime(path, (two_days_ago, two_days_ago))
        write_photo(folder / "b_x4.png")
        assert names(folder) == sorted(["a_x4.png", "b_x4.png", odd.name])


def test_temp_names_are_hidden_and_name_their_writer(tmp_path: Path) -> None:
    long_name = "x" * 240 + ".png"  # the longest names leave no room for a suffix
    (tmp_path / "out").mkdir()
    with writer_mid_write(tmp_path / "out" / long_name) as process:
        (temp,) = (tmp_path / "out").iterdir()
        assert temp.name.startswith(".xxxx") and temp.name.endswith(".tmp")
        assert f"-{process.pid}-" in temp.name
        assert len(temp.name) < 150
