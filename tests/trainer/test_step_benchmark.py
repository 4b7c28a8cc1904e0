"""The DreamClear step benchmark runs the dreamclear task's step and reports its numbers."""

from __future__ import annotations

import math

import torch

from engine.models.published_sizes import build_published_transformer
from trainer import step_benchmark
from trainer.tasks.dreamclear import freeze_base


def test_tiny_steps_train_only_the_control_modules(capsys):
    report = step_benchmark.run(
        size="tiny",
        resolution=128,
        batch=1,
        precision="no",
        gradient_checkpointing=True,
        steps=2,
        cpu=True,
    )
    assert 0 < report.trainable_parameters < report.parameters
    assert len(report.losses) == 2 and all(math.isfinite(loss) for loss in report.losses)
    assert report.step_s > 0 and report.latents_s > 0 and report.peak_memory_gib > 0
    assert "| peak memory |" in step_benchmark.format_report(report)


def test_published_size_trains_about_1_6_billion_parameters():
    with torch.device("meta"):
        transformer = build_published_transformer()
    freeze_base(transformer)
    total = sum(p.numel() for p in transformer.parameters())
    trained = sum(p.numel() for p in transformer.parameters() if p.requires_grad)
    assert 2.20e9 < total < 2.22e9
    assert 1.59e9 < trained < 1.61e9  # "about 1.6 B parameters" in the published setup
