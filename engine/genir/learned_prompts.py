"""Stage 2's learned prompts (RUN/finetune/), loaded into a stock diffusers SDXL pipeline.

The folder is written by `dreamclear genir finetune RUN` (the trainer task `genir-prompts`):

    learned_prompts.json             {"format": 1, "base_model", "base_sha256",
                                      "positive_tokens", "negative_tokens",
                                      "cross_attention": "lora" | "full" | "none",
                                      "lora_rank", "settings"}
    learned_tokens.safetensors       "clip_l" [T, width 1], "clip_g" [T, width 2]: one row per
                                      token of positive_tokens + negative_tokens, in that order
    pytorch_lora_weights.safetensors "lora": diffusers' LoRA format (load_lora_weights)
    unet_cross_attention.safetensors "full": the UNet's attn2 parameters, diffusers key names

Loading uses only diffusers' own loaders (one `load_textual_inversion` per encoder, then
`load_lora_weights` or the attn2 state dict), so any diffusers user can do the same by hand;
then both encoders' end-of-text ids are aligned (engine.genir.text_encoders), as in training.
Learned prompts of another base are refused: the base folder's sha256 must be the one recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import BadInputError, BadSettingError
from engine.genir.base_model import base_model_sha256
from engine.genir.text_encoders import align_eos_token_ids

logger = logging.getLogger(__name__)

FORMAT = 1
FOLDER = "finetune"
PROMPTS_FILE = "learned_prompts.json"
TOKENS_FILE = "learned_tokens.safetensors"
LORA_FILE = "pytorch_lora_weights.safetensors"
FULL_FILE = "unet_cross_attention.safetensors"
CROSS_ATTENTION = {"lora": LORA_FILE, "full": FULL_FILE, "none": None}
"""Each way the attention was fine-tuned, and the file holding it."""
ENCODERS = (("clip_l", "tokenizer", "text_encoder"), ("clip_g", "tokenizer_2", "text_encoder_2"))
"""The tokens file's tensor of each (tokenizer, text encoder) pair of the SDXL pipeline."""


@dataclass(frozen=True)
class LearnedPrompts:
    """What a pipeline holds after `apply_learned_prompts`, and the prompts to use it with."""

    positive_tokens: tuple[str, ...]
    negative_tokens: tuple[str, ...]
    cross_attention: str
    """"lora", "full" or "none"."""
    sha256: str
    """Of the files loaded (the JSON, the tokens, the attention weights): a generation journal
    setting, so images are never mixed from two fine-tunings."""

    def positive_prompt(self, scene: str) -> str:
        """The prompt of scene `scene`: the learned positive tokens, then the scene."""
        return " ".join(self.positive_tokens) + ", " + scene

    def negative_prompt(self) -> str:
        return " ".join(self.negative_tokens)


