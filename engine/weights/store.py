"""The model store: one folder per model, filled by hub downloads or local imports.

Layout (docs/model-folder.md):

    <root>/<name>/<path in the hub repo>    models of the manifest (files and folders)
    <root>/dreamclear/converted-<dtype>/     the converted transformer (safetensors)
    <root>/local/<name>/                     imported folders in our model-folder layout, or
                                             one user upscaler file + upscaler.json

Nothing here loads whole weights but a user's upscaler on import (small, and only spandrel
can tell what it is): status, verify and import read headers and keys
(`checkpoint_inspection`); downloads go through `hub`. Every failure a user can cause is an
`EngineError` with a hint naming the command to run.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dreamclear_studio_resources import resource_path
from engine.errors import BadSettingError, CheckpointError, ModelNotInstalledError, OutputError
from engine.weights.checkpoint_inspection import (
    MODEL_FILE,
    UPSCALER_FILE,
    check_file_header,
    converted_marker,
    recognise,
    weight_and_config_files,
)

# components_io imports it from here.
from engine.weights.checkpoint_inspection import unwrap_state_dict as unwrap_state_dict
from engine.weights.hub import ProgressCallback, download_model, offline
from engine.weights.manifest import Manifest, ModelEntry, load_manifest

logger = logging.getLogger(__name__)

APP_FOLDER = "dreamclear-studio"
STORE_ENV = "DREAMCLEAR_MODEL_STORE"
BUNDLED_MODELS = resource_path("models")
"""Models that ship with the app, one folder per manifest name."""
STARTER_FOLDER = BUNDLED_MODELS / "starter"
LOCAL_FOLDER = "local"

# Hub sizes are rounded to 3 significant digits, so a complete file is at least this share.
APPROX_SIZE_TOLERANCE = 0.99
DTYPES = ("bf16", "fp16", "fp32")
_TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
SDXL_BASE = "sdxl-base"
"""GenIR's base: imported as a diffusers folder, or converted from a single file."""
CONVERTED_MODEL = "dreamclear"
"""The one model whose source is converted; a verified conversion is all a restore needs."""
_LOCAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Status = Literal["installed", "partial", "missing"]


