"""Change a few values of a GenIR `genir.toml` in place, keeping its comments.

`dreamclear genir init` writes the config with every setting and a comment saying why; the
wizard edits some of them. Rewriting the whole file from a parsed table would drop those
comments, and a TOML library that keeps them is a dependency for a handful of scalar fields;
a protocol request would route a local file edit through the engine for nothing. So this
replaces the value of an existing `key = value` line of a section and checks the result still
parses to what was meant. Only keys the file already has are edited: init writes every field
the engine knows, so a key that is absent is one this engine does not take (an engine's config
refuses unknown fields), and the caller is told (`MissingKey`) instead of breaking the run.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from desktop.state.atomic_file import write_atomically

Value = str | int | float | bool | list[str]


class MissingKey(KeyError):
    """The config has no such setting (this engine does not take it)."""


def format_value(value: Value) -> str:
    """`value` as TOML (strings as basic strings: JSON's escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written to the config")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in value) + "]"


def set_values(text: str, values: Mapping[tuple[str, str], Value]) -> str:
    """`text` with each `(section, key)` set to its value ("" section: the top level)."""
    lines = text.splitlines(keepends=True)
    for (section, key), value in values.items():
        index = _find(lines, section, key)
        if index is None:
            raise MissingKey(f"{section + '.' if section else ''}{key}")
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index] = f"{indent}{key} = {format_value(value)}\n"
    result = "".join(lines)
    parsed = tomllib.loads(result)  # never write a file the engine cannot read
    for (section, key), value in values.items():
        table = parsed.get(section, {}) if section else parsed
        if table.get(key) != value:
            raise ValueError(f"writing {section}.{key} did not give {value!r}")
    return result


def read_value(text: str, section: str, key: str) -> Value | None:
    table = tomllib.loads(text)
    table = table.get(section, {}) if section else table
    return table.get(key) if isinstance(table, dict) else None


def has_key(text: str, section: str, key: str) -> bool:
    return _find(text.splitlines(keepends=True), section, key) is not None


def edit_file(path: Path, values: Mapping[tuple[str, str], Value]) -> None:
    """Set `values` in the config at `path`, written atomically (a crash leaves the old file)."""
    text = set_values(path.read_text(encoding="utf-8"), values)
    write_atomically(path, text.encode("utf-8"))


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def _find(lines: list[str], section: str, key: str) -> int | None:
    """The index of the `key = ...` line of `section` (single-line values only)."""
    current = ""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for index, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip()
            continue
        if current == section and pattern.match(line):
            return index
    return None
