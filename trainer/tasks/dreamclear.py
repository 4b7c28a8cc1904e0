"""The dreamclear task: train the ControlFormer branches and MoAM on a frozen PixArt base.

Data, as published: HQ crop -> LQ (Real-ESRGAN second-order degradation) -> bicubic back to
the HQ size -> degradation remover (the reference) -> VAE latents of HQ (x0), LQ and the
reference. Captions are T5 features of `<photo stem>.txt` (or `dreamclear.caption`), or
cached features; each is replaced by the model's null caption with probability
`caption_dropout`. The loss is `DiffusionLoss` (epsilon MSE + variational bound, uniform t).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from engine.errors import CheckpointError
from engine.metrics.fidelity import psnr_y
from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.tiny_components import build_tiny_components
from engine.pipelines.components import RestoreComponents
from engine.pipelines.restore import DreamClearRestorePipeline
from engine.pipelines.tiled_vae import encode_tiled
from engine.weights.components_io import load_components
from trainer import checkpoints
from trainer.data import DegradedCrops, degraded_crops, validation_set
from trainer.diffusion_loss import DiffusionLoss
from trainer.photos import load_photos
from trainer.tasks.base import Task
from trainer.tasks.starter import upscale_to

logger = logging.getLogger(__name__)

TRAINABLE_MODULES = (
    "lq_branch_embed",
    "ref_branch_embed",
    "lq_condition_embed",
    "ref_condition_embed",
    "lq_branch_blocks",
    "ref_branch_blocks",
    "degradation_attention",
    "ref_modulators",
    "lq_modulators",
)
"""The wrapper's new modules (ControlFormer branches, fusion, MoAM); the PixArt base is frozen."""

VALIDATION_TIMESTEPS = (50, 250, 500, 750, 950)


def freeze_base(transformer: DreamClearTransformer2DModel) -> None:
    transformer.requires_grad_(False)
    for name in TRAINABLE_MODULES:
        getattr(transformer, name).requires_grad_(True)


@torch.no_grad()
def training_latents(
    vae: nn.Module, remover: nn.Module | None, hq: torch.Tensor, lq: torch.Tensor
) -> dict[str, torch.Tensor]:
    """VAE latents of HQ ("x0"), of the bicubic-upscaled LQ ("lq") and of the remover's
    reference ("ref"; the upscaled LQ when there is no remover)."""
    lq_up = upscale_to(lq, hq.shape[-2:])
    reference = remover(lq_up).clamp(0.0, 1.0) if remover is not None else lq_up
    size = max(hq.shape[-2:])  # one tile: training crops are small enough
    return {
        "x0": encode_tiled(vae, hq, size),
        "lq": encode_tiled(vae, lq_up, size),
        "ref": encode_tiled(vae, reference, size),
    }