def finetune_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def read_learned_prompts(folder: Path) -> tuple[LearnedPrompts, dict[str, Any]]:
    """The learned prompts of `folder` (RUN/finetune) and their JSON, checked: every file
    present, the JSON complete. Loads no tensor."""
    folder = Path(folder)
    description = folder / PROMPTS_FILE
    if not description.is_file():
        raise BadInputError(
            f"{folder} holds no learned prompts ({PROMPTS_FILE} is missing)",
            hint=f"fine-tune them first: `dreamclear genir finetune {folder.parent}`",
        )
    try:
        data = json.loads(description.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BadInputError(
            f"{description} is not readable JSON: {error}",
            hint=f"fine-tune again: `dreamclear genir finetune {folder.parent}`",
        ) from None
    problem = _problem(data)
    if problem:
        raise BadInputError(
            f"{description} is not a learned-prompts file this version reads: {problem}",
            hint=f"fine-tune again with this version: `dreamclear genir finetune {folder.parent}`",
        )
    files = [description, folder / TOKENS_FILE]
    weights = CROSS_ATTENTION[data["cross_attention"]]
    if weights:
        files.append(folder / weights)
    for path in files[1:]:
        if not path.is_file():
            raise BadInputError(
                f"{path} is missing (learned prompts with cross_attention = "
                f"{data['cross_attention']!r} need it)",
                hint=f"fine-tune again: `dreamclear genir finetune {folder.parent}`",
            )
    learned = LearnedPrompts(
        tuple(data["positive_tokens"]),
        tuple(data["negative_tokens"]),
        data["cross_attention"],
        _files_sha256(files),
    )
    return learned, data


def _problem(data: Any) -> str:
    if not isinstance(data, dict):
        return "not an object"
    if data.get("format") != FORMAT:
        return f"format {data.get('format')!r}, this version reads {FORMAT}"
    for name in ("base_model", "base_sha256"):
        if not isinstance(data.get(name), str):
            return f"{name} is not a string"
    for name in ("positive_tokens", "negative_tokens"):
        tokens = data.get(name)
        if not isinstance(tokens, list) or not tokens:
            return f"{name} is not a list of tokens"
        if not all(isinstance(t, str) and t and t == t.lower() and " " not in t for t in tokens):
            return f"{name} holds a token that is not one lowercase word"
    if data.get("cross_attention") not in CROSS_ATTENTION:
        return f"cross_attention {data.get('cross_attention')!r} is none of {list(CROSS_ATTENTION)}"
    return ""


def _files_sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as file:
            digest.update(
                f"{path.name}\t{hashlib.file_digest(file, 'sha256').hexdigest()}\n".encode()
            )
    return digest.hexdigest()


def check_base(data: dict[str, Any], base_model: Path, folder: Path) -> None:
    """Refuse learned prompts trained on another base than `base_model` (by content)."""
    if data["base_sha256"] == base_model_sha256(base_model):
        if os.path.abspath(data["base_model"]) != os.path.abspath(base_model):
            logger.info(
                "learned prompts of %s: base %s moved to %s (same files)",
                folder,
                data["base_model"],
                base_model,
            )
        return
    raise BadSettingError(
        f"the learned prompts in {folder} were trained on another base model: "
        f"{data['base_model']} (sha256 {data['base_sha256'][:12]}...), not the run's "
        f"{base_model} (its files differ)",
        hint="set base_model in genir.toml back to the base they were trained on, or "
        f"fine-tune again on this base: `dreamclear genir finetune {folder.parent}`",
    )


def apply_learned_prompts(
    pipe: Any, folder: Path, *, base_model: Path | None = None
) -> LearnedPrompts:
    """Load the learned prompts of `folder` (RUN/finetune) into the SDXL pipeline `pipe` (a
    freshly loaded base: a token loaded twice is refused), after checking they were trained on
    `base_model` (default: the folder `pipe` was loaded from). Returns what to prompt with."""
    from safetensors.torch import load_file

    folder = Path(folder)
    learned, data = read_learned_prompts(folder)
    base = Path(base_model if base_model is not None else pipe.name_or_path)
    check_base(data, base, folder)
    tokens = [*learned.positive_tokens, *learned.negative_tokens]
    vectors = load_file(folder / TOKENS_FILE)
    for key, tokenizer_name, encoder_name in ENCODERS:
        tokenizer, encoder = getattr(pipe, tokenizer_name), getattr(pipe, encoder_name)
        width = encoder.get_input_embeddings().weight.shape[1]
        tensor = vectors.get(key)
        if tensor is None or tuple(tensor.shape) != (len(tokens), width):
            shape = None if tensor is None else list(tensor.shape)
            raise BadInputError(
                f"{folder / TOKENS_FILE}: {key!r} has shape {shape}, "
                f"expected [{len(tokens)}, {width}] ({len(tokens)} tokens, {encoder_name} width)",
                hint=f"fine-tune again on this base: `dreamclear genir finetune {folder.parent}`",
            )
        held = [t for t in tokens if t in tokenizer.get_vocab()]
        if held:
            raise BadSettingError(
                f"the pipeline's {tokenizer_name} already holds the learned tokens {held}",
                hint="load the learned prompts into a freshly loaded base pipeline",
            )
        pipe.load_textual_inversion(
            tensor.to(encoder.dtype), token=tokens, text_encoder=encoder, tokenizer=tokenizer
        )
    if learned.cross_attention == "lora":
        pipe.load_lora_weights(folder, weight_name=LORA_FILE)
    elif learned.cross_attention == "full":
        _load_cross_attention(pipe.unet, load_file(folder / FULL_FILE), folder / FULL_FILE)
    align_eos_token_ids(pipe)
    return learned


def _load_cross_attention(unet: Any, weights: dict[str, Any], path: Path) -> None:
    """Load attn2 parameters into `unet`, refusing any key it lacks, any other parameter, and
    any shape of another size (a file for another architecture)."""
    own = unet.state_dict()
    wrong = sorted(
        key
        for key, value in weights.items()
        if ".attn2." not in key or key not in own or own[key].shape != value.shape
    )
    if wrong or not weights:
        raise BadInputError(
            f"{path} does not fit the base's UNet cross-attention: "
            + (
                f"{len(wrong)} keys are no attn2 parameter of it, e.g. {wrong[:3]}"
                if wrong
                else "empty"
            ),
            hint="fine-tune again on this base",
        )
    dtype = next(iter(own.values())).dtype
    unet.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=False)
