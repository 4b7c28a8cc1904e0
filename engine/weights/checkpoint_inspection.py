"""What a weights file or model folder is, read from its headers and keys, never its name.

Nothing here loads whole weights: safetensors headers are read and checked against the file
size, torch files are checked through their zip directory and listed with a memory map.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import CheckpointError, EngineError, first_line

MODEL_FILE = "dreamclear-model.json"
"""Marks a folder in our model-folder layout (engine.weights.components_io)."""
UPSCALER_FILE = "upscaler.json"
"""Marks a store folder holding one user upscaler file (engine.weights.upscaler_io)."""
CONVERTED_MARKER = "converted_from.json"
"""Written last into a converted transformer folder (engine.weights.official_checkpoint)."""
DIFFBIR_IN_CHANNELS = 192
TORCH_SUFFIXES = (".pth", ".ckpt", ".pt", ".bin")
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)


@dataclass(frozen=True)
class Recognised:
    """What `recognise` found a local file or folder to be."""

    name: str
    """Manifest name ("dreamclear", "swinir", ...) or "local" for our model-folder layout."""
    description: str


def recognise(path: Path) -> Recognised:
    """What a local file or folder is, read from its contents (keys, configs), not its name."""
    if path.is_dir():
        return _recognise_folder(path)
    shapes = {k.removeprefix("module."): v for k, v in checkpoint_shapes(path).items()}
    stripped = set(shapes)
    if any(k.startswith("base_model.") for k in stripped) and any(
        k.startswith(("controlnet_lq.", "am_lq.", "cross_de.")) for k in stripped
    ):
        return Recognised("dreamclear", "the DreamClear-1024 checkpoint")
    if {"x_embedder.proj.weight", "y_embedder.y_embedding"} <= stripped and any(
        k.startswith("blocks.0.attn.qkv") for k in stripped
    ):
        return Recognised("pixart-base", "the PixArt-alpha base checkpoint")
    # DiffBIR's remover unshuffles by 8 before its first conv (3 x 64 = 192 channels in);
    # a SwinIR super-resolution model (3 channels in) is a user's upscaler instead.
    if "conv_first.1.weight" in stripped or (
        tuple(shapes.get("conv_first.weight", ()))[1:2] == (DIFFBIR_IN_CHANNELS,)
        and any(".residual_group." in k for k in stripped)
    ):
        return Recognised("swinir", "a SwinIR restoration checkpoint")
    if any(k.startswith("model.diffusion_model.") for k in shapes) and any(
        k.startswith("conditioner.embedders.1.model.") for k in shapes
    ):
        return Recognised("sdxl-base", "an SDXL checkpoint in the original single-file layout")
    raise CheckpointError(
        f"{path} is not a checkpoint DreamClear Studio knows (DreamClear, PixArt, SwinIR, SDXL).",
        hint="import the official files from the hub repo shallowdream204/DreamClear",
    )


def _recognise_folder(path: Path) -> Recognised:
    if (path / MODEL_FILE).is_file():
        return Recognised("local", "a DreamClear Studio model folder")
    if (path / "model_index.json").is_file():
        from engine.weights.sdxl_import import check_sdxl_folder

        check_sdxl_folder(path)
        return Recognised("sdxl-base", "an SDXL base in diffusers layout")
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
    # GenIR's optional models (resources/models/manifest.toml); other architectures are
    # named in genir.toml by folder instead.
    genir = {"blip": "genir-captioner", "qwen2": "genir-llm", "qwen2_vl": "genir-judge"}
    if config.get("model_type") in genir:
        return Recognised(genir[config["model_type"]], f"a {config['model_type']} folder")
    raise CheckpointError(
        f"{path}: config.json describes {config.get('_class_name') or config.get('model_type')!r}, "
        "not a model DreamClear Studio uses.",
        hint="see `dreamclear models list` for the models it knows",
    )


def converted_marker(folder: Path) -> dict[str, Any] | None:
    """What a converted transformer folder was made from (`source`, `source_bytes`, `dtype`),
    or None unless the folder is complete: marker, config and every weight shard present."""
    try:
        marker = json.loads((folder / CONVERTED_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not (folder / "config.json").is_file():
        return None
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if not index.is_file():
        shards = {"diffusion_pytorch_model.safetensors"}
    else:
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
    return marker if all((folder / shard).is_file() for shard in shards) else None


def checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a checkpoint file, read without loading the tensors where
    possible."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        header = _safetensors_header(path)
        return {
            k: tuple(v.get("shape", ())) if isinstance(v, dict) else ()
            for k, v in header.items()
            if k != "__metadata__"
        }
    if suffix not in TORCH_SUFFIXES:
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
            f"code to unpickle): {first_line(exc)}",
            hint="download the file again",
        ) from None
    state = unwrap_state_dict(obj)
    if state is None:
        raise CheckpointError(f"{path} holds no state dict of tensors.")
    return {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}


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


def weight_and_config_files(folder: Path) -> Iterator[Path]:
    """The files `check_file_header` can check in a model folder (hub caches left out), or
    `folder` itself when it is a file."""
    if folder.is_file():
        yield folder
        return
    for path in sorted(folder.rglob("*")):
        if ".cache" in path.relative_to(folder).parts or not path.is_file():
            continue
        if path.suffix.lower() in (*WEIGHT_SUFFIXES, ".json"):
            yield path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({first_line(exc)}).") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object.")
    return data


def check_file_header(path: Path) -> str | None:
    """A problem with a weights/config file found from its header and size, or None."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            _safetensors_header(path)
        elif suffix in TORCH_SUFFIXES:
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
    if not isinstance(header, dict) or not all(
        _tensor_entry(value) for key, value in header.items() if key != "__metadata__"
    ):
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


