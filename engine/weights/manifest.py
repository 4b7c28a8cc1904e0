"""The models manifest (resources/models/manifest.toml): typed, validated once on load.

The manifest names every model the app knows: its hub repo, the files or folders to fetch,
their sizes where known, the licence and what needs it. Torch-free, so the model manager can
read it cheaply.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from dreamclear_studio_resources import resource_path
from engine.errors import BadSettingError

FORMAT_VERSION = 1
DEFAULT_MANIFEST = resource_path("models", "manifest.toml")

ModelKind = Literal[
    "transformer", "base", "remover", "vae", "text-encoder", "captioner", "llm", "judge", "starter"
]
MODEL_KINDS: tuple[str, ...] = (
    "transformer",
    "base",
    "remover",
    "vae",
    "text-encoder",
    "captioner",
    "llm",
    "judge",
    "starter",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ManifestError(BadSettingError):
    """The manifest file is missing or malformed (a packaging bug, or a hand-edited file)."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, at `path` in the hub repo (and under the model's store folder)."""

    path: str
    size: int | None = None
    """Exact size in bytes, when known: `verify` then requires it."""
    approx_size: int | None = None
    """Size in bytes as the hub lists it (3 significant digits): for display and a lower bound."""


@dataclass(frozen=True)
class ModelFolder:
    """A folder of a model, at `path` in the hub repo ("" is the repo root)."""

    path: str
    must_contain: tuple[str, ...]
    """Globs that must all match inside the folder for it to count as installed; "a|b" = either."""
    download: tuple[str, ...]
    """Globs (relative to the repo root) handed to snapshot_download's allow_patterns."""
    approx_size: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One model the app knows."""

    name: str
    title: str
    kind: ModelKind
    purpose: str
    licence: str
    licence_note: str
    required_by: tuple[str, ...]
    repo: str | None = None
    files: tuple[ModelFile, ...] = ()
    folders: tuple[ModelFolder, ...] = ()
    optional: bool = False
    bundled: bool = False

    @property
    def approx_size(self) -> int | None:
        """Total download size in bytes, or None when any part of it is unknown."""
        sizes = [f.size or f.approx_size for f in self.files]
        sizes += [f.approx_size for f in self.folders]
        if not sizes or any(s is None for s in sizes):
            return None
        return sum(cast(int, s) for s in sizes)


@dataclass(frozen=True)
class Manifest:
    format: int
    models: dict[str, ModelEntry]
    source: Path

    def get(self, name: str) -> ModelEntry:
        """The entry called `name`; BadSettingError listing the known names otherwise."""
        try:
            return self.models[name]
        except KeyError:
            raise BadSettingError(
                f"Unknown model '{name}'.",
                hint=f"known models: {', '.join(self.models)} (see `dreamclear models list`)",
            ) from None


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a manifest; ManifestError says which entry and field is wrong."""
    source = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"The models manifest {source} is missing.", hint="reinstall DreamClear Studio"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"The models manifest {source} cannot be read: {exc}") from None
    return parse_manifest(data, source)


def parse_manifest(data: dict[str, Any], source: Path = Path("<memory>")) -> Manifest:
    """Validate the parsed TOML of a manifest."""
    version = data.get("format")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"{source}: format {version!r} is not supported (this version reads {FORMAT_VERSION})."
        )
    models_table = data.get("models")
    if not isinstance(models_table, dict) or not models_table:
        raise ManifestError(f"{source}: no [models.NAME] tables.")
    unknown = set(data) - {"format", "models"}
    if unknown:
        raise ManifestError(f"{source}: unknown top-level keys {sorted(unknown)}.")
    models = {name: _parse_entry(name, raw, source) for name, raw in models_table.items()}
    return Manifest(format=version, models=models, source=source)


_ENTRY_KEYS = {
    "title",
    "kind",
    "purpose",
    "repo",
    "licence",
    "licence_note",
    "required_by",
    "optional",
    "bundled",
    "files",
    "folders",
}


