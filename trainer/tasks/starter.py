"""The starter task: the restorer (L1 + gradient L1) and the degradation estimator (MSE on maps).

They see what `StarterRestorePipeline` feeds them: the Compact restorer (v2) the LQ image
itself, the RRDBNet restorer (v1) and the estimator the LQ image resized (bicubic) to the HQ
size. The restorer learns to undo the data's mix of degradations (published second-order,
single-stage, none), the estimator to read `degrade_spatially_varying`'s per-16 px strength
maps off a second, varying degradation.
Either can start from a starter model folder (`init_from`) and either can stay frozen, so the
bundled restorer's estimator can be fine-tuned alone.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path

import numpy as np
import spandrel
import torch
import torch.nn.functional as F
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import CheckpointError
from engine.metrics.fidelity import psnr_y
from engine.metrics.rank_correlation import spearman
from engine.models.compact_growth import compact_num_conv, deepen_compact
from engine.models.starter import (
    STARTER_CHANNELS,
    DegradationEstimator,
    build_compact_restorer,
    build_starter_restorer,
    start_as_bilinear,
)
from engine.weights.components_io import checkpoint_errors
from engine.weights.store import STARTER_FOLDER
from trainer import checkpoints
from trainer.config import ConfigError, StarterConfig
from trainer.data import DegradedCrops, degraded_crops, validation_set
from trainer.photos import training_photos
from trainer.tasks.base import Task

logger = logging.getLogger(__name__)

RESTORER_FILE = "restorer.safetensors"
ESTIMATOR_FOLDER = "estimator"


def upscale_to(lq: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """LQ (B,3,h,w) -> bicubic (B,3,*size) in [0,1]: the input of both starter models."""
    return F.interpolate(lq, size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def image_gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(a), dx(b)) + F.l1_loss(dy(a), dy(b))


class StarterTask(Task):
    def build(self, device: torch.device) -> list[nn.Module]:
        cfg = self.config.starter
        restorer = build_restorer(cfg, self.config.data.scale)
        estimator = build_estimator(cfg)
        if cfg.init_from is not None:
            load_initial_weights(
                cfg.init_from,
                restorer,
                estimator,
                cfg.init_parts,
                restorer_file=cfg.init_restorer_file,
                deepen=cfg.deepen_restorer,
            )
        # A frozen model stays in the list (the export reads both from every checkpoint);
        # accelerate does not wrap a model without trainable parameters for DDP.
        restorer.requires_grad_(cfg.train_restorer)
        estimator.requires_grad_(cfg.train_estimator)
        if not cfg.ema_decay:
            return [restorer, estimator]
        # The averages are models too, so accelerate saves them (model_2, model_3.safetensors)
        # and restores them on resume; they have no trainable parameters and no optimiser.
        averages = [copy.deepcopy(model).requires_grad_(False) for model in (restorer, estimator)]
        return [restorer, estimator, *averages]

    def parameter_groups(self, models: list[nn.Module]) -> list[dict]:
        restorer, estimator = models[:2]
        cfg = self.config.starter
        groups = []
        if cfg.train_restorer:
            groups.append({"params": list(restorer.parameters())})
        if cfg.train_estimator:
            rate = cfg.estimator_learning_rate or self.config.optimisation.learning_rate
            groups.append({"params": list(estimator.parameters()), "lr": rate})
        return groups

    def train_dataset(self) -> DegradedCrops:
        starter = self.config.starter
        # Each half of the data only for the model that trains on it (fine-tunes of one).
        return degraded_crops(
            self.config,
            training_photos(self.config),
            spatially_varying=starter.train_estimator,
            standard=starter.train_restorer,
        )

    def after_optimizer_step(self, models: list[nn.Module], step: int) -> None:
        if not self.config.starter.ema_decay:
            return
        # Warm-up: early on the average forgets faster, so the random init fades out of it
        # (decay 0.999 from step ~9000 on; about 0.995 at step 2000).
        decay = min(self.config.starter.ema_decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for model, average in zip(models[:2], models[2:], strict=True):
                if not any(p.requires_grad for p in model.parameters()):
                    continue
                for tensor, averaged in zip(
                    (*model.parameters(), *model.buffers()),
                    (*average.parameters(), *average.buffers()),
                    strict=True,
                ):
                    if averaged.dtype.is_floating_point:
                        averaged.lerp_(tensor.detach(), 1.0 - decay)
                    else:
                        averaged.copy_(tensor)

    def loss(self, models, batch, generator):
        restorer, estimator = models[:2]
        cfg = self.config.starter
        hq = batch["hq"]
        loss, logs = hq.new_zeros(()), {}
        if cfg.train_restorer:
            restored = restorer(self.restorer_input(batch["lq"], hq.shape[-2:]))
            l1 = F.l1_loss(restored, hq)
            loss = loss + l1
            logs["l1"] = float(l1.detach())
            if cfg.gradient_weight:
                gradient = image_gradient_l1(restored, hq)
                loss = loss + cfg.gradient_weight * gradient
                logs["gradient_l1"] = float(gradient.detach())
        if cfg.train_estimator:
            varying_up = upscale_to(batch["lq_varying"], hq.shape[-2:])
            map_mse = F.mse_loss(estimator(varying_up), batch["maps"])
            loss = loss + cfg.estimator_weight * map_mse
            logs["map_mse"] = float(map_mse.detach())
        return loss, logs

    def validate(self, models, folder: Path) -> dict[str, float]:
        restorer, estimator = models[2:] if self.config.starter.ema_decay else models
        pairs = validation_set(self.config, spatially_varying=True)
        if not pairs:
            return {}
        device = next(restorer.parameters()).device
        folder.mkdir(parents=True, exist_ok=True)
        psnr, psnr_bicubic, map_mae, predicted, applied = [], [], [], [], []
        for pair in pairs:
            hq = pair["hq"][None].to(device)
            lq = pair["lq"][None].to(device)
            lq_up = upscale_to(lq, hq.shape[-2:])
            restored = restorer(self.restorer_input(lq, hq.shape[-2:])).clamp(0.0, 1.0)
            psnr.append(psnr_y(restored, hq, crop_border=self.config.data.scale))
            psnr_bicubic.append(psnr_y(lq_up, hq, crop_border=self.config.data.scale))
            varying_up = upscale_to(pair["lq_varying"][None].to(device), hq.shape[-2:])
            maps = estimator(varying_up)[0].cpu()
            map_mae.append(float((maps - pair["maps"]).abs().mean()))
            predicted.append(maps.reshape(len(STARTER_CHANNELS), -1))
            applied.append(pair["maps"].reshape(len(STARTER_CHANNELS), -1))
            strip = torch.cat([lq_up[0], restored[0], hq[0]], dim=-1).cpu()
            pixels = (strip.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{Path(pair['name']).stem}.png")
        predicted_all, applied_all = torch.cat(predicted, 1), torch.cat(applied, 1)
        rank_correlations = {
            f"spearman_{name}": spearman(predicted_all[i].numpy(), applied_all[i].numpy())
            for i, name in enumerate(STARTER_CHANNELS)
        }
        return {
            "psnr_y": float(np.mean(psnr)),
            "psnr_y_bicubic": float(np.mean(psnr_bicubic)),
            "map_mae": float(np.mean(map_mae)),
            **rank_correlations,
        }

    def restorer_input(self, lq: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Compact runs on the LQ image itself; RRDBNet on its bicubic upscale."""
        return lq if self.config.starter.restorer == "compact" else upscale_to(lq, size)

    def export(self, output_dir: Path, target: Path) -> Path:
        return export_starter(output_dir, target)


