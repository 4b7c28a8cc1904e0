"""Save and load `RestoreComponents`: our model-folder layout, or the official files in the store.

Our layout (docs/model-folder.md):

    dreamclear-model.json      format, version, dtype, which components
    transformer/               DreamClearTransformer2DModel.save_pretrained (safetensors)
    vae/                       diffusers AutoencoderKL.save_pretrained
    text_encoder/, tokenizer/  transformers T5EncoderModel / tokenizer save_pretrained
    remover/model.safetensors  a state dict spandrel recognises (loaded back through spandrel)

A fixed caption is kept in dreamclear-model.json; a model captioner (LLaVA) is not part of a
model folder: it is picked per job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.errors import BadSettingError, CheckpointError, OutputError

# Where other modules import it from: it moved beside the other file inspection helpers.
from engine.weights.checkpoint_inspection import checkpoint_errors as checkpoint_errors
from engine.weights.store import MODEL_FILE, ModelStore

if TYPE_CHECKING:
    from engine.pipelines.components import RestoreComponents

FORMAT_NAME = "dreamclear-model"
FORMAT_VERSION = 1
REMOVER_FILE = "remover/model.safetensors"
VAE_DTYPE = torch.float32
"""The SD VAE overflows in fp16 and is cheap next to the transformer: always fp32."""

TEXT_ENCODER_DEVICE = torch.device("cpu")
"""T5 encodes on the CPU whatever the restore's device: T5-XXL's encoder is 9.5 GB in bf16,
more than twice the DreamClear transformer, and it runs once per caption (cached per caption,
engine/models/text_encoder.py), so keeping it off the GPU is what fits a 12-16 GB card."""

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


# ------------------------------------------------------------------------- save


def save_components(components: RestoreComponents, folder: str | Path) -> Path:
    """Write `components` to a new folder in our layout; refuses to overwrite a non-empty one."""
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"{folder} already exists and is not empty.", hint="choose a new folder")
    dtype = components.transformer.dtype
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        components.transformer.save_pretrained(work / "transformer", safe_serialization=True)
        components.vae.save_pretrained(work / "vae", safe_serialization=True)
        components.text_encoder.model.save_pretrained(work / "text_encoder")
        components.text_encoder.tokenizer.save_pretrained(work / "tokenizer")
        remover = None
        if components.remover is not None:
            remover = {"file": REMOVER_FILE, **_save_remover(components.remover, work)}
        description = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "dtype": _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch.")),
            "components": {
                "transformer": {"folder": "transformer"},
                "vae": {"folder": "vae"},
                "text_encoder": {
                    "folder": "text_encoder",
                    "tokenizer": "tokenizer",
                    "max_length": components.text_encoder.max_length,
                },
                "remover": remover,
                "captioner": _captioner_description(components.captioner),
            },
        }
        (work / MODEL_FILE).write_text(json.dumps(description, indent=2) + "\n", "utf-8")
        if folder.exists():
            folder.rmdir()
        work.rename(folder)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the model folder {folder}: {exc.strerror or exc}",
            hint="check free space and permissions",
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _captioner_description(captioner: Any) -> dict[str, Any] | None:
    """A fixed caption is kept with the folder; a model captioner (LLaVA) is chosen per job."""
    from engine.models.captioners import FixedCaptioner

    if isinstance(captioner, FixedCaptioner):
        return {"kind": "fixed", "text": captioner.text}
    return None


def _save_remover(remover: nn.Module, folder: Path) -> dict[str, Any]:
    """Save a spandrel-loadable state dict, checking that spandrel rebuilds the same model."""
    from safetensors.torch import save_file
    from spandrel import ModelLoader, UnsupportedModelError

    state = {k: v.detach().cpu().contiguous().clone() for k, v in remover.state_dict().items()}
    if getattr(remover, "start_unshuffle", 1) > 1 and "conv_first.weight" in state:
        # spandrel's SwinIR folds DiffBIR's Sequential(PixelUnshuffle, Conv2d) into one conv;
        # only the original `conv_first.1.*` names tell it the unshuffle factor again.
        state["conv_first.1.weight"] = state.pop("conv_first.weight")
        state["conv_first.1.bias"] = state.pop("conv_first.bias")
    try:
        rebuilt = ModelLoader().load_from_state_dict(dict(state)).model
    except UnsupportedModelError:
        raise BadSettingError(
            f"The remover ({type(remover).__name__}) is not an architecture spandrel knows, "
            "so it cannot be saved in a model folder.",
            hint="use a spandrel-supported restoration model (SwinIR, ...)",
        ) from None
    expected = {k: tuple(v.shape) for k, v in remover.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if type(rebuilt) is not type(remover) or expected != got:
        raise BadSettingError(
            f"spandrel would load the saved remover as a different model "
            f"({type(rebuilt).__name__}), so it cannot be saved in a model folder."
        )
    (folder / REMOVER_FILE).parent.mkdir(parents=True)
    save_file(state, folder / REMOVER_FILE)
    return {"architecture": type(remover).__name__}


# ------------------------------------------------------------------------- load


def load_components(
    spec: str | Path,
    store: ModelStore | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> RestoreComponents:
    """Build `RestoreComponents` from "dreamclear" (the official files in the store, converting
    the transformer once), the name of a local model in the store, or a PATH to a model folder.

    `dtype` applies to the transformer, text encoder and (where spandrel allows) the remover;
    the VAE stays fp32. None keeps a model folder's saved dtype (bf16 for "dreamclear").
    """
    store = store or ModelStore()
    spec_text = str(spec)
    if spec_text == "dreamclear":
        return _load_official(store, torch.device(device), dtype or torch.bfloat16)
    if spec_text in store.manifest.models and spec_text != "starter":
        raise BadSettingError(
            f"'{spec_text}' is one part of a model, not a whole restorer.",
            hint="use dreamclear, starter or a PATH to a model folder",
        )
    path = Path(spec_text).expanduser()
    if not path.exists():
        if spec_text == "starter" or spec_text in store.local_names():
            path = store.require(spec_text)
        else:
            raise BadSettingError(
                f"{spec_text!r} is neither dreamclear, an installed local model nor a folder.",
                hint=f"see `{store.command('list')}`",
            )
    return load_model_folder(path, torch.device(device), dtype)


def read_model_file(folder: Path) -> dict[str, Any]:
    """The checked contents of a folder's dreamclear-model.json."""
    path = folder / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} is not a DreamClear Studio model folder (no {MODEL_FILE}).",
            hint="create one with `dreamclear models create-tiny PATH`, or use --model dreamclear",
        )
    try:
        description = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is unreadable: {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a {FORMAT_NAME} description.")
    version = description.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version!r}; this build reads up to {FORMAT_VERSION}.",
            hint="update DreamClear Studio",
        )
    parts = description.get("components")
    if not isinstance(parts, dict) or not all(
        isinstance(parts.get(k), dict) for k in ("transformer", "vae", "text_encoder")
    ):
        raise CheckpointError(f"{path}: 'components' must describe transformer, vae, text_encoder.")
    return description


