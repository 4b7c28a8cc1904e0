"""The work behind `dreamclear restore`: pick the model, restore each file, summarise."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from engine.cli.common import print_error
from engine.cli.restore_options import options_message_from_args
from engine.cli.restore_progress import FileOutcome, StepProgress, report_outcome, summarise
from engine.errors import EngineError, JobInterrupted
from engine.jobs.restore import check_options
from engine.restore_files import (
    FileResult,
    RestoreOptions,
    collect_inputs,
    prepare_output_folder,
    restore_file,
)

logger = logging.getLogger(__name__)


def run_restore(args: argparse.Namespace, stream: TextIO) -> int:
    from engine.restorers import load_restorer

    quiet_library_progress()

    try:
        output_folder = Path(args.output).expanduser()
        prepare_output_folder(output_folder)
        inputs, failures = collect_inputs(args.inputs)
        message = options_message_from_args(args)
        check_options(message)
        options = RestoreOptions.from_message(message)
        restorer = load_restorer(
            args.model,
            store_root=args.store,
            device=args.device,
            dtype=args.dtype,
            offload=args.offload,
        )
    except EngineError as error:
        print_error(error, stream)
        return 2
    options.min_short_side = restorer.min_short_side
    uses_captions = getattr(restorer.pipeline, "uses_captions", False)
    if (
        uses_captions
        and options.caption == "auto"
        and options.prompt is None
        and (restorer.pipeline.captioner is None)
    ):
        stream.write(
            "note: no captioner is installed, so photos are restored without a caption "
            "(`dreamclear models download llava` adds one; --prompt TEXT sets one)\n"
        )

    outcomes = [FileOutcome(str(failure.input), error=failure.error) for failure in failures]
    for failure in failures:
        stream.write(f"failed: {failure.error}\n")
    files_bar = tqdm(inputs, desc="files", unit="file", file=stream, dynamic_ncols=True)
    try:
        for path in files_bar:
            progress = StepProgress(path.name, stream)
            try:
                result = restore_file(
                    restorer.pipeline,
                    path,
                    output_folder,
                    options,
                    pipeline_kwargs={"on_progress": progress, "on_warning": _warn(stream)},
                )
            except (KeyboardInterrupt, JobInterrupted):
                raise
            except Exception as error:  # a bug: report it for this file and go on
                logger.debug("restoring %s failed", path, exc_info=True)
                result = FileResult(
                    input=path,
                    error=f"{path}: internal error: {type(error).__name__}: {error} "
                    "(run with -v for details and please report it)",
                )
            finally:
                progress.close()
            for warning in result.warnings:
                tqdm.write(f"warning: {warning}", file=stream)
            outcome = FileOutcome(
                str(result.input),
                str(result.output) if result.output else None,
                result.seconds,
                result.error,
                result.skipped,
            )
            report_outcome(outcome, stream)
            outcomes.append(outcome)
    except (KeyboardInterrupt, JobInterrupted):
        files_bar.close()
        stream.write("interrupted: no partial result was written for the file in progress\n")
        return 130
    files_bar.close()
    return summarise(outcomes, stream)


def _warn(stream: TextIO):
    def warn(message: str) -> None:
        tqdm.write(f"warning: {message}", file=stream)

    return warn


def quiet_library_progress() -> None:
    """Our bars say what happens; the libraries' own loading bars would only add noise."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
