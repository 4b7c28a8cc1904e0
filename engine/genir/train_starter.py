"""The starter training config a GenIR export writes, so `dreamclear train` runs on it at once.

Written as TOML text, not through trainer.config (the engine never imports the trainer); the
fields are the trainer's (trainer/config.py, explained in resources/configs/starter.toml) and
a test trains two steps on it. Paths are absolute: the trainer takes relative paths from the
folder it runs in, not from the config's.
"""

from __future__ import annotations

from pathlib import Path

from engine.typed_config import toml_value

TOKEN_PX = 16
"""Crops are multiples of the trainer's 16 px token."""
STARTER_CROPS = (128, 192)
"""resources/configs/starter.toml's crop sizes, used when the images are large enough."""
VALIDATION_CROP = 256


def starter_config_text(
    *, images: Path, validation: list[str], output_dir: Path, resolution: int, seed: int
) -> str:
    """A starter-task config training on the photos in `images` (those named in `validation`
    held out), its crops fitted to images `resolution` px square."""
    side = resolution - resolution % TOKEN_PX
    crop_max = min(STARTER_CROPS[1], side)
    crop_min = min(STARTER_CROPS[0], crop_max)
    lines = [
        "# Train the starter restorer on this GenIR export; written by `dreamclear genir export`,",
        "# rewritten by every export. Every field: trainer/config.py and",
        "# resources/configs/starter.toml. LQ inputs are degraded on the fly (data.scale).",
        "#   dreamclear train THIS_FILE",
        'task = "starter"',
        "max_steps = 1500",
        f"seed = {toml_value(seed)}",
        "",
        "[data]",
        f"photos = {toml_value(images)}",
        f"validation_photos = {toml_value(validation)}",
        f"crop_min = {crop_min}",
        f"crop_max = {crop_max}",
        "scale = 4",
        "batch_size = 4",
        "",
        "[checkpointing]",
        f"output_dir = {toml_value(output_dir)}",
        "checkpoint_every = 250",
        "",
        "[validation]",
        "every = 250",
        f"num_images = {len(validation)}",
        f"crop = {min(VALIDATION_CROP, side)}",
    ]
    return "\n".join(lines) + "\n"
