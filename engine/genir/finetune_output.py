"""Stage 2's output, RUN/finetune/: written after training, loaded by generation (stage 3).

    learned_tokens.safetensors        float32 "clip_l" [T, w1], "clip_g" [T, w2]; rows in the
                                      order positive_tokens + negative_tokens
    learned_prompts.json              {"format": 1, "base_model", "base_sha256",
                                      "positive_tokens", "negative_tokens", "cross_attention",
                                      "lora_rank", "settings"}
    pytorch_lora_weights.safetensors  cross_attention "lora": diffusers' LoRA format
    unet_cross_attention.safetensors  cross_attention "full": the UNet's attn2 parameters

Everything loads into a stock diffusers SDXL pipeline: `load_textual_inversion` once per
encoder, `load_lora_weights` or a non-strict `load_state_dict` of the UNet. Each file is
written atomically; the JSON last, so a folder with it is complete.

`base_sha256` is a fingerprint of the base folder, not a hash of its weights
(engine.genir.base_model). Loading is engine.genir.learned_prompts's.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from engine.genir.base_model import base_model_sha256
from engine.imaging.atomic import atomic_write

FOLDER = "finetune"
TOKENS_FILE = "learned_tokens.safetensors"
PROMPTS_FILE = "learned_prompts.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
FULL_FILE = "unet_cross_attention.safetensors"
FORMAT = 1


def output_folder(run: Path) -> Path:
    return Path(run) / FOLDER


base_sha256 = base_model_sha256
"""The base folder's fingerprint (engine.genir.base_model: one definition for the writer here
and the loader, engine.genir.learned_prompts)."""


@dataclass(frozen=True)
class LearnedPrompts:
    """What learned_prompts.json says, and the prompts it makes."""

    base_model: str
    base_sha256: str
    positive_tokens: list[str]
    negative_tokens: list[str]
    cross_attention: str
    lora_rank: int | None
    settings: dict[str, Any]

    def positive_prompt(self, scene: str) -> str:
        return " ".join(self.positive_tokens) + ", " + scene

    def negative_prompt(self) -> str:
        return " ".join(self.negative_tokens)


def save_finetune(
    folder: Path,
    model: Any,
    prompts: LearnedPrompts,
) -> Path:
    """Write the output of `model` (an unwrapped DualPromptModel) to `folder`; a file of the
    other cross-attention mode left by an earlier run goes. Returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = {
        "clip_l": model.clip_l.detach().float().cpu().contiguous(),
        "clip_g": model.clip_g.detach().float().cpu().contiguous(),
    }
    _write_safetensors(folder / TOKENS_FILE, tokens)
    if prompts.cross_attention == "lora":
        _write_lora(folder, model.parts.unet)
    elif prompts.cross_attention == "full":
        state = {
            name: value.detach().float().cpu().contiguous()
            for name, value in model.cross_attention_state().items()
        }
        _write_safetensors(folder / FULL_FILE, state)
    for name, mode in ((LORA_FILE, "lora"), (FULL_FILE, "full")):
        if prompts.cross_attention != mode:
            (folder / name).unlink(missing_ok=True)
    record = {"format": FORMAT, **prompts.__dict__}
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(folder / PROMPTS_FILE, lambda file: file.write(text.encode()), overwrite=True)
    return folder


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    data = save(tensors, metadata={"format": "pt"})
    atomic_write(path, lambda file: file.write(data), overwrite=True)


def _write_lora(folder: Path, unet: Any) -> None:
    """diffusers' own writer (its key names and adapter metadata) into a temp folder, then
    written atomically like every other file."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".lora-") as temporary:
        StableDiffusionXLPipeline.save_lora_weights(
            temporary,
            unet_lora_layers=layers,
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
        )
        data = (Path(temporary) / LORA_FILE).read_bytes()
    atomic_write(folder / LORA_FILE, lambda file: file.write(data), overwrite=True)


def load_finetune(pipe: Any, folder: Path, *, check_base: Path | None = None):
    """Load RUN/finetune into a diffusers SDXL pipeline made from the base it was trained on
    (refused when the fingerprint of `check_base`, default the pipeline's folder, differs):
    engine.genir.learned_prompts.apply_learned_prompts, the one loader."""
    from engine.genir.learned_prompts import apply_learned_prompts

    return apply_learned_prompts(pipe, folder, base_model=check_base)
