"""Reading another stage's journal (engine.jobs.journal's format) without touching it.

`Journal.open` locks the file, checks every output and appends "redo" lines: right for the
stage that owns it, wrong for a reader (status, export) that must never change another
stage's folder and may run while that stage writes. This reads the lines as they are: the
header's settings, then the items still done (a "redo" line forgets its item; a torn last line
is ignored), each with its outputs' absolute paths and its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.jobs.journal import Key


@dataclass(frozen=True)
class JournalRecord:
    key: Key
    outputs: tuple[Path, ...]
    metadata: dict[str, Any]
    sha256: tuple[str, ...]
    """Each output's journalled sha256, in the order of `outputs`."""


@dataclass
class JournalContents:
    kind: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    items: dict[Key, JournalRecord] = field(default_factory=dict)
    """In the order they were journalled."""


def read_journal(path: Path) -> JournalContents | None:
    """The journal at `path` as it stands; None when there is none or it is not a journal."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
    try:
        entries = [json.loads(line) for line in lines]
    except ValueError:
        return None
    if not entries or not isinstance(entries[0], dict) or entries[0].get("type") != "header":
        return None
    contents = JournalContents(entries[0].get("kind", ""), entries[0].get("settings", {}))
    folder = Path(path).parent
    for entry in entries[1:]:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key")
        if entry.get("type") == "redo":
            contents.items.pop(key, None)
        elif entry.get("type") == "item" and key is not None:
            outputs = entry.get("outputs", [])
            contents.items[key] = JournalRecord(
                key,
                tuple(folder / output["path"] for output in outputs),
                entry.get("metadata", {}),
                tuple(output["sha256"] for output in outputs),
            )
    return contents


def read_journals(folder: Path) -> list[JournalContents]:
    """Every journal directly in `folder` (a sharded stage may keep one per process)."""
    if not Path(folder).is_dir():
        return []
    found = (read_journal(path) for path in sorted(Path(folder).glob("*.jsonl")))
    return [journal for journal in found if journal is not None]
