"""Read the published DreamClear / PixArt `.pth` checkpoints and convert them to our layout.

Checkpoints are recognised by their keys and shapes, never by file name, and unpickled with
`weights_only=True`. Hyperparameters are read from tensor shapes and key counts; the few that
shapes cannot tell (head counts, positional-embedding size) come from the preset with the same
hidden size. Key layout of the official files: shared/reference/dreamclear.md.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from engine.errors import CheckpointError
from engine.models.presets import DREAMCLEAR_1024, TINY
from engine.weights.checkpoint_inspection import CONVERTED_MARKER, converted_marker

__all__ = [
    "convert_checkpoint_to_folder",
    "convert_dreamclear_state_dict",
    "convert_pixart_state_dict",
    "infer_config",
    "load_official_state_dict",
]

logger = logging.getLogger(__name__)

_PRESETS_BY_HIDDEN_SIZE = {
    preset["num_attention_heads"] * preset["attention_head_dim"]: preset
    for preset in (DREAMCLEAR_1024, TINY)
}
# PixArt's head size; used for hidden sizes that match no preset.
_PIXART_HEAD_DIM = 72
_HINT_REDOWNLOAD = "download the file again; its size should match the one listed on the hub"


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_official_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Load a `.pth`/`.ckpt`/`.safetensors` checkpoint as a flat `{key: tensor}` on the CPU.

    Zip-format torch files are memory-mapped, so nothing is read until a tensor is used.
    `{'state_dict': ...}` wrappers and DataParallel `module.` prefixes are removed.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or not a weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", "check the path or download it")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path.name} is empty", _HINT_REDOWNLOAD)

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: object = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"{path.name} is not a readable safetensors file ({error})", _HINT_REDOWNLOAD
            ) from error
    else:
        raw = _torch_load(path)

    state_dict = _unwrap(raw, path)
    logger.debug("loaded %d tensors from %s", len(state_dict), path)
    return state_dict


def _torch_load(path: Path) -> object:
    def load(mmap: bool) -> object:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)

    try:
        # mmap needs the zip format; only legacy files (pre-1.6 torch.save) fall back.
        return load(mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CheckpointError(
                f"{path.name} contains Python objects other than tensors and is not loaded "
                "for safety",
                "use the official checkpoint, or re-save it as a plain state dict",
            ) from error
        raise _corrupt(path, error) from error
    except MemoryError:
        raise
    except Exception as error:
        # Unpickling damaged bytes fails with almost any exception type (IndexError,
        # struct.error, UnicodeDecodeError...); all of them mean the same to the user.
        raise _corrupt(path, error) from error


def _corrupt(path: Path, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"{path.name} is truncated, corrupt or not a PyTorch checkpoint ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else 'no detail'})",
        _HINT_REDOWNLOAD,
    )


def _unwrap(raw: object, path: Path) -> dict[str, Tensor]:
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(raw, Mapping) and isinstance(raw.get(wrapper), Mapping):
            raw = raw[wrapper]
            break
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(
            f"{path.name} holds no state dict (found {type(raw).__name__})",
            "pass a model weights file",
        )
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path.name} holds no tensors", "pass a model weights file")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


# ---------------------------------------------------------------------------------------------
# Recognition and hyperparameters
# ---------------------------------------------------------------------------------------------


def _describe(state_dict: Mapping[str, Tensor]) -> str:
    """Name the architecture a foreign state dict most likely belongs to, for error messages."""
    keys = state_dict.keys()
    if "conv_first.weight" in keys and any(k.startswith("layers.") for k in keys):
        return "a SwinIR model (the degradation remover)"
    if any(
        k.startswith(("encoder.down_blocks", "decoder.up_blocks", "encoder.down.")) for k in keys
    ):
        return "a VAE"
    if any(k.startswith(("encoder.block.", "shared.weight")) for k in keys):
        return "a T5 text encoder"
    if "x_embedder.proj.weight" in keys and "blocks.0.attn.qkv.weight" in keys:
        return "the PixArt base model without DreamClear's branches"
    if "pos_embed.proj.weight" in keys and "lq_branch_embed.proj.weight" in keys:
        return "an already converted DreamClear model (load it with from_pretrained)"
    return "an unknown model"


def _count(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.")
    return len({m.group(1) for k in state_dict if (m := pattern.match(k))})


def _require(state_dict: Mapping[str, Tensor], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise CheckpointError(
            f"this is not a {what} checkpoint: it looks like {_describe(state_dict)} "
            f"(missing {missing[0]})",
            f"pass the {what} file",
        )


def _base_prefix(state_dict: Mapping[str, Tensor]) -> str:
    return "base_model." if "base_model.x_embedder.proj.weight" in state_dict else ""


def infer_config(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """Read `DreamClearTransformer2DModel` hyperparameters from an official state dict.

    Accepts the DreamClear layout (`base_model.*` + branches) or the PixArt base layout (then
    the branch settings are the published ones, one control layer per base block).

    Raises:
        CheckpointError: the state dict is not a DreamClear or PixArt checkpoint.
    """
    base = _base_prefix(state_dict)
    _require(
        state_dict,
        (
            f"{base}x_embedder.proj.weight",
            f"{base}final_layer.linear.weight",
            f"{base}y_embedder.y_proj.fc1.weight",
            f"{base}blocks.0.attn.qkv.weight",
        ),
        "DreamClear or PixArt",
    )
    patch_weight = state_dict[f"{base}x_embedder.proj.weight"]  # (D, C_in, p, p)
    hidden, in_channels, patch = patch_weight.shape[0], patch_weight.shape[1], patch_weight.shape[2]
    preset = _PRESETS_BY_HIDDEN_SIZE.get(hidden)
    if preset is not None:
        config = dict(preset)
    elif hidden % _PIXART_HEAD_DIM == 0:
        heads = hidden // _PIXART_HEAD_DIM
        config = {
            **DREAMCLEAR_1024,
            "num_attention_heads": heads,
            "attention_head_dim": _PIXART_HEAD_DIM,
            "degradation_attention_heads": heads,
        }
    else:
        raise CheckpointError(
            f"cannot tell the attention head count of a hidden size of {hidden}",
            "this DreamClear/PixArt variant is not supported",
        )

    num_layers = _count(state_dict, f"{base}blocks.")
    config.update(
        patch_size=patch,
        in_channels=in_channels,
        out_channels=state_dict[f"{base}final_layer.linear.weight"].shape[0] // (patch * patch),
        num_layers=num_layers,
        caption_channels=state_dict[f"{base}y_embedder.y_proj.fc1.weight"].shape[1],
        num_control_layers=num_layers,
    )
    if f"{base}y_embedder.y_embedding" in state_dict:
        config["caption_max_length"] = state_dict[f"{base}y_embedder.y_embedding"].shape[0]
    if f"{base}pos_embed" in state_dict:  # (1, N, D) for a square sample_size latent
        tokens = state_dict[f"{base}pos_embed"].shape[1]
        config["sample_size"] = round(tokens**0.5) * patch

    if base:  # DreamClear: read the wrapper's own settings
        config["num_control_layers"] = _count(state_dict, "controlnet_lq.")
        if config["num_control_layers"]:
            num_experts = _count(state_dict, "am_lq.0.experts.")
            config["num_experts"] = num_experts
            config["router_hidden_per_expert"] = (
                state_dict["am_lq.0.gate.0.weight"].shape[0] // num_experts
            )
            modulator_hidden = state_dict["am_pre.0.shared_proj.weight"].shape[0]
            config["modulator_hidden_dim"] = (
                None if modulator_hidden == hidden // 2 else modulator_hidden
            )
    return config


# ---------------------------------------------------------------------------------------------
# Key conversion
# ---------------------------------------------------------------------------------------------


class _Reader:
    """Hands out source tensors and remembers which were used, to report leftovers."""

    def __init__(self, state_dict: Mapping[str, Tensor], dtype: torch.dtype | None) -> None:
        self.state_dict = state_dict
        self.dtype = dtype
        self.used: set[str] = set()

    def raw(self, key: str) -> Tensor:
        try:
            tensor = self.state_dict[key]
        except KeyError:
            raise CheckpointError(
                f"the checkpoint lacks {key}: it is incomplete or of another model variant",
                _HINT_REDOWNLOAD,
            ) from None
        self.used.add(key)
        return tensor

    def __getitem__(self, key: str) -> Tensor:
        """The tensor in the target dtype (the source tensor itself when already in it)."""
        tensor = self.raw(key)
        return tensor if self.dtype is None else tensor.to(self.dtype)

    def split(self, key: str, parts: int) -> list[Tensor]:
        """A fused projection cut along dim 0, each piece cast while copied: only the target
        dtype is ever allocated (casting after the split held a source-dtype copy of every
        piece). Copies, not views: safetensors refuses tensors that share storage."""
        dtype = self.dtype or self.state_dict[key].dtype
        return [piece.to(dtype, copy=True) for piece in self.raw(key).chunk(parts, dim=0)]

    def check_all_used(self, ignore: Callable[[str], bool]) -> None:
        left = sorted(k for k in self.state_dict if k not in self.used and not ignore(k))
        if left:
            raise CheckpointError(
                f"the checkpoint has {len(left)} weights this model does not know, e.g. {left[:3]}",
                "it is a different model variant; pass the published DreamClear/PixArt file",
            )


def _convert_block(src: _Reader, prefix: str, dst_prefix: str) -> dict[str, Tensor]:
    """One PixArt block (fused qkv, fused kv) -> one diffusers BasicTransformerBlock."""
    out: dict[str, Tensor] = {}
    for param in ("weight", "bias"):
        q, k, v = src.split(f"{prefix}attn.qkv.{param}", 3)  # laid out (3, heads, head_dim)
        out |= {
            f"{dst_prefix}attn1.to_q.{param}": q,
            f"{dst_prefix}attn1.to_k.{param}": k,
            f"{dst_prefix}attn1.to_v.{param}": v,
        }
        k, v = src.split(f"{prefix}cross_attn.kv_linear.{param}", 2)  # (2, heads, head_dim)
        out |= {f"{dst_prefix}attn2.to_k.{param}": k, f"{dst_prefix}attn2.to_v.{param}": v}
        for old, new in (
            ("attn.proj", "attn1.to_out.0"),
            ("cross_attn.q_linear", "attn2.to_q"),
            ("cross_attn.proj", "attn2.to_out.0"),
            ("mlp.fc1", "ff.net.0.proj"),
            ("mlp.fc2", "ff.net.2"),
        ):
            out[f"{dst_prefix}{new}.{param}"] = src[f"{prefix}{old}.{param}"]
    out[f"{dst_prefix}scale_shift_table"] = src[f"{prefix}scale_shift_table"]
    return out


# Official base names -> diffusers PixArt names (weights and biases alike).
_BASE_RENAMES = (
    ("x_embedder.proj", "pos_embed.proj"),
    ("t_embedder.mlp.0", "adaln_single.emb.timestep_embedder.linear_1"),
    ("t_embedder.mlp.2", "adaln_single.emb.timestep_embedder.linear_2"),
    ("t_block.1", "adaln_single.linear"),
    ("csize_embedder.mlp.0", "adaln_single.emb.resolution_embedder.linear_1"),
    ("csize_embedder.mlp.2", "adaln_single.emb.resolution_embedder.linear_2"),
    ("ar_embedder.mlp.0", "adaln_single.emb.aspect_ratio_embedder.linear_1"),
    ("ar_embedder.mlp.2", "adaln_single.emb.aspect_ratio_embedder.linear_2"),
    ("y_embedder.y_proj.fc1", "caption_projection.linear_1"),
    ("y_embedder.y_proj.fc2", "caption_projection.linear_2"),
    ("final_layer.linear", "proj_out"),
)


def _convert_base(src: _Reader, prefix: str, num_layers: int) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for old, new in _BASE_RENAMES:
        for param in ("weight", "bias"):
            out[f"{new}.{param}"] = src[f"{prefix}{old}.{param}"]
    out["scale_shift_table"] = src[f"{prefix}final_layer.scale_shift_table"]
    out["null_caption_embedding"] = src[f"{prefix}y_embedder.y_embedding"]
    for i in range(num_layers):
        out |= _convert_block(src, f"{prefix}blocks.{i}.", f"transformer_blocks.{i}.")
    return out


def _is_position_table(key: str) -> bool:
    # Positional embeddings are recomputed from the token grid on every forward.
    return key.rsplit(".", 1)[-1] == "pos_embed"


def convert_pixart_state_dict(
    state_dict: Mapping[str, Tensor], dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """Official PixArt base (e.g. PixArt-XL-2-1024-MS.pth) -> diffusers PixArt key layout.

    The result also holds `null_caption_embedding` (PixArt's y_embedding), which has no place
    in diffusers' `PixArtTransformer2DModel`: pop it before loading into that class; it loads
    as is into the base of `DreamClearTransformer2DModel` (with `strict=False`).

    Raises:
        CheckpointError: not a PixArt checkpoint, or incomplete.
    """
    _require(state_dict, ("x_embedder.proj.weight", "blocks.0.attn.qkv.weight"), "PixArt")
    src = _Reader(state_dict, dtype)
    out = _convert_base(src, "", _count(state_dict, "blocks."))
    src.check_all_used(_is_position_table)
    return out


def convert_dreamclear_state_dict(
    state_dict: Mapping[str, Tensor], dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """Official DreamClear (DreamClear-1024.pth) -> `DreamClearTransformer2DModel` key layout.

    Fused projections are split (self-attention qkv into to_q/to_k/to_v, every kv_linear into
    to_k/to_v, k first); positional-embedding tables are dropped. With `dtype`, every tensor
    is cast as it is taken (None keeps the checkpoint's dtypes).

    Raises:
        CheckpointError: not a DreamClear checkpoint (the message names what it looks like),
            incomplete, or with weights this model does not know.
    """
    _require(
        state_dict,
        (
            "base_model.x_embedder.proj.weight",
            "controlnet_lq.0.copied_block.attn.qkv.weight",
            "cross_de.0.q_linear.weight",
            "am_lq.0.gate.0.weight",
        ),
        "DreamClear",
    )
    src = _Reader(state_dict, dtype)
    out = _convert_base(src, "base_model.", _count(state_dict, "base_model.blocks."))
    num_experts = _count(state_dict, "am_lq.0.experts.")

    for branch, ours in (("lq", "lq"), ("pre", "ref")):
        for param in ("weight", "bias"):
            out[f"{ours}_branch_embed.proj.{param}"] = src[f"x_embedder_{branch}.proj.{param}"]
            out[f"{ours}_condition_embed.proj.{param}"] = src[f"c_embedder_{branch}.proj.{param}"]
        for i in range(_count(state_dict, f"controlnet_{branch}.")):
            out |= _convert_block(
                src, f"controlnet_{branch}.{i}.copied_block.", f"{ours}_branch_blocks.{i}."
            )

    def modulator(old: str, new: str) -> dict[str, Tensor]:
        return {
            f"{new}{layer_new}.{param}": src[f"{old}{layer_old}.{param}"]
            for layer_old, layer_new in (
                ("shared_proj", "proj_in"),
                ("proj_mul", "to_scale"),
                ("proj_add", "to_shift"),
            )
            for param in ("weight", "bias")
        }

    for i in range(_count(state_dict, "cross_de.")):
        for param in ("weight", "bias"):
            k, v = src.split(f"cross_de.{i}.kv_linear.{param}", 2)
            out[f"degradation_attention.{i}.to_k.{param}"] = k
            out[f"degradation_attention.{i}.to_v.{param}"] = v
            for old, new in (
                ("q_linear", "to_q"),
                ("proj", "to_out"),
                ("de_proj", "to_degradation_map"),
                ("norm1", "norm_lq"),
                ("norm2", "norm_ref"),
            ):
                out[f"degradation_attention.{i}.{new}.{param}"] = src[f"cross_de.{i}.{old}.{param}"]
            for layer in (0, 2):
                out[f"lq_modulators.{i}.router.{layer}.{param}"] = src[
                    f"am_lq.{i}.gate.{layer}.{param}"
                ]
        out |= modulator(f"am_pre.{i}.", f"ref_modulators.{i}.")
        for expert in range(num_experts):
            out |= modulator(f"am_lq.{i}.experts.{expert}.", f"lq_modulators.{i}.experts.{expert}.")

    src.check_all_used(_is_position_table)
    return out


# ---------------------------------------------------------------------------------------------
# Conversion to a diffusers-format folder
# ---------------------------------------------------------------------------------------------


def convert_checkpoint_to_folder(
    pth_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Convert an official DreamClear checkpoint into a `from_pretrained` folder (safetensors).

    The folder is written under a temporary sibling name and renamed into place, so `out_dir`
    is either absent or complete. A complete folder made from the same file in the same dtype
    is reused without reading the checkpoint. The model is assembled without allocating its
    own weights (parameters on the meta device, then the converted tensors assigned), so peak
    memory is about one copy of the weights in `dtype`.

    Returns:
        `out_dir` as a Path.

    Raises:
        CheckpointError: unreadable, corrupt or wrong-architecture checkpoint, or weights that
            do not fit the inferred model exactly (missing, unexpected, wrong shape).
    """
    from accelerate import init_empty_weights

    from engine.models.dreamclear_transformer import DreamClearTransformer2DModel

    pth_path, out_dir = Path(pth_path), Path(out_dir)
    if not pth_path.is_file():
        raise CheckpointError(f"checkpoint not found: {pth_path}", "check the path or download it")
    stat = pth_path.stat()
    marker = {
        "source": pth_path.name,
        "source_bytes": stat.st_size,
        "dtype": str(dtype).removeprefix("torch."),
    }
    if converted_marker(out_dir) == marker:
        logger.info("reusing converted model in %s", out_dir)
        return out_dir

    state_dict = load_official_state_dict(pth_path)
    config = infer_config(state_dict)
    if _base_prefix(state_dict) != "base_model.":
        raise CheckpointError(
            f"{pth_path.name} is {_describe(state_dict)}, not DreamClear",
            "pass DreamClear-1024.pth",
        )
    converted = convert_dreamclear_state_dict(state_dict, dtype)
    del state_dict

    with init_empty_weights():
        model = DreamClearTransformer2DModel(**config)
    try:
        model.load_state_dict(converted, strict=True, assign=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{pth_path.name} does not fit the DreamClear model: {str(error).splitlines()[0]}",
            "the file is of another model variant or damaged; download it again",
        ) from error
    del converted

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        (staging / CONVERTED_MARKER).write_text(json.dumps(marker, indent=2))
        if out_dir.exists():  # stale or other dtype: move aside, then swap in
            stale = out_dir.with_name(f".{out_dir.name}.stale-{os.getpid()}")
            out_dir.rename(stale)
            staging.rename(out_dir)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("converted %s to %s (%s)", pth_path.name, out_dir, marker["dtype"])
    return out_dir
