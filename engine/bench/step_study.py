"""Fewer denoising steps: time and difference from the published 50-step iDDPM output.

One crop of a bundled photo is restored with the same seed at 50 iDDPM steps (the reference)
and with each sampler at each step count. Differences are taken on the final images in [0, 1]:
PSNR (peak 1) and the largest absolute difference. With random weights the numbers say how
far a sampler's path strays from the reference's, not how good a picture is; the same table
on the real weights (a GPU run) is what decides a default.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

REFERENCE_SAMPLER = "iddpm"
REFERENCE_STEPS = 50
SAMPLERS = ("dpm++", "iddpm")


@dataclass
class StepSample:
    sampler: str
    steps: int
    seconds: float
    psnr: float
    """dB against the reference; inf where identical."""
    max_abs_diff: float


@dataclass
class StepStudy:
    size: str
    device: str
    resolution: int
    reference_steps: int
    reference_seconds: float
    samples: list[StepSample]


def _pipeline(size: str, device: str):
    from engine.bench.stage_models import build_components
    from engine.pipelines.restore import DreamClearRestorePipeline

    target = torch.device(device)
    components = build_components(size, "small", target)
    pipeline = DreamClearRestorePipeline.from_components(components)
    for module in (pipeline.transformer, pipeline.vae, pipeline.remover):
        module.to(target)
    if size == "published":
        pipeline.transformer.to(torch.bfloat16)
    return pipeline


def restore(pipeline, image: torch.Tensor, sampler: str, steps: int) -> tuple[torch.Tensor, float]:
    device = pipeline.device
    started = time.perf_counter()
    with torch.inference_mode():
        output = pipeline(
            image,
            upscale=4,
            min_short_side=0,
            num_inference_steps=steps,
            sampler=sampler,
            generator=torch.Generator(device).manual_seed(0),
            caption="none",
        )
    return output.image.float().cpu(), time.perf_counter() - started


def compare(image: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(PSNR dB with peak 1, max abs difference) of two images in [0, 1]."""
    mse = float((image - reference).square().mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    return psnr, float((image - reference).abs().max())


def run(
    counts: tuple[int, ...] = (10, 20, 30, 50),
    size: str = "tiny",
    device: str = "cpu",
    resolution: int = 256,
    samplers: tuple[str, ...] = SAMPLERS,
    reference_steps: int = REFERENCE_STEPS,
) -> StepStudy:
    from engine.bench.stages import input_image

    pipeline = _pipeline(size, device)
    image = input_image(resolution, 4)
    reference, reference_seconds = restore(pipeline, image, REFERENCE_SAMPLER, reference_steps)
    samples = []
    for sampler in samplers:
        for steps in counts:
            if (sampler, steps) == (REFERENCE_SAMPLER, reference_steps):
                result, seconds = reference, reference_seconds
            else:
                result, seconds = restore(pipeline, image, sampler, steps)
            samples.append(StepSample(sampler, steps, seconds, *compare(result, reference)))
    return StepStudy(size, device, resolution, reference_steps, reference_seconds, samples)


def format_table(study: StepStudy) -> str:
    lines = [
        f"Fewer steps, {study.size} DreamClear (random weights) on {study.device}, "
        f"{study.resolution} px output (x4), same seed; differences from the "
        f"{REFERENCE_SAMPLER} {study.reference_steps}-step output "
        f"({study.reference_seconds:.2f} s).",
        "",
        "| sampler | steps | seconds | x faster | PSNR dB | max abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for sample in study.samples:
        psnr = "identical" if math.isinf(sample.psnr) else f"{sample.psnr:.2f}"
        lines.append(
            f"| {sample.sampler} | {sample.steps} | {sample.seconds:.2f} "
            f"| {study.reference_seconds / sample.seconds:.1f} | {psnr} "
            f"| {sample.max_abs_diff:.4f} |"
        )
    return "\n".join(lines)


def to_json(study: StepStudy) -> dict:
    data = asdict(study)
    for sample in data["samples"]:
        if math.isinf(sample["psnr"]):
            sample["psnr"] = None  # JSON has no infinity
    return data