def _parse_entry(name: str, raw: Any, source: Path) -> ModelEntry:
    where = f"{source}: [models.{name}]"
    if not _NAME.match(name):
        raise ManifestError(f"{where}: names are lower-case letters, digits, '.', '_' and '-'.")
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a table.")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}.")

    def text(key: str, required: bool = True) -> str | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ManifestError(f"{where}: '{key}' must be a non-empty string.")
        return value

    kind = text("kind")
    if kind not in MODEL_KINDS:
        raise ManifestError(f"{where}: kind {kind!r} is not one of {', '.join(MODEL_KINDS)}.")
    repo = text("repo", required=False)
    if repo is not None and not _REPO.match(repo):
        raise ManifestError(f"{where}: repo {repo!r} is not a hub id like 'owner/name'.")
    required_by = raw.get("required_by", [])
    if not isinstance(required_by, list) or not all(isinstance(r, str) for r in required_by):
        raise ManifestError(f"{where}: 'required_by' must be a list of strings.")
    flags = {}
    for key in ("optional", "bundled"):
        flags[key] = raw.get(key, False)
        if not isinstance(flags[key], bool):
            raise ManifestError(f"{where}: '{key}' must be true or false.")

    files = tuple(_parse_file(f, where) for f in _table_list(raw, "files", where))
    folders = tuple(_parse_folder(f, where) for f in _table_list(raw, "folders", where))
    if flags["bundled"] and repo is not None:
        raise ManifestError(f"{where}: a bundled model has no repo.")
    if not flags["bundled"] and repo is None:
        raise ManifestError(f"{where}: 'repo' is required unless the model is bundled.")
    if not files and not folders:
        raise ManifestError(f"{where}: list at least one [[files]] or [[folders]] entry.")

    return ModelEntry(
        name=name,
        title=cast(str, text("title")),
        kind=cast(ModelKind, kind),
        purpose=cast(str, text("purpose")),
        licence=cast(str, text("licence")),
        licence_note=text("licence_note", required=False) or "",
        required_by=tuple(required_by),
        repo=repo,
        files=files,
        folders=folders,
        optional=flags["optional"],
        bundled=flags["bundled"],
    )


def _table_list(raw: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ManifestError(f"{where}: '{key}' must be an array of tables ([[...]]).")
    return value


def _relative_path(value: Any, where: str, allow_root: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_root):
        raise ManifestError(f"{where}: 'path' must be a non-empty string.")
    parts = Path(value).parts
    if value.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise ManifestError(f"{where}: path {value!r} must stay inside the model folder.")
    return value.strip("/")


def _size(entry: dict[str, Any], key: str, where: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ManifestError(f"{where}: '{key}' must be a positive number of bytes.")
    return value


def _parse_file(entry: dict[str, Any], where: str) -> ModelFile:
    where = f"{where} file {entry.get('path')!r}"
    unknown = set(entry) - {"path", "size", "approx_size"}
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}.")
    return ModelFile(
        path=_relative_path(entry.get("path"), where),
        size=_size(entry, "size", where),
        approx_size=_size(entry, "approx_size", where),
    )


def _parse_folder(entry: dict[str, Any], where: str) -> ModelFolder:
    where = f"{where} folder {entry.get('path')!r}"
    unknown = set(entry) - {"path", "must_contain", "download", "approx_size"}
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}.")
    path = _relative_path(entry.get("path"), where, allow_root=True)
    must_contain = entry.get("must_contain")
    if not isinstance(must_contain, list) or not must_contain:
        raise ManifestError(f"{where}: 'must_contain' must list at least one glob.")
    download = entry.get("download", [f"{path}/*" if path else "*"])
    for globs, key in ((must_contain, "must_contain"), (download, "download")):
        if not isinstance(globs, list) or not all(isinstance(g, str) and g for g in globs):
            raise ManifestError(f"{where}: '{key}' must be a list of globs.")
    return ModelFolder(
        path=path,
        must_contain=tuple(must_contain),
        download=tuple(download),
        approx_size=_size(entry, "approx_size", where),
    )