def _tensor_entry(value: Any) -> bool:
    """Whether a safetensors header entry describes a tensor: dtype, shape, two offsets."""
    if not isinstance(value, dict) or not isinstance(value.get("dtype"), str):
        return False
    shape, offsets = value.get("shape"), value.get("data_offsets")
    return (
        isinstance(shape, list)
        and all(type(n) is int and n >= 0 for n in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(n) is int for n in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )


def _check_torch_file(path: Path) -> str | None:
    """Torch's zip format: the central directory sits at the end, so truncation shows. A
    legacy (pre-1.6) pickle has no such directory: it is proven by loading it the safe way."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            magic = f.read(2)
        if magic[:1] == b"\x80":
            return _check_legacy_pickle(path)
        return "not a PyTorch checkpoint (truncated or corrupt)"
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"member {info.filename} runs past the end of the file (truncated)"
    except (zipfile.BadZipFile, OSError) as exc:
        return f"unreadable ({first_line(exc)})"
    return None


def _check_legacy_pickle(path: Path) -> str | None:
    """A legacy pickle loads with `weights_only=True` (tensors and plain data, no code) and
    holds a state dict, or the problem; its whole content is read, there is no cheaper way."""
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        return (
            f"cannot be loaded safely (truncated, or it needs code to unpickle): {first_line(exc)}"
        )
    if unwrap_state_dict(obj) is None:
        return "holds no state dict of tensors"
    return None


@contextmanager
def checkpoint_errors(path: Path, what: str) -> Iterator[None]:
    """Loader failures on a file or folder as one CheckpointError naming it."""
    from safetensors import SafetensorError

    try:
        yield
    except EngineError:
        raise
    except (
        OSError,
        ValueError,
        RuntimeError,
        KeyError,
        TypeError,
        EOFError,
        pickle.UnpicklingError,
        SafetensorError,
    ) as exc:
        text = str(exc).strip().splitlines()
        raise CheckpointError(
            f"Cannot load {what} from {path}: {text[0] if text else type(exc).__name__}",
            hint="the file is corrupt, truncated or of another architecture: "
            "download or import it again",
        ) from None
