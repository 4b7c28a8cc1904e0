"""`dreamclear genir`: build a privacy-safe training set the GenIR way (docs/genir.md).

Parsing imports nothing heavy; each verb imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from engine.cli.common import print_error
from engine.errors import EngineError, OutputError

DESCRIPTION = """Build a training set the GenIR way (DreamClear's data pipeline).

A run is a folder: `init` writes its config (genir.toml, every setting explained), each stage
writes its results into it, and `status` reads how far it got from the folder itself."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "genir",
        help="build a privacy-safe training set (GenIR)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="genir_command", metavar="ACTION", required=True)

    init = verbs.add_parser("init", help="start a run folder with a commented config")
    init.add_argument("run", type=Path, help="new run folder")
    init.add_argument("--images", type=Path, required=True, help="folder of HQ positive images")
    init.add_argument(
        "--base", type=Path, required=True, help="SDXL base model folder (diffusers layout)"
    )
    init.add_argument("--seed", type=int, default=None, help="run seed (default: 0)")

    prompts = verbs.add_parser(
        "prompts", help="draw and screen scene prompts (resumes where a killed run stopped)"
    )
    prompts.add_argument("run", type=Path, help="run folder")

    pairs = verbs.add_parser(
        "pairs",
        help="make each positive's SDEdit negative (resumes where a killed run stopped)",
    )
    pairs.add_argument("run", type=Path, help="run folder")
    pairs.add_argument(
        "--limit", type=int, default=None, help="make at most this many pairs now (default: all)"
    )

    generate = verbs.add_parser(
        "generate",
        help="generate an image per prompt under the learned prompts (resumable; under "
        "`accelerate launch` each process takes its share)",
    )
    generate.add_argument("run", type=Path, help="run folder")
    generate.add_argument(
        "--limit", type=int, default=None, help="make at most this many images now (default: all)"
    )
    generate.add_argument(
        "--shard",
        default=None,
        metavar="INDEX/COUNT",
        help="do only shard INDEX of COUNT (0-based), e.g. one machine's part without "
        "accelerate; default: accelerate's process, else everything",
    )

    status = verbs.add_parser("status", help="show the stage a run reached and its counts")
    status.add_argument("run", type=Path, help="run folder")

    tiny = verbs.add_parser(
        "tiny-base", help="write a tiny random SDXL (diffusers layout) for trying the pipeline"
    )
    tiny.add_argument("path", type=Path, help="new folder for the model")
    tiny.add_argument("--seed", type=int, default=0)

    parser.set_defaults(func=run)


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    out = stream or sys.stdout
    try:
        return _HANDLERS[args.genir_command](args, out)
    except EngineError as error:
        print_error(error)
        return 1


def _tiny_base(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.tiny_base import save_tiny_sdxl

    if args.path.exists() and (not args.path.is_dir() or any(args.path.iterdir())):
        raise OutputError(
            f"{args.path} exists and is not an empty folder", hint="choose a new folder"
        )
    folder = save_tiny_sdxl(args.path, seed=args.seed)
    out.write(f"tiny SDXL (random weights, seed {args.seed}) written to {folder}\n")
    return 0


def _init(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.run_folder import init_run

    config_path = init_run(args.run, images=args.images, base_model=args.base, seed=args.seed)
    out.write(f"run folder {args.run} started; edit {config_path}, then run the stages\n")
    return 0


def _prompts(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.prompts_stage import run_prompts_stage
    from engine.genir.run_folder import load_run

    def report(done: int, total: int) -> None:
        sys.stderr.write(f"\rprompts: {done}/{total} accepted")
        sys.stderr.flush()

    try:
        outcome = run_prompts_stage(args.run, load_run(args.run), report=report)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: run the same command again to resume\n")
        return 130
    sys.stderr.write("\n")
    out.write(
        f"{outcome.accepted} prompts in {outcome.path}, {outcome.rejected} rejected "
        f"({outcome.chunks_done} chunks screened now)\n"
    )
    return 0


def _pairs(args: argparse.Namespace, out: TextIO) -> int:
    from tqdm import tqdm

    from engine.genir.pairs_stage import run_pairs_stage
    from engine.genir.run_folder import load_run

    config = load_run(args.run)
    with tqdm(desc="pairs", unit="pair", file=sys.stderr) as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            outcome = run_pairs_stage(args.run, config, limit=args.limit, report=report)
        except KeyboardInterrupt:
            bar.close()
            sys.stderr.write("interrupted: run the same command again to resume\n")
            return 130
    for skipped in outcome.skipped:
        out.write(f"skipped {skipped.key}: {skipped.reason}\n")
    out.write(
        f"{outcome.pairs} pairs in {outcome.path} ({outcome.made} made now, "
        f"{len(outcome.skipped)} images skipped)\n"
    )
    return 0


def _generate(args: argparse.Namespace, out: TextIO) -> int:
    from tqdm import tqdm

    from engine.genir.generate_stage import accelerate_shard, run_generate_stage
    from engine.genir.run_folder import load_run

    config = load_run(args.run)
    shard = _parse_shard(args.shard) if args.shard else accelerate_shard()
    label = "generate" if shard.count == 1 else f"generate {shard.index}/{shard.count}"
    with tqdm(desc=label, unit="image", file=sys.stderr) as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            outcome = run_generate_stage(
                args.run, config, limit=args.limit, shard=shard, report=report
            )
        except KeyboardInterrupt:
            bar.close()
            sys.stderr.write("interrupted: run the same command again to resume\n")
            return 130
    part = "" if shard.count == 1 else f" (shard {shard.index} of {shard.count})"
    out.write(
        f"{outcome.generated} of {outcome.wanted} images{part} in {outcome.path} "
        f"({outcome.made} made now)\n"
    )
    return 0


def _parse_shard(text: str):
    from engine.errors import BadSettingError
    from engine.genir.generate_stage import Shard

    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise BadSettingError(f"--shard {text} is not INDEX/COUNT", hint="e.g. --shard 0/4")
    return Shard(int(index), int(count))


def _status(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.run_folder import run_status

    out.write(run_status(args.run).describe())
    return 0


_HANDLERS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "generate": _generate,
    "init": _init,
    "pairs": _pairs,
    "prompts": _prompts,
    "status": _status,
    "tiny-base": _tiny_base,
}
