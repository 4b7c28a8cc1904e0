"""The model store: one folder per model, filled by hub downloads or local imports.

Layout (docs/model-folder.md):

    <root>/<name>/<path in the hub repo>    models of the manifest (files and folders)
    <root>/dreamclear/converted-<dtype>/     the converted transformer (safetensors)
    <root>/local/<name>/                     imported folders in our model-folder layout

Nothing here loads whole weights: status, verify and recognition read headers and keys.
Every failure a user can cause is an `EngineError` with a hint naming the command to run.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import logging
import os
import re
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import (
    BadSettingError,
    CheckpointError,
    EngineError,
    ModelNotInstalledError,
    OutputError,
)
from engine.weights.manifest import Manifest, ModelEntry, load_manifest

logger = logging.getLogger(__name__)

APP_FOLDER = "dreamclear-studio"
STORE_ENV = "DREAMCLEAR_MODEL_STORE"
STARTER_FOLDER = Path(__file__).resolve().parents[2] / "resources" / "models" / "starter"
LOCAL_FOLDER = "local"
MODEL_FILE = "dreamclear-model.json"
"""Marks a folder in our model-folder layout (engine.weights.components_io)."""

# Hub sizes are rounded to 3 significant digits, so a complete file is at least this share.
APPROX_SIZE_TOLERANCE = 0.99
DTYPES = ("bf16", "fp16", "fp32")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".ckpt", ".pt")
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
    """dtypes of the converted transformer present (dreamclear only)."""

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


@dataclass(frozen=True)
class DownloadProgress:
    """One progress update of a download; `total` is None while the size is unknown."""

    name: str
    description: str
    done: int
    total: int | None


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class Recognised:
    """What `recognise` found a local file or folder to be."""

    name: str
    """Manifest name ("dreamclear", "swinir", ...) or "local" for our model-folder layout."""
    description: str


class ModelStore:
    """The models on this machine; see the module docstring for the layout."""

    def __init__(self, root: str | Path | None = None, manifest: Manifest | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_root()
        self.manifest = manifest or load_manifest()

    # ------------------------------------------------------------------ status

    def model_dir(self, name: str) -> Path:
        entry = self.manifest.models.get(name)
        if entry is not None and entry.bundled:
            return STARTER_FOLDER
        if entry is not None:
            return self.root / name
        return self.root / LOCAL_FOLDER / _local_name(name)

    def local_names(self) -> list[str]:
        folder = self.root / LOCAL_FOLDER
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / MODEL_FILE).is_file())

    def status(self, name: str) -> ModelStatus:
        entry = self.manifest.models.get(name)
        if entry is None:
            return self._local_status(name)
        folder = self.model_dir(name)
        if entry.bundled:
            present = (folder / MODEL_FILE).is_file()
            return ModelStatus(
                name,
                "installed" if present else "missing",
                folder,
                _disk_size(folder) if present else 0,
                () if present else (MODEL_FILE,),
                entry,
            )
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
        converted = tuple(d for d in DTYPES if (folder / f"converted-{d}").is_dir())
        size = _disk_size(folder) if folder.exists() else 0
        return ModelStatus(name, status, path, size, tuple(missing), entry, converted)

    def _local_status(self, name: str) -> ModelStatus:
        folder = self.model_dir(name)
        if not (folder / MODEL_FILE).is_file():
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
        if _offline():
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
        assert entry.repo is not None
        import huggingface_hub

        folder = self.model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        tqdm_class = _progress_tqdm(name, progress) if progress else None
        with _hub_errors(name, entry.repo, self):
            for file in entry.files:
                huggingface_hub.hf_hub_download(
                    repo_id=entry.repo,
                    filename=file.path,
                    local_dir=folder,
                    tqdm_class=tqdm_class,
                )
            for sub in entry.folders:
                huggingface_hub.snapshot_download(
                    repo_id=entry.repo,
                    allow_patterns=list(sub.download),
                    local_dir=folder,
                    tqdm_class=tqdm_class,
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

    def import_path(self, name: str | None, path: str | Path, link: bool = False) -> ModelStatus:
        """Copy (or symlink) a local file or folder into the store after recognising it.

        `name` None or "auto" takes the kind found in the contents; a manifest name must agree
        with it; any other name imports a folder in our layout as a local model under that name.
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
        found = recognise(source)
        wanted = None if name in (None, "auto") else name
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
            for target in _weight_and_config_files(folder):
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

    def convert(self, name: str = "dreamclear", dtype: str = "bf16", force: bool = False) -> Path:
        """Convert the official DreamClear .pth once into a safetensors folder in the store."""
        if name != "dreamclear":
            raise BadSettingError(
                f"Only dreamclear is converted; {name} is used as it is.",
                hint="run `dreamclear models convert --dtype bf16`",
            )
        out_dir = self.converted_dir(dtype)
        if force and out_dir.exists():
            shutil.rmtree(out_dir)
        if (out_dir / "config.json").is_file():
            # Written atomically by the converter: present means complete; the .pth may be gone.
            return out_dir
        checkpoint = self.require("dreamclear")
        from engine.weights.official_checkpoint import convert_checkpoint_to_folder

        try:
            return Path(convert_checkpoint_to_folder(checkpoint, out_dir, torch_dtype(dtype)))
        except OSError as exc:
            raise OutputError(
                f"Cannot write the converted model to {out_dir}: {exc.strerror or exc}",
                hint="check free space and permissions of the store",
            ) from None


