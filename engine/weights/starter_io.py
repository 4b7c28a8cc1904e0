"""The bundled starter model: where it lives, whether it is there, and loading it.

Layout (written by `trainer.tasks.starter.export_starter`):
    restorer.safetensors   spandrel-loadable state dict (RRDBNet at scale 1)
    estimator/             DegradationEstimator.save_pretrained (config.json + safetensors)
    train-config.toml      the exact config of the run that produced the folder
    README.md              the commands, the data and the validation numbers
The bundled folder also keeps the configs and validation CSVs of the earlier runs that made
it (run1-*, run2-*, run3-*; see its README).
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import ModelNotInstalledError
from engine.weights.components_io import checkpoint_errors
from engine.weights.store import STARTER_FOLDER

RESTORER_FILE = "restorer.safetensors"
ESTIMATOR_FOLDER = "estimator"


def starter_available(folder: Path = STARTER_FOLDER) -> bool:
    return (folder / RESTORER_FILE).is_file()


def load_starter(folder: Path = STARTER_FOLDER, device: torch.device | str = "cpu"):
    """A ready `StarterRestorePipeline`; the estimator is optional (no maps without it)."""
    from safetensors.torch import load_file
    from spandrel import ModelLoader

    from engine.models.starter import STARTER_CHANNELS, DegradationEstimator
    from engine.pipelines.starter import StarterRestorePipeline

    restorer_path = folder / RESTORER_FILE
    if not restorer_path.is_file():
        raise ModelNotInstalledError(
            f"the starter model is missing from {folder}",
            hint="reinstall DreamClear Studio, or use --model dreamclear / --model PATH",
        )
    with checkpoint_errors(restorer_path, "the starter restorer"):
        restorer = ModelLoader().load_from_state_dict(load_file(restorer_path)).model
    estimator = None
    estimator_path = folder / ESTIMATOR_FOLDER
    if (estimator_path / "config.json").is_file():
        with checkpoint_errors(estimator_path, "the starter's degradation estimator"):
            estimator = DegradationEstimator.from_pretrained(estimator_path)
        estimator = estimator.to(device)
    return StarterRestorePipeline(restorer.to(device), estimator, STARTER_CHANNELS)
