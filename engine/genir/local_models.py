"""GenIR's local transformers models: loaded from a folder with local files only, run greedy or
seeded.

Nothing here downloads: `local_files_only=True` everywhere, so a folder that lacks a file fails
at once with the folder named (get models with `dreamclear models download NAME` or point the
config at a folder). On a CUDA machine the models run in bfloat16 on the GPU, on a CPU in
float32.

Determinism: greedy decoding (captions, judges) gives the same text for the same model, input,
software and device. Sampling (the prompt writer) is seeded per call with torch's generator,
so a call is repeatable on the same machine and software; another GPU, driver or transformers
version may give other text (sampling kernels are not bit-identical across them).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.errors import ModelNotInstalledError, first_line

logger = logging.getLogger(__name__)


def pick_device() -> tuple[torch.device, torch.dtype]:
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def _load(what: str, folder: Path, load):
    try:
        return load()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotInstalledError(
            f"The {what} in {folder} cannot be loaded from local files: {first_line(exc)}",
            hint="name a complete transformers model folder, or install one with "
            "`dreamclear models download NAME` (see `dreamclear models list`)",
        ) from None


def load_text_model(folder: str | Path) -> tuple[Any, Any]:
    """(tokenizer, causal LM) of an instruct model folder; its tokenizer needs a chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    device, dtype = pick_device()
    tokenizer = _load(
        "tokenizer", folder, lambda: AutoTokenizer.from_pretrained(folder, local_files_only=True)
    )
    if not getattr(tokenizer, "chat_template", None):
        raise ModelNotInstalledError(
            f"The language model in {folder} has no chat template: it is not an instruct model.",
            hint="use an instruct (chat) model, e.g. `dreamclear models download genir-llm`",
        )
    model = _load(
        "language model",
        folder,
        lambda: AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True),
    )
    return tokenizer, model.to(device).eval()


def load_image_text_model(folder: str | Path) -> tuple[Any, Any]:
    """(processor, image-text-to-text model) of a captioner or vision-language model folder."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = Path(folder)
    device, dtype = pick_device()
    processor = _load(
        "processor", folder, lambda: AutoProcessor.from_pretrained(folder, local_files_only=True)
    )
    model = _load(
        "image-to-text model",
        folder,
        lambda: AutoModelForImageTextToText.from_pretrained(
            folder, dtype=dtype, local_files_only=True
        ),
    )
    return processor, model.to(device).eval()


def _to_model(inputs: Any, model: Any) -> dict[str, Any]:
    parameter = next(model.parameters())
    return {
        key: value.to(
            parameter.device, dtype=parameter.dtype if value.is_floating_point() else None
        )
        for key, value in dict(inputs).items()
    }


def _new_text(decoder: Any, output: torch.Tensor, inputs: dict[str, Any]) -> str:
    """The generated text after the prompt (decoder-only models return the prompt too)."""
    if "input_ids" in inputs:
        output = output[:, inputs["input_ids"].shape[1] :]
    return decoder.batch_decode(output, skip_special_tokens=True)[0].strip()


@torch.no_grad()
def chat(
    tokenizer: Any,
    model: Any,
    messages: list[dict[str, str]],
    *,
    max_new_tokens: int,
    seed: int | None = None,
    temperature: float = 0.8,
    top_p: float = 0.95,
) -> tuple[str, bool]:
    """The model's answer to `messages` and whether it stopped by itself (False: cut at
    `max_new_tokens`). Greedy when `seed` is None, else sampled with that seed."""
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    inputs = _to_model(inputs, model)
    sampling: dict[str, Any] = {"do_sample": False}
    if seed is not None:
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        pad_token_id=(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        ),
        **sampling,
    )
    new_tokens = output.shape[1] - inputs["input_ids"].shape[1]
    finished = new_tokens < max_new_tokens or output[0, -1].item() == tokenizer.eos_token_id
    return _new_text(tokenizer, output, inputs), finished


@torch.no_grad()
def describe_image(
    processor: Any, model: Any, image: Image.Image, text: str | None, *, max_new_tokens: int
) -> str:
    """Greedy text about `image`: asked `text` through the processor's chat template when it
    has one (chat vision-language models), else the model's own captioning (BLIP-like)."""
    image = image.convert("RGB")
    if text is not None and getattr(processor, "chat_template", None):
        conversation = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
        ]
        prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = processor(images=image, text=prompt, return_tensors="pt")
    else:
        inputs = processor(images=image, return_tensors="pt")
    inputs = _to_model(inputs, model)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return _new_text(processor, output, inputs)