def training_loss(
    transformer: nn.Module,
    loss_fn: DiffusionLoss,
    latents: dict[str, torch.Tensor],
    embeddings: torch.Tensor,
    masks: torch.Tensor,
    generator: torch.Generator,
    vlb_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The published loss of one batch: uniform t, noise, the transformer's prediction."""
    x0 = latents["x0"]
    t = loss_fn.sample_timesteps(x0.shape[0], generator)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    x_t = loss_fn.add_noise(x0, noise, t)
    output = transformer(
        x_t,
        t,
        encoder_hidden_states=embeddings,
        lq_latent=latents["lq"],
        ref_latent=latents["ref"],
        encoder_attention_mask=masks,
    ).sample
    return loss_fn(output, x0, x_t, t, noise, vlb_weight)


class DreamClearTask(Task):
    def build(self, device: torch.device) -> list[nn.Module]:
        cfg = self.config.dreamclear
        if cfg.model == "tiny":
            components = build_tiny_components(seed=self.config.seed)
        else:
            components = load_components(cfg.model, device=device, dtype=torch.float32)
        self.components: RestoreComponents = components
        transformer = components.transformer.train()
        freeze_base(transformer)
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        for frozen in (components.vae, components.remover, components.text_encoder.model):
            if frozen is not None:
                frozen.to(device).eval().requires_grad_(False)
        self.transformer = transformer
        self.loss_fn = DiffusionLoss(cfg.num_train_timesteps)
        self.train_photos = load_photos(
            self.config.data.photos,
            exclude=self.config.data.validation_photos,
            min_side=self.config.data.min_photo_side or self.config.data.crop_max,
        )
        self.captions = self._caption_features([p.name for p in self.train_photos], device)
        return [transformer]

    # ------------------------------------------------------------------ captions

    def _caption_text(self, name: str) -> str:
        sidecar = (self.config.data.photos / name).with_suffix(".txt")
        return (
            sidecar.read_text(encoding="utf-8").strip()
            if sidecar.is_file()
            else self.config.dreamclear.caption
        )

    def _caption_features(
        self, names: list[str], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L, C) embeddings and (N, L) masks, one per named photo."""
        cache = self.config.dreamclear.caption_features
        if cache is None:
            encoder = self.components.text_encoder
            embeddings, masks = encoder([self._caption_text(name) for name in names])
            return embeddings.float().to(device), masks.to(device)
        embeddings, masks = [], []
        for name in names:
            path = cache / f"{Path(name).stem}.safetensors"
            if not path.is_file():
                raise CheckpointError(
                    f"No cached caption features for {name} ({path}).",
                    hint="cache every training photo's T5 features, or unset caption_features",
                )
            tensors = load_file(path)
            embeddings.append(tensors["embedding"].float())
            masks.append(tensors["mask"].long())
        return torch.stack(embeddings).to(device), torch.stack(masks).to(device)

    # ------------------------------------------------------------------ data + loss

    def train_dataset(self) -> DegradedCrops:
        return degraded_crops(self.config, self.train_photos, spatially_varying=False)

    def _latents(self, hq: torch.Tensor, lq: torch.Tensor) -> dict[str, torch.Tensor]:
        return training_latents(self.components.vae, self.components.remover, hq, lq)

    def loss(self, models, batch, generator):
        (transformer,) = models
        device = batch["hq"].device
        latents = self._latents(batch["hq"], batch["lq"])
        batch_size = latents["x0"].shape[0]
        embeddings, masks = (c[batch["photo"].to(device)] for c in self.captions)
        drop = torch.rand(batch_size, generator=generator, device=device)
        drop = drop < self.config.dreamclear.caption_dropout
        null = self.transformer.null_caption_embedding.detach()[None].to(embeddings.dtype)
        embeddings = torch.where(drop[:, None, None], null, embeddings)
        return training_loss(
            transformer,
            self.loss_fn,
            latents,
            embeddings,
            masks,
            generator,
            self.config.dreamclear.vlb_weight,
        )

    # ------------------------------------------------------------------ validation

    def validate(self, models, folder: Path) -> dict[str, float]:
        (transformer,) = models
        data = self.config.data
        pairs = validation_set(self.config, spatially_varying=False)
        if not pairs:
            return {}
        device = next(transformer.parameters()).device
        embeddings, masks = self._caption_features([pair["name"] for pair in pairs], device)
        mse, vb, psnr = [], [], []
        folder.mkdir(parents=True, exist_ok=True)
        for index, pair in enumerate(pairs):
            hq, lq = pair["hq"][None].to(device), pair["lq"][None].to(device)
            latents = self._latents(hq, lq)
            generator = torch.Generator(device=device).manual_seed(self.config.seed + index)
            for step in VALIDATION_TIMESTEPS:
                t = torch.full((1,), step, device=device, dtype=torch.long)
                noise = torch.randn(latents["x0"].shape, generator=generator, device=device)
                x_t = self.loss_fn.add_noise(latents["x0"], noise, t)
                output = transformer(
                    x_t,
                    t,
                    encoder_hidden_states=embeddings[index : index + 1],
                    lq_latent=latents["lq"],
                    ref_latent=latents["ref"],
                    encoder_attention_mask=masks[index : index + 1],
                ).sample
                _, logs = self.loss_fn(output, latents["x0"], x_t, t, noise)
                mse.append(logs["mse"])
                vb.append(logs["vb"])
            if self.config.dreamclear.validation_sampling_steps:
                restored = self._restore(transformer, lq, hq.shape[-1], generator)
                psnr.append(psnr_y(restored, hq, crop_border=data.scale))
                strip = torch.cat([upscale_to(lq, hq.shape[-2:])[0], restored[0], hq[0]], dim=-1)
                pixels = (strip.permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{Path(pair['name']).stem}.png")
        metrics = {"val_mse": float(np.mean(mse)), "val_vb": float(np.mean(vb))}
        if psnr:
            metrics["psnr_y"] = float(np.mean(psnr))
        return metrics

    def _restore(self, transformer, lq: torch.Tensor, size: int, generator) -> torch.Tensor:
        c = self.components
        pipeline = DreamClearRestorePipeline(transformer, c.vae, c.text_encoder, c.remover)
        result = pipeline(
            lq,
            upscale=self.config.data.scale,
            min_short_side=size,
            num_inference_steps=self.config.dreamclear.validation_sampling_steps,
            generator=generator,
            prompt=self.config.dreamclear.caption,
        )
        return result.image.to(lq.device)

    # ------------------------------------------------------------------ export

    def export(self, output_dir: Path, target: Path) -> Path:
        """The trained transformer, `save_pretrained` into target/transformer, plus the config."""
        found = checkpoints.complete_checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"No complete checkpoint in {output_dir} to export.")
        state = checkpoints.unwrapped_state(load_file(found[-1] / "model.safetensors"))
        transformer = DreamClearTransformer2DModel.from_config(self.transformer.config)
        transformer.load_state_dict(state)
        transformer.save_pretrained(target / "transformer")
        (target / checkpoints.CONFIG_FILE).write_bytes(
            (found[-1] / checkpoints.CONFIG_FILE).read_bytes()
        )
        return target