# ---------------------------------------------------------------- recognition


def recognise(path: Path) -> Recognised:
    """What a local file or folder is, read from its contents (keys, configs), not its name."""
    if path.is_dir():
        return _recognise_folder(path)
    keys = checkpoint_keys(path)
    stripped = {k.removeprefix("module.") for k in keys}
    if any(k.startswith("base_model.") for k in stripped) and any(
        k.startswith(("controlnet_lq.", "am_lq.", "cross_de.")) for k in stripped
    ):
        return Recognised("dreamclear", "the DreamClear-1024 checkpoint")
    if {"x_embedder.proj.weight", "y_embedder.y_embedding"} <= stripped and any(
        k.startswith("blocks.0.attn.qkv") for k in stripped
    ):
        return Recognised("pixart-base", "the PixArt-alpha base checkpoint")
    if "conv_first.1.weight" in stripped or (
        "conv_first.weight" in stripped and any(".residual_group." in k for k in stripped)
    ):
        return Recognised("swinir", "a SwinIR restoration checkpoint")
    raise CheckpointError(
        f"{path} is not a checkpoint DreamClear Studio knows (DreamClear, PixArt, SwinIR).",
        hint="import the official files from the hub repo shallowdream204/DreamClear",
    )


def _recognise_folder(path: Path) -> Recognised:
    if (path / MODEL_FILE).is_file():
        return Recognised("local", "a DreamClear Studio model folder")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(
            f"{path} has neither {MODEL_FILE} nor config.json: not a model folder.",
            hint="point at a diffusers VAE folder, a T5 folder or a DreamClear Studio model folder",
        )
    config = _read_json(config_path)
    if config.get("_class_name") == "AutoencoderKL":
        return Recognised("sd-vae", "a diffusers AutoencoderKL folder")
    if config.get("model_type") == "t5":
        return Recognised("t5-xxl", "a T5 encoder folder")
    if config.get("model_type") == "llava_next":
        return Recognised("llava", "a LLaVA-NeXT folder")
    raise CheckpointError(
        f"{path}: config.json describes {config.get('_class_name') or config.get('model_type')!r}, "
        "not a model DreamClear Studio uses.",
        hint="see `dreamclear models list` for the models it knows",
    )