def build_restorer(cfg: StarterConfig, scale: int) -> nn.Module:
    if cfg.restorer == "compact":
        compact = build_compact_restorer(num_feat=cfg.num_feat, num_conv=cfg.num_conv, scale=scale)
        return start_as_bilinear(compact) if cfg.restorer_start == "bilinear" else compact
    return build_starter_restorer(num_feat=cfg.num_feat, num_block=cfg.num_block)


def build_estimator(cfg: StarterConfig) -> DegradationEstimator:
    return DegradationEstimator(
        channels=cfg.estimator_channels, context_layers=cfg.estimator_context_layers
    )


def load_initial_weights(
    folder: Path,
    restorer: nn.Module,
    estimator: nn.Module,
    parts: tuple[str, ...] = ("restorer", "estimator"),
    *,
    restorer_file: str = RESTORER_FILE,
    deepen: bool = False,
) -> None:
    """Copy a starter model folder's weights into the freshly built models (sizes must match,
    but with `deepen` a shallower Compact restorer is first made as deep as `restorer`);
    only the `parts` named."""
    restorer_path = folder / restorer_file
    estimator_path = folder / ESTIMATOR_FOLDER / SAFETENSORS_WEIGHTS_NAME
    for path, model, what in (
        (restorer_path, restorer, "restorer"),
        (estimator_path, estimator, "estimator"),
    ):
        if what not in parts:
            continue
        if not path.is_file():
            raise ConfigError(
                f"Config field 'starter.init_from' names {folder}, which has no {what} "
                f"({path.relative_to(folder)}).",
                hint=f"give a starter model folder, e.g. the bundled one: {STARTER_FOLDER}",
            )
        with checkpoint_errors(path, f"the starter {what}"):
            state = load_file(path)
        if deepen and model is restorer:
            state = _deepened(state, restorer, path)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(
                f"Config field 'starter.init_from': the {what} in {folder} has other sizes "
                f"than this config's [starter] fields ({str(error).splitlines()[0]}).",
                hint="set num_feat, num_block, estimator_channels and estimator_context_layers "
                "to the sizes of the model you start from",
            ) from None
    logger.info("Initialised the %s from %s.", " and the ".join(parts), folder)


