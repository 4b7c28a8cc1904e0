"""Device and precision choice: `auto` picks the best the machine has, explicit values are checked."""

from __future__ import annotations

import torch

from engine.errors import BadSettingError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` -> the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise BadSettingError(
            f"unknown device {name!r}", hint="use auto, cpu, cuda or cuda:N"
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadSettingError(
                f"device {name!r} was asked for but no CUDA GPU is available",
                hint="use --device cpu (slower) or install a CUDA build of torch",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BadSettingError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) found",
                hint=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}",
            )
    elif device.type != "cpu":
        raise BadSettingError(f"unsupported device {name!r}", hint="use auto, cpu or cuda[:N]")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` -> bf16 on GPUs that support it, fp16 on older GPUs, fp32 on the CPU.

    The CPU gets fp32 because half-precision matmuls there are slow or missing on most CPUs.
    """
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in DTYPES:
        raise BadSettingError(f"unknown precision {name!r}", hint="use auto, bf16, fp16 or fp32")
    return DTYPES[name]


def resolve_placement(
    device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"
) -> tuple[torch.device, torch.dtype]:
    """Where and in what precision to run, from names (each may be `auto`) or resolved values."""
    resolved = device if isinstance(device, torch.device) else resolve_device(device)
    precision = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, resolved)
    return resolved, precision


def execution_device(module: torch.nn.Module) -> torch.device:
    """Where `module` computes: the device of its weights, or, when accelerate's offload hooks
    hold its weights in CPU memory (or on the meta device, `engine.pipelines.offload`), the
    device those hooks move them to for each forward. Inputs must go there."""
    for sub in module.modules():
        hook = getattr(sub, "_hf_hook", None)
        for part in getattr(hook, "hooks", (hook,)):  # a SequentialHook holds several
            device = getattr(part, "execution_device", None)
            if device is not None:
                return torch.device(device)
    return next(module.parameters()).device
