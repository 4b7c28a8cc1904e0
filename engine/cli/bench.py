"""`dreamclear bench`: benchmarks whose numbers go into docs/benchmarks.md."""

from __future__ import annotations

import argparse


def megapixel_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 1,4,16") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return values


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


def run_tiling(args: argparse.Namespace) -> int:
    from engine.bench import tiling

    modes = ("tiled", "published") if args.compare_untiled else ("tiled",)
    samples = tiling.run(args.megapixels, args.steps, args.upscale, modes, args.model)
    print(tiling.format_table(samples))
    return 0
