"""The starter-gate task: learn where to take a starter's heavy-damage restorer over its gentle one.

Both restorers (`starter_gate.experts_from`: restorer.safetensors, the all-round one, and
restorer-gentle.safetensors) are loaded by spandrel and frozen; only `ExpertGate` trains, over
the data's whole mix (clean, single-stage and the published second-order damage). So the gate
learns which expert is better where from the experts themselves; no threshold on a noise
estimate is guessed.

The gate (engine/models/expert_gate.py) is a logistic regression, or with `hidden_units` a
one-layer net (v2.3), on fixed statistics of the input's damage (`features` of them,
engine/models/damage_features.py), standardised on the run's first crops; the loss is a
classification: the target says which expert's result is closer to the HQ crop in PSNR, and
each crop counts by the dB between the two (the PSNR a wrong choice loses). On 400 other training crops this
weighting took the published damage from 25.20 to 25.40 dB (the heavy expert alone: 25.45)
for 0.04-0.05 dB on clean and single-stage crops, against an unweighted verdict by mean
absolute error (the first gate's). Three other ways were tried first, on 250-400 step trial runs (docs/decisions.md):
a small CNN gate trained on the blend's L1 ran to "heavy" everywhere within a few dozen steps
and its sigmoid saturated (mean weight 0.9998 at step 240); the same CNN with a verdict per
8x8 region, or per crop, stayed at the prior's loss; trained offline for 40 epochs on 450
crops it fitted them (94 %) but was right on only 65-77 % of 150 others, no better than
always answering "gentle" (69 %). The logistic regression was right on 77-79 % of those 150.

Since v2.6 the pipeline colour-fixes the gentle restorer's result and keeps the all-round
one's own colours (engine/pipelines/expert_color_fix.py); `gentle_color_fix = "wavelet"` judges
the two as the pipeline shows them. The default, "none", compares the raw results, as the
gates up to v2.3 were trained.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from engine.errors import CheckpointError
from engine.metrics.fidelity import psnr_y
from engine.models.damage_features import DAMAGE_FEATURES
from engine.models.expert_gate import ExpertGate
from engine.pipelines.color_fix import COLOR_FIXES, apply_color_fix
from engine.pipelines.strength import upscale_input
from engine.typed_config import ConfigError
from engine.weights.components_io import checkpoint_errors
from engine.weights.spandrel_io import load_spandrel_file
from engine.weights.starter_io import GATE_FOLDER, GENTLE_RESTORER_FILE, RESTORER_FILE
from trainer import checkpoints
from trainer.config import StarterGateConfig
from trainer.data import DegradedCrops, degraded_crops, validation_set
from trainer.photos import training_photos
from trainer.tasks.base import Task
from trainer.tasks.starter import upscale_to

logger = logging.getLogger(__name__)


def load_expert(path: Path, scale: int, what: str) -> nn.Module:
    """A spandrel restorer file -> its frozen network in eval mode; its scale must be `scale`."""
    descriptor = load_spandrel_file(path, what, hint="give a starter folder of Compact files")
    if descriptor.scale != scale:
        raise CheckpointError(
            f"{path} upscales x{descriptor.scale}, the run's data.scale is {scale}.",
            hint="set data.scale to the experts' scale",
        )
    return descriptor.model.requires_grad_(False)


def build_gate(features: int, hidden_units: int) -> ExpertGate:
    """The gate a run's `starter_gate` section asks for; a feature count the gate does not have
    is the config's error."""
    if features > len(DAMAGE_FEATURES):
        raise ConfigError(
            f"starter_gate.features: the gate has {len(DAMAGE_FEATURES)} damage statistics, "
            f"not {features}",
            hint=f"use 1 to {len(DAMAGE_FEATURES)}",
        )
    return ExpertGate(num_features=features, hidden_units=hidden_units)


def check_color_fix(name: str) -> str:
    """`starter_gate.gentle_color_fix`, if the engine has a fix by that name."""
    if name not in COLOR_FIXES:
        raise ConfigError(
            f"starter_gate.gentle_color_fix: no colour fix {name!r}",
            hint=f"use one of {', '.join(COLOR_FIXES)}",
        )
    return name


