"""The genir-prompts task: GenIR's dual-prompt fine-tuning (stage 2) on the shared loop.

The model is `engine.genir.dual_prompts`: learned positive and negative token rows in both
SDXL text encoders and the UNet's cross-attention (LoRA, full or none), trained with the
latent diffusion loss on the run's pairs (positives under the positive tokens, negatives
under the negative ones). Checkpoints hold only the trained parameters; the export writes
RUN/finetune/ (engine.genir.finetune_output), which generation loads into a stock pipeline.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from engine.errors import BadSettingError
from engine.genir.dual_prompts import (
    DualPromptModel,
    diffusion_loss,
    load_base,
    prepare_dual_prompts,
    token_names,
)
from engine.genir.finetune_data import DualPromptPairs, pair_samples
from engine.genir.finetune_output import LearnedPrompts, base_sha256, save_finetune
from engine.genir.finetune_samples import write_samples
from trainer.tasks.base import Task

FROZEN_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""The dtype of the frozen UNet and text encoders under each mixed precision."""


class GenIRPromptsTask(Task):
    def build(self, device: torch.device) -> list[nn.Module]:
        settings = self.config.genir_prompts
        self.parts = load_base(settings.base_model, FROZEN_DTYPES[self.config.mixed_precision])
        self.model: DualPromptModel = prepare_dual_prompts(self.parts, settings)
        # The frozen parts stay in eval mode (as loaded): the loop's train()/eval() reach only
        # the trained parameters' module. Gradient checkpointing works in eval mode too.
        for module in (
            self.parts.unet,
            self.parts.vae,
            self.parts.text_encoder,
            self.parts.text_encoder_2,
        ):
            module.to(device)
        return [self.model]

    def parameter_groups(self, models: list[nn.Module]) -> list[dict]:
        settings = self.config.genir_prompts
        groups = [
            {"params": [self.model.clip_l, self.model.clip_g], "lr": settings.token_learning_rate}
        ]
        attention = list(self.model.cross_attention.values())
        if attention:
            groups.append({"params": attention, "lr": settings.cross_attention_learning_rate})
        return groups

    def train_dataset(self) -> Dataset:
        settings = self.config.genir_prompts
        count = settings.vectors_per_token
        samples = pair_samples(settings.run, token_names("pos", count), token_names("neg", count))
        self._samples = samples
        if len(samples) < self.config.data.batch_size:
            raise BadSettingError(
                f"{len(samples)} samples ({len(samples) // 2} pairs) cannot fill a batch of "
                f"{self.config.data.batch_size}",
                hint="make more pairs, or lower finetune.batch_size",
            )
        tokenizers = (self.parts.tokenizer, self.parts.tokenizer_2)
        return DualPromptPairs(samples, tokenizers, settings.resolution, self.config.seed)

    def collate(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        return default_collate(samples)

    def loss(
        self, models: list[nn.Module], batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return diffusion_loss(models[0], self.parts, batch, generator), {}

    def validate(self, models: list[nn.Module], folder: Path) -> dict[str, float]:
        """Sample images under the learned prompts (no metric: the training loss says what a
        number can; the images show what the tokens learned)."""
        settings = self.config.genir_prompts
        count = settings.vectors_per_token
        positives = [s for s in self._samples if s.positive][: settings.sample_images]
        if positives:
            write_samples(
                self.parts,
                [s.caption for s in positives],
                token_names("pos", count),
                token_names("neg", count),
                settings.resolution,
                folder,
                seed=self.config.seed,
            )
        return {}

    def export(self, output_dir: Path, target: Path) -> Path:
        """RUN/finetune/'s files from the trained parameters (the loop has just saved the
        same ones as the last checkpoint)."""
        settings = self.config.genir_prompts
        count = settings.vectors_per_token
        recorded = {
            name: value
            for name, value in dataclasses.asdict(settings).items()
            if name not in ("run", "base_model")
        }
        recorded.update(max_steps=self.config.max_steps, seed=self.config.seed)
        prompts = LearnedPrompts(
            base_model=str(Path(settings.base_model).resolve()),
            base_sha256=base_sha256(settings.base_model),
            positive_tokens=token_names("pos", count),
            negative_tokens=token_names("neg", count),
            cross_attention=settings.cross_attention,
            lora_rank=settings.lora_rank if settings.cross_attention == "lora" else None,
            settings=recorded,
        )
        return save_finetune(target, self.model, prompts)
