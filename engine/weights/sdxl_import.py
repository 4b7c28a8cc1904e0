"""SDXL bases for GenIR: a diffusers folder checked before import, a single file converted.

A folder is an SDXL base when its `model_index.json` names `StableDiffusionXLPipeline` (or
its img2img twin) and every component the pipeline loads has its folder and config. A single
`.safetensors` in the original (Stability's) layout is converted once with diffusers'
`StableDiffusionXLPipeline.from_single_file` and saved in diffusers layout: the conversion
needs the components' configs and tokenizers, which the file does not hold. They come from
`config` (a local diffusers-layout SDXL folder; weights not needed), else from the hub repo's
config files (diffusers fetches them, a few MB; offline this needs them in the hub cache).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from engine.errors import CheckpointError, ModelNotInstalledError, OutputError, first_line

logger = logging.getLogger(__name__)

SDXL_PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline")
SDXL_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
"""The repo whose config files configure a single-file conversion when no folder is given."""
COMPONENT_FILES = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "text_encoder_2": "config.json",
    "tokenizer": "tokenizer_config.json",
    "tokenizer_2": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}
"""Each component folder and the file that shows it is there."""


def check_sdxl_folder(folder: Path) -> None:
    """Raise CheckpointError naming what is wrong unless `folder` is an SDXL diffusers folder."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{folder}/model_index.json is unreadable: {first_line(exc)}"
        ) from None
    pipeline = index.get("_class_name") if isinstance(index, dict) else None
    if pipeline not in SDXL_PIPELINES:
        raise CheckpointError(
            f"{folder} is a diffusers {pipeline!r} folder, not SDXL.",
            hint="GenIR needs an SDXL-architecture base (StableDiffusionXLPipeline)",
        )
    missing = [
        f"{name}/{marker}"
        for name, marker in COMPONENT_FILES.items()
        if not (folder / name / marker).is_file()
    ]
    if missing:
        raise CheckpointError(
            f"{folder} is an incomplete SDXL folder: missing {', '.join(missing)}.",
            hint="copy the whole diffusers folder (or download it with "
            "`dreamclear models download sdxl-base`)",
        )


def convert_sdxl_single_file(source: Path, destination: Path, config: Path | None = None) -> Path:
    """Convert an original-layout SDXL `.safetensors` into a diffusers folder at `destination`
    (written to a temporary name, then renamed: no half folders). Returns `destination`."""
    from diffusers import StableDiffusionXLPipeline

    if source.suffix.lower() != ".safetensors":
        raise CheckpointError(
            f"{source}: only .safetensors single files are converted (no pickles).",
            hint="convert the checkpoint to safetensors first",
        )
    if config is not None:
        check_sdxl_folder(config)
    partial = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(source), config=str(config) if config is not None else SDXL_REPO
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if config is None:
            raise ModelNotInstalledError(
                f"Cannot convert {source}: the SDXL configs of {SDXL_REPO} are not at hand "
                f"({first_line(exc)}).",
                hint="pass --config DIR, a diffusers SDXL folder (its configs and tokenizers "
                "are used, not its weights), or go online once",
            ) from None
        raise CheckpointError(
            f"{source} does not convert with the configs of {config}: {first_line(exc)}",
            hint="check that the file is an SDXL base checkpoint and the folder an SDXL base",
        ) from None
    try:
        pipe.save_pretrained(partial, safe_serialization=True)
        partial.rename(destination)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise OutputError(
            f"Cannot write the converted SDXL to {destination}: {exc.strerror or exc}",
            hint="check free space and permissions of the store",
        ) from None
    logger.info("converted %s to %s", source, destination)
    return destination
