"""`dreamclear bench stages` and `dreamclear bench steps`: DreamClear's own speed (issue 17).

`bench stages` is a sibling of `bench speed` rather than a mode of it: `bench speed --size`
already means the input side in pixels of its restorer comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.common import print_error
from engine.errors import EngineError


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("values must be positive")
    return values


def _run_list(text: str):
    from engine.bench.stages import RunSpec
    from engine.pipelines.samplers import SAMPLER_NAMES

    runs = []
    for part in text.split(","):
        sampler, _, steps = part.strip().rpartition(":")
        if sampler not in SAMPLER_NAMES or not steps.isdigit() or not 1 <= int(steps) <= 1000:
            raise argparse.ArgumentTypeError(
                f"{part!r}: use SAMPLER:STEPS with SAMPLER one of {', '.join(SAMPLER_NAMES)}, "
                "e.g. iddpm:50,dpm++:20"
            )
        runs.append(RunSpec(sampler, int(steps)))
    return tuple(runs)


def _arrangements(text: str) -> tuple[str, ...]:
    from engine.bench.stages import ARRANGEMENTS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or any(name not in ARRANGEMENTS for name in names):
        raise argparse.ArgumentTypeError(f"use some of {','.join(ARRANGEMENTS)}")
    return names


def register(kinds) -> None:
    stages = kinds.add_parser(
        "stages",
        help="DreamClear per-stage time, peak memory and load time, ours vs published arrangement",
        description="Build DreamClear with random weights (published size or tiny; nothing is "
        "downloaded), save it in our bf16 layout, time the real loading code, and restore a "
        "crop of a bundled photo stage by stage: remover, VAE encode, text encoding, each "
        "denoising step, VAE decode, colour fix, with time (device synchronised) and peak "
        "VRAM (CUDA) or peak RSS (CPU). 'ours' (bf16, tiles, T5 on the CPU) and 'published' "
        "(fp32 + fp16 autocast, whole-image VAE and remover) run in the same process. This is "
        "the stage harness of issue 17; `bench speed` compares restorers' output MP/s.",
    )
    stages.add_argument("--size", choices=("published", "tiny"), default="tiny")
    stages.add_argument("--device", default="cpu", metavar="cpu|cuda[:i]")
    stages.add_argument(
        "--resolution",
        type=_int_list,
        default=None,
        metavar="PX[,PX...]",
        help="output sides in px (input = PX / upscale); default 1024 (published), 256 (tiny)",
    )
    stages.add_argument("--upscale", type=int, default=4, help="scale factor (4)")
    stages.add_argument(
        "--steps",
        type=_run_list,
        default=None,
        metavar="SAMPLER:N[,...]",
        help="sampler runs, e.g. iddpm:50,dpm++:20 (default iddpm:50)",
    )
    stages.add_argument(
        "--arrangements", type=_arrangements, default=("ours", "published"), metavar="LIST"
    )
    stages.add_argument(
        "--text-encoder",
        choices=("xxl", "small"),
        default=None,
        help="published size: T5-XXL's real encoder (random, 4.76 B parameters, the default "
        "on CUDA) or a 2-layer random stand-in (the default on the CPU; the report says so)",
    )
    stages.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    stages.add_argument(
        "--attention",
        choices=("auto", "math"),
        default="auto",
        help="auto: SDPA picks its fused kernel; math: SDPA's explicit-softmax kernel",
    )
    stages.add_argument(
        "--cfg",
        choices=("batched", "separate"),
        default="batched",
        help="CFG as one batch of 2 (what restore does) or as two passes, to compare",
    )
    stages.add_argument(
        "--published-load",
        action="store_true",
        help="also time the published load (build, unpickle fp32 weights, move to the device)",
    )
    stages.add_argument("--warmup", action="store_true", help="one untimed 1-step restore first")
    stages.add_argument("--json", type=Path, default=None, metavar="PATH", help="write JSON too")
    stages.set_defaults(func=run_stages)

    steps = kinds.add_parser(
        "steps",
        help="fewer denoising steps: time and difference from the 50-step iDDPM output",
        description="Restore one crop with the tiny (or given) DreamClear at 50 iDDPM steps, "
        "then with each sampler at each step count, same seed, and print time, PSNR and max "
        "abs difference against the 50-step output.",
    )
    steps.add_argument(
        "--counts", type=_int_list, default=(10, 20, 30, 50), metavar="LIST", help="10,20,30,50"
    )
    steps.add_argument("--size", choices=("published", "tiny"), default="tiny")
    steps.add_argument("--device", default="cpu", metavar="cpu|cuda[:i]")
    steps.add_argument("--resolution", type=int, default=256, help="output side in px (256)")
    steps.add_argument("--json", type=Path, default=None, metavar="PATH", help="write JSON too")
    steps.set_defaults(func=run_steps)


def run_stages(args: argparse.Namespace) -> int:
    from engine.bench import stage_report, stages

    cuda = args.device.startswith("cuda")
    config = stages.HarnessConfig(
        size=args.size,
        device=args.device,
        resolutions=args.resolution or ((1024,) if args.size == "published" else (256,)),
        upscale=args.upscale,
        runs=args.steps or (stages.RunSpec("iddpm", 50),),
        arrangements=args.arrangements,
        text_encoder=args.text_encoder or ("xxl" if cuda else "small"),
        compile=args.compile,
        attention=args.attention,
        cfg=args.cfg,
        published_load=args.published_load,
        warmup=args.warmup,
    )
    try:
        report = stages.run(config, on_event=lambda message: sys.stderr.write(message + "\n"))
    except EngineError as error:
        print_error(error)
        return 2
    print(stage_report.format_report(report))
    if args.json:
        _write_json(args.json, report.to_json())
    return 0


def run_steps(args: argparse.Namespace) -> int:
    from engine.bench import step_study

    try:
        study = step_study.run(
            counts=args.counts, size=args.size, device=args.device, resolution=args.resolution
        )
    except EngineError as error:
        print_error(error)
        return 2
    print(step_study.format_table(study))
    if args.json:
        _write_json(args.json, step_study.to_json(study))
    return 0


def _write_json(path: Path, data: object) -> None:
    from engine.imaging.atomic import atomic_write

    text = (json.dumps(data, indent=2) + "\n").encode()
    atomic_write(path, lambda file: file.write(text), overwrite=True)
