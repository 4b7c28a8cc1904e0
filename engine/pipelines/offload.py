"""Offload levels: keep DreamClear's weights in CPU memory and give the device only what runs.

- "none": every component stays on the device. Fastest; the device holds all the weights.
- "model": each component (remover, captioner, T5, VAE, transformer) is moved whole onto the
  device when it is called and back to the CPU when another one is called, through accelerate's
  `cpu_offload_with_hook`. The device then holds the largest component plus its activations;
  each image pays one host-to-device copy per component (the transformer once per image, not
  once per step, because it stays while the denoising loop calls it).
- "sequential": accelerate's `cpu_offload`: the weights stay in CPU memory (the modules hold
  meta tensors) and every submodule's weights are copied in for its own forward and dropped
  after it. The device holds about one layer; every denoising step copies the whole
  transformer again, so it is many times slower. The last resort for small cards.

The execution device is the engine's device. On a CPU-only machine it is the CPU: "model"
moves nothing (the weights are already where they run) and "sequential" still swaps each
submodule's weights in from its CPU copy and out again, which costs a little time and changes
no number: the output is identical to "none" (tests/engine/pipelines/test_offload.py).

Inputs must be sent to `engine.devices.execution_device(module)`, not to the device of the
module's parameters, which is the CPU or meta while offloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import torch
from accelerate import cpu_offload, cpu_offload_with_hook
from accelerate.hooks import CpuOffload, ModelHook, UserCpuOffloadHook, add_hook_to_module
from torch import nn

from engine.devices import execution_device
from engine.errors import BadSettingError

if TYPE_CHECKING:
    from engine.pipelines.components import RestoreComponents

logger = logging.getLogger(__name__)

OffloadLevel = Literal["none", "model", "sequential"]
OFFLOAD_LEVELS: tuple[str, ...] = ("none", "model", "sequential")


def check_offload(level: str) -> None:
    if level not in OFFLOAD_LEVELS:
        raise BadSettingError(
            f"unknown offload level {level!r}", hint=f"use one of {', '.join(OFFLOAD_LEVELS)}"
        )


def loading_device(level: str, device: torch.device) -> torch.device:
    """Where to load the weights: the CPU when they are offloaded, so the device never holds
    them all at once (not even while loading)."""
    return device if level == "none" else torch.device("cpu")


def offload_components(
    components: RestoreComponents, level: str, device: torch.device
) -> RestoreComponents:
    """Hook `components` (loaded on the CPU, see `loading_device`) so they run on `device` at
    offload `level`; "none" leaves them as they are. Returns the same object."""
    check_offload(level)
    if level == "none":
        return components
    device = _with_index(device)
    modules = _offloadable(components)
    if level == "model":
        _model_offload(modules, device)
    else:
        for module in modules:
            cpu_offload(module, execution_device=device, offload_buffers=False)
    logger.info("offload %s: %d components execute on %s", level, len(modules), device)
    return components


def module_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """`module.<name>` (a parameter or buffer of the module itself) with real values.

    Sequential offload leaves meta tensors in the module outside its forward; the values are
    in the weights map of the hook accelerate attached to it.
    """
    tensor = getattr(module, name)
    if tensor.device.type != "meta":
        return tensor
    hook = getattr(module, "_hf_hook", None)
    for part in getattr(hook, "hooks", (hook,)):
        weights = getattr(part, "weights_map", None)
        if weights is not None and name in weights:
            return weights[name]
    raise RuntimeError(f"{type(module).__name__}.{name} is offloaded and its values are lost")


def pending_weight_bytes(module: nn.Module) -> int:
    """Bytes of `module`'s weights that "model" offload will still move onto its execution
    device when it runs (0 when they are there, or with no offload or "sequential"): free
    memory measured before then overstates what its activations will have."""
    hook = getattr(module, "_hf_hook", None)
    if not any(isinstance(part, CpuOffload) for part in getattr(hook, "hooks", (hook,))):
        return 0
    if execution_device(module).type == "cpu" or _resident(module):
        return 0
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def _with_index(device: torch.device) -> torch.device:
    """accelerate compares the weights' device with the execution device to skip a move, and
    weights on "cuda" report "cuda:0": name the index, or every call would move them again."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _offloadable(components: RestoreComponents) -> list[nn.Module]:
    """The networks in the order a restore calls them (the VAE again after the transformer)."""
    captioner_model = getattr(components.captioner, "model", None)
    found = [
        components.remover,
        captioner_model if isinstance(captioner_model, nn.Module) else None,
        components.text_encoder.model,
        components.vae,
        components.transformer,
    ]
    return [module for module in found if module is not None]


def _model_offload(modules: Iterable[nn.Module], device: torch.device) -> None:
    """Whole-model offload with at most one component on the device at a time.

    accelerate's chain (`prev_module_hook`) offloads only the one component called before,
    but our VAE runs both before the transformer (encode) and after it (decode), so a chain
    would leave T5 or the transformer resident. Each component gets `_OneResident` first,
    which sends every other resident component back to the CPU, then accelerate's own hook.
    """
    group: list[UserCpuOffloadHook] = []
    for module in modules:
        add_hook_to_module(module, _OneResident(group))
        _, user_hook = cpu_offload_with_hook(module, execution_device=device)
        group.append(user_hook)


class _OneResident(ModelHook):
    """Before its module runs, offload the other modules of `group` that are on a device."""

    def __init__(self, group: list[UserCpuOffloadHook]) -> None:
        self.group = group

    def pre_forward(self, module, *args, **kwargs):
        moved = False
        for hook in self.group:
            if hook.model is not module and _resident(hook.model):
                hook.offload()
                moved = True
        if moved and torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the freed blocks to the next component
        return args, kwargs


def _resident(module: nn.Module) -> bool:
    return next(module.parameters()).device.type != "cpu"
