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

`base_sha256` is a fingerprint of the base folder, not a hash of its weights (hashing 7 GB on
every load would cost a minute): sha256 over model_index.json, every JSON file's bytes, and
every other file's relative path and size. Re-saving or swapping weights changes sizes or
configs in practice; an identical copy elsewhere hashes the same.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from engine.errors import BadSettingError, CheckpointError
from engine.genir.dual_prompts import ENCODER_KEYS
from engine.genir.text_encoders import TEXT_ENCODER_PAIRS, align_eos_token_ids
from engine.imaging.atomic import atomic_write

FOLDER = "finetune"
TOKENS_FILE = "learned_tokens.safetensors"
PROMPTS_FILE = "learned_prompts.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
FULL_FILE = "unet_cross_attention.safetensors"
FORMAT = 1


def output_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def base_sha256(base_model: Path | str) -> str:
    """The base folder's fingerprint (see the module docstring)."""
    base = Path(base_model)
    digest = hashlib.sha256()
    digest.update((base / "model_index.json").read_bytes())
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        relative = path.relative_to(base).as_posix()
        digest.update(relative.encode() + b"\0")
        if path.suffix == ".json":
            digest.update(path.read_bytes())
        else:
            digest.update(str(path.stat().st_size).encode())
        digest.update(b"\n")
    return digest.hexdigest()


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


def read_learned_prompts(folder: Path) -> LearnedPrompts:
    path = Path(folder) / PROMPTS_FILE
    if not path.is_file():
        raise BadSettingError(
            f"{folder} holds no fine-tuning output ({PROMPTS_FILE} is missing)",
            hint="run `dreamclear genir finetune RUN` first",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.pop("format") != FORMAT:
            raise ValueError("unknown format")
        return LearnedPrompts(**record)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{path} is not a learned-prompts file ({error})") from None


def load_finetune(pipe: Any, folder: Path, *, check_base: Path | None = None) -> LearnedPrompts:
    """Load RUN/finetune into a diffusers SDXL pipeline made from the base it was trained
    on (refused when `check_base` is given and its fingerprint differs)."""
    folder = Path(folder)
    prompts = read_learned_prompts(folder)
    if check_base is not None and base_sha256(check_base) != prompts.base_sha256:
        raise BadSettingError(
            f"{folder} was trained on another base model ({prompts.base_model})",
            hint="generate with the base the tokens were trained on, or fine-tune again",
        )
    rows = load_file(folder / TOKENS_FILE)
    tokens = prompts.positive_tokens + prompts.negative_tokens
    for key, (tokenizer_name, encoder_name) in zip(ENCODER_KEYS, TEXT_ENCODER_PAIRS, strict=True):
        encoder = getattr(pipe, encoder_name)
        pipe.load_textual_inversion(
            rows[key].to(encoder.dtype),
            token=tokens,
            text_encoder=encoder,
            tokenizer=getattr(pipe, tokenizer_name),
        )
    align_eos_token_ids(pipe)
    if prompts.cross_attention == "lora":
        pipe.load_lora_weights(str(folder), weight_name=LORA_FILE)
    elif prompts.cross_attention == "full":
        load_cross_attention(pipe.unet, folder / FULL_FILE)
    return prompts


def load_cross_attention(unet: Any, path: Path) -> None:
    """The full attn2 weights into `unet`, after checking every key names one of its own."""
    state = load_file(path)
    own = unet.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise CheckpointError(
            f"{path} has {len(unknown)} weights the UNet lacks (first: {unknown[0]})",
            hint="was it trained on another base architecture?",
        )
    unet.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