def load_model_folder(
    folder: Path, device: torch.device, dtype: torch.dtype | None = None
) -> RestoreComponents:
    from engine.pipelines.components import RestoreComponents

    description = read_model_file(folder)
    parts = description["components"]
    if dtype is None:
        dtype = getattr(torch, str(description.get("dtype", "float32")), torch.float32)
        if not isinstance(dtype, torch.dtype):
            dtype = torch.float32
    text = parts["text_encoder"]
    remover = parts.get("remover")
    return RestoreComponents(
        transformer=_load_transformer(
            _inside(folder, parts["transformer"]["folder"]), device, dtype
        ),
        vae=_load_vae(_inside(folder, parts["vae"]["folder"]), device),
        text_encoder=_load_text_encoder(
            _inside(folder, text["folder"]),
            _inside(folder, text.get("tokenizer", text["folder"])),
            TEXT_ENCODER_DEVICE,
            dtype,
            int(text.get("max_length", 120)),
        ),
        remover=_load_remover(_inside(folder, remover["file"]), device, dtype) if remover else None,
        captioner=_load_captioner(parts.get("captioner")),
    )


def _load_captioner(description: Any):
    from engine.models.captioners import FixedCaptioner

    if isinstance(description, dict) and description.get("kind") == "fixed":
        return FixedCaptioner(str(description.get("text", "")))
    return None


def _load_official(
    store: ModelStore, device: torch.device, dtype: torch.dtype
) -> RestoreComponents:
    from engine.pipelines.components import RestoreComponents

    # Check every part first, so one message lists what is missing before any slow work.
    paths = {name: store.require(name) for name in ("dreamclear", "swinir", "sd-vae", "t5-xxl")}
    dtype_name = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[dtype]
    converted = store.convert("dreamclear", dtype_name)
    if not (converted / "config.json").is_file() and (converted / "transformer").is_dir():
        converted = converted / "transformer"
    return RestoreComponents(
        transformer=_load_transformer(converted, device, dtype),
        vae=_load_vae(paths["sd-vae"], device),
        text_encoder=_load_text_encoder(
            paths["t5-xxl"], paths["t5-xxl"], TEXT_ENCODER_DEVICE, dtype
        ),
        remover=_load_remover(paths["swinir"], device, dtype),
        captioner=None,
    )