def _deepened(state: dict, restorer: nn.Module, path: Path) -> dict:
    try:
        depth = compact_num_conv(state)
        grown = deepen_compact(state, restorer.num_conv)
    except ValueError as error:
        raise ConfigError(
            f"Config field 'starter.deepen_restorer': cannot deepen {path} to "
            f"{restorer.num_conv} convolutions ({error}).",
            hint="start from a Compact restorer with at most starter.num_conv convolutions",
        ) from None
    logger.info("Deepened the restorer from %d to %d convolutions.", depth, restorer.num_conv)
    return grown


def _weights_files(folder: Path) -> tuple[Path, Path]:
    """The (restorer, estimator) weights of a checkpoint: the averaged ones when the run kept
    an exponential moving average, else the trained ones."""
    if checkpoints.saved_config_section(folder, "starter").get("ema_decay", 0.0):
        return folder / "model_2.safetensors", folder / "model_3.safetensors"
    return folder / "model.safetensors", folder / "model_1.safetensors"


def estimator_from_checkpoint(folder: Path) -> DegradationEstimator:
    """The estimator of a checkpoint, built to the sizes its saved config names."""
    starter = checkpoints.saved_config_section(folder, "starter")
    estimator = DegradationEstimator(
        channels=starter.get("estimator_channels", StarterConfig.estimator_channels),
        context_layers=starter.get(
            "estimator_context_layers", StarterConfig.estimator_context_layers
        ),
    )
    estimator.load_state_dict(checkpoints.unwrapped_state(load_file(_weights_files(folder)[1])))
    return estimator


def export_starter(output_dir: str | Path, target: str | Path, checkpoint: str = "latest") -> Path:
    """A complete checkpoint of a starter run ("latest" or a checkpoint folder, e.g. the best
    validated one) -> `target`/restorer.safetensors (a spandrel-loadable state dict: 1x ESRGAN
    or Compact at the run's scale),
    estimator/ (save_pretrained) and train-config.toml."""
    target = Path(target)
    folder = checkpoints.export_source(Path(output_dir), checkpoint)
    restorer_state = checkpoints.unwrapped_state(load_file(_weights_files(folder)[0]))
    descriptor = spandrel.ModelLoader().load_from_state_dict(restorer_state)
    if descriptor.architecture.id not in ("ESRGAN", "Compact"):
        raise CheckpointError(f"{folder} does not hold a starter restorer.")
    target.mkdir(parents=True, exist_ok=True)
    save_file(
        {key: value.contiguous() for key, value in restorer_state.items()},
        target / RESTORER_FILE,
    )
    estimator_from_checkpoint(folder).save_pretrained(target / ESTIMATOR_FOLDER)
    shutil.copyfile(folder / checkpoints.CONFIG_FILE, target / checkpoints.CONFIG_FILE)
    logger.info("Exported %s to %s.", folder, target)
    return target
