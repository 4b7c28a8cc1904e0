"""Weights of the learned metrics (LPIPS, DISTS, FID), read from the model store.

Each metric has a folder `<store>/<name>/` (the layout a manifest model gets) holding one or
more `.safetensors` / `.pth` / `.pt` files; their state dicts are merged and the metric takes
the keys it knows (torchvision's `features.*` for the VGG16 backbone, the metric's own heads).
Pickles are read with `weights_only=True`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import CheckpointError, ModelNotInstalledError
from engine.weights.checkpoint_inspection import WEIGHT_SUFFIXES
from engine.weights.store import ModelStore

LPIPS_VGG = "lpips-vgg"
DISTS = "dists"
INCEPTION_FID = "inception-fid"


def metric_folder(name: str, store_root: str | Path | None = None) -> Path:
    return ModelStore(store_root).root / name


def metric_weights_installed(name: str, store_root: str | Path | None = None) -> bool:
    folder = metric_folder(name, store_root)
    return folder.is_dir() and any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir())


def load_metric_weights(name: str, store_root: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The merged state dicts of every weights file in `<store>/<name>/`."""
    folder = metric_folder(name, store_root)
    files = (
        sorted(p for p in folder.glob("*") if p.suffix in WEIGHT_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if not files:
        raise ModelNotInstalledError(
            f"the {name} metric weights are not installed: no weights file in {folder}",
            hint=f"put the {name} weights files (.safetensors or .pth) in {folder}",
        )
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(_read_state_dict(path))
    return state


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt or foreign files surface as one kind of error
        raise CheckpointError(
            f"cannot read {path}: {error}", hint="download the file again"
        ) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict", hint="download the file again")
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load `state` strictly: every parameter of `module` must be there, with its shape."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(
            f"the {name} weights lack {len(missing)} tensors, e.g. {', '.join(missing[:3])}",
            hint=f"check that the files in the store's {name} folder are the {name} weights",
        )
    wrong = [k for k in own if state[k].shape != own[k].shape]
    if wrong:
        raise CheckpointError(
            f"the {name} weights have other shapes for {', '.join(wrong[:3])}",
            hint=f"check that the files in the store's {name} folder are the {name} weights",
        )
    module.load_state_dict({k: state[k] for k in own})
