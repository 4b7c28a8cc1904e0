"""Turn `--model auto|starter|dreamclear|PATH` into a ready restorer, or say what to install."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelNotInstalledError

# The VAE maps 8x8 pixels to one latent; the published model's native latent is 128x128.
VAE_FACTOR = 8


@dataclass
class Restorer:
    name: str
    pipeline: Any
    min_short_side: int
    """Short side the input is raised to before restoring (1024 for the published model)."""


def load_restorer(
    spec: str, *, store_root: str | None, device: torch.device, dtype: torch.dtype
) -> Restorer:
    from engine.pipelines.restore import DreamClearRestorePipeline
    from engine.weights.components_io import load_components
    from engine.weights.store import ModelStore

    store = ModelStore(store_root)
    if spec == "auto":
        spec = "dreamclear" if store.is_installed("dreamclear") else "starter"
        if spec == "starter" and not starter_available():
            raise ModelNotInstalledError(
                "no restoration model is installed",
                hint="get DreamClear with `dreamclear models download dreamclear`, "
                "or pass --model PATH to a model folder",
            )
    if spec == "starter" and not starter_available():
        raise ModelNotInstalledError(
            "the bundled starter model is not part of this build yet",
            hint="use --model dreamclear after `dreamclear models download dreamclear`, "
            "or --model PATH to a model folder",
        )
    if spec == "starter":
        from engine.weights.starter_io import load_starter

        # The starter is small: it runs in fp32 wherever it runs.
        return Restorer(name="starter", pipeline=load_starter(device=device), min_short_side=0)
    path = Path(spec).expanduser()
    if spec != "dreamclear" and starter_folder(path):
        from engine.weights.starter_io import load_starter

        # A starter exported by `dreamclear train` (e.g. checkpoints/.../export).
        return Restorer(name=spec, pipeline=load_starter(path, device=device), min_short_side=0)
    if spec != "dreamclear" and not path.exists():
        raise ModelNotInstalledError(
            f"--model {spec!r} is neither auto, starter, dreamclear nor an existing folder",
            hint="see `dreamclear models list` for what is installed",
        )
    components = load_components(spec, store=store, device=device, dtype=dtype)
    if components.captioner is None and store.is_installed("llava"):
        components.captioner = load_llava_captioner(store, device, dtype)
    pipeline = DreamClearRestorePipeline.from_components(components)
    sample_size = components.transformer.config.sample_size
    return Restorer(name=spec, pipeline=pipeline, min_short_side=sample_size * VAE_FACTOR)


def starter_folder(path: Path) -> bool:
    from engine.weights.starter_io import starter_available as has_starter_files

    return path.is_dir() and has_starter_files(path)


def starter_available() -> bool:
    from engine.weights.starter_io import starter_available as bundled_starter_present

    return bundled_starter_present()


def load_llava_captioner(store, device: torch.device, dtype: torch.dtype):
    """The installed LLaVA captioner, for `--caption auto` (the published captioner).

    It is loaded once with the restorer and kept: captioning every photo with a 13 B model is
    the slow part of the published pipeline, reloading it per photo would double that.
    """
    from engine.models.captioners import LlavaCaptioner
    from engine.weights.components_io import checkpoint_errors

    folder = store.path_of("llava")
    with checkpoint_errors(folder, "the LLaVA captioner"):
        return LlavaCaptioner.from_folder(folder, device=device, dtype=dtype)
