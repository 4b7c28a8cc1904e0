"""A journal that lets a long job of many items resume where it stopped, doing no item twice.

A job of independent items (GenIR images, dataset pairs) writes each item's output files and
then records the item as one JSON line: its key, its outputs with their size and sha256, and
free-form metadata. Run again, it skips what the journal holds:

    header = JournalHeader("genir.generate", {"seed": seed, "batch_size": 4, "version": 1})
    with Journal.open(folder / "journal.jsonl", header) as journal:
        for index in journal.pending(range(count)):
            image = generate(seed=item_seed(seed, index))
            journal.write(index, {folder / f"{index:06d}.png": encode_png(image)})

Guarantees:
- An item's outputs are complete and durable before its line exists: `write` writes each under
  a temp name, fsyncs it and renames it; `record` (for files written by other means) fsyncs
  them and their folders before appending. A final name never holds a partial file.
- Each line is appended with one write, flushed and fsynced before `record` returns.
- A crash mid-append leaves a torn last line; `open` cuts it off and the item is redone.
- An item killed before its line was appended is redone; its files are overwritten atomically
  and `write`'s fixed temp names leave no stray temp file once the job has finished.
- On `open` every journalled output is checked (size, and sha256 unless `verify="size"`); an
  item whose file is missing or changed gets a "redo" line and is done again.
- A key is journalled at most once: `record` refuses a key the journal holds (a bug in the job).
- Resuming under another job kind or other settings is refused, naming the setting.
- One writer at a time: the open journal is locked (POSIX flock); a second `open` is refused.
- Data only: lines are JSON (no NaN), never pickles or code.

Format (`FORMAT_VERSION` 1), one JSON object per line, the header first:
    {"type":"header","format":1,"kind":"genir.generate","settings":{"seed":7,...}}
    {"type":"item","key":0,"outputs":[{"path":"000000.png","size":812,"sha256":"..."}],
     "metadata":{...}}
    {"type":"redo","key":0,"reason":"000000.png is missing"}
Output paths are stored relative to the journal's folder when inside it, else absolute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Literal

from engine.errors import BadSettingError, OutputError
from engine.imaging.atomic import atomic_write, check_output_folder, sync_folder

if os.name == "posix":
    import fcntl

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
Key = int | str
"""An item's identity: its index, or a name. 3 and "3" are different keys."""

Output = bytes | Callable[[BinaryIO], None]
"""What `Journal.write` writes to a file: its bytes, or a function that writes them."""


@dataclass(frozen=True)
class JournalHeader:
    """What a journal belongs to; a resume must bring the same."""

    kind: str
    """The job kind, e.g. "genir.generate"; a journal of another kind is never resumed."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Everything that changes what an item's outputs are (seed, model, sizes, batch size, the
    output format's version), as JSON values; a resume with any of them different is refused."""


@dataclass(frozen=True)
class JournalOutput:
    path: Path
    """Absolute path of the file."""
    size: int
    """Bytes."""
    sha256: str
    """Hex digest of the file's bytes."""


@dataclass(frozen=True)
class JournalItem:
    key: Key
    outputs: tuple[JournalOutput, ...]
    metadata: Mapping[str, Any]


