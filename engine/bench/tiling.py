"""Peak memory and time of the tiled restore pipeline as images grow.

Each size runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own; the
baseline is the same process after building the models and before restoring. The claim to
prove: memory grows far slower than pixels, because the transformer, the VAE and the remover
only ever see one tile at a time.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

# The published code tiles only the latent; its VAE and SwinIR see the whole image.
UNTILED = 1 << 20


@dataclass
class TilingSample:
    mode: str
    """"tiled" (ours: latent, VAE and remover tiles) or "published" (latent tiles only)."""
    megapixels: float
    """Output megapixels (upscale x input)."""
    width: int
    height: int
    seconds: float
    peak_rss_mb: float
    baseline_rss_mb: float

    @property
    def extra_mb(self) -> float:
        return self.peak_rss_mb - self.baseline_rss_mb


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_pipeline(model: str, seed: int):
    """ "tiny" builds the tiny seeded DreamClear; anything else goes through `--model` rules."""
    if model == "tiny":
        from engine.models.tiny_components import build_tiny_components
        from engine.pipelines.restore import DreamClearRestorePipeline

        return DreamClearRestorePipeline.from_components(build_tiny_components(seed=seed)), 128
    from engine.restorers import load_restorer

    restorer = load_restorer(model, device="cpu", dtype="fp32")
    return restorer.pipeline, restorer.min_short_side


def measure_one(
    megapixels: float,
    steps: int,
    upscale: int,
    mode: str = "tiled",
    seed: int = 0,
    model: str = "tiny",
) -> TilingSample:
    """Restore a synthetic photo of `megapixels` output in this process."""
    import torch

    torch.manual_seed(seed)
    pipeline, min_short_side = _load_pipeline(model, seed)
    side = math.sqrt(megapixels * 1e6) / upscale
    width, height = int(side * 4 / 3) // 8 * 8, int(side * 3 / 4) // 8 * 8
    grid_y, grid_x = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    image = torch.stack([grid_x, grid_y, (grid_x + grid_y) / 2])[None]
    image = (
        image + 0.05 * torch.rand(image.shape, generator=torch.Generator().manual_seed(seed))
    ).clamp(0, 1)
    with torch.inference_mode():
        # Warm-up on a tile-sized image so one-off allocations count in the baseline.
        pipeline(
            image[..., :16, :16],
            upscale=upscale,
            num_inference_steps=1,
            min_short_side=min_short_side,
            caption="none",
        )
        baseline = _rss_mb()
        started = time.perf_counter()
        pixel_tiles = {}
        if mode == "published":
            pixel_tiles = {"vae_tile_size": UNTILED, "remover_tile_size": UNTILED}
        output = pipeline(
            image,
            **pixel_tiles,
            upscale=upscale,
            num_inference_steps=steps,
            min_short_side=min_short_side,
            caption="none",
            generator=torch.Generator().manual_seed(seed),
        )
        seconds = time.perf_counter() - started
    out_h, out_w = output.image.shape[-2:]
    return TilingSample(
        mode=mode,
        megapixels=out_w * out_h / 1e6,
        width=out_w,
        height=out_h,
        seconds=seconds,
        peak_rss_mb=_rss_mb(),
        baseline_rss_mb=baseline,
    )


def run(
    sizes: list[float],
    steps: int,
    upscale: int,
    modes: tuple[str, ...] = ("tiled",),
    model: str = "tiny",
) -> list[TilingSample]:
    """Each (mode, size) in a fresh process, so every peak RSS is that run's own."""
    samples = []
    for mode in modes:
        for megapixels in sizes:
            command = [sys.executable, "-m", "engine.bench.tiling"]
            command += [str(megapixels), str(steps), str(upscale), mode, model]
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(
                    f"benchmark ({mode}) at {megapixels} MP failed:\n{completed.stderr}"
                )
            samples.append(TilingSample(**json.loads(completed.stdout.strip().splitlines()[-1])))
    return samples


def _ratio(value: float, reference: float) -> str:
    # Below a megabyte the reference is noise (tiny images peak during the warm-up).
    return f"{value / reference:.1f}" if reference >= 1 else "n/a"


def format_table(samples: list[TilingSample]) -> str:
    """One row per run; ratios are against the smallest size of the same mode."""
    first_of = {}
    for sample in samples:
        first_of.setdefault(sample.mode, sample)
    lines = [
        "| mode | output | pixels (x) | time s (x) | output MP/s | peak RSS above baseline MB (x) |",
        "|---|---|---|---|---|---|",
    ]
    for sample in samples:
        first = first_of[sample.mode]
        lines.append(
            f"| {sample.mode} | {sample.width}x{sample.height} ({sample.megapixels:.1f} MP) "
            f"| {sample.megapixels / first.megapixels:.1f} "
            f"| {sample.seconds:.1f} ({sample.seconds / first.seconds:.1f}) "
            f"| {sample.megapixels / sample.seconds:.3g} "
            f"| {sample.extra_mb:.0f} ({_ratio(sample.extra_mb, first.extra_mb)}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    mp, steps, upscale, mode, model = sys.argv[1:6]
    sample = measure_one(float(mp), int(steps), int(upscale), mode, model=model)
    print(json.dumps(asdict(sample)))
