"""Typed configs read from TOML: dataclasses whose fields each carry a docstring.

`read_toml(path)` reads a file; `from_toml_table(cls, raw)` builds a dataclass from a parsed TOML table, checking every field's
type and refusing unknown or missing fields, naming the field; `to_toml(config)` writes one
back so that it reads back equal; `field_docs(cls)` gives each field's docstring (for configs
written with comments). Value checks beyond types stay with each config. Used by the trainer's
config (trainer/config.py) and GenIR's (engine/genir/config.py).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from engine.errors import BadSettingError


class ConfigError(BadSettingError):
    """A config that cannot work; the message names the field."""


def read_toml(path: Path, what: str, hint: str) -> dict[str, Any]:
    """The table in the TOML file `path`; ConfigError naming `what` (e.g. "training config")
    with `hint` when there is no such file, and the parser's message when it is not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"No {what} at {path}.", hint=hint) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.") from None


def from_toml_table(cls: type, raw: Any, where: str = "") -> Any:
    """`cls` built from the TOML table `raw`; `where` prefixes field names in errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'the config'} must be a table, got {raw!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        name = f"{where}{unknown[0]}"
        raise ConfigError(
            f"Unknown config field '{name}'.",
            hint=f"known fields{' of ' + where[:-1] if where else ''}: {', '.join(fields)}",
        )
    values = {}
    for name, spec in fields.items():
        if name in raw:
            values[name] = _convert(hints[name], raw[name], f"{where}{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"Missing config field '{where}{name}'.")
    return cls(**values)


def _convert(hint: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_toml_table(hint, value, f"{name}.")
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value, name)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"Config field '{name}' is {value!r}.",
                hint=f"choose one of {', '.join(map(repr, choices))}",
            )
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"Config field '{name}' must be a list, got {value!r}.")
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(f"Config field '{name}' must have {len(args)} items, got {value!r}.")
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        return tuple(
            _convert(t, v, f"{name}[{i}]")
            for i, (t, v) in enumerate(zip(item_types, value, strict=True))
        )
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(f"Config field '{name}' must be a path string, got {value!r}.")
        return Path(value).expanduser()
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int in Python; a TOML `true` is never a valid int here.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(
            f"Config field '{name}' must be {hint.__name__}, got {type(value).__name__} {value!r}."
        )
    return value


# ----------------------------------------------------------------------------- write


def to_toml(config: Any, *, comments: bool = False) -> str:
    """`config` as TOML that `from_toml_table` reads back to an equal config: plain fields
    first, then one table per dataclass field. With `comments`, every field and table is
    preceded by its docstring as `#` lines. Fields set to None are left out."""
    top: list[str] = []
    tables: list[str] = []
    docs = field_docs(type(config)) if comments else {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            body = _fields_toml(value, comments)
            header = [*_comment(docs.get(f.name, "")), f"[{f.name}]"]
            tables.append("\n".join(header + body))
        elif value is not None:
            top.append("\n".join([*_comment(docs.get(f.name, "")), _assign(f.name, value)]))
    separator = "\n\n" if comments else "\n"
    return separator.join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def _fields_toml(config: Any, comments: bool) -> list[str]:
    docs = field_docs(type(config)) if comments else {}
    lines: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if comments and lines:
            lines.append("")
        lines += [*_comment(docs.get(f.name, "")), _assign(f.name, value)]
    return lines


def _assign(name: str, value: Any) -> str:
    return f"{name} = {toml_value(value)}"


def _comment(doc: str) -> list[str]:
    return [f"# {line}".rstrip() for line in doc.splitlines()]


def toml_value(value: Any) -> str:
    """One value as TOML (bool, number, string, path, list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass `cls`, dedented, by field name.

    Python keeps no attribute docstrings at run time, so they are read from the source; where
    it is not available (a frozen app without .py files) the result is empty."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs
