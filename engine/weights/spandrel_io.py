"""Reading a spandrel-supported image model from one file, safely.

The degradation remover of a DreamClear model folder and a user's own upscaler (Real-ESRGAN,
Compact, SwinIR, HAT, DAT, ...) are both single files that spandrel recognises by their keys
and tensor shapes. A .safetensors file holds tensors only; a .pth/.ckpt/.pt is a pickle, read
with `torch.load(weights_only=True)` (restricted unpickling: tensors and plain containers,
never arbitrary objects), so a file that needs code to unpickle is refused, not run.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from engine.errors import CheckpointError
from engine.weights.checkpoint_inspection import (
    TORCH_SUFFIXES,
    checkpoint_errors,
    unwrap_state_dict,
)

SPANDREL_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)


class UnsafePickleError(CheckpointError):
    """A torch file that needs more than tensors to unpickle: refused, never run."""


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors or (restricted-unpickled) torch file, 'module.' stripped."""
    suffix = path.suffix.lower()
    if suffix not in SPANDREL_SUFFIXES:
        raise CheckpointError(
            f"{path}: unknown weights format '{suffix}'.",
            hint="expected .safetensors, .pth, .ckpt, .pt or .bin",
        )
    if not path.is_file():
        raise CheckpointError(f"The file {path} is missing.", hint="check the path")
    with checkpoint_errors(path, what):
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as exc:
                raise UnsafePickleError(
                    f"{path} was refused: besides tensors it holds Python objects that would "
                    f"run code when unpickled ({str(exc).strip().splitlines()[-1][:160]}).",
                    hint="use the .safetensors release of the model, or convert the file to "
                    "safetensors with a tool you trust",
                ) from None
            state = unwrap_state_dict(loaded)
            if state is None:
                raise CheckpointError(
                    f"{path} holds no state dict of tensors.",
                    hint="expected a model's weights (a dict of tensors)",
                )
    # Checkpoints saved from DataParallel (DiffBIR's SwinIR, many ESRGAN forks) carry 'module.'.
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_spandrel_file(path: Path, what: str, hint: str):
    """`spandrel.ImageModelDescriptor` of the model in `path` (on the CPU, fp32, eval mode).

    `what` names the model in errors; `hint` says what to use instead when spandrel does not
    recognise the architecture.
    """
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    state = read_state_dict(path, what)
    with checkpoint_errors(path, what):
        try:
            descriptor = ModelLoader().load_from_state_dict(state)
        except UnsupportedModelError:
            raise CheckpointError(
                f"{path} is not an image model spandrel recognises.", hint=hint
            ) from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise CheckpointError(
            f"{path} is a {descriptor.architecture.name} {descriptor.purpose.lower()} model, "
            "not an image-to-image model.",
            hint=hint,
        )
    return descriptor.eval()