def item_seed(run_seed: int, key: Key) -> int:
    """The seed of item `key` in a run seeded `run_seed` (63 bits, fits torch and numpy).

    It depends on nothing else, so an item comes out the same in a resumed run, in any order
    and in any process of a sharded run."""
    digest = hashlib.sha256(json.dumps([run_seed, key]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise TypeError(f"journal {what} must be JSON values (no NaN): {error}") from None


def _is_key(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _digest(path: Path, *, sync: bool = False) -> tuple[int, str]:
    """Size and sha256 of the file at `path`; with `sync`, fsync it first (POSIX: Windows
    cannot fsync a file opened for reading, and `atomic_write` has synced it already)."""
    with open(path, "rb") as file:
        if sync and os.name == "posix":
            os.fsync(file.fileno())
        return os.fstat(file.fileno()).st_size, hashlib.file_digest(file, "sha256").hexdigest()


def read_journal(
    path: Path | str,
    header: JournalHeader | None = None,
    *,
    verify: Literal["sha256", "size"] = "size",
) -> dict[Key, JournalItem]:
    """The items of the journal at `path`, read without locking or changing it: for readers
    of a job's results, and for a job that must see journals other processes write. A torn
    last line is ignored and an item whose outputs fail the check is left out (`open` would
    redo both). With `header`, a journal of another kind or settings is refused as by `open`;
    a missing or empty file holds no items."""
    path = Path(os.path.abspath(path))
    reader = Journal(path, header or JournalHeader(""), None)
    data = path.read_bytes() if path.is_file() else b""
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
    if not lines:
        return {}
    first = reader._parse(lines[0], 1)
    if header is not None:
        reader._check_header(first)
    elif first.get("type") != "header" or first.get("format") != FORMAT_VERSION:
        raise reader._corrupt("it does not start with a header of this format")
    for number, line in enumerate(lines[1:], start=2):
        reader._replay(reader._parse(line, number), number)
    return {key: item for key, item in reader._items.items() if not reader._problem(item, verify)}


_UNSET = object()


def _shown(value: object) -> str:
    return "unset" if value is _UNSET else json.dumps(value)


class Journal:
    """An open journal; make one with `Journal.open`, use it as a context manager."""

    def __init__(self, path: Path, header: JournalHeader, fd: int | None) -> None:
        self.path = path
        self.header = header
        self._folder = path.parent
        self._fd: int | None = fd
        self._items: dict[Key, JournalItem] = {}

    # ------------------------------------------------------------------------------ open

    @classmethod
    def open(
        cls,
        path: Path | str,
        header: JournalHeader,
        *,
        verify: Literal["sha256", "size"] = "sha256",
    ) -> Journal:
        """Open the journal at `path`, or start one (its folder must exist).

        `verify` is how journalled outputs are checked: "sha256" reads every file back,
        "size" only checks that it exists with its size (for runs of very many files).
        Raises BadSettingError when the journal belongs to another kind or other settings,
        OutputError when it is in use, unreadable or was written by a newer version.
        """
        path = Path(os.path.abspath(path))
        check_output_folder(path)
        _dumps(header.settings, "settings")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        journal = cls(path, header, fd)
        try:
            journal._lock()
            journal._load(verify)
        except BaseException:
            journal.close()
            raise
        return journal

    def _lock(self) -> None:
        if os.name != "posix":
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{self.path}: another job is using this journal",
                hint="wait for that job to finish or stop it, or choose another output folder",
            ) from None

    def _load(self, verify: Literal["sha256", "size"]) -> None:
        with open(self.path, "rb") as file:
            data = file.read()
        # Lines end with "\n"; anything after the last one is a line torn by a crash.
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            logger.warning(
                "%s: dropping a torn last line (%d bytes)", self.path, len(data) - complete
            )
            os.ftruncate(self._fd, complete)
            os.fsync(self._fd)
        lines = data[:complete].split(b"\n")[:-1]
        if not lines:
            self._append({"type": "header", "format": FORMAT_VERSION, **self._header_json()})
            sync_folder(self._folder)
            return
        self._check_header(self._parse(lines[0], 1))
        for number, line in enumerate(lines[1:], start=2):
            self._replay(self._parse(line, number), number)
        for item in list(self._items.values()):
            problem = self._problem(item, verify)
            if problem:
                logger.warning("%s: item %r will be redone: %s", self.path, item.key, problem)
                self._append({"type": "redo", "key": item.key, "reason": problem})
                del self._items[item.key]

    def _header_json(self) -> dict[str, Any]:
        settings = json.loads(_dumps(self.header.settings, "settings"))
        return {"kind": self.header.kind, "settings": settings}

    def _corrupt(self, detail: str) -> OutputError:
        return OutputError(
            f"{self.path}: not a journal this version can resume ({detail})",
            hint="move the output folder away and start the job again",
        )

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            entry = json.loads(line)
        except ValueError:
            raise self._corrupt(f"line {number} is not JSON") from None
        if not isinstance(entry, dict):
            raise self._corrupt(f"line {number} is not a record")
        return entry

    def _check_header(self, entry: dict[str, Any]) -> None:
        if entry.get("type") != "header" or "kind" not in entry:
            raise self._corrupt("it does not start with a header")
        if entry.get("format") != FORMAT_VERSION:
            raise self._corrupt(
                f"format {entry.get('format')!r}, this version reads {FORMAT_VERSION}"
            )
        expected = self._header_json()
        if entry["kind"] != expected["kind"]:
            raise BadSettingError(
                f"{self.path}: cannot resume a {entry['kind']!r} job as {expected['kind']!r}",
                hint="choose another output folder for this job",
            )
        stored, wanted = entry.get("settings", {}), expected["settings"]
        for name in sorted(set(stored) | set(wanted)):
            before, now = stored.get(name, _UNSET), wanted.get(name, _UNSET)
            if before != now:
                raise BadSettingError(
                    f"{self.path}: cannot resume with {name} = {_shown(now)}: "
                    f"the job was started with {name} = {_shown(before)}",
                    hint=f"resume with {name} = {_shown(before)}, or choose another output folder",
                )

    def _replay(self, entry: dict[str, Any], number: int) -> None:
        kind, key = entry.get("type"), entry.get("key")
        if kind == "redo":
            self._items.pop(key, None)
            return
        if kind != "item":
            raise self._corrupt(f"line {number} has the unknown type {kind!r}")
        if not _is_key(key):
            raise self._corrupt(f"line {number} has no key")
        if key in self._items:
            raise self._corrupt(f"line {number} records item {key!r} a second time")
        try:
            outputs = tuple(
                JournalOutput(self._folder / output["path"], output["size"], output["sha256"])
                for output in entry["outputs"]
            )
            self._items[key] = JournalItem(key, outputs, entry.get("metadata", {}))
        except (KeyError, TypeError):
            raise self._corrupt(f"line {number} is not a complete item") from None

    def _problem(self, item: JournalItem, verify: Literal["sha256", "size"]) -> str:
        for output in item.outputs:
            name = self._stored(output.path)
            if not output.path.is_file():
                return f"{name} is missing"
            if output.path.stat().st_size != output.size:
                return f"{name} has another size than journalled"
            if verify == "sha256" and _digest(output.path)[1] != output.sha256:
                return f"{name} has another sha256 than journalled"
        return ""

    # ------------------------------------------------------------------------------ use

    @property
    def items(self) -> Mapping[Key, JournalItem]:
        """The items done, by key (read-only)."""
        return MappingProxyType(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def pending(self, keys: Iterable[Key]) -> Iterator[Key]:
        """The keys of `keys` the journal does not hold yet, checked as they are reached."""
        for key in keys:
            if key not in self._items:
                yield key

    def write(
        self,
        key: Key,
        outputs: Mapping[Path | str, Output],
        metadata: Mapping[str, Any] | None = None,
    ) -> JournalItem:
        """Write item `key`'s files atomically (replacing what a killed run left), then
        `record` it. `outputs` maps each path to its bytes or to a function writing them."""
        self._check_new(key)
        for path, content in outputs.items():
            write = content if callable(content) else lambda file, data=content: file.write(data)
            atomic_write(Path(path), write, overwrite=True, fixed_temp=True)
        return self.record(key, outputs, metadata)

    def record(
        self,
        key: Key,
        outputs: Iterable[Path | str],
        metadata: Mapping[str, Any] | None = None,
    ) -> JournalItem:
        """Journal item `key` as done, with its output files (written already, best
        atomically) and JSON `metadata`. The files and their folders are fsynced first."""
        self._check_new(key)
        metadata_json = json.loads(_dumps(dict(metadata or {}), "metadata"))
        files = []
        for path in outputs:
            path = Path(os.path.abspath(path))
            files.append(JournalOutput(path, *_digest(path, sync=True)))
        for folder in {output.path.parent for output in files}:
            sync_folder(folder)
        item = JournalItem(key, tuple(files), metadata_json)
        self._append(
            {
                "type": "item",
                "key": key,
                "outputs": [
                    {"path": self._stored(f.path), "size": f.size, "sha256": f.sha256}
                    for f in files
                ],
                "metadata": metadata_json,
            }
        )
        self._items[key] = item
        return item

    def _check_new(self, key: Key) -> None:
        if not _is_key(key):
            raise TypeError(f"a journal key is an int or a str, got {key!r}")
        if key in self._items:
            raise ValueError(f"item {key!r} is already journalled in {self.path}")

    def _stored(self, path: Path) -> str:
        try:
            return path.relative_to(self._folder).as_posix()
        except ValueError:
            return str(path)

    def _append(self, entry: dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError(f"the journal {self.path} is closed")
        line = memoryview((_dumps(entry, "records") + "\n").encode())
        size = os.fstat(self._fd).st_size
        try:
            while line:
                line = line[os.write(self._fd, line) :]
            os.fsync(self._fd)
        except OSError as error:
            # Cut a partial line off, so the next line does not continue it.
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                self.close()  # a journal that may hold a torn line in the middle takes no more
            raise OutputError(
                f"{self.path}: cannot append to the journal ({error.strerror or error})",
                hint="check free disk space, then run the job again to resume",
            ) from error

    # ------------------------------------------------------------------------------ close

    def close(self) -> None:
        """Release the journal (and its lock); closing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
