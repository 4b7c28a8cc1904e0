"""What each offload level costs: load time, seconds per image, peak GPU memory, and whether the
output matches "none" (docs/multi-gpu.md, docs/benchmarks.md).

    python scripts/offload_overhead.py                       # tiny random model, CPU
    python scripts/offload_overhead.py --model PATH --device cuda --size 256 --steps 20

Without --model a tiny random DreamClear is built in a temporary folder. Each level loads the
model afresh, restores the same seeded image `--repeats` times (the first run is reported on
its own: it includes the first moves onto the device) and prints one Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def measure(model: str, device: str, size: int, steps: int, repeats: int) -> list[dict]:
    import torch

    from engine.pipelines.offload import OFFLOAD_LEVELS
    from engine.restorers import load_restorer

    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    rows, reference = [], None
    for level in OFFLOAD_LEVELS:
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        restorer = load_restorer(model, device=device, offload=level)
        load_s = time.perf_counter() - started
        times, output = [], None
        for _ in range(repeats):
            started = time.perf_counter()
            output = restorer.pipeline(
                image,
                upscale=2,
                min_short_side=0,
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0),
            ).image
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        reference = output if reference is None else reference
        rest = sorted(times[1:] or times)
        rows.append(
            {
                "level": level,
                "load_s": load_s,
                "first_s": times[0],
                "image_s": rest[len(rest) // 2],
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                "max_diff": float((output - reference).abs().max()),
            }
        )
        del restorer
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| offload | load s | first image s | image s (median of the rest) | peak GPU GiB | max diff vs none |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a (CPU)"
        lines.append(
            f"| {r['level']} | {r['load_s']:.2f} | {r['first_s']:.3f} | {r['image_s']:.3f} "
            f"| {peak} | {r['max_diff']:.3g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a model folder (default: tiny, random)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--size", type=int, default=64, help="input side in pixels (default 64)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps (default 4)")
    parser.add_argument("--repeats", type=int, default=6, help="images per level (default 6)")
    args = parser.parse_args(argv)
    import transformers

    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from engine.models.tiny_components import build_tiny_components
            from engine.weights.components_io import save_components

            model = str(save_components(build_tiny_components(seed=0), Path(scratch) / "tiny"))
        rows = measure(model, args.device, args.size, args.steps, args.repeats)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