class StarterGateTask(Task):
    _dataset: DegradedCrops | None = None

    def build(self, device: torch.device) -> list[nn.Module]:
        cfg, scale = self.config.starter_gate, self.config.data.scale
        self.gentle_color_fix = check_color_fix(cfg.gentle_color_fix)
        assert cfg.experts_from is not None  # validated with the config
        self.gentle = load_expert(
            cfg.experts_from / GENTLE_RESTORER_FILE, scale, "the gentle restorer"
        )
        self.heavy = load_expert(cfg.experts_from / RESTORER_FILE, scale, "the all-round restorer")
        self.gentle.to(device)
        self.heavy.to(device)
        gate = build_gate(cfg.features, cfg.hidden_units)
        # Standardised on the run's own first crops: deterministic for a seed, so a resumed
        # run rebuilds the same gate before its checkpoint is loaded over it.
        dataset = self.train_dataset()  # built once: the loop takes this one too
        count = min(cfg.standardisation_crops, len(dataset))
        gate.set_standardisation([dataset[i]["lq"][None] for i in range(count)])
        return [gate]

    def train_dataset(self) -> DegradedCrops:
        if self._dataset is None:
            photos = training_photos(self.config)
            self._dataset = degraded_crops(self.config, photos, spatially_varying=False)
        return self._dataset

    def experts(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gentle, heavy) results for `lq`, the gentle one colour-fixed against the bicubic
        upscale as the starter pipeline fixes it where the gate takes that restorer (v2.6:
        engine/pipelines/expert_color_fix.py); the heavy one raw, as the pipeline keeps it."""
        with torch.no_grad():
            gentle, heavy = self.gentle(lq), self.heavy(lq)
            if self.gentle_color_fix != "none":
                # Clamped first, as the pipeline clamps each restored tile, and against its
                # reference (antialiased bicubic, not the crops' bicubic baseline).
                reference = upscale_input(lq, tuple(gentle.shape[-2:]))
                gentle = apply_color_fix(self.gentle_color_fix, gentle.clamp(0, 1), reference)
            return gentle, heavy

    def loss(self, models, batch, generator):
        gate = models[0]
        lq, hq = batch["lq"], batch["hq"]
        gentle, heavy = self.experts(lq)
        # Which expert is closer to the truth over each crop, in PSNR (what the bench scores
        # and what a viewer sees as error energy); each crop counts by how many dB the choice
        # is worth there, so the gate minimises the PSNR lost to wrong choices.
        gentle_mse = (gentle.clamp(0, 1) - hq).square().mean((1, 2, 3)).clamp_min(1e-10)
        heavy_mse = (heavy.clamp(0, 1) - hq).square().mean((1, 2, 3)).clamp_min(1e-10)
        heavy_better = (heavy_mse < gentle_mse).float()
        stake = 10 * (gentle_mse / heavy_mse).log10().abs()
        logits = gate(lq, logits=True).flatten()
        choice = F.binary_cross_entropy_with_logits(logits, heavy_better, reduction="none")
        loss = (stake * choice).sum() / stake.sum().clamp_min(1e-8)
        with torch.no_grad():
            weight = torch.sigmoid(logits)
            regret = torch.where(weight > 0.5, 1 - heavy_better, heavy_better) * stake
        return loss, {
            "regret_db": float(regret.mean()),
            "heavy_weight": float(weight.mean()),
            "heavy_better": float(heavy_better.mean()),
        }

    def validate(self, models, folder: Path) -> dict[str, float]:
        """PSNR-Y of the blend, of each expert alone and of bicubic on the held-out photos'
        published degradation, and the gate's mean weight there."""
        gate = models[0]
        pairs = validation_set(self.config, spatially_varying=False)
        if not pairs:
            return {}
        device = next(gate.parameters()).device
        scale = self.config.data.scale
        scores: dict[str, list[float]] = {
            "psnr_y": [],
            "psnr_y_gentle": [],
            "psnr_y_heavy": [],
            "psnr_y_bicubic": [],
            "heavy_weight": [],
        }
        for pair in pairs:
            hq = pair["hq"][None].to(device)
            lq = pair["lq"][None].to(device)
            gentle, heavy = self.experts(lq)
            weight = gate(lq, tuple(hq.shape[-2:]))
            results = {
                "psnr_y": torch.lerp(gentle, heavy, weight),
                "psnr_y_gentle": gentle,
                "psnr_y_heavy": heavy,
                "psnr_y_bicubic": upscale_to(lq, hq.shape[-2:]),
            }
            for name, image in results.items():
                scores[name].append(psnr_y(image.clamp(0, 1), hq, crop_border=scale))
            scores["heavy_weight"].append(float(weight.mean()))
        return {name: float(np.mean(values)) for name, values in scores.items()}

    def export(self, output_dir: Path, target: Path) -> Path:
        return export_gate(output_dir, target)


def export_gate(output_dir: str | Path, target: str | Path, checkpoint: str = "latest") -> Path:
    """A complete checkpoint of a starter-gate run -> `target`/gate/ (save_pretrained) and
    `target`/train-config.toml."""
    folder = checkpoints.export_source(Path(output_dir), checkpoint)
    # The run's own sizes: its experts_from may be long gone (a scratch folder).
    saved = checkpoints.saved_config_section(folder, "starter_gate")
    defaults = StarterGateConfig()
    gate = build_gate(
        int(saved.get("features", defaults.features)),
        int(saved.get("hidden_units", defaults.hidden_units)),
    )
    with checkpoint_errors(folder / "model.safetensors", "the gate checkpoint"):
        gate.load_state_dict(checkpoints.unwrapped_state(load_file(folder / "model.safetensors")))
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    gate.save_pretrained(target / GATE_FOLDER)
    shutil.copyfile(folder / checkpoints.CONFIG_FILE, target / checkpoints.CONFIG_FILE)
    logger.info("Exported %s to %s.", folder, target / GATE_FOLDER)
    return target
