"""The restore job kind: one image file restored and written, per job.

A `restore` request names files, folders or globs; `plan` checks its options and makes one job
per image (a name that matches nothing still becomes a job, which fails in its turn as
`bad_input`). `run` loads the restorer (warm between jobs), restores the file through
`engine.restore_files` and answers `result`, with a `degradation_map` event before it when
asked and `preview` events while it runs (`engine.previews`). Out of memory outside the
denoising loop (which handles its own) halves every tile and retries once, with a warning.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from engine import protocol as p
from engine.errors import BadSettingError, EngineError
from engine.fault_injection import TEST_FAULTS_ENV, faults_from_environment
from engine.jobs.base import JobContext, PlannedJob
from engine.path_policy import PathPolicy
from engine.previews import JobPreviews

MIN_PIXEL_TILE = 64
"""The out-of-memory retry never halves the VAE or remover tiles below this (pixels)."""
MAX_UPSCALE = 16
MAX_STEPS = 1000
"""The published schedule has 1000 timesteps; more steps than that cannot be taken."""
MAX_CFG = 100.0
MAX_LATENT_TILE = 1024
MAX_MEGAPIXELS = 1000.0
OFFLOAD_LEVELS = ("none", "model", "sequential")
"""As `engine.pipelines.offload.OFFLOAD_LEVELS`, without importing torch to check a request."""
"""`max_megapixels` guards against decompression bombs; above this it guards nothing."""


@dataclass
class RestoreSpec:
    input: Path
    output_dir: Path
    options: p.RestoreOptionsMessage


class RestoreJobs:
    """The `JobKind` of `restore` requests (see the module docstring)."""

    request_type: ClassVar[type[p.Request]] = p.Restore

    def __init__(self, store_root: str | None = None) -> None:
        self.store_root = store_root
        self.faults = faults_from_environment()

    def plan(self, request: p.Restore, paths: PathPolicy) -> list[PlannedJob[RestoreSpec]]:
        from engine.restore_files import collect_inputs

        check_options(request.options)
        if not request.output_dir:
            raise BadSettingError("restore needs an output_dir", hint="name a folder for results")
        if not request.inputs:
            raise BadSettingError("restore needs at least one input", hint="name image files")
        output_dir = paths.check(request.output_dir, "the output folder")
        for pattern in request.inputs:
            paths.check_pattern(pattern, "the input")  # before anything is listed or read
        inputs, missing = collect_inputs(request.inputs)
        for path in inputs:
            paths.check(str(path), "the input")  # a symlink inside may still lead outside
        return [
            PlannedJob(label=str(path), spec=RestoreSpec(path, output_dir, request.options))
            for path in inputs + [failure.input for failure in missing]
        ]

    def run(self, spec: RestoreSpec, context: JobContext) -> p.Result:
        import torch

        from engine.model_cache import release_memory
        from engine.restore_files import RestoreOptions, existing_result, prepare_output_folder

        if spec.options.skip_existing:
            done = existing_result(
                spec.input, spec.output_dir, RestoreOptions.from_message(spec.options)
            )
            if done is not None:  # before loading any model: a re-run skips fast
                return p.Result(
                    request_id=context.request_id,
                    job_id=context.job_id,
                    input=str(spec.input),
                    output=str(done),
                    skipped=True,
                )
        started = time.perf_counter()
        context.stage("load")
        restorer = self._restorer(spec.options, context)
        timings = {"load": time.perf_counter() - started}
        context.cancel.raise_if_cancelled("restoration interrupted before it began")
        prepare_output_folder(spec.output_dir)
        device = restorer.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        options = RestoreOptions.from_message(spec.options, restorer.min_short_side)
        previews = JobPreviews(context.job_id, context.request_id, context.emit)
        try:
            try:
                outcome = self._restore_once(
                    spec, restorer, options, context, {"on_preview": previews}, first=True
                )
            except torch.OutOfMemoryError:
                extra, message = halved_tiles(options)
                context.warn(message)
                release_memory()
                extra = {**extra, "on_preview": previews}
                outcome = self._restore_once(spec, restorer, options, context, extra, first=False)
        finally:
            previews.close()  # the job's last preview was sent; its file is not needed
        result, output, pipeline_done = outcome
        if result.failure is not None:
            raise result.failure
        if result.error:  # restore_file reports only EngineErrors; keep the message if not
            raise EngineError(result.error)
        timings.update({k: v for k, v in output.timings.items() if k != "total"})
        timings["save"] = time.perf_counter() - pipeline_done
        for warning in result.warnings:
            context.warn(warning)
        context.progress.flush()
        if result.map_path is not None and output.degradation_maps is not None:
            legend = [list(pair) for pair in output.degradation_maps.legend]
            context.emit(
                p.DegradationMapReady(
                    request_id=context.request_id,
                    job_id=context.job_id,
                    path=str(result.map_path),
                    legend=legend,
                )
            )
        return p.Result(
            request_id=context.request_id,
            job_id=context.job_id,
            input=str(spec.input),
            output=str(result.output),
            seconds=round(time.perf_counter() - started, 4),
            timings={k: round(v, 4) for k, v in timings.items()},
            peak_memory_bytes=peak_memory_bytes(device),
            tile_grid=output_tile_grid(output),
        )

    def _restorer(self, options: p.RestoreOptionsMessage, context: JobContext):
        """The warm restorer for (model, device, dtype, offload), loaded when not warm: another
        offload level loads the model again, hooked for that level."""
        from engine.devices import resolve_placement
        from engine.restorers import load_restorer

        device, dtype = resolve_placement(options.device, options.dtype)
        return context.models.get(
            ("restorer", options.model, str(device), str(dtype), options.offload),
            lambda: load_restorer(
                options.model,
                store_root=self.store_root,
                device=device,
                dtype=dtype,
                offload=options.offload,
            ),
        )

    def _restore_once(self, spec, restorer, options, context: JobContext, extra, *, first: bool):
        """One try of `restore_file`; returns (FileResult, pipeline output, time it returned)."""
        import torch

        from engine.restore_files import restore_file

        outcome: dict[str, Any] = {}
        target = self.faults.get("oom")
        inject_oom = first and target is not None and target in spec.input.name

        def run_pipeline(image, **kwargs):
            if inject_oom:
                raise torch.OutOfMemoryError(f"injected by {TEST_FAULTS_ENV}")
            output = restorer.pipeline(image, **kwargs)
            outcome["output"] = output
            outcome["done"] = time.perf_counter()
            context.stage("save")
            return output

        result = restore_file(
            run_pipeline,
            spec.input,
            spec.output_dir,
            options,
            pipeline_kwargs={
                "on_progress": context.report,
                "on_warning": context.warn,
                "cancel": context.cancel,
                **extra,
            },
        )
        return result, outcome.get("output"), outcome.get("done", time.perf_counter())


def check_options(options: p.RestoreOptionsMessage) -> None:
    """Refuse option values that their types let through but no job could use, before
    queueing (the ranges are in docs/protocol.md)."""

    def whole(name: str, value: Any, least: int, most: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise BadSettingError(
                f"option {name}={value!r} is not a whole number from {least} to {most}",
                hint="see docs/protocol.md for the restore options",
            )

    def number(name: str, value: float, least: float, most: float) -> None:
        if not least <= value <= most:
            raise BadSettingError(
                f"option {name}={value!r} is not a number from {least:g} to {most:g}",
                hint="see docs/protocol.md for the restore options",
            )

    if options.skip_existing and options.overwrite:
        raise BadSettingError(
            "skip_existing and overwrite exclude each other",
            hint="skip the results that exist, or replace them: not both",
        )
    if options.offload not in OFFLOAD_LEVELS:
        raise BadSettingError(
            f"option offload={options.offload!r} is not one of {', '.join(OFFLOAD_LEVELS)}",
            hint="see docs/multi-gpu.md for the offload levels",
        )
    whole("upscale", options.upscale, 1, MAX_UPSCALE)
    whole("steps", options.steps, 1, MAX_STEPS)
    number("cfg", options.cfg, 0, MAX_CFG)
    number("max_megapixels", options.max_megapixels, 0.001, MAX_MEGAPIXELS)
    if options.tile != "auto":
        whole("tile", options.tile, 16, MAX_LATENT_TILE)
        if options.tile % 8:
            raise BadSettingError(
                f"option tile={options.tile} is not a multiple of 8",
                hint="use 'auto' or a multiple of 8 that is at least 16",
            )
    if options.seed is not None:
        whole("seed", options.seed, 0, 2**63 - 1)
    from engine.pipelines.strength import check_strength  # torch: loaded since hello

    check_strength(options.strength)


def halved_tiles(options) -> tuple[dict[str, int], str]:
    """Pipeline arguments with every tile halved, and the warning that says so.

    Out-of-memory inside the denoising loop is handled by the pipeline itself; one that
    escapes came from the VAE, the remover or a fixed latent tile, so all of them shrink.
    """
    from engine.pipelines.tiled_remover import DEFAULT_REMOVER_TILE
    from engine.pipelines.tiled_vae import DEFAULT_VAE_TILE

    extra = {
        "vae_tile_size": max(MIN_PIXEL_TILE, DEFAULT_VAE_TILE // 2),
        "remover_tile_size": max(MIN_PIXEL_TILE, DEFAULT_REMOVER_TILE // 2),
    }
    latent = ""
    if options.tile != "auto":
        options.tile = max(16, options.tile // 2 // 8 * 8)
        latent = f", latent tiles {options.tile}"
    message = (
        "Out of memory; retrying once with smaller tiles (VAE "
        f"{extra['vae_tile_size']} px, remover {extra['remover_tile_size']} px{latent})."
    )
    return extra, message


def output_tile_grid(output) -> list[list[int]]:
    """`output.tile_grid` as [top, left, height, width] boxes in the pixels of the saved image.

    The tiles may be in any unit (DreamClear's latent cells of the working size, the starter's
    pixels); they are scaled so that their extent covers the saved image, which may differ
    from 8 x DreamClear's working size."""
    tiles = output.tile_grid
    if not tiles:
        return []
    out_h, out_w = output.image.shape[-2:]
    sy = out_h / max(tile.bottom for tile in tiles)
    sx = out_w / max(tile.right for tile in tiles)
    boxes = []
    for tile in tiles:
        top, left = round(tile.top * sy), round(tile.left * sx)
        bottom, right = round(tile.bottom * sy), round(tile.right * sx)
        boxes.append([top, left, bottom - top, right - left])
    return boxes


def peak_memory_bytes(device) -> int | None:
    """Peak device memory of the job on CUDA; peak resident memory of the process on the CPU."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
