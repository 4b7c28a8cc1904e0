"""Disk and time estimates for the wizard, before a stage starts (no Qt, no torch).

Disk comes from arithmetic: the fine-tuning's output size from the base UNet's shape (read from
its diffusers `unet/config.json`, SDXL's when that cannot be read), the generated images' size
from the images already made (else a PNG's typical 1.6 bytes per pixel for photographic
content). Time is never guessed from the hardware: it is the pace measured by this run's last
job of the stage (seconds per step), or unknown until the first steps.
"""

from __future__ import annotations

import json
from pathlib import Path

SDXL_UNET = {
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "transformer_layers_per_block": [1, 2, 10],
    "layers_per_block": 2,
    "cross_attention_dim": 2048,
}
PNG_BYTES_PER_PIXEL = 1.6
"""Typical size of a lossless 8-bit RGB PNG of photographic content, per pixel."""


def cross_attention_widths(base_model: Path) -> tuple[list[int], int]:
    """The width of each transformer block of the UNet (down, mid, up) and the text width."""
    try:
        config = json.loads((Path(base_model) / "unet" / "config.json").read_text())
    except (OSError, ValueError):
        config = SDXL_UNET
    widths = config.get("block_out_channels", SDXL_UNET["block_out_channels"])
    kinds = config.get("down_block_types", SDXL_UNET["down_block_types"])
    layers = config.get("transformer_layers_per_block", 1)
    layers = layers if isinstance(layers, list) else [layers] * len(widths)
    per_block = int(config.get("layers_per_block", 2))
    text = int(config.get("cross_attention_dim", 2048))
    blocks: list[int] = []
    for width, kind, depth in zip(widths, kinds, layers, strict=False):
        if "CrossAttn" in kind:
            # down: layers_per_block attentions; up: one more; each of `depth` blocks
            blocks += [width] * depth * (2 * per_block + 1)
    if blocks:
        blocks += [widths[-1]] * layers[-1]  # the middle block
    return blocks, text


def finetune_bytes(base_model: Path, cross_attention: str, rank: int, tokens: int) -> int:
    """Bytes of the fine-tuning's output (float32): the token vectors of both encoders, plus
    the cross-attention's LoRA factors (rank r: r*(in+out) per projection) or full weights."""
    blocks, text = cross_attention_widths(base_model)
    token_bytes = tokens * (768 + 1280) * 4  # SDXL's two text encoders' widths
    if cross_attention == "none":
        return token_bytes
    if cross_attention == "lora":
        # to_q and to_out: width -> width; to_k and to_v: text -> width
        params = sum(rank * (2 * w + 2 * w + 2 * (text + w)) for w in blocks)
    else:
        params = sum(2 * w * w + 2 * text * w + w for w in blocks)
    return token_bytes + params * 4


def images_bytes(count: int, resolution: int, existing: list[Path]) -> int:
    """Bytes of `count` images: the mean of those made, else the typical PNG size."""
    sizes = [path.stat().st_size for path in existing[:50] if path.is_file()]
    each = sum(sizes) / len(sizes) if sizes else resolution * resolution * PNG_BYTES_PER_PIXEL
    return int(each * count)


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def human_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
