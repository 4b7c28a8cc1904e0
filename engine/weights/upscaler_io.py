"""Bring-your-own upscalers: a spandrel-supported super-resolution or restoration file.

A user's Real-ESRGAN, Compact, SwinIR, HAT, DAT... file works as `--model PATH`, or imported
into the store (`dreamclear models import FILE`, the app's "Import file…") as a local model:

    <store>/local/<name>/<the file, its name kept>
    <store>/local/<name>/upscaler.json     {"format": 1, "file", "architecture", "scale",
                                             "purpose", "source"}

The file is recognised by spandrel from its keys and tensor shapes (never its name); its
native scale is spandrel's `ModelDescriptor.scale`. Pickles are read with restricted
unpickling only (`engine.weights.spandrel_io`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import CheckpointError
from engine.weights.checkpoint_inspection import UPSCALER_FILE
from engine.weights.spandrel_io import SPANDREL_SUFFIXES, load_spandrel_file

FORMAT_VERSION = 1
USABLE_PURPOSES = ("SR", "Restoration")
"""spandrel purposes that map an RGB photo to an RGB photo (face restorers and inpainters need
other inputs)."""
_HINT = (
    "use a super-resolution or restoration model spandrel supports (Real-ESRGAN, Compact, "
    "SwinIR, HAT, DAT, ...) as .safetensors or .pth"
)


@dataclass(frozen=True)
class UpscalerInfo:
    """What an upscaler file is, as spandrel reads it."""

    architecture: str
    scale: int
    purpose: str
    parameters: int


def is_upscaler_file(path: Path) -> bool:
    """A weights file by its suffix (what it holds is checked on loading)."""
    return path.is_file() and path.suffix.lower() in SPANDREL_SUFFIXES


def upscaler_folder(path: Path) -> bool:
    return path.is_dir() and (path / UPSCALER_FILE).is_file()


def load_upscaler(path: Path, device: torch.device | str = "cpu", dtype=torch.float32):
    """The spandrel descriptor of an upscaler file (or store folder), on `device`.

    fp16/bf16 only where spandrel says the architecture supports them; fp32 otherwise.
    """
    path = _weights_file(path) if path.is_dir() else path
    descriptor = load_spandrel_file(path, "the upscaler", _HINT)
    _check_usable(path, descriptor)
    supported = (
        dtype == torch.float32
        or (dtype == torch.float16 and descriptor.supports_half)
        or (dtype == torch.bfloat16 and descriptor.supports_bfloat16)
    )
    return descriptor.to(device=torch.device(device), dtype=dtype if supported else torch.float32)


def describe(model: torch.nn.Module):
    """The spandrel descriptor of a network built in code (as if saved and loaded back)."""
    from spandrel import ModelLoader

    return ModelLoader().load_from_state_dict(model.state_dict()).eval()


def inspect_upscaler(path: Path) -> UpscalerInfo:
    """Architecture, native scale and purpose of an upscaler file; CheckpointError otherwise."""
    descriptor = load_spandrel_file(path, "the upscaler", _HINT)
    _check_usable(path, descriptor)
    return UpscalerInfo(
        architecture=descriptor.architecture.name,
        scale=int(descriptor.scale),
        purpose=descriptor.purpose,
        parameters=sum(p.numel() for p in descriptor.model.parameters()),
    )


def write_marker(folder: Path, file_name: str, info: UpscalerInfo, source: Path) -> None:
    """The upscaler.json of a store folder (written into a folder not yet renamed in place)."""
    marker: dict[str, Any] = {"format": FORMAT_VERSION, "file": file_name, **asdict(info)}
    marker["source"] = str(source)
    (folder / UPSCALER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def read_marker(folder: Path) -> dict[str, Any]:
    try:
        marker = json.loads((folder / UPSCALER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"Cannot read {folder / UPSCALER_FILE}: {exc}", hint="import the model file again"
        ) from None
    if not isinstance(marker, dict) or not isinstance(marker.get("file"), str):
        raise CheckpointError(
            f"{folder / UPSCALER_FILE} names no model file.", hint="import the model file again"
        )
    return marker


def upscaler_summary(folder: Path) -> str:
    """ "RealESRGAN Compact, x4 upscaler" from a store folder's marker (no weights loaded)."""
    try:
        marker = read_marker(folder)
    except CheckpointError:
        return "upscaler"
    return f"{marker.get('architecture', '?')}, x{marker.get('scale', '?')} upscaler"


def _weights_file(folder: Path) -> Path:
    name = read_marker(folder)["file"]
    path = folder / name
    if Path(name).name != name or not path.is_file():
        raise CheckpointError(
            f"{folder}: the upscaler file {name!r} is missing.", hint="import the model file again"
        )
    return path


def _check_usable(path: Path, descriptor) -> None:
    if descriptor.purpose not in USABLE_PURPOSES or (
        descriptor.input_channels,
        descriptor.output_channels,
    ) != (3, 3):
        raise CheckpointError(
            f"{path} is a {descriptor.architecture.name} model for {descriptor.purpose} with "
            f"{descriptor.input_channels} -> {descriptor.output_channels} channels, not a "
            "photo upscaler.",
            hint=_HINT,
        )
