"""Loading a restorer, in one place: `--model auto|starter|dreamclear|NAME|PATH` on
`--device`/`--dtype` (each may be `auto`) -> a ready pipeline, or an error saying what to get.

The CLI, the engine's restore jobs and the benchmarks all come through `load_restorer`; the
weights layer (`engine.weights.components_io`, `engine.weights.starter_io`) only reads files
into networks, and this module puts the networks into their pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.devices import resolve_placement
from engine.errors import ModelNotInstalledError

# The VAE maps 8x8 pixels to one latent; the published model's native latent is 128x128.
VAE_FACTOR = 8


@dataclass
class Restorer:
    name: str
    pipeline: Any
    min_short_side: int
    """Short side the input is raised to before restoring (1024 for the published model)."""
    device: torch.device
    dtype: torch.dtype
    """The precision asked for; the starter runs in fp32 wherever it runs."""


def load_restorer(
    spec: str = "auto",
    *,
    store_root: str | None = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    offload: str = "none",
) -> Restorer:
    """`spec`: "auto" (DreamClear when installed, else the bundled starter), "starter",
    "dreamclear", the name of a model imported into the store, a model folder (ours, or a
    starter exported by `dreamclear train`), or a spandrel upscaler file (.safetensors/.pth:
    Real-ESRGAN, Compact, SwinIR, HAT, DAT, ...). `device` and `dtype` may be "auto".

    `offload` ("none", "model", "sequential"; see `engine.pipelines.offload`) applies to
    DreamClear; the starter and upscalers are small and always stay on the device."""
    from engine.pipelines.offload import check_offload
    from engine.weights.store import ModelStore
    from engine.weights.upscaler_io import is_upscaler_file, upscaler_folder

    check_offload(offload)
    device, dtype = resolve_placement(device, dtype)
    store = ModelStore(store_root)
    if spec == "auto":
        spec = "dreamclear" if store.is_installed("dreamclear") else "starter"
        if spec == "starter" and not starter_available():
            raise ModelNotInstalledError(
                "no restoration model is installed",
                hint="get DreamClear with `dreamclear models download dreamclear`, "
                "or pass --model PATH to a model folder",
            )
    if spec == "starter":
        if not starter_available():
            raise ModelNotInstalledError(
                "the bundled starter model is not part of this build yet",
                hint="use --model dreamclear after `dreamclear models download dreamclear`, "
                "or --model PATH to a model folder",
            )
        return _starter("starter", None, device, dtype)
    folder = _model_folder(spec, store)
    if folder is not None and starter_folder(folder):
        return _starter(spec, folder, device, dtype)
    if folder is not None and (is_upscaler_file(folder) or upscaler_folder(folder)):
        return _upscaler(spec, folder, device, dtype)
    return _dreamclear(spec, folder, store, device, dtype, offload)


def _model_folder(spec: str, store) -> Path | None:
    """The folder `spec` names (a path, or a local model of the store); None for dreamclear."""
    if spec == "dreamclear":
        return None
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if spec in store.local_names():
        return store.require(spec)
    raise ModelNotInstalledError(
        f"--model {spec!r} is neither auto, starter, dreamclear, an imported model nor an "
        "existing model folder or upscaler file",
        hint="see `dreamclear models list` for what is installed",
    )


def _starter(name: str, folder: Path | None, device: torch.device, dtype: torch.dtype):
    from engine.models.starter import STARTER_CHANNELS
    from engine.pipelines.starter import StarterRestorePipeline
    from engine.weights.starter_io import load_starter_networks

    # The starter is small: it runs in fp32 wherever it runs.
    networks = load_starter_networks(folder, device=device)
    pipeline = StarterRestorePipeline(
        networks.restorer,
        networks.estimator,
        STARTER_CHANNELS,
        networks.channel_spearman,
        restorer_scale=networks.restorer_scale,
    )
    return Restorer(name=name, pipeline=pipeline, min_short_side=0, device=device, dtype=dtype)


def _upscaler(spec: str, path: Path, device: torch.device, dtype: torch.dtype):
    from engine.pipelines.upscaler import UpscalerRestorePipeline
    from engine.weights.upscaler_io import load_upscaler

    descriptor = load_upscaler(path, device=device, dtype=dtype)
    name = path.name if path.is_dir() else path.stem
    pipeline = UpscalerRestorePipeline(descriptor, name)
    return Restorer(name=spec, pipeline=pipeline, min_short_side=0, device=device, dtype=dtype)


def _dreamclear(
    spec: str,
    folder: Path | None,
    store,
    device: torch.device,
    dtype: torch.dtype,
    offload: str = "none",
):
    from engine.pipelines.offload import loading_device, offload_components
    from engine.pipelines.restore import DreamClearRestorePipeline
    from engine.weights.components_io import load_components

    load_on = loading_device(offload, device)
    components = load_components(folder or spec, store=store, device=load_on, dtype=dtype)
    if components.captioner is None and store.is_installed("llava"):
        components.captioner = load_llava_captioner(store, load_on, dtype)
    offload_components(components, offload, device)
    pipeline = DreamClearRestorePipeline.from_components(components)
    sample_size = components.transformer.config.sample_size
    return Restorer(
        name=spec,
        pipeline=pipeline,
        min_short_side=sample_size * VAE_FACTOR,
        device=device,
        dtype=dtype,
    )


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
