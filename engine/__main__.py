"""`python -m engine`: the engine process, as `dreamclear engine serve` (same options)."""

from __future__ import annotations

import argparse
import sys
import warnings

from engine.cli.engine_command import add_serve_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description="DreamClear engine")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    # spandrel's SwinIR calls torch.meshgrid the old way; the warning is not ours to act on.
    warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
