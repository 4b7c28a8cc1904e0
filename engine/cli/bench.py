"""`dreamclear bench`: benchmarks whose numbers go into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import bench_stages
from engine.cli.common import add_store_option, print_error
from engine.cli.restore_options import positive_int, strength_value
from engine.errors import EngineError


def megapixel_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 1,4,16") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return values


def level_list(text: str) -> list[str]:
    from engine.bench.quality_levels import LEVELS

    levels = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [level for level in levels if level not in LEVELS]
    if not levels or unknown:
        raise argparse.ArgumentTypeError(f"use some of {','.join(LEVELS)}")
    return levels


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run benchmarks")
    kinds = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    tiling = kinds.add_parser(
        "tiling",
        help="peak memory and time of the tiled pipeline (tiny model) as images grow",
        description="Restore synthetic photos of growing size with the tiny model, each in a "
        "fresh process, and report time and peak memory relative to the smallest.",
    )
    tiling.add_argument(
        "--megapixels",
        type=megapixel_list,
        default=[1.0, 4.0, 16.0],
        metavar="LIST",
        help="output sizes in megapixels (default 1,4,16)",
    )
    tiling.add_argument("--steps", type=int, default=2, help="denoising steps (default 2)")
    tiling.add_argument("--upscale", type=int, default=4, help="scale factor (default 4)")
    tiling.add_argument(
        "--model",
        default="tiny",
        metavar="tiny|starter|dreamclear|PATH",
        help="tiny (default) builds the tiny seeded DreamClear in code; others load as in restore",
    )
    tiling.add_argument(
        "--compare-untiled",
        action="store_true",
        help="also run the published arrangement (latent tiles, whole-image VAE and remover)",
    )
    tiling.set_defaults(func=run_tiling)

    convert = kinds.add_parser(
        "convert",
        help="peak memory of converting an official-layout checkpoint, old path vs ours",
        description="Save a random fp32 checkpoint in the official DreamClear layout, convert it "
        "in a fresh process with the old path (split in fp32, cast after) and with ours (cast "
        "while splitting), and print peak resident memory against the converted weights' size.",
    )
    convert.add_argument("--hidden", type=int, default=720, help="hidden size (default 720)")
    convert.add_argument("--layers", type=int, default=4, help="blocks per branch (default 4)")
    convert.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16")
    convert.set_defaults(func=run_convert)

    quality = kinds.add_parser(
        "quality",
        help="PSNR/SSIM/NIQE (LPIPS) of a model vs bicubic on degraded photo crops",
        description="Take a centre crop of each photo as ground truth, degrade it with the "
        "training degradations (seed = photo index; or only downscale it, --degradation clean), "
        "restore it with bicubic and with the model, and print a markdown table of the scores "
        "with the model's mean gain over bicubic.",
    )
    quality.add_argument(
        "--photos",
        required=True,
        nargs="+",
        metavar="PATH",
        help="ground-truth photos: folders, files or globs",
    )
    quality.add_argument("--scale", type=positive_int, default=4, help="scale factor (default 4)")
    quality.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="auto|starter|dreamclear|bicubic|NAME|PATH",
        help="restorer to score (default auto); repeat it to compare several side by side per "
        "degradation level (bicubic, the starter, an upscaler file...)",
    )
    quality.add_argument(
        "--levels",
        type=level_list,
        default=None,
        metavar="LIST",
        help="compare per degradation level, some of clean,mild,moderate,heavy (all four, the "
        "default when --model is repeated), clean-bicubic and clean-jpeg (see "
        "engine/bench/quality_levels.py)",
    )
    quality.add_argument("--steps", type=positive_int, default=50, help="denoising steps (50)")
    quality.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="first N photos only"
    )
    quality.add_argument(
        "--crop", type=positive_int, default=256, metavar="N", help="crop side in px (256)"
    )
    quality.add_argument(
        "--color-fix",
        choices=("wavelet", "adain", "none"),
        default="wavelet",
        help="the restorer's colour fix (default wavelet, as in restore)",
    )
    quality.add_argument(
        "--strength",
        type=strength_value,
        default=1.0,
        metavar="X",
        help="blend the result with bicubic as restore --strength does (default 1)",
    )
    quality.add_argument(
        "--degradation",
        choices=("standard", "clean"),
        default="standard",
        help="standard: the training degradation, seeded by photo (default); clean: only a "
        "box downscale, to see what the model does to an undamaged photo",
    )
    quality.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:i]")
    quality.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    add_store_option(quality)
    quality.set_defaults(func=run_quality)

    estimator = kinds.add_parser(
        "estimator",
        help="how well the starter's estimator reads per-token degradation strengths",
        description="Degrade a centre crop of each photo with spatially varying strengths "
        "(seed = photo index) and compare the starter estimator's per-token maps with the "
        "strengths applied: Spearman's rank correlation over all tokens and over the tokens "
        "with detail (where blur and resolution can show at all), and the mean absolute "
        "error per channel.",
    )
    estimator.add_argument(
        "--photos", required=True, nargs="+", metavar="PATH", help="folders, files or globs"
    )
    estimator.add_argument(
        "--model", default="starter", metavar="starter|PATH", help="a starter-type model"
    )
    estimator.add_argument(
        "--crop", type=positive_int, default=256, metavar="N", help="crop side in px (256)"
    )
    estimator.add_argument(
        "--draws",
        type=positive_int,
        default=1,
        metavar="N",
        help="mask draws per photo, averaged (1: seed = photo index only)",
    )
    estimator.add_argument(
        "--oracle",
        action="store_true",
        help="also read blur and scale knowing the ground truth (a reference for what the "
        "LQ images show of them; see engine/bench/estimator_oracle.py)",
    )
    estimator.add_argument(
        "--write-validation",
        action="store_true",
        help="save the measured Spearman per channel as the model's estimator/validation.json: "
        "the app shows a channel's map only where it reaches 0.5 on tokens with detail",
    )
    estimator.set_defaults(func=run_estimator)

    speed = kinds.add_parser(
        "speed",
        help="output megapixels per second of several restorers, side by side in one run",
        description="Restore the same crop of a bundled photo with each model (its own "
        "pipeline and tiles, as restore runs it), interleaved, and print the output MP/s of "
        "its fastest run (the median beside it: on a shared CPU the slower runs measure the "
        "other jobs) and each model's ratio to the first. compact-reference and x4plus-reference are "
        "Real-ESRGAN's Compact (64 features, 32 convs) and RRDBNet x4plus with random weights.",
    )
    speed.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="starter|compact-reference|x4plus-reference|NAME|PATH",
        help="repeat for each model (default: starter and compact-reference)",
    )
    speed.add_argument("--size", type=positive_int, default=256, help="input side in px (256)")
    speed.add_argument("--upscale", type=positive_int, default=4, help="scale factor (4)")
    speed.add_argument("--repeats", type=positive_int, default=3, help="timed runs each (3)")
    speed.add_argument("--device", default="cpu", metavar="cpu|cuda[:i]")
    speed.add_argument(
        "--damage",
        default=None,
        metavar="LEVEL",
        help="time on a damaged crop: one of bench quality's levels (e.g. heavy), applied "
        "without a downscale; the bundled starter runs its all-round restorer on heavy damage "
        "and its gentle one on a clean crop (default: the clean crop)",
    )
    speed.set_defaults(func=run_speed)

    engine = kinds.add_parser(
        "engine",
        help="engine process latency: start, progress events, interrupt, memory (tiny model)",
        description="Drive a real `python -m engine --stdio` with the tiny model and print a "
        "markdown table (see engine/bench/engine_latency.py for what each number means).",
    )
    engine.add_argument("--starts", type=positive_int, default=3, help="fresh starts timed (3)")
    engine.add_argument("--steps", type=positive_int, default=40, help="steps of the timed job")
    engine.add_argument("--interrupts", type=positive_int, default=5, help="interrupts timed (5)")
    engine.set_defaults(func=run_engine)
    bench_stages.register(kinds)


def collect_photos(patterns: list[str]):
    """The images `--photos` names (folders, files, globs); an error if any names nothing."""
    from engine.errors import BadSettingError
    from engine.restore_files import collect_inputs

    photos, missing = collect_inputs(patterns)
    if missing or not photos:
        raise BadSettingError(
            f"no photos in {' '.join(patterns)}",
            hint="--photos names folders, files or globs of images",
        )
    return photos


def run_tiling(args: argparse.Namespace) -> int:
    from engine.bench import tiling

    modes = ("tiled", "published") if args.compare_untiled else ("tiled",)
    samples = tiling.run(args.megapixels, args.steps, args.upscale, modes, args.model)
    print(tiling.format_table(samples))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from engine.bench import convert_memory

    samples = convert_memory.run(args.hidden, args.layers, args.dtype)
    print(convert_memory.markdown(samples))
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from engine.bench import quality
    from engine.restorers import load_restorer

    models = args.model or ["auto"]
    if len(models) > 1 or args.levels or "bicubic" in models:
        return run_quality_levels(args, models)
    try:
        photos = collect_photos(args.photos)[: args.limit]
        restorer = load_restorer(
            models[0], store_root=args.store, device=args.device, dtype=args.dtype
        )
        report = quality.run(
            photos,
            restorer=restorer,
            scale=args.scale,
            steps=args.steps,
            crop=args.crop,
            color_fix=args.color_fix,
            strength=args.strength,
            degrade=quality.clean_downscale if args.degradation == "clean" else None,
            store_root=args.store,
            on_photo=lambda i, n, name: sys.stderr.write(f"[{i + 1}/{n}] {name}\n"),
        )
    except EngineError as error:
        print_error(error)
        return 2
    print(quality.format_table(report))
    return 0


def run_quality_levels(args: argparse.Namespace, models: list[str]) -> int:
    from engine.bench import quality_levels
    from engine.restorers import load_restorer

    try:
        photos = collect_photos(args.photos)[: args.limit]
        methods = {
            name: None
            if name == quality_levels.BICUBIC
            else load_restorer(name, store_root=args.store, device=args.device, dtype=args.dtype)
            for name in dict.fromkeys(models)
        }
        report = quality_levels.compare(
            photos,
            methods,
            levels=args.levels or list(quality_levels.DEFAULT_LEVELS),
            scale=args.scale,
            crop=args.crop,
            steps=args.steps,
            color_fix=args.color_fix,
            strength=args.strength,
            on_photo=lambda level, i, n, name: sys.stderr.write(f"[{level} {i + 1}/{n}] {name}\n"),
        )
    except EngineError as error:
        print_error(error)
        return 2
    print(quality_levels.format_levels_table(report))
    return 0


def run_speed(args: argparse.Namespace) -> int:
    from engine.bench import speed

    models = args.model or ["starter", "compact-reference"]
    try:
        samples = speed.run(
            models,
            size=args.size,
            upscale=args.upscale,
            repeats=args.repeats,
            device=args.device,
            damage=args.damage,
            on_run=lambda model, i: sys.stderr.write(f"[{i + 1}/{args.repeats}] {model}\n"),
        )
    except EngineError as error:
        print_error(error)
        return 2
    print(
        speed.format_speed_table(samples, size=args.size, upscale=args.upscale, damage=args.damage)
    )
    return 0


def run_estimator(args: argparse.Namespace) -> int:
    from engine.bench import estimator
    from engine.errors import BadSettingError
    from engine.restorers import load_restorer

    try:
        photos = collect_photos(args.photos)
        restorer = load_restorer(args.model, device="cpu", dtype="fp32")
        if getattr(restorer.pipeline, "estimator", None) is None:
            raise BadSettingError(
                f"{args.model} has no degradation estimator", hint="use --model starter"
            )
        report = estimator.run(
            photos,
            pipeline=restorer.pipeline,
            crop=args.crop,
            draws=args.draws,
            oracle=args.oracle,
        )
    except EngineError as error:
        print_error(error)
        return 2
    print(estimator.format_table(report))
    if args.write_validation:
        from engine.weights.starter_io import write_validation

        try:
            path = write_validation(
                None if args.model == "starter" else Path(args.model),
                report.validation_record([p.name for p in photos], " ".join(sys.argv[1:])),
            )
        except EngineError as error:
            print_error(error)
            return 2
        sys.stderr.write(f"wrote {path}\n")
    return 0


def run_engine(args: argparse.Namespace) -> int:
    from engine.bench import engine_latency

    bench = engine_latency.run(starts=args.starts, steps=args.steps, interrupts=args.interrupts)
    print(engine_latency.format_report(bench))
    return 0
