"""`dreamclear restore`: restore image files in this process, with a progress bar.

Each file is independent: a bad file is reported on one line and the run goes on; the exit
code is non-zero when any file failed.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli.common import add_store_option
from engine.cli.restore_options import positive_int, strength_value, tile_value

DESCRIPTION = """Restore photos with DreamClear (or the bundled starter model).

Inputs may be files, folders (their images) or globs. Results are written to OUTDIR as
NAME_xN.EXT; originals are never touched and existing files are never replaced unless
--overwrite is given.

Several GPUs: `accelerate launch --num_processes N -m dreamclear.cli restore DIR -o OUT` or
`torchrun --nproc-per-node N -m dreamclear.cli restore DIR -o OUT` splits the inputs across N
processes (GPU LOCAL_RANK each, or the CPU); rank 0 prints one summary. See docs/multi-gpu.md."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore image files",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument(
        "-o",
        "--output",
        default="restored",
        metavar="OUTDIR",
        help="folder for the results (default: ./restored)",
    )
    parser.add_argument(
        "--model",
        default="auto",
        metavar="auto|starter|dreamclear|PATH",
        help="auto uses DreamClear when installed, else the bundled starter; "
        "PATH is a model folder (see docs/model-folder.md) or your own upscaler file "
        "(.safetensors/.pth that spandrel supports: Real-ESRGAN, Compact, SwinIR, HAT, DAT...; "
        "see docs/models.md)",
    )
    parser.add_argument(
        "--upscale", type=positive_int, default=4, metavar="N", help="scale factor (default 4)"
    )
    parser.add_argument(
        "--steps", type=positive_int, default=50, metavar="N", help="denoising steps (default 50)"
    )
    parser.add_argument(
        "--cfg",
        type=float,
        default=4.5,
        metavar="X",
        help="classifier-free guidance scale (default 4.5)",
    )
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="random seed")
    parser.add_argument(
        "--sampler",
        choices=("iddpm", "dpm++"),
        default="iddpm",
        help="iddpm is the published sampler; dpm++ needs fewer steps",
    )
    caption = parser.add_mutually_exclusive_group()
    caption.add_argument(
        "--prompt",
        default=None,
        metavar="TEXT",
        help="use this caption instead of an automatic one",
    )
    caption.add_argument(
        "--caption",
        choices=("auto", "none"),
        default="auto",
        help="auto captions with the installed captioner (none if there is none)",
    )
    parser.add_argument(
        "--color-fix",
        choices=("wavelet", "adain", "none"),
        default="wavelet",
        help="match colours to the degradation remover's output (default wavelet); the "
        "bundled starter matches them to the input's upscale, but not where it restored heavy "
        "damage, whose colours are part of the damage",
    )
    parser.add_argument(
        "--strength",
        type=strength_value,
        default=1.0,
        metavar="X",
        help="how much of the restoration to keep, 0 to 1 (default 1): the result is blended "
        "with the plain bicubic upscale of the input, so e.g. 0.7 brings back some of the "
        "original's fine texture (grain) that restoring smooths away; 0 is the plain upscale",
    )
    parser.add_argument(
        "--tile",
        type=tile_value,
        default="auto",
        metavar="auto|N",
        help="latent tile size; auto picks from free memory",
    )
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:i]")
    parser.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument(
        "--offload",
        default="none",
        choices=("none", "model", "sequential"),
        help="where DreamClear's weights wait while they do not compute (default none: all on "
        "the device). model: each component (remover, T5, VAE, transformer) is moved onto the "
        "device only while it runs, so the device holds the largest one; each image pays one "
        "copy of every component onto the device. "
        "sequential: each layer's weights are copied in for its own forward; least device "
        "memory, many times slower. On a CPU-only machine the weights are already where they "
        "run: model changes nothing and sequential only adds copies; the result is the same "
        "at every level. The starter and upscalers ignore it. See docs/multi-gpu.md",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        default=None,
        choices=("png", "jpg", "tiff", "webp"),
        help="output format (default: the input's, PNG for BMP/GIF/HEIC)",
    )
    parser.add_argument(
        "--save-map",
        action="store_true",
        help="also save the per-token degradation map beside each result",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing results instead of picking a free name",
    )
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave out inputs whose result (NAME_xN.EXT) is already in OUTDIR, so a re-run "
        "finishes what an interrupted batch left and nothing else",
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=150.0,
        metavar="N",
        help="refuse inputs larger than this before decoding (default 150)",
    )
    parser.add_argument(
        "--gather-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="several processes (`accelerate launch` / `torchrun ... -m dreamclear.cli "
        "restore`, see docs/multi-gpu.md): rank 0 prints the summary of all inputs once "
        "every rank is done, and gives up on a rank whose report in OUTDIR/.dreamclear-ranks "
        "has not changed for S seconds (default 600)",
    )
    add_store_option(parser)
    parser.add_argument(
        "--engine",
        default=None,
        metavar="HOST:PORT",
        help="send the jobs to a running `dreamclear engine serve` instead of restoring here "
        "(input and output paths are the engine's; --store is the engine's own)",
    )
    parser.add_argument(
        "--token", default=None, metavar="T", help="the token the engine printed at start"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Heavy imports here so `dreamclear --help` stays fast.
    if args.engine:
        from engine.cli.restore_ranks import Ranks

        if Ranks.from_environment().several:
            sys.stderr.write(
                "error: --engine sends every input to one engine; several processes would "
                "each send them all\nhint: run it once, without accelerate launch / torchrun\n"
            )
            return 2
        from engine.cli.remote_restore import run_remote_restore

        return run_remote_restore(args, stream=sys.stderr)
    from engine.cli.restore_runner import run_restore

    return run_restore(args, stream=sys.stderr)
