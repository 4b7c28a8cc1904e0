"""The state a checkpoint holds for resuming, written and read without running any code.

accelerate's `save_state`/`load_state` pickle the generator states and registered objects and
read the latter with `weights_only=False`, so a replaced file in a checkpoint folder ran code on
`--resume`. A checkpoint folder holds instead, beside the trainer's marker and config:
- `model.safetensors`, `model_1.safetensors`, ...: each prepared model, as accelerate names and
  lays them out (exports read them), read as safetensors;
- `optimizer.bin`: the optimiser's state dict (tensors, numbers, lists and dicts), read with
  `torch.load(weights_only=True)`, which refuses anything else;
- `random_states_<process>.json`: Python's, NumPy's and torch's (CPU, CUDA) generator states;
- `scaler.json`, with fp16 mixed precision: the gradient scaler's loss scale and counters.
Nothing else in the folder is opened, e.g. the pickles of older checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from accelerate.utils import save as save_on_main_process
from safetensors.torch import load_model
from torch import nn

from engine.errors import CheckpointError
from engine.weights.components_io import checkpoint_errors
from trainer.config import ConfigError

logger = logging.getLogger(__name__)

OPTIMIZER_FILE = "optimizer.bin"
SCALER_FILE = "scaler.json"
RESUME_HINT = "resume from another checkpoint (--resume PATH), or start a new run"


def check_supported(accelerator: Accelerator) -> None:
    """FSDP, DeepSpeed and Megatron shard the models and the optimiser into files of their own
    that they read with pickle; these checkpoints hold whole ones."""
    sharded = (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)
    if accelerator.distributed_type in sharded:
        raise ConfigError(
            f"Training with {accelerator.distributed_type.value} is not supported: its "
            "checkpoints are pickles, which could run code on resume.",
            hint="use plain multi-GPU (DDP) in `accelerate config`",
        )


def _model_file(index: int) -> str:
    return "model.safetensors" if index == 0 else f"model_{index}.safetensors"


def _rng_file(process_index: int) -> str:
    return f"random_states_{process_index}.json"


def save_training_state(
    folder: Path,
    accelerator: Accelerator,
    models: list[nn.Module],
    optimizer: torch.optim.Optimizer,
) -> None:
    """Write the models and the optimiser (main process) and each process's generator states
    into `folder`, which exists."""
    for index, model in enumerate(models):
        state = accelerator.get_state_dict(model, unwrap=False)
        save_on_main_process(state, folder / _model_file(index), safe_serialization=True)
    save_on_main_process(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    if accelerator.scaler is not None and accelerator.is_main_process:
        state = accelerator.scaler.state_dict()
        (folder / SCALER_FILE).write_text(json.dumps(state), encoding="utf-8")
    path = folder / _rng_file(accelerator.process_index)
    path.write_text(json.dumps(rng_state()), encoding="utf-8")


def load_training_state(
    folder: Path,
    accelerator: Accelerator,
    models: list[nn.Module],
    optimizer: torch.optim.Optimizer,
) -> None:
    """Restore what `save_training_state` wrote. A file that is missing, corrupt or holds
    anything but data raises CheckpointError."""
    for index, model in enumerate(models):
        path = folder / _model_file(index)
        with reading(path, "model weights"):
            load_model(model, path, strict=True, device="cpu")
    path = folder / OPTIMIZER_FILE
    with reading(path, "the optimiser state"):
        optimizer.load_state_dict(_load_data(path))
    if accelerator.scaler is not None:
        _load_json(folder / SCALER_FILE, "the gradient scaler", accelerator.scaler.load_state_dict)
    _load_json(folder / _rng_file(accelerator.process_index), "the generator states", set_rng_state)


def _load_json(path: Path, what: str, restore: Callable[[Any], object]) -> None:
    """`restore` what the JSON file holds. A missing file is only warned about: an older
    checkpoint (or a run on fewer processes, or without fp16) did not write it."""
    if not path.is_file():
        logger.warning("%s is missing: %s not restored.", path, what)
        return
    with reading(path, what):
        restore(json.loads(path.read_text(encoding="utf-8")))


@contextlib.contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Failures to read a checkpoint file as one CheckpointError naming it."""
    try:
        with checkpoint_errors(path, what):
            yield
    except CheckpointError as error:
        raise CheckpointError(error.message, hint=RESUME_HINT) from None


def _load_data(path: Path) -> Any:
    """A file of tensors, numbers, strings, lists and dicts written by torch.save."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds Python objects besides tensors and numbers: loading them could "
            "run code, so the resume stops. Was the file replaced?"
        ) from None


def rng_state() -> dict[str, Any]:
    """The global generators' states as JSON values."""
    version, words, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": list(words), "gauss": gauss},
        "numpy": {
            "state": numpy["state"]["key"].tolist(),
            "pos": numpy["state"]["pos"],
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        },
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [device.tolist() for device in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python, numpy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np.array(numpy["state"], dtype=np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        devices = [torch.tensor(device, dtype=torch.uint8) for device in state["cuda"]]
        torch.cuda.set_rng_state_all(devices[: torch.cuda.device_count()])
