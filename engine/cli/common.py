"""Small pieces shared by the engine's subcommands."""

from __future__ import annotations

import argparse
import sys

from engine.errors import EngineError


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help="model store folder (default: $DREAMCLEAR_MODEL_STORE or the user data folder)",
    )


def print_error(error: EngineError, stream=None) -> None:
    """One line saying what happened, one saying what to do: never a traceback for user errors."""
    stream = stream or sys.stderr
    stream.write(f"error: {error.message}\n")
    if error.hint:
        stream.write(f"  hint: {error.hint}\n")
