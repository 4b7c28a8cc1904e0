"""Time DreamClear training steps at the published size (random weights) or the tiny one.

    python -m trainer.step_benchmark --size published --resolution 1024 --batch 1 \\
        --precision bf16 --gradient-checkpointing --steps 4

One step is what the dreamclear task does for a batch (the same `training_latents` and
`training_loss`): the frozen SwinIR remover makes the reference, the frozen VAE encodes HQ,
LQ and reference (fp32, as published), then the transformer (prepared by accelerate, so `--precision` is its autocast) runs forward and
backward on the published loss and AdamW (lr 5e-5, weight decay 1e-2) steps the ControlFormer
and MoAM parameters, with the gradient clipped to 1.0. Captions are random T5-sized features.
The first step (allocations, kernel selection) is reported apart from the median of the rest.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch
from accelerate import Accelerator

from engine.models.presets import DREAMCLEAR_1024, TINY
from trainer.diffusion_loss import DiffusionLoss
from trainer.tasks.dreamclear import freeze_base, training_latents, training_loss


@dataclass
class StepReport:
    size: str
    device: str
    resolution: int
    batch: int
    precision: str
    gradient_checkpointing: bool
    parameters: int
    trainable_parameters: int
    first_step_s: float
    latents_s: float
    """Median time of the remover and the three VAE encodes."""
    transformer_step_s: float
    """Median time of the transformer's forward, backward, clipping and optimiser step."""
    step_s: float
    """Median time of a whole step."""
    peak_memory_gib: float
    """Peak CUDA memory allocated (GPU) or peak process RSS (CPU)."""
    losses: list[float]


def _build(size: str, device: torch.device):
    if size == "published":
        from engine.models.published_sizes import (
            build_published_remover,
            build_published_transformer,
            build_published_vae,
        )

        with device:  # initialise on the device: 2.2 B parameters are slow to init on a CPU
            transformer = build_published_transformer()
        return transformer, build_published_vae(), build_published_remover(), DREAMCLEAR_1024
    from engine.models.tiny_components import build_tiny_components

    components = build_tiny_components(seed=0)
    return components.transformer, components.vae, components.remover, TINY


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(
    *,
    size: str,
    resolution: int,
    batch: int,
    precision: str,
    gradient_checkpointing: bool,
    steps: int,
    cpu: bool = False,
) -> StepReport:
    accelerator = Accelerator(mixed_precision=precision, cpu=cpu)
    device = accelerator.device
    torch.manual_seed(0)
    transformer, vae, remover, preset = _build(size, device)
    transformer.train()
    freeze_base(transformer)
    if gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    for frozen in (vae, remover):
        frozen.to(device).eval().requires_grad_(False)
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5, weight_decay=1e-2)
    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    loss_fn = DiffusionLoss(1000)

    generator = torch.Generator(device=device).manual_seed(0)
    hq = torch.rand(batch, 3, resolution, resolution, generator=generator, device=device)
    lq = torch.rand(batch, 3, resolution // 4, resolution // 4, generator=generator, device=device)
    embeddings = torch.randn(
        batch,
        preset["caption_max_length"],
        preset["caption_channels"],
        generator=generator,
        device=device,
    )
    mask = torch.ones(batch, preset["caption_max_length"], dtype=torch.long, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    latent_times, transformer_times, losses = [], [], []
    for _ in range(steps):
        _sync(device)
        started = time.perf_counter()
        latents = training_latents(vae, remover, hq, lq)
        _sync(device)
        encoded = time.perf_counter()
        loss, _ = training_loss(transformer, loss_fn, latents, embeddings, mask, generator)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        latent_times.append(encoded - started)
        transformer_times.append(time.perf_counter() - encoded)
        losses.append(float(loss.detach()))

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:  # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rest = slice(1, None) if steps > 1 else slice(None)
    whole = [a + b for a, b in zip(latent_times, transformer_times, strict=True)]
    return StepReport(
        size=size,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        resolution=resolution,
        batch=batch,
        precision=precision,
        gradient_checkpointing=gradient_checkpointing,
        parameters=sum(p.numel() for p in accelerator.unwrap_model(transformer).parameters()),
        trainable_parameters=sum(p.numel() for p in trainable),
        first_step_s=whole[0],
        latents_s=statistics.median(latent_times[rest]),
        transformer_step_s=statistics.median(transformer_times[rest]),
        step_s=statistics.median(whole[rest]),
        peak_memory_gib=peak,
        losses=losses,
    )


def format_report(report: StepReport) -> str:
    return "\n".join(
        [
            f"DreamClear training step, {report.size} size, {report.device}, "
            f"batch {report.batch} at {report.resolution} px, {report.precision}, "
            f"gradient checkpointing {'on' if report.gradient_checkpointing else 'off'}",
            "",
            "| what | value |",
            "|---|---|",
            f"| transformer parameters | {report.parameters / 1e6:,.1f} M "
            f"({report.trainable_parameters / 1e6:,.1f} M trained) |",
            f"| first step | {report.first_step_s:.3f} s |",
            f"| step (median after the first) | {report.step_s:.3f} s |",
            f"| of which remover + 3 VAE encodes | {report.latents_s:.3f} s |",
            f"| of which transformer fwd + bwd + AdamW | {report.transformer_step_s:.3f} s |",
            f"| peak memory | {report.peak_memory_gib:.2f} GiB |",
            f"| losses | {', '.join(f'{loss:.4f}' for loss in report.losses)} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.step_benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", choices=("published", "tiny"), default="published")
    parser.add_argument("--resolution", type=int, default=1024, help="HQ crop side (px)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=("no", "fp16", "bf16"), default="bf16")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=4, help="steps to time (the first apart)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even with a GPU")
    parser.add_argument("--json", type=argparse.FileType("w"), help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.resolution % 64:
        parser.error("--resolution must be a multiple of 64")
    report = run(
        size=args.size,
        resolution=args.resolution,
        batch=args.batch,
        precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing,
        steps=args.steps,
        cpu=args.cpu,
    )
    print(format_report(report))
    if args.json:
        json.dump(asdict(report), args.json, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
