"""The bundled starter model: where it lives, whether it is there, and reading its networks.

Layout (written by `trainer.tasks.starter.export_starter`):
    restorer.safetensors   spandrel-loadable state dict (v2: Compact at x4; v1: RRDBNet at
                           scale 1, fed the bicubic upscale); with a gentle expert, the
                           all-round one, taken where the damage is heavy
    restorer-gentle.safetensors  optional (v2.1): a second restorer of the same scale, kind to
                           clean and everyday damage (engine/models/expert_gate.py)
    gate/                  optional, with the gentle restorer: ExpertGate.save_pretrained, the
                           per-region blend of the two
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
GENTLE_RESTORER_FILE = "restorer-gentle.safetensors"
GATE_FOLDER = "gate"
ESTIMATOR_FOLDER = "estimator"
VALIDATION_FILE = "validation.json"


def starter_available(folder: Path = STARTER_FOLDER) -> bool:
    return (folder / RESTORER_FILE).is_file()


@dataclass
class StarterNetworks:
    restorer: nn.Module
    """The restorer the pipeline runs: the folder's one, or its two experts behind their gate
    (`GatedRestorer`) when the folder has a gentle restorer and a gate."""
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
    restorer = _gated(folder, descriptor.model.to(device), int(descriptor.scale), device)
    estimator = None
    estimator_path = folder / ESTIMATOR_FOLDER
    if (estimator_path / "config.json").is_file():
        with checkpoint_errors(estimator_path, "the starter's degradation estimator"):
            estimator = DegradationEstimator.from_pretrained(estimator_path)
        estimator = estimator.to(device)
    spearman = read_channel_spearman(estimator_path / VALIDATION_FILE) if estimator else None
    return StarterNetworks(restorer, estimator, spearman, restorer_scale=int(descriptor.scale))


def _gated(folder: Path, restorer: nn.Module, scale: int, device: torch.device | str) -> nn.Module:
    """`restorer` alone, or with the folder's gentle expert behind their gate when both are
    there (a folder with only one of them is a broken install: said, not guessed around)."""
    from engine.errors import CheckpointError
    from engine.models.expert_gate import ExpertGate, GatedRestorer
    from engine.weights.spandrel_io import load_spandrel_file

    gentle_path, gate_path = folder / GENTLE_RESTORER_FILE, folder / GATE_FOLDER
    has_gentle, has_gate = gentle_path.is_file(), (gate_path / "config.json").is_file()
    if not (has_gentle or has_gate):
        return restorer
    if not (has_gentle and has_gate):
        missing = gate_path / "config.json" if has_gentle else gentle_path
        raise CheckpointError(
            f"the starter in {folder} is incomplete: {missing} is missing",
            hint="reinstall DreamClear Studio, or copy the whole model folder again",
        )
    gentle = load_spandrel_file(
        gentle_path, "the starter's gentle restorer", hint="reinstall DreamClear Studio"
    )
    if int(gentle.scale) != scale:
        raise CheckpointError(
            f"the starter's gentle restorer upscales x{gentle.scale}, its restorer x{scale}",
            hint="both restorers of a starter folder must have one scale",
        )
    with checkpoint_errors(gate_path, "the starter's expert gate"):
        gate = ExpertGate.from_pretrained(gate_path)
    return GatedRestorer(gentle.model.to(device), restorer, gate.to(device), scale).eval()


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
