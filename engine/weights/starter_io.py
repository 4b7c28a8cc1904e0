"""The bundled starter model: where it lives, whether it is there, and reading its networks.

Layout (written by `trainer.tasks.starter.export_starter`):
    restorer.safetensors   spandrel-loadable state dict (v2: Compact at x4; v1: RRDBNet at
                           scale 1, fed the bicubic upscale)
    estimator/             DegradationEstimator.save_pretrained (config.json + safetensors)
    estimator/validation.json  optional: per channel, the Spearman `bench estimator` measured on
                           tokens with detail; a channel below `MIN_MAP_SPEARMAN` is not shown
    train-config.toml      the exact config of the run that produced the folder
    README.md              the commands, the data and the validation numbers
The bundled folder also keeps the configs and validation CSVs of the earlier runs that made
it (run1-*, run2-*, run3-*; see its README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.errors import ModelNotInstalledError
from engine.weights.components_io import checkpoint_errors
from engine.weights.store import STARTER_FOLDER

RESTORER_FILE = "restorer.safetensors"
ESTIMATOR_FOLDER = "estimator"
VALIDATION_FILE = "validation.json"


def starter_available(folder: Path = STARTER_FOLDER) -> bool:
    return (folder / RESTORER_FILE).is_file()


@dataclass
class StarterNetworks:
    restorer: nn.Module
    estimator: nn.Module | None
    """None when the folder has no estimator: the starter then restores without maps."""
    channel_spearman: dict[str, float] | None = None
    """Per channel, the estimator's measured Spearman on tokens with detail (validation.json);
    None when the model was not measured (every channel is then shown)."""
    restorer_scale: int = 1
    """The restorer's native scale as spandrel detects it: 1 takes the bicubic upscale (v1),
    4 upscales the input itself (v2)."""


def load_starter_networks(
    folder: Path | None = None, device: torch.device | str = "cpu"
) -> StarterNetworks:
    """The starter's networks from `folder` (the bundled one when None), on `device`, in fp32.

    `engine.restorers.load_restorer` puts them into their pipeline."""
    from safetensors.torch import load_file
    from spandrel import ModelLoader

    from engine.models.starter import DegradationEstimator

    folder = STARTER_FOLDER if folder is None else folder
    restorer_path = folder / RESTORER_FILE
    if not restorer_path.is_file():
        raise ModelNotInstalledError(
            f"the starter model is missing from {folder}",
            hint="reinstall DreamClear Studio, or use --model dreamclear / --model PATH",
        )
    with checkpoint_errors(restorer_path, "the starter restorer"):
        descriptor = ModelLoader().load_from_state_dict(load_file(restorer_path))
    estimator = None
    estimator_path = folder / ESTIMATOR_FOLDER
    if (estimator_path / "config.json").is_file():
        with checkpoint_errors(estimator_path, "the starter's degradation estimator"):
            estimator = DegradationEstimator.from_pretrained(estimator_path)
        estimator = estimator.to(device)
    spearman = read_channel_spearman(estimator_path / VALIDATION_FILE) if estimator else None
    return StarterNetworks(
        descriptor.model.to(device), estimator, spearman, restorer_scale=int(descriptor.scale)
    )


def read_channel_spearman(path: Path) -> dict[str, float] | None:
    """`spearman_detail` of an estimator's validation.json: channel -> Spearman; None if absent."""
    import json

    if not path.is_file():
        return None
    with checkpoint_errors(path, "the estimator's validation numbers"):
        data = json.loads(path.read_text(encoding="utf-8"))
        values = data["spearman_detail"]
        return {str(name): float(value) for name, value in values.items()}


def write_validation(folder: Path | None, record: dict) -> Path:
    """Save `record` (`EstimatorReport.validation_record`) as the estimator's validation.json
    in `folder` (the bundled starter when None), atomically; returns its path."""
    import json

    from engine.errors import BadSettingError
    from engine.imaging.atomic import atomic_write

    folder = STARTER_FOLDER if folder is None else folder
    target = folder / ESTIMATOR_FOLDER
    if not (target / "config.json").is_file():
        raise BadSettingError(
            f"{folder} has no estimator to describe", hint="use a starter-type model folder"
        )
    path = target / VALIDATION_FILE
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda file: file.write(text.encode("utf-8")), overwrite=True)
    return path
