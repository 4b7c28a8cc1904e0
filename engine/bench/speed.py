"""Restorer speed side by side: output megapixels per second, in one run, on the same machine.

Each model restores the same input (a crop of a bundled photo, `size` px square) at `upscale`
through its own pipeline, tiles and all, as `restore` runs it. Runs are interleaved (model A,
B, C, then A, B, C again...) after one warm-up each, so a CPU shared with other work slows
every model alike and the ratios hold even when the absolute numbers move. The fastest run of each model is what counts (as `timeit` does): on a shared CPU the
other runs measure the other jobs as much as the model. Besides any `--model` spec (starter, a model folder, an upscaler file), two references
are built in code with random weights (their speed is their size, not their weights):

- `compact-reference`: Real-ESRGAN's SRVGGNetCompact, 64 features, 32 convs, x4 (the size of
  realesr-general-x4v3, the architecture Real-ESRGAN recommends for general photos);
- `x4plus-reference`: Real-ESRGAN's RRDBNet x4plus, 64 features, 23 blocks.

The crop is clean by default. A model whose work depends on the damage (the gated starter runs
its gentle restorer on a clean tile, its all-round one on a damaged tile, both where it is
unsure) is timed on damaged input with `damage`: one of `bench quality`'s levels, applied at
x1 (blur, noise and JPEG, no downscale), so the input keeps its size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

REFERENCES = ("compact-reference", "x4plus-reference")


@dataclass
class SpeedSample:
    model: str
    seconds: list[float] = field(default_factory=list)
    output_pixels: int = 0

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def megapixels_per_second(self) -> float:
        """At the fastest run."""
        return self.output_pixels / 1e6 / self.best


def load_pipeline(spec: str, device: str = "cpu"):
    """The pipeline `spec` names: a reference built in code, or anything `--model` takes."""
    if spec in REFERENCES:
        from engine.models.reference_upscalers import build_compact, build_rrdbnet
        from engine.pipelines.upscaler import UpscalerRestorePipeline
        from engine.weights.upscaler_io import describe

        torch.manual_seed(0)
        model = build_compact() if spec == "compact-reference" else build_rrdbnet()
        return UpscalerRestorePipeline(describe(model).to(device), spec)
    from engine.restorers import load_restorer

    return load_restorer(spec, device=device, dtype="fp32").pipeline


def input_crop(size: int) -> torch.Tensor:
    """(1, 3, size, size) from the middle of a bundled photo (real texture, not noise)."""
    from dreamclear_studio_resources import resource_path
    from engine.imaging.io import load_image

    rgb = load_image(resource_path("photos") / "bridge.jpg").rgb
    h, w = rgb.shape[:2]
    side = min(size, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(rgb[top : top + side, left : left + side].transpose(2, 0, 1))
    return torch.from_numpy(crop)[None].float()


def damaged(image: torch.Tensor, level: str) -> torch.Tensor:
    """`image` (1, 3, H, W) with `bench quality`'s `level` of damage at x1, the same size."""
    from engine.bench.quality_levels import LEVELS
    from engine.errors import BadSettingError

    if level not in LEVELS:
        raise BadSettingError(f"unknown damage {level!r}", hint=f"use one of {', '.join(LEVELS)}")
    out = LEVELS[level](image[0], scale=1, seed=0)
    return torch.as_tensor(out).float().clamp(0, 1)[None]


def run(
    specs: list[str],
    *,
    size: int = 256,
    upscale: int = 4,
    repeats: int = 3,
    device: str = "cpu",
    damage: str | None = None,
    on_run: Callable[[str, int], None] | None = None,
) -> list[SpeedSample]:
    """Time every model `repeats` times, interleaved, after a warm-up each; on the clean crop,
    or with `damage` (a `bench quality` level) applied to it."""
    image = input_crop(size)
    if damage:
        image = damaged(image, damage)
    pipelines = {spec: load_pipeline(spec, device) for spec in dict.fromkeys(specs)}
    image = image.to(device)
    samples = {spec: SpeedSample(spec) for spec in pipelines}
    small = image[..., : size // 4, : size // 4]
    for pipeline in pipelines.values():
        _restore(pipeline, small, upscale)  # warm-up: first-call allocations, lazy inits
    for repeat in range(repeats):
        for spec, pipeline in pipelines.items():
            if on_run:
                on_run(spec, repeat)
            started = time.perf_counter()
            out = _restore(pipeline, image, upscale)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            samples[spec].seconds.append(time.perf_counter() - started)
            samples[spec].output_pixels = out.shape[-2] * out.shape[-1]
    return list(samples.values())


def _restore(pipeline, image: torch.Tensor, upscale: int) -> torch.Tensor:
    with torch.inference_mode():
        return pipeline(image, upscale=upscale, caption="none", num_inference_steps=1).image


def format_speed_table(
    samples: list[SpeedSample], *, size: int, upscale: int, damage: str | None = None
) -> str:
    """Markdown: output MP/s per model and its ratio to the first model's."""
    threads = torch.get_num_threads()
    base = samples[0].megapixels_per_second if samples else 1.0
    what = f"{damage} damage" if damage else "clean"
    lines = [
        f"Speed at x{upscale}: {size} px in ({what}), {size * upscale} px out, "
        f"{threads} torch threads, "
        f"fastest of {len(samples[0].seconds) if samples else 0} interleaved runs (median beside).",
        "",
        f"| model | seconds (median) | output MP/s | × {samples[0].model if samples else ''} |",
        "|---|---:|---:|---:|",
    ]
    for sample in samples:
        mps = sample.megapixels_per_second
        lines.append(
            f"| {sample.model} | {sample.best:.2f} ({sample.median:.2f}) | {mps:.3f} "
            f"| {mps / base:.2f} |"
        )
    return "\n".join(lines)
