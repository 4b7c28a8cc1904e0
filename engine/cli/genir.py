"""`dreamclear genir`: build a privacy-safe training set the GenIR way (docs/genir.md).

Parsing imports nothing heavy; each verb imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO, TypeVar

from engine.cli.common import print_error
from engine.errors import EngineError, OutputError

T = TypeVar("T")

DESCRIPTION = """Build a training set the GenIR way (DreamClear's data pipeline).

A run is a folder: `init` writes its config (genir.toml, every setting explained), each stage
writes its results into it, and `status` reads how far it got from the folder itself."""


def register(
    subparsers: argparse._SubParsersAction,
    extra_verbs: Sequence[Callable[[argparse._SubParsersAction], None]] = (),
) -> None:
    """Add `genir` and its verbs; `extra_verbs` add verbs run by code the engine may not
    import (`finetune`, the trainer's: see dreamclear/cli.py). Each sets its own `func`."""
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
        "--base",
        type=Path,
        required=True,
        help="SDXL base model folder (diffusers layout), or an installed store model (sdxl-base)",
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

    # After pairs, so `genir --help` lists the verbs in the pipeline's order (finetune is
    # stage 2, the only extra verb).
    for add_verb in extra_verbs:
        add_verb(verbs)

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

    filters = verbs.add_parser(
        "filter",
        help="score the generated images (quality, faces, judge) and decide which are kept; "
        "resumable, and only decides again when just thresholds changed (train the classifier "
        "first: dreamclear train RUN/genir.toml --task quality-classifier)",
    )
    filters.add_argument("run", type=Path, help="run folder")

    override = verbs.add_parser(
        "override", help="keep or drop one generated image whatever the filter says"
    )
    override.add_argument("run", type=Path, help="run folder")
    override.add_argument("key", type=int, help="the image's key (its prompt's key)")
    override.add_argument("decision", choices=("accept", "reject"))
    override.add_argument("--note", default="", help="why (kept with the decision)")

    override_prompt = verbs.add_parser(
        "override-prompt",
        help="keep or drop one prompt whatever the privacy filter says (then run `genir "
        "prompts` again: it rewrites prompts.jsonl without screening again)",
    )
    override_prompt.add_argument("run", type=Path, help="run folder")
    override_prompt.add_argument(
        "index", type=int, help="the prompt's candidate index (`index` in prompts/*.jsonl)"
    )
    override_prompt.add_argument("decision", choices=("keep", "drop"))
    override_prompt.add_argument("--note", default="", help="why (kept with the decision)")

    export = verbs.add_parser(
        "export",
        help="link (or copy) the accepted images into RUN/export with a manifest and a starter "
        "training config (re-run after overrides)",
    )
    export.add_argument("run", type=Path, help="run folder")

    run_all = verbs.add_parser(
        "run",
        help="run every stage not done yet, in order (prompts, pairs, finetune, generate, "
        "classifier, filter, export)",
    )
    run_all.add_argument("run", type=Path, help="run folder")

    status = verbs.add_parser(
        "status", help="show each stage's state, counts, throughput and ETA (reads files only)"
    )
    status.add_argument("run", type=Path, help="run folder")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    tiny = verbs.add_parser(
        "tiny-base", help="write a tiny random SDXL (diffusers layout) for trying the pipeline"
    )
    tiny.add_argument("path", type=Path, help="new folder for the model")
    tiny.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")

    parser.set_defaults(func=run)


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    out = stream or sys.stdout
    try:
        return _HANDLERS[args.genir_command](args, out)
    except EngineError as error:
        print_error(error)
        return 1
    except _Interrupted:  # the stage's bar has said how to resume
        return 130
    except KeyboardInterrupt:  # every stage is journalled
        sys.stderr.write("\ninterrupted: run the same command again to resume\n")
        return 130


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


class _Interrupted(Exception):
    """Ctrl-C during a stage: its journal keeps what was done (exit code 130)."""


def _run_with_bar(label: str, unit: str, run_stage: Callable[[Callable[[int, int], None]], T]) -> T:
    """`run_stage(report)` under a progress bar on stderr; Ctrl-C ends the bar, says how to
    resume and raises _Interrupted."""
    from tqdm import tqdm

    with tqdm(desc=label, unit=unit, file=sys.stderr) as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            return run_stage(report)
        except KeyboardInterrupt:
            bar.close()
            sys.stderr.write("interrupted: run the same command again to resume\n")
            raise _Interrupted from None


def _pairs(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.pairs_stage import run_pairs_stage
    from engine.genir.run_folder import load_run

    config = load_run(args.run)
    outcome = _run_with_bar(
        "pairs",
        "pair",
        lambda report: run_pairs_stage(args.run, config, limit=args.limit, report=report),
    )
    for skipped in outcome.skipped:
        out.write(f"skipped {skipped.key}: {skipped.reason}\n")
    out.write(
        f"{outcome.pairs} pairs in {outcome.path} ({outcome.made} made now, "
        f"{len(outcome.skipped)} images skipped)\n"
    )
    return 0


def _generate(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.generate_stage import accelerate_shard, run_generate_stage
    from engine.genir.run_folder import load_run

    config = load_run(args.run)
    shard = _parse_shard(args.shard) if args.shard else accelerate_shard()
    label = "generate" if shard.count == 1 else f"generate {shard.index}/{shard.count}"
    outcome = _run_with_bar(
        label,
        "image",
        lambda report: run_generate_stage(
            args.run, config, limit=args.limit, shard=shard, report=report
        ),
    )
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


def _filter(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.filter_stage import run_filter_stage
    from engine.genir.run_folder import load_run

    config = load_run(args.run)
    outcome = _run_with_bar(
        "filter", "image", lambda report: run_filter_stage(args.run, config, report=report)
    )
    out.write(
        f"{outcome.accepted} of {outcome.images} images kept, verdicts in {outcome.path} "
        f"({outcome.scored} scored now)\n"
    )
    return 0


def _override(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.verdicts import set_override

    set_override(args.run, args.key, args.decision == "accept", args.note)
    word = "kept" if args.decision == "accept" else "dropped"
    out.write(f"image {args.key} is {word} whatever the filter says\n")
    return 0


def _override_prompt(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.prompt_overrides import set_prompt_override

    set_prompt_override(args.run, args.index, args.decision == "keep", args.note)
    word = "kept" if args.decision == "keep" else "dropped"
    out.write(
        f"prompt {args.index} is {word} whatever the privacy filter says; write the prompts "
        f"again to apply it: dreamclear genir prompts {args.run}\n"
    )
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.export_stage import run_export_stage
    from engine.genir.run_folder import load_run

    def report(done: int, total: int) -> None:
        sys.stderr.write(f"\rexport: {done}/{total} images")
        sys.stderr.flush()

    outcome = run_export_stage(args.run, load_run(args.run), report=report)
    if outcome.made:
        sys.stderr.write("\n")
    out.write(
        f"{outcome.images} images in {outcome.path} ({outcome.made} exported now, "
        f"{outcome.removed} no longer accepted removed), {outcome.rejected} rejected listed "
        f"in rejected.jsonl\n"
    )
    if outcome.images:
        out.write(f"train on it: dreamclear train {outcome.path / 'train-starter.toml'}\n")
    return 0


def _run_all(args: argparse.Namespace, out: TextIO) -> int:
    from engine.genir.run_folder import load_run
    from engine.genir.stages import run_remaining

    reporting = []  # a progress line is open: end it before the next message

    def starting(state) -> None:
        sys.stderr.write("\n" * len(reporting) + f"{state.name}: {state.state}, running it\n")
        reporting.clear()

    def report(stage: str, done: int, total: int) -> None:
        sys.stderr.write(f"\r{stage}: {done}/{total}")
        sys.stderr.flush()
        reporting[:] = [True]

    ran = run_remaining(args.run, load_run(args.run), report=report, starting=starting)
    sys.stderr.write("\n" * len(reporting))
    out.write(f"ran: {', '.join(ran)}\n" if ran else "every stage was done already\n")
    return 0


def _status(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from engine.genir.status import genir_status

    status = genir_status(args.run)
    if args.json:
        out.write(json.dumps(status.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(status.describe())
    return 0


_HANDLERS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "export": _export,
    "filter": _filter,
    "generate": _generate,
    "init": _init,
    "override": _override,
    "override-prompt": _override_prompt,
    "pairs": _pairs,
    "prompts": _prompts,
    "run": _run_all,
    "status": _status,
    "tiny-base": _tiny_base,
}
