"""The dreamclear task on the tiny components: only the control modules train; the loss."""

from __future__ import annotations

import pytest
import torch

from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.tiny_components import build_tiny_transformer
from trainer import checkpoints
from trainer.config import load_config
from trainer.diffusion_loss import DiffusionLoss
from trainer.loop import train
from trainer.tasks.dreamclear import TRAINABLE_MODULES


def test_tiny_dreamclear_trains_only_the_control_modules(photos_dir, tmp_path):
    path = tmp_path / "dc.toml"
    path.write_text(
        f"""
task = "dreamclear"
max_steps = 2
seed = 1
[data]
photos = "{photos_dir}"
validation_photos = ["bridge.jpg"]
crop_min = 64
crop_max = 64
batch_size = 2
samples_per_epoch = 4
[optimisation]
optimizer = "adamw"
learning_rate = 1e-3
weight_decay = 1e-2
[checkpointing]
output_dir = "{tmp_path / "out"}"
checkpoint_every = 1
keep_last = 2
[validation]
every = 0
num_images = 1
crop = 64
[dreamclear]
model = "tiny"
caption = "a photo of a tree"
caption_dropout = 0.5
gradient_checkpointing = true
validation_sampling_steps = 2
""",
        encoding="utf-8",
    )
    config = load_config(path)
    export = train(config)

    rows = checkpoints.read_csv(config.checkpointing.output_dir / "losses.csv")
    assert [int(row["step"]) for row in rows] == [1, 2]
    assert all(float(row["vb"]) >= 0.0 for row in rows)
    metrics = checkpoints.read_csv(config.checkpointing.output_dir / "validation" / "metrics.csv")
    assert {"val_mse", "val_vb", "psnr_y"} <= set(metrics[0])

    trained = DreamClearTransformer2DModel.from_pretrained(export / "transformer")
    torch.manual_seed(1)  # build_tiny_components(seed=1) seeds the transformer first
    initial = build_tiny_transformer()
    for name, parameter in trained.named_parameters():
        before = initial.get_parameter(name)
        if name.split(".")[0] in TRAINABLE_MODULES:
            continue
        torch.testing.assert_close(parameter, before, msg=f"frozen {name} changed")
    moved = [
        name
        for name, parameter in trained.named_parameters()
        if name.split(".")[0] in TRAINABLE_MODULES
        and not torch.equal(parameter, initial.get_parameter(name))
    ]
    assert moved


def test_variational_bound_trains_only_the_variance():
    loss_fn = DiffusionLoss(1000)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 4, 4, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.tensor([0, 10, 999])
    x_t = loss_fn.add_noise(x0, noise, t)
    output = torch.randn(3, 8, 4, 4, generator=generator).requires_grad_(True)
    eps, values = output.chunk(2, dim=1)
    vb = loss_fn.variational_bound(eps.detach(), values.tanh(), x0, x_t, t).sum()
    vb.backward()
    assert output.grad[:, :4].abs().sum() == 0
    assert output.grad[:, 4:].abs().sum() > 0


def test_variational_bound_is_zero_for_the_true_posterior():
    loss_fn = DiffusionLoss(1000)
    x0 = torch.randn(2, 4, 4, 4)
    noise = torch.randn(x0.shape)
    t = torch.tensor([5, 700])
    x_t = loss_fn.add_noise(x0, noise, t)
    # Exact epsilon and v = -1 (the posterior variance): KL = 0.
    vb = loss_fn.variational_bound(noise, -torch.ones_like(noise), x0, x_t, t)
    assert vb == pytest.approx([0.0, 0.0], abs=1e-4)
