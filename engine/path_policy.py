"""Which paths a client may name: checked before the engine touches the file system.

Every path that arrives in a request (restore inputs and output folder, export source and
destination, a model to import) goes through `PathPolicy.check` first. It refuses what cannot
be a path (too long, a NUL byte, a name over 255 bytes) with `bad_setting`, and, when the
policy has roots, anything that resolves (symlinks followed) outside them with `forbidden`.
The desktop app's own engine (stdio) may use any path its user can; a TCP engine limits its
clients to `--allow` folders, by default the user's home and the temporary folder, so a token
holder cannot read or write elsewhere (docs/protocol.md, "TCP security").
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from engine.errors import BadSettingError, EngineError

MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255


class PathNotAllowedError(EngineError):
    """A path outside the folders this engine may use for its clients."""

    kind = "forbidden"


class PathPolicy:
    """`roots` None: any path; otherwise only paths inside one of `roots`."""

    def __init__(self, roots: Sequence[Path] | None = None) -> None:
        self.roots = (
            None if roots is None else [Path(root).expanduser().resolve() for root in roots]
        )

    @classmethod
    def for_remote_clients(cls, allowed: Sequence[Path] | None) -> PathPolicy:
        """The policy of a TCP engine: `allowed` (from --allow), else home and temp."""
        return cls(allowed or [Path.home(), Path(tempfile.gettempdir())])

    def describe(self) -> str:
        return "anywhere" if self.roots is None else ", ".join(str(r) for r in self.roots)

    def check(self, text: str, what: str) -> Path:
        """`text` as a Path (user folder expanded), or the error that refuses it."""
        if len(text) > MAX_PATH_CHARS or "\0" in text:
            raise BadSettingError(
                f"{what} is not a usable path ({len(text)} characters)",
                hint=f"paths are at most {MAX_PATH_CHARS} characters, without NUL bytes",
            )
        path = Path(text).expanduser()
        if any(len(os.fsencode(part)) > MAX_NAME_BYTES for part in path.parts):
            raise BadSettingError(
                f"{what} has a name longer than {MAX_NAME_BYTES} bytes",
                hint="shorten the file or folder name",
            )
        if self.roots is not None:
            try:
                resolved = path.resolve()
            except (OSError, RuntimeError) as error:  # a symlink loop, a bad name
                raise BadSettingError(f"{what} {text!r} cannot be resolved: {error}") from None
            if not any(resolved.is_relative_to(root) for root in self.roots):
                raise PathNotAllowedError(
                    f"{what} {resolved} is outside the folders this engine may use "
                    f"({self.describe()})",
                    hint="use a path inside them, or start the engine with --allow FOLDER",
                )
        return path

    def check_pattern(self, text: str, what: str) -> None:
        """A file, folder or glob: its part before the first wildcard must pass `check`, so
        nothing outside the roots is listed, let alone read."""
        self.check(text, what)  # usable as a name at all
        parts = Path(text).expanduser().parts
        fixed = [
            part for part in itertools.takewhile(lambda part: not _WILDCARDS & set(part), parts)
        ]
        self.check(str(Path(*fixed)) if fixed else ".", what)


_WILDCARDS = set("*?[")
ANYWHERE = PathPolicy()
