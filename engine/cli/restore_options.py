"""The options of `dreamclear restore`: their argparse types, and the protocol message they make.

Shared by the local run (`restore_runner`), the remote one (`remote_restore`) and the
benchmarks; torch-free.
"""

from __future__ import annotations

import argparse

from engine import protocol as p


def tile_value(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be 'auto' or a latent tile size in pixels/8"
        ) from None
    if value < 16 or value % 8:
        raise argparse.ArgumentTypeError("must be 'auto' or a multiple of 8 that is at least 16")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def strength_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0 <= value <= 1:  # also refuses nan; inf is out of range
        raise argparse.ArgumentTypeError(f"{text} is not a number from 0 to 1, e.g. 0.7")
    return value


def options_message_from_args(args: argparse.Namespace) -> p.RestoreOptionsMessage:
    """The command line's options as the protocol carries them (local and remote alike)."""
    return p.RestoreOptionsMessage(
        model=args.model,
        upscale=args.upscale,
        steps=args.steps,
        cfg=args.cfg,
        seed=args.seed,
        sampler=args.sampler,
        prompt=args.prompt,
        caption=args.caption,
        color_fix=args.color_fix,
        strength=args.strength,
        tile=args.tile,
        device=args.device,
        dtype=args.dtype,
        output_format=args.output_format,
        save_map=args.save_map,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
        max_megapixels=args.max_megapixels,
        offload=args.offload,
    )