def checkpoint_keys(path: Path) -> set[str]:
    """Tensor names of a checkpoint file, read without loading the tensors where possible."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return set(_safetensors_header(path)) - {"__metadata__"}
    if suffix not in (".pth", ".ckpt", ".pt", ".bin"):
        raise CheckpointError(
            f"{path}: unknown weights format '{suffix}'.",
            hint="expected .safetensors, .pth, .ckpt, .pt or .bin",
        )
    import pickle

    import torch

    try:
        try:
            # mmap: an 8.9 GB checkpoint is mapped, not read, to list its keys.
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path} cannot be read as a PyTorch checkpoint (corrupt, truncated, or it needs "
            f"code to unpickle): {_first_line(exc)}",
            hint="download the file again",
        ) from None
    state = unwrap_state_dict(obj)
    if state is None:
        raise CheckpointError(f"{path} holds no state dict of tensors.")
    return set(state)


def unwrap_state_dict(obj: Any) -> dict[str, Any] | None:
    """The tensor dict inside a checkpoint: itself, or under 'state_dict' / 'model' / 'params'."""
    for _ in range(2):
        if not isinstance(obj, dict):
            return None
        for key in ("state_dict", "model_state_dict", "params_ema", "params", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        else:
            break
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        return obj
    return None


# -------------------------------------------------------------------- headers


def check_file_header(path: Path) -> str | None:
    """A problem with a weights/config file found from its header and size, or None."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            _safetensors_header(path)
        elif suffix in (".pth", ".ckpt", ".pt", ".bin"):
            return _check_torch_file(path)
        elif suffix == ".json":
            _read_json(path)
    except CheckpointError as exc:
        return exc.message.replace(f"{path}: ", "").replace(f"{path} ", "")
    return None


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file's size."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{path}: too short to be safetensors (truncated).")
        (length,) = struct.unpack("<Q", raw)
        if length > min(size - 8, 100_000_000):
            raise CheckpointError(
                f"{path}: header length beyond the file (truncated or not safetensors)."
            )
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: unreadable safetensors header (corrupt).") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: unreadable safetensors header (corrupt).")
    end = max(
        (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
        default=0,
    )
    if 8 + length + end > size:
        raise CheckpointError(
            f"{path}: {size} bytes, but its header describes {8 + length + end} (truncated)."
        )
    return header


def _check_torch_file(path: Path) -> str | None:
    """Torch's zip format: the central directory sits at the end, so truncation shows."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            magic = f.read(2)
        if magic[:1] == b"\x80":
            return None  # legacy (pre-1.6) pickle: no cheap integrity check
        return "not a PyTorch checkpoint (truncated or corrupt)"
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"member {info.filename} runs past the end of the file (truncated)"
    except (zipfile.BadZipFile, OSError) as exc:
        return f"unreadable ({_first_line(exc)})"
    return None


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


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _folder_lacks(folder: Path, must_contain: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        return list(must_contain)
    names = [p.name for p in folder.iterdir()]
    return [
        spec
        for spec in must_contain
        if not any(fnmatch.filter(names, glob) for glob in spec.split("|"))
    ]


def _weight_and_config_files(folder: Path) -> Iterator[Path]:
    if folder.is_file():
        yield folder
        return
    for path in sorted(folder.rglob("*")):
        if ".cache" in path.relative_to(folder).parts or not path.is_file():
            continue
        if path.suffix.lower() in (*WEIGHT_SUFFIXES, ".json"):
            yield path


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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({_first_line(exc)}).") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object.")
    return data


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


def _progress_tqdm(name: str, progress: ProgressCallback):
    """A tqdm class that reports to `progress` instead of drawing a bar."""
    from tqdm.auto import tqdm

    class CallbackTqdm(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a logger name
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            progress(DownloadProgress(name, str(self.desc or ""), int(self.n), self.total))
            return shown

        def close(self) -> None:
            file = self.fp
            super().close()
            file.close()

    return CallbackTqdm


@contextmanager
def _hub_errors(name: str, repo: str, store: ModelStore) -> Iterator[None]:
    """Hub and network failures as EngineErrors: a hint, never a traceback."""
    from huggingface_hub import errors

    again = f"run `{store.command('download', name)}` again (it resumes)"
    try:
        yield
    except EngineError:
        raise
    except errors.GatedRepoError:
        raise ModelNotInstalledError(
            f"{repo} is gated: the hub wants you to accept its licence first.",
            hint=f"accept it on https://huggingface.co/{repo}, log in with `hf auth login`, then {again}",
        ) from None
    except errors.RepositoryNotFoundError:
        raise ModelNotInstalledError(
            f"The hub repository {repo} was not found (moved, private, or a typo in the manifest).",
            hint=f"import a local copy with `{store.command('import', 'PATH')}`",
        ) from None
    except errors.LocalEntryNotFoundError as exc:
        # The hub could not be reached and the file is not on disk yet.
        raise _network_error(name, exc, again) from None
    except errors.EntryNotFoundError as exc:
        raise ModelNotInstalledError(
            f"{repo} no longer has a file the manifest names: {_first_line(exc)}",
            hint=f"import a local copy with `{store.command('import', 'PATH')}`",
        ) from None
    except errors.OfflineModeIsEnabled:
        raise ModelNotInstalledError(
            f"Cannot download {name}: offline mode is on (HF_HUB_OFFLINE).",
            hint=f"unset HF_HUB_OFFLINE, then {again}",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutputError(
                f"The disk filled up while downloading {name}.",
                hint=f"free some space, then {again}",
            ) from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise OutputError(
                f"Cannot write to the store {store.root}: {exc.strerror}.",
                hint="choose another store with --store DIR",
            ) from None
        raise _network_error(name, exc, again) from None
    except Exception as exc:
        # httpx / requests transport errors differ across huggingface_hub versions.
        if _is_network_error(exc):
            raise _network_error(name, exc, again) from None
        raise


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(
        names & {"HTTPError", "TransportError", "ConnectionError", "TimeoutException"}
        or modules & {"httpx", "httpx2", "requests", "urllib3"}
    )


def _network_error(name: str, exc: BaseException, again: str) -> ModelNotInstalledError:
    return ModelNotInstalledError(
        f"Downloading {name} failed: {_first_line(exc)}",
        hint=f"check the network connection, then {again}",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _quote(text: str) -> str:
    return f"'{text}'" if any(c.isspace() for c in text) else text