def default_root() -> Path:
    """$DREAMCLEAR_MODEL_STORE, else the platform's per-user data folder + /models."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        # Local, not roaming: gigabytes of weights must not follow a profile around.
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / APP_FOLDER / "models"


@dataclass(frozen=True)
class ModelStatus:
    """Where a model stands in the store."""

    name: str
    status: Status
    path: Path
    """The file or folder the model is used from (the model's store folder for multi-part ones)."""
    size_on_disk: int
    missing: tuple[str, ...] = ()
    """Parts not found (paths relative to the model's store folder)."""
    entry: ModelEntry | None = None
    """The manifest entry; None for a local model folder."""
    converted: tuple[str, ...] = ()
    """dtypes of the verified converted transformer present (dreamclear only)."""
    source_present: bool = True
    """False when the model is installed as its conversion only (the source was removed)."""

    @property
    def installed(self) -> bool:
        return self.status == "installed"


@dataclass
class VerifyReport:
    name: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class ModelStore:
    """The models on this machine; see the module docstring for the layout."""

    def __init__(self, root: str | Path | None = None, manifest: Manifest | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_root()
        self.manifest = manifest or load_manifest()

    # ------------------------------------------------------------------ status

    def model_dir(self, name: str) -> Path:
        entry = self.manifest.models.get(name)
        if entry is not None and entry.bundled:
            return BUNDLED_MODELS / name
        if entry is not None:
            return self.root / name
        return self.root / LOCAL_FOLDER / _local_name(name)

    def local_names(self) -> list[str]:
        folder = self.root / LOCAL_FOLDER
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if _local_model(p))

    def status(self, name: str) -> ModelStatus:
        entry = self.manifest.models.get(name)
        if entry is None:
            return self._local_status(name)
        folder = self.model_dir(name)
        missing: list[str] = []
        found = 0
        for file in entry.files:
            if (folder / file.path).is_file():
                found += 1
            else:
                missing.append(file.path)
        for sub in entry.folders:
            lacking = _folder_lacks(folder / sub.path, sub.must_contain)
            found += len(sub.must_contain) - len(lacking)
            missing += [f"{sub.path}/{g}" if sub.path else g for g in lacking]
        status: Status = "installed" if not missing else ("partial" if found else "missing")
        if len(entry.files) + len(entry.folders) == 1:
            part = entry.files[0].path if entry.files else entry.folders[0].path
            path = folder / part
        else:
            path = folder
        converted = self.converted_dtypes() if name == CONVERTED_MODEL else ()
        source_present = not missing
        if converted and not source_present:
            # A verified conversion is all a restore needs: the source may have been removed.
            status, path, missing = "installed", self.converted_dir(converted[0]), []
        size = _disk_size(folder) if folder.exists() else 0
        return ModelStatus(
            name, status, path, size, tuple(missing), entry, converted, source_present
        )

    def converted_dtypes(self) -> tuple[str, ...]:
        """The dtypes DreamClear is converted to, complete and made in that dtype."""
        return tuple(
            d
            for d in DTYPES
            if (marker := converted_marker(self.converted_dir(d))) is not None
            and marker.get("dtype") == _TORCH_NAMES[d]
        )

    def _local_status(self, name: str) -> ModelStatus:
        folder = self.model_dir(name)
        if not _local_model(folder):
            raise BadSettingError(
                f"Unknown model '{name}': not in the manifest and not a local model in {self.root}.",
                hint=f"known models: {', '.join([*self.manifest.models, *self.local_names()])}",
            )
        return ModelStatus(name, "installed", folder, _disk_size(folder))

    def installed(self) -> list[ModelStatus]:
        """Status of every manifest model, then of every local model folder."""
        return [self.status(n) for n in [*self.manifest.models, *self.local_names()]]

    def is_installed(self, name: str) -> bool:
        try:
            return self.status(name).installed
        except BadSettingError:
            return False

    def path_of(self, name: str) -> Path:
        """The file or folder to load `name` from (present or not)."""
        return self.status(name).path

    def require(self, name: str) -> Path:
        """The path of an installed model; ModelNotInstalledError naming the command otherwise."""
        status = self.status(name)
        if status.installed:
            return status.path
        entry = status.entry
        title = f"{name} ({entry.title})" if entry else name
        if entry is not None and entry.bundled:
            raise ModelNotInstalledError(
                f"The bundled model {title} is not part of this build.",
                hint="reinstall DreamClear Studio, or use `dreamclear models download dreamclear`",
            )
        lacking = ", ".join(status.missing)
        raise ModelNotInstalledError(
            f"The model {title} is {'incomplete' if status.status == 'partial' else 'not installed'}"
            f": missing {lacking} in {status.path if status.path.is_dir() else status.path.parent}.",
            hint=f"run `{self.command('download', name)}` "
            f"or `{self.command('import', 'PATH')}` with a local copy",
        )

    def command(self, *words: str) -> str:
        """The exact `dreamclear models ...` command line for this store."""
        store = "" if self.root == default_root() else f" --store {_quote(str(self.root))}"
        return f"dreamclear models{store} {' '.join(words)}"

    # ---------------------------------------------------------------- download

    def prepare_download(self, name: str) -> ModelEntry:
        """The checks `download` makes before touching the network (also for a CLI's preamble)."""
        entry = self.manifest.get(name)
        if entry.bundled or entry.repo is None:
            raise BadSettingError(
                f"{name} ships with the app and is not downloaded.",
                hint="reinstall DreamClear Studio if it is missing",
            )
        if offline():
            raise ModelNotInstalledError(
                f"Cannot download {name}: offline mode is on (HF_HUB_OFFLINE).",
                hint=f"unset HF_HUB_OFFLINE and run `{self.command('download', name)}` again, "
                f"or import a local copy with `{self.command('import', 'PATH')}`",
            )
        self._check_free_space(entry, self.model_dir(name))
        return entry

    def download(self, name: str, progress: ProgressCallback | None = None) -> ModelStatus:
        """Fetch a manifest model from the hub into the store (resumable: partial files are kept
        by huggingface_hub and continued on the next call)."""
        entry = self.prepare_download(name)
        download_model(
            entry,
            self.model_dir(name),
            progress,
            download_command=self.command("download", name),
            import_command=self.command("import", "PATH"),
        )
        status = self.status(name)
        if not status.installed:
            raise ModelNotInstalledError(
                f"Downloaded {name} from {entry.repo}, but {', '.join(status.missing)} "
                "did not arrive: the repository layout may have changed.",
                hint=f"report this, or import a local copy with `{self.command('import', 'PATH')}`",
            )
        return status

    def _check_free_space(self, entry: ModelEntry, folder: Path) -> None:
        expected = entry.approx_size
        if expected is None:
            return
        existing = folder if folder.exists() else self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        needed = expected - (_disk_size(folder) if folder.exists() else 0)
        free = shutil.disk_usage(existing).free
        if needed > free:
            raise OutputError(
                f"Not enough disk space for {entry.name}: about {human_size(needed)} needed, "
                f"{human_size(free)} free in {existing}.",
                hint=f"free some space, or choose another store with --store DIR (or ${STORE_ENV})",
            )

    # ------------------------------------------------------------------ import

    def import_path(
        self,
        name: str | None,
        path: str | Path,
        link: bool = False,
        config: str | Path | None = None,
    ) -> ModelStatus:
        """Copy (or symlink) a local file or folder into the store after recognising it.

        `name` None or "auto" takes the kind found in the contents; a manifest name must agree
        with it; any other name imports a folder in our layout as a local model under that name.
        A single-file SDXL checkpoint is converted to diffusers layout instead, configured by
        `config` (engine.weights.sdxl_import).
        """
        source = Path(path).expanduser()
        if not source.exists():
            raise BadSettingError(f"{source} does not exist.", hint="check the path")
        source = source.resolve()
        root = self.root.resolve() if self.root.exists() else self.root.absolute()
        if source == root or root in source.parents:
            raise BadSettingError(
                f"{source} is already inside the model store {root}.",
                hint=f"see `{self.command('list')}`",
            )
        wanted = None if name in (None, "auto") else name
        try:
            found = recognise(source)
        except CheckpointError as unknown:
            if not source.is_file():
                raise
            return self._import_upscaler(wanted, source, root, link, unknown)
        if found.name == "local":
            target_name = _local_name(wanted or source.name)
            if target_name in self.manifest.models:
                raise BadSettingError(
                    f"{source} is a DreamClear Studio model folder; '{target_name}' is "
                    "reserved for a model of the manifest.",
                    hint="choose another name with --name NAME",
                )
            destination = self.root / LOCAL_FOLDER / target_name
        else:
            if wanted is not None and wanted != found.name:
                raise BadSettingError(
                    f"{source} looks like {found.description}, not '{wanted}'.",
                    hint=f"import it as {found.name} (leave out --name)",
                )
            target_name = found.name
            if target_name == SDXL_BASE and source.is_file():
                return self._convert_sdxl(source, root, link, config)
            destination = self._destination_for(found.name, source)
        _check_inside(destination, root)
        if destination.exists() or destination.is_symlink():
            raise OutputError(
                f"{target_name} already has {destination}.",
                hint=f"remove it first with `{self.command('remove', target_name)}`",
            )
        _place(source, destination, link)
        logger.info("imported %s as %s -> %s", source, target_name, destination)
        return self.status(target_name)

    def _convert_sdxl(
        self, source: Path, root: Path, link: bool, config: str | Path | None
    ) -> ModelStatus:
        from engine.weights.sdxl_import import convert_sdxl_single_file

        if link:
            raise BadSettingError(
                f"{source} is a single-file SDXL: it is converted into the store, not linked.",
                hint="leave out --link",
            )
        destination = self.model_dir(SDXL_BASE)
        _check_inside(destination, root)
        if destination.exists() or destination.is_symlink():
            raise OutputError(
                f"{SDXL_BASE} already has {destination}.",
                hint=f"remove it first with `{self.command('remove', SDXL_BASE)}`",
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        config_path = Path(config).expanduser() if config is not None else None
        convert_sdxl_single_file(source, destination, config_path)
        return self.status(SDXL_BASE)

    def _import_upscaler(
        self, name: str | None, source: Path, root: Path, link: bool, unknown: CheckpointError
    ) -> ModelStatus:
        """A file no manifest model matches, imported as a local upscaler when spandrel knows it
        (copied, or linked, into local/<name>/ beside its upscaler.json)."""
        from engine.weights.spandrel_io import UnsafePickleError
        from engine.weights.upscaler_io import inspect_upscaler, write_marker

        try:
            info = inspect_upscaler(source)
        except UnsafePickleError:
            raise
        except CheckpointError as error:
            raise CheckpointError(
                f"{source} is neither a checkpoint DreamClear Studio knows (DreamClear, PixArt, "
                f"SwinIR) nor an upscaler spandrel recognises ({error.message})",
                hint=unknown.hint,
            ) from None
        target_name = _local_name(name or source.stem)
        if target_name in self.manifest.models:
            raise BadSettingError(
                f"'{target_name}' is reserved for a model of the manifest.",
                hint="choose another name with --name NAME",
            )
        destination = self.root / LOCAL_FOLDER / target_name
        _check_inside(destination, root)
        if destination.exists() or destination.is_symlink():
            raise OutputError(
                f"{target_name} already has {destination}.",
                hint=f"remove it first with `{self.command('remove', target_name)}`",
            )
        # Built beside its place and renamed in: a half-imported model is never listed.
        work = destination.with_name(f".{destination.name}.partial")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _place(source, work / source.name, link)
        write_marker(work, source.name, info, source)
        work.rename(destination)
        logger.info(
            "imported %s as upscaler %s (%s x%d)",
            source,
            target_name,
            info.architecture,
            info.scale,
        )
        return self.status(target_name)

    def _destination_for(self, name: str, source: Path) -> Path:
        entry = self.manifest.get(name)
        folder = self.model_dir(name)
        if source.is_file():
            if not entry.files:
                raise BadSettingError(f"{name} is a folder model; {source} is a single file.")
            return folder / entry.files[0].path
        if not entry.folders:
            raise BadSettingError(f"{name} is a single-file model; {source} is a folder.")
        sub = entry.folders[0].path
        if not sub:
            # The repo root is the model: the model's store folder itself.
            return folder
        return folder / sub

    # ------------------------------------------------------------------ verify

    def verify(self, name: str) -> VerifyReport:
        """Files present, sizes as the manifest says, headers readable; nothing fully loaded."""
        status = self.status(name)
        report = VerifyReport(name)
        report.problems += [f"missing: {m}" for m in status.missing]
        entry = status.entry
        folder = status.path if entry is None else self.model_dir(name)
        if entry is not None:
            for file in entry.files:
                target = folder / file.path
                if not target.is_file():
                    continue
                size = target.stat().st_size
                if file.size is not None and size != file.size:
                    report.problems.append(
                        f"{file.path}: {size} bytes, expected {file.size} (incomplete or changed)"
                    )
                elif (
                    file.approx_size is not None and size < file.approx_size * APPROX_SIZE_TOLERANCE
                ):
                    report.problems.append(
                        f"{file.path}: {human_size(size)}, expected about "
                        f"{human_size(file.approx_size)} (truncated?)"
                    )
        if folder.exists():
            for target in weight_and_config_files(folder):
                report.checked.append(
                    str(target.relative_to(folder) if folder.is_dir() else target.name)
                )
                problem = check_file_header(target)
                if problem:
                    report.problems.append(f"{report.checked[-1]}: {problem}")
        return report

    # ------------------------------------------------------------ remove/convert

    def remove(self, name: str) -> int:
        """Delete a model from the store; returns the bytes freed. Linked sources are kept."""
        status = self.status(name)
        if status.entry is not None and status.entry.bundled:
            raise BadSettingError(f"{name} ships with the app and cannot be removed.")
        folder = self.model_dir(name)
        _check_inside(folder, self.root.resolve() if self.root.exists() else self.root)
        if not folder.exists() and not folder.is_symlink():
            raise ModelNotInstalledError(
                f"{name} is not in the store {self.root}.", hint=f"see `{self.command('list')}`"
            )
        freed = _disk_size(folder, follow_links=False)
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
        return freed

    def converted_dir(self, dtype: str) -> Path:
        return self.model_dir("dreamclear") / f"converted-{_check_dtype(dtype)}"

    def source_path(self) -> Path:
        """Where DreamClear's official checkpoint is (present or not)."""
        entry = self.manifest.get(CONVERTED_MODEL)
        return self.model_dir(CONVERTED_MODEL) / entry.files[0].path

    def convert(self, name: str = "dreamclear", dtype: str = "bf16", force: bool = False) -> Path:
        """The converted DreamClear transformer in `dtype`, converting the official .pth once.

        A verified conversion is used without the .pth. Without the .pth and a conversion in
        another dtype, ModelNotInstalledError says which dtypes are there: never a fallback."""
        if name != CONVERTED_MODEL:
            raise BadSettingError(
                f"Only dreamclear is converted; {name} is used as it is.",
                hint="run `dreamclear models convert --dtype bf16`",
            )
        out_dir = self.converted_dir(dtype)
        source = self.source_path()
        if force and out_dir.exists() and source.is_file():
            shutil.rmtree(out_dir)
        if not force and dtype in self.converted_dtypes():
            return out_dir
        if not source.is_file():
            self._explain_missing_source(dtype)
        from engine.weights.official_checkpoint import convert_checkpoint_to_folder

        try:
            return Path(convert_checkpoint_to_folder(source, out_dir, torch_dtype(dtype)))
        except OSError as exc:
            raise OutputError(
                f"Cannot write the converted model to {out_dir}: {exc.strerror or exc}",
                hint="check free space and permissions of the store",
            ) from None

    def _explain_missing_source(self, dtype: str) -> None:
        there = self.converted_dtypes()
        if not there:
            self.require(CONVERTED_MODEL)  # raises, naming the download/import commands
        others = " and ".join(there)
        raise ModelNotInstalledError(
            f"DreamClear is converted to {others} only, and {self.source_path().name}, needed "
            f"to convert it to {dtype}, was removed.",
            hint=f"use --dtype {there[0]}, or get the source again "
            f"(`{self.command('download', CONVERTED_MODEL)}` or "
            f"`{self.command('import', 'PATH')}`) and run "
            f"`{self.command('convert', '--dtype', dtype)}`",
        )

    def remove_source(self) -> int:
        """Delete DreamClear's official .pth once a verified conversion exists; returns the bytes
        freed (none for a link: the linked file is kept)."""
        source = self.source_path()
        if not self.converted_dtypes():
            raise BadSettingError(
                f"{source.name} is not removed: DreamClear has no verified conversion yet.",
                hint=f"run `{self.command('convert', '--dtype', 'bf16')}` first",
            )
        if source.is_symlink():
            source.unlink()
            return 0
        if not source.is_file():
            return 0
        freed = source.stat().st_size
        source.unlink()
        logger.info("removed %s (converted: %s)", source, ", ".join(self.converted_dtypes()))
        return freed


# ----------------------------------------------------------------------- helpers


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def torch_dtype(dtype: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        _check_dtype(dtype)
    ]


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise BadSettingError(f"Unknown dtype {dtype!r}.", hint=f"use one of {', '.join(DTYPES)}")
    return dtype


def _local_name(name: str) -> str:
    if not _LOCAL_NAME.match(name) or name in (".", ".."):
        raise BadSettingError(
            f"{name!r} cannot name a model: use letters, digits, '.', '_' and '-'.",
            hint="pass --name NAME",
        )
    return name


def _local_model(folder: Path) -> bool:
    """A local folder in our model-folder layout, or holding a user's upscaler."""
    return (folder / MODEL_FILE).is_file() or (folder / UPSCALER_FILE).is_file()


def _folder_lacks(folder: Path, must_contain: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        return list(must_contain)
    names = [p.name for p in folder.iterdir()]
    return [
        spec
        for spec in must_contain
        if not any(fnmatch.filter(names, glob) for glob in spec.split("|"))
    ]


def _disk_size(path: Path, follow_links: bool = True) -> int:
    try:
        if path.is_file():
            return path.stat().st_size if follow_links or not path.is_symlink() else 0
        total = 0
        for p in path.rglob("*"):
            if p.is_symlink() and not follow_links:
                continue
            if p.is_file():
                total += p.stat().st_size
        return total
    except OSError:
        return 0


def _check_inside(destination: Path, root: Path) -> None:
    resolved_root = root.resolve()
    parent = destination.parent.resolve()
    if parent != resolved_root and resolved_root not in parent.parents:
        raise BadSettingError(f"Refusing to write {destination}: it is outside the store {root}.")


def _place(source: Path, destination: Path, link: bool) -> None:
    """Copy (to a temporary name, then rename: no half copies) or symlink into the store."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if link:
        destination.symlink_to(source, target_is_directory=source.is_dir())
        return
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        if partial.exists():
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copy2(source, partial)
        partial.rename(destination)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(
            missing_ok=True
        )
        no_space = exc.errno == errno.ENOSPC
        raise OutputError(
            f"Cannot copy {source} into the store: {exc.strerror or exc}",
            hint="free some space or use --link"
            if no_space
            else "check permissions, or use --link",
        ) from None


def _quote(text: str) -> str:
    return f"'{text}'" if any(c.isspace() for c in text) else text