def _load_transformer(path: Path, device: torch.device, dtype: torch.dtype):
    from engine.models.dreamclear_transformer import DreamClearTransformer2DModel

    with checkpoint_errors(path, "the DreamClear transformer"):
        model = _from_pretrained_strict(DreamClearTransformer2DModel, path, dtype, device)
    return _own_memory(model.to(device)).eval()


def _load_vae(path: Path, device: torch.device):
    from diffusers import AutoencoderKL

    with checkpoint_errors(path, "the VAE"):
        vae = _from_pretrained_strict(AutoencoderKL, path, VAE_DTYPE, device)
    return _own_memory(vae.to(device)).eval()


def _from_pretrained_strict(
    model_class: Any, path: Path, dtype: torch.dtype, device: torch.device | None = None
):
    """diffusers' from_pretrained, refusing a folder of another class or with missing weights.

    diffusers ignores unknown config keys and only warns about weights it had to initialise,
    which would turn a wrong or incomplete folder into a silently random model. On a GPU the
    weights go from the memory-mapped safetensors file onto the device tensor by tensor
    (`device_map`), so no whole CPU copy is made on the way.
    """
    config_file = path / "config.json"
    try:
        declared = json.loads(config_file.read_text()).get("_class_name")
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"Cannot read {config_file}: {exc}", hint="download or import the model again"
        ) from None
    if declared != model_class.__name__:
        raise CheckpointError(
            f"{path} holds a {declared or 'unknown model'}, not a {model_class.__name__}",
            hint="the model folder is mixed up: download or import it again",
        )
    placement = {"device_map": {"": device}} if device is not None and device.type != "cpu" else {}
    model, info = model_class.from_pretrained(
        path, torch_dtype=dtype, output_loading_info=True, **placement
    )
    missing = info.get("missing_keys") or []
    if missing:
        raise CheckpointError(
            f"{path} lacks {len(missing)} weights of {model_class.__name__} (e.g. {missing[0]})",
            hint="the weights file is incomplete or of another architecture",
        )
    return model


def _load_text_encoder(
    model_path: Path,
    tokenizer_path: Path,
    device: torch.device,
    dtype: torch.dtype,
    max_length: int = 120,
):
    from transformers import AutoTokenizer, T5EncoderModel

    from engine.models.text_encoder import T5CaptionEncoder

    with checkpoint_errors(tokenizer_path, "the T5 tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    with checkpoint_errors(model_path, "the T5 encoder"):
        model = T5EncoderModel.from_pretrained(model_path, torch_dtype=dtype)
    return T5CaptionEncoder(tokenizer, _own_memory(model.to(device)).eval(), max_length=max_length)


def _load_remover(path: Path, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """A spandrel model from safetensors, or from a .pth/.ckpt with restricted unpickling."""
    from engine.weights.spandrel_io import load_spandrel_file

    if not path.is_file():
        raise CheckpointError(f"The remover file {path} is missing.", hint="reinstall the model")
    descriptor = load_spandrel_file(
        path,
        "the degradation remover",
        hint="use a SwinIR checkpoint (general_swinir_v1.ckpt) or another spandrel-supported model",
    )
    # spandrel's SwinIR builds its shifted-window mask in fp32 for every size but the one it
    # was built for, and that mask then meets bf16/fp16 values and fails; the published
    # remover has 16 M parameters, so fp32 costs 60 MB.
    half_safe = descriptor.architecture.id != "SwinIR"
    supported = dtype == torch.float32 or (
        half_safe
        and (
            (dtype == torch.float16 and descriptor.supports_half)
            or (dtype == torch.bfloat16 and descriptor.supports_bfloat16)
        )
    )
    model = descriptor.model.to(device=device, dtype=dtype if supported else torch.float32)
    return model.eval()


def _own_memory(model: nn.Module) -> nn.Module:
    """Copy CPU tensors out of the memory-mapped safetensors file they may still view.

    The mapping keeps the file open (Windows then refuses to delete or replace it) and its
    tensors are not 64-byte aligned, so CPU kernels take other paths and results differ from
    the saved model's in the last bit. On a GPU, `.to(device)` has already copied.
    """
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.device.type == "cpu":
                tensor.data = tensor.data.clone()
    return model


def _inside(folder: Path, relative: Any) -> Path:
    """A path named in dreamclear-model.json, which must stay inside the model folder."""
    if not isinstance(relative, str) or not relative:
        raise CheckpointError(f"{folder / MODEL_FILE}: a component path is missing.")
    path = (folder / relative).resolve()
    base = folder.resolve()
    if base not in path.parents and path != base:
        raise CheckpointError(f"{folder / MODEL_FILE}: {relative!r} points outside the folder.")
    return path
