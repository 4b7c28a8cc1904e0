"""`dreamclear`: the headless command line.

Each subcommand lives beside the code it drives (engine/cli/, later trainer/) and registers
itself here through `register(subparsers)`; heavy imports (torch) happen only when a
subcommand runs, so `dreamclear --help` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from dreamclear import __version__
from engine.cli import bench as bench_command
from engine.cli import engine_command
from engine.cli import genir as genir_command
from engine.cli import models as models_command
from engine.cli import restore as restore_command
from trainer import cli as train_command

SUBCOMMANDS = (
    restore_command,
    models_command,
    bench_command,
    engine_command,
    train_command,
    genir_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreamclear",
        description="DreamClear Studio: real-world image restoration on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        if command is genir_command:
            # `genir finetune` runs the trainer, which the engine's CLI may not import.
            command.register(subparsers, extra_verbs=(train_command.register_genir_finetune,))
        else:
            command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # spandrel's SwinIR calls torch.meshgrid the old way; the warning is not ours to act on.
    warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
