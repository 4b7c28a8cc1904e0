"""`dreamclear models`: list, download, import, verify, convert and remove models in the store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from engine.cli.common import add_store_option, print_error
from engine.errors import EngineError

DESCRIPTION = """Manage the models on this machine.

The store holds one folder per model (see `dreamclear models path`). Downloads come from the
Hugging Face hub and resume where they stopped; `import` copies (or links) files you already
have, after recognising them by their contents. Everything works offline once installed."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, download, import, verify, convert and remove models",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_option(parser)
    # --store is accepted after the verb too; SUPPRESS keeps the parent's value when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=argparse.SUPPRESS, metavar="DIR", help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    verbs.add_parser("list", parents=[common], help="show every model, its status and size")

    download = verbs.add_parser("download", parents=[common], help="fetch a model from the hub")
    download.add_argument("name", help="model name (see `dreamclear models list`)")

    imp = verbs.add_parser(
        "import", parents=[common], help="copy or link a local file/folder into the store"
    )
    imp.add_argument("path", help="a checkpoint file or model folder")
    imp.add_argument("--name", default=None, help="model name (default: recognised from contents)")
    imp.add_argument("--link", action="store_true", help="symlink instead of copying")
    imp.add_argument(
        "--config",
        default=None,
        metavar="DIR",
        help="a single-file SDXL is converted with the configs and tokenizers of this diffusers "
        "SDXL folder (default: those of stabilityai/stable-diffusion-xl-base-1.0, fetched once)",
    )

    verify = verbs.add_parser("verify", parents=[common], help="check installed files")
    verify.add_argument("name", nargs="?", help="one model (default: every installed model)")

    convert = verbs.add_parser(
        "convert", parents=[common], help="convert DreamClear-1024.pth once to safetensors"
    )
    convert.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16")
    convert.add_argument("--force", action="store_true", help="convert again even if present")
    convert.add_argument(
        "--remove-source",
        action="store_true",
        help="delete DreamClear-1024.pth once the conversion is verified (restores need only it)",
    )

    remove = verbs.add_parser("remove", parents=[common], help="delete a model from the store")
    remove.add_argument("name")

    path = verbs.add_parser("path", parents=[common], help="print the store folder (or a model's)")
    path.add_argument("name", nargs="?")

    # Developer tool, left out of the help: a tiny random model for smoke tests.
    tiny = verbs.add_parser("create-tiny", parents=[common])
    tiny.add_argument("path", help="new folder for the tiny model")
    tiny.add_argument("--seed", type=int, default=0)

    parser.set_defaults(func=run)


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    out = stream or sys.stdout
    handler = _HANDLERS[args.models_command]
    try:
        from engine.weights.store import ModelStore

        store = ModelStore(args.store)
        return handler(store, args, out)
    except EngineError as error:
        print_error(error)
        return 1


def _list(store, args: argparse.Namespace, out: TextIO) -> int:
    from engine.weights.store import human_size

    rows = [("NAME", "STATUS", "SIZE", "LICENCE", "LOCATION")]
    notes = []
    for status in store.installed():
        entry = status.entry
        if status.status == "installed":
            size = human_size(status.size_on_disk)
        elif entry is not None and entry.approx_size:
            size = f"~{human_size(entry.approx_size)}"
        else:
            size = "-"
        state = status.status
        if entry is not None and entry.optional and state == "missing":
            state = "missing (optional)"
        if entry is not None and entry.bundled:
            state += " (bundled)"
        if status.converted:
            state += f" +{','.join(status.converted)}"
            state += "" if status.source_present else " (source removed)"
            if status.source_present:
                notes.append(
                    f"{status.name}: converted, so {store.source_path().name} may be removed: "
                    f"`{store.command('convert', '--dtype', status.converted[0], '--remove-source')}`"
                )
        licence = entry.licence if entry else "(local)"
        location = str(status.path) if status.status != "missing" else "-"
        rows.append((status.name, state, size, licence, location))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
    out.writelines(f"\n{note}" for note in notes)
    out.write(f"\nstore: {store.root}\n")
    return 0


def _download(store, args: argparse.Namespace, out: TextIO) -> int:
    entry = store.prepare_download(args.name)
    out.write(f"downloading {args.name} from {entry.repo} into {store.model_dir(args.name)}\n")
    out.flush()
    status = store.download(args.name)  # huggingface_hub draws its own progress bars
    out.write(f"{args.name}: installed ({status.path})\n")
    return 0


def _import(store, args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from engine.weights.store import SDXL_BASE
    from engine.weights.upscaler_io import upscaler_folder, upscaler_summary

    status = store.import_path(args.name, args.path, link=args.link, config=args.config)
    verb = "linked" if args.link else "copied"
    if status.name == SDXL_BASE and Path(args.path).expanduser().is_file():
        verb = "converted"  # a single-file SDXL becomes a diffusers folder
    out.write(f"{status.name}: {verb} to {status.path} ({status.status})\n")
    if upscaler_folder(status.path):
        out.write(
            f"  {upscaler_summary(status.path)}: `dreamclear restore --model {status.name}`\n"
        )
    if not status.installed:
        out.write(f"  still missing: {', '.join(status.missing)}\n")
    return 0


def _verify(store, args: argparse.Namespace, out: TextIO) -> int:
    if args.name:
        names = [args.name]
    else:
        names = [s.name for s in store.installed() if s.status != "missing"]
        if not names:
            out.write(f"nothing installed in {store.root}\n")
            return 0
    failed = 0
    for name in names:
        report = store.verify(name)
        if report.ok:
            out.write(f"{name}: ok ({len(report.checked)} files checked)\n")
            continue
        failed += 1
        out.write(f"{name}: {len(report.problems)} problem(s)\n")
        for problem in report.problems:
            out.write(f"  {problem}\n")
    if failed:
        sys.stderr.write(
            "error: some models failed verification\n"
            f"  hint: download them again with `{store.command('download', 'NAME')}`\n"
        )
        return 1
    return 0


def _convert(store, args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"converting dreamclear to {args.dtype} (once; this takes a while)\n")
    out.flush()
    folder = store.convert("dreamclear", args.dtype, force=args.force)
    out.write(f"dreamclear: converted to {folder}\n")
    if args.remove_source:
        from engine.weights.store import human_size

        freed = store.remove_source()
        out.write(f"dreamclear: removed the source ({human_size(freed)} freed)\n")
    return 0


def _remove(store, args: argparse.Namespace, out: TextIO) -> int:
    from engine.weights.store import human_size

    freed = store.remove(args.name)
    out.write(f"{args.name}: removed ({human_size(freed)} freed)\n")
    return 0


def _path(store, args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"{store.path_of(args.name) if args.name else store.root}\n")
    return 0


def _create_tiny(store, args: argparse.Namespace, out: TextIO) -> int:
    from engine.models.tiny_components import build_tiny_components
    from engine.weights.components_io import save_components

    folder = save_components(build_tiny_components(args.seed), args.path)
    out.write(f"tiny model saved to {folder} (try `dreamclear restore --model {folder} IMAGE`)\n")
    return 0


_HANDLERS: dict[str, Callable[..., int]] = {
    "list": _list,
    "download": _download,
    "import": _import,
    "verify": _verify,
    "convert": _convert,
    "remove": _remove,
    "path": _path,
    "create-tiny": _create_tiny,
}
