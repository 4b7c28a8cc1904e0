"""The work behind `dreamclear restore`: pick the model, restore each file, summarise."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from engine.cli.common import print_error
from engine.cli.restore_options import options_message_from_args
from engine.cli.restore_progress import FileOutcome, StepProgress, report_outcome, summarise
from engine.cli.restore_ranks import (
    RankReport,
    Ranks,
    gather,
    rank_device,
    shard,
    write_summary,
)
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

    ranks = Ranks.from_environment()
    report: RankReport | None = None
    try:
        output_folder = Path(args.output).expanduser()
        prepare_output_folder(output_folder)
        inputs, failures = collect_inputs(args.inputs)
        message = options_message_from_args(args)
        check_options(message)
        options = RestoreOptions.from_message(message)
        device = args.device
        if ranks.several:
            # Launched by accelerate/torchrun: this process's share, on its own GPU.
            report = RankReport(output_folder, ranks)
            report.write([])
            shares = {r: shard(inputs, r, ranks.world_size) for r in range(ranks.world_size)}
            total = len(inputs) + len(failures)
            inputs, device = shares[ranks.rank], rank_device(args.device, ranks.local_rank)
            failures = failures if ranks.rank == 0 else []  # named once, by rank 0
        restorer = load_restorer(
            args.model,
            store_root=args.store,
            device=device,
            dtype=args.dtype,
            offload=args.offload,
        )
    except EngineError as error:
        print_error(error, stream)
        if report is not None:  # rank 0 must not wait out its timeout for this one
            report.write([], finished=True, interrupted=True)
        return 2
    if report is not None:
        stream.write(f"{ranks.label}: {len(inputs)} of {total} input(s) on {restorer.device}\n")
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
    # Bars from several ranks would overwrite each other: only rank 0 draws them.
    bar_stream = stream if report is None or ranks.rank == 0 else _Discard()
    files_bar = tqdm(inputs, desc="files", unit="file", file=bar_stream, dynamic_ncols=True)
    try:
        for path in files_bar:
            progress = StepProgress(path.name, bar_stream)
            on_progress = progress if report is None else _beating(progress, report)
            try:
                result = restore_file(
                    restorer.pipeline,
                    path,
                    output_folder,
                    options,
                    pipeline_kwargs={"on_progress": on_progress, "on_warning": _warn(stream)},
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
            if report is not None:
                report.write(outcomes)
    except (KeyboardInterrupt, JobInterrupted):
        files_bar.close()
        if report is not None:
            report.write(outcomes, finished=True, interrupted=True)
        stream.write("interrupted: no partial result was written for the file in progress\n")
        return 130
    files_bar.close()
    if report is None:
        return summarise(outcomes, stream)
    report.write(outcomes, finished=True)
    return _rank_summary(report, outcomes, shares, total, args.gather_timeout, stream)


def _rank_summary(report, outcomes, shares, total: int, timeout_s: float, stream) -> int:
    """Rank 0: wait for the others, then the summary of every input and its exit code; any
    other rank: its own line, exit 0 (a launcher stops all ranks when one exits non-zero)."""
    if report.ranks.rank != 0:
        stream.write(f"{report.ranks.label} done: ")
        summarise(outcomes, stream)
        return 0
    stream.write(f"{report.ranks.label}: waiting for the other ranks to finish\n")
    gathered = gather(report, shares, timeout_s)
    gathered.outcomes[:0] = outcomes
    path = write_summary(report, gathered, total)
    stream.write(f"all {report.ranks.world_size} ranks ({total} inputs): ")
    code = summarise(gathered.outcomes, stream)
    for line in gathered.missing:
        stream.write(f"  not reported: {line} (re-run with --skip-existing)\n")
    stream.write(f"summary: {path}\n")
    return 1 if gathered.missing else code


class _Discard(io.TextIOBase):
    """A stream that drops what is written (the bars of ranks other than 0)."""

    def write(self, text: str) -> int:
        return len(text)


def _beating(progress, report: RankReport):
    """The progress callback, also telling rank 0 that this rank is alive."""

    def on_progress(info) -> None:
        progress(info)
        report.heartbeat()

    return on_progress


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
