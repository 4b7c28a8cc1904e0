"""The engine's job runner: one worker thread owns the device and runs restore jobs in order.

Requests arrive on the server's thread (`submit`, `cancel`, `interrupt`, `shutdown`); the
worker pops jobs FIFO and reports through `emit(event)`, which must be thread-safe (the
server posts into its event loop). Per job the events are, in this order:

    accepted -> queued -> started -> (stage | progress)* -> [warning | degradation_map]*
             -> result | error | cancelled

Progress is throttled here, at the source (about 20 per second per job, latest wins); stage
changes, warnings, results and errors are never throttled. Restorers stay loaded between
jobs, keyed by (model, device, dtype), least recently used unloaded first.

Test hook: `DREAMCLEAR_TEST_FAULTS` (read once, when the runner is made) is a comma-separated
list of `fault:name-part` entries used only by the engine's tests. `oom:PART` makes the
first attempt of each job whose input file name contains PART raise torch.OutOfMemoryError,
to exercise the retry with halved tiles. Unset, it changes nothing.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import protocol as p
from engine.errors import BadSettingError, EngineError, JobInterrupted, OutOfMemory

logger = logging.getLogger(__name__)

TEST_FAULTS_ENV = "DREAMCLEAR_TEST_FAULTS"
PROGRESS_HZ = 20.0
"""Most progress events per second and job; the latest position wins."""
MIN_PIXEL_TILE = 64
"""The out-of-memory retry never halves the VAE or remover tiles below this (pixels)."""

Emit = Callable[[p.Event], None]


@dataclass
class Job:
    id: str
    input: Path
    output_dir: Path
    options: p.RestoreOptionsMessage
    request_id: str | None
    stop_reason: str | None = None
    """"interrupt" or "shutdown" once the job was asked to stop."""
    stop_request_id: str | None = None


class ProgressThrottle:
    """A pipeline's `on_progress` turned into `stage` events (every change) and `progress`
    events (at most `hz` per second, latest wins), with an ETA from the denoise rate."""

    def __init__(self, job: Job, emit: Emit, hz: float = PROGRESS_HZ, clock=time.monotonic) -> None:
        self.job = job
        self.emit = emit
        self.interval = 1.0 / hz
        self.clock = clock
        self.stage: str | None = None
        self.last_sent = float("-inf")
        self.pending: tuple[p.Progress, float] | None = None
        self.denoise_started: float | None = None
        # A held position is sent by a timer at the end of its interval, so a slow pipeline
        # (one callback per tile of a large model) never leaves the client a step behind.
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def enter(self, stage: str) -> None:
        """Announce `stage` (flushing the last position of the one before), once per change."""
        if stage == self.stage:
            return
        self.flush()
        self.stage = stage
        self.emit(p.StageEvent(request_id=self.job.request_id, job_id=self.job.id, stage=stage))

    def __call__(self, info: Any) -> None:
        now = self.clock()
        self.enter(info.stage)
        if info.stage == "denoise" and self.denoise_started is None:
            self.denoise_started = now
        event = p.Progress(
            request_id=self.job.request_id,
            job_id=self.job.id,
            stage=info.stage,
            step=info.step,
            steps=info.steps,
            tile=info.tile,
            tiles=info.tiles,
            eta_s=self._eta(info, now),
        )
        with self._lock:
            if now - self.last_sent >= self.interval:
                self._cancel_timer()
                self._send(event, now, now)
            else:
                self.pending = (event, now)
                if self._timer is None:
                    delay = self.last_sent + self.interval - now
                    self._timer = threading.Timer(max(delay, 0.0), self._on_timer)
                    self._timer.args = (self._timer,)
                    self._timer.daemon = True
                    self._timer.start()

    def flush(self) -> None:
        """Send the held position now (before a stage change, a result or an error)."""
        with self._lock:
            self._cancel_timer()
            if self.pending is not None:
                event, called = self.pending
                self._send(event, called, self.clock())

    def discard(self) -> None:
        """Drop the held position: the job is over and its last event already sent."""
        with self._lock:
            self._cancel_timer()
            self.pending = None

    def _on_timer(self, timer: threading.Timer) -> None:
        with self._lock:
            if timer is not self._timer:
                return  # cancelled after it fired: a direct send or a flush came first
            self._timer = None
            if self.pending is not None:
                event, called = self.pending
                self._send(event, called, self.clock())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, event: p.Progress, called: float, now: float) -> None:
        self.pending = None
        self.last_sent = now
        # The benchmark matches these lines to the events it receives (same monotonic clock).
        logger.debug(
            "progress job=%s stage=%s step=%d tile=%d called=%.6f sent=%.6f",
            event.job_id,
            event.stage,
            event.step,
            event.tile,
            called,
            now,
        )
        self.emit(event)

    def _eta(self, info: Any, now: float) -> float | None:
        """Seconds left in the denoise stage at the rate of the units (step x tile) so far.

        The first denoise callback arrives after one unit, so the rate counts from there.
        """
        if info.stage != "denoise" or self.denoise_started is None:
            return None
        tiles = max(info.tiles, 1)
        done = (info.step - 1) * tiles + info.tile
        total = info.steps * tiles
        if done <= 1:
            return None
        per_unit = (now - self.denoise_started) / (done - 1)
        return round(per_unit * (total - done), 2)


def parse_faults(text: str) -> dict[str, str]:
    """`"oom:photo"` -> {"oom": "photo"} (see the module docstring)."""
    faults = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, target = entry.partition(":")
        faults[name] = target
    return faults


def check_options(options: p.RestoreOptionsMessage) -> None:
    """Refuse option values that JSON let through but no job could use, before queueing."""

    def whole(name: str, value: Any, least: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BadSettingError(
                f"option {name}={value!r} is not a whole number of at least {least}",
                hint="see docs/protocol.md for the restore options",
            )

    whole("upscale", options.upscale, 1)
    whole("steps", options.steps, 1)
    if options.tile != "auto":
        whole("tile", options.tile, 16)
        if options.tile % 8:
            raise BadSettingError(
                f"option tile={options.tile} is not a multiple of 8",
                hint="use 'auto' or a multiple of 8 that is at least 16",
            )
    if options.seed is not None:
        whole("seed", options.seed, 0)
    from engine.pipelines.strength import check_strength  # torch: loaded since hello

    check_strength(options.strength)
    if not isinstance(options.model, str) or not isinstance(options.device, str):
        raise BadSettingError("options model and device must be strings")


class JobRunner:
    """The queue and the worker thread; see the module docstring."""

    def __init__(
        self,
        emit: Emit,
        *,
        store_root: str | None = None,
        max_warm: int = 1,
        progress_hz: float = PROGRESS_HZ,
    ) -> None:
        self._emit = emit
        self.store_root = store_root
        self.max_warm = max_warm
        self.progress_hz = progress_hz
        self._lock = threading.Condition()
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._pipeline: Any = None
        self._closing = False
        self._warm: collections.OrderedDict[tuple[str, str, str], Any] = collections.OrderedDict()
        self._faults = parse_faults(os.environ.get(TEST_FAULTS_ENV, ""))
        self._thread = threading.Thread(target=self._work, name="engine-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # ------------------------------------------------------------------ requests

    def submit(self, request: p.Restore) -> list[str]:
        """Queue one job per input file (folders and globs expanded); returns their ids."""
        from engine.restore_files import collect_inputs

        check_options(request.options)
        if not request.output_dir:
            raise BadSettingError("restore needs an output_dir", hint="name a folder for results")
        inputs, missing = collect_inputs(request.inputs)
        # A name that matched nothing still becomes a job: it fails in order, as bad_input.
        paths = inputs + [failure.input for failure in missing]
        ids = []
        with self._lock:
            if self._closing:
                raise BadSettingError("the engine is shutting down", hint="start it again")
            for path in paths:
                job = Job(
                    id=uuid.uuid4().hex[:12],
                    input=path,
                    output_dir=Path(request.output_dir).expanduser(),
                    options=request.options,
                    request_id=request.id,
                )
                ahead = len(self._queue) + (self._running is not None)
                self._emit(p.Accepted(request_id=request.id, job_id=job.id, input=str(path)))
                self._emit(p.Queued(request_id=request.id, job_id=job.id, position=ahead))
                self._queue.append(job)
                ids.append(job.id)
            self._lock.notify()
        return ids

    def cancel(self, job_ids: list[str] | None = None, request_id: str | None = None) -> list[str]:
        """Drop queued jobs (all when `job_ids` is None); the running one is not touched."""
        with self._lock:
            return self._drop_queued(job_ids, "cancel", request_id)

    def interrupt(self, job_id: str | None = None, request_id: str | None = None) -> bool:
        """Stop the running job (if it is `job_id`, when given) at its next step or tile."""
        with self._lock:
            return self._stop_running(job_id, "interrupt", request_id)

    def shutdown(self, request_id: str | None = None, timeout: float = 10.0) -> bool:
        """Drop the queue, interrupt the running job, stop the worker; True if it stopped."""
        with self._lock:
            self._closing = True
            self._drop_queued(None, "shutdown", request_id)
            self._stop_running(None, "shutdown", request_id)
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running_job(self) -> str | None:
        with self._lock:
            return self._running.id if self._running else None

    def _drop_queued(self, job_ids, reason: str, request_id: str | None) -> list[str]:
        wanted = None if job_ids is None else set(job_ids)
        dropped = [job for job in self._queue if wanted is None or job.id in wanted]
        for job in dropped:
            self._queue.remove(job)
            self._emit(p.Cancelled(request_id=request_id, job_id=job.id, reason=reason))
        return [job.id for job in dropped]

    def _stop_running(self, job_id: str | None, reason: str, request_id: str | None) -> bool:
        job = self._running
        if job is None or (job_id is not None and job.id != job_id):
            return False
        job.stop_reason, job.stop_request_id = reason, request_id
        if self._pipeline is not None:
            self._pipeline.interrupt = True
        return True

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = self._queue.popleft()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
                    self._pipeline = None

    def _run(self, job: Job) -> None:
        self._emit(p.Started(request_id=job.request_id, job_id=job.id, input=str(job.input)))
        throttle = ProgressThrottle(job, self._emit, self.progress_hz)
        started = time.perf_counter()
        try:
            self._restore_reporting(job, throttle, started)
        finally:
            throttle.discard()

    def _restore_reporting(self, job: Job, throttle: ProgressThrottle, started: float) -> None:
        """Run the job and turn every way it can end into its one final event."""
        import torch

        try:
            self._restore(job, throttle, started)
        except JobInterrupted:
            throttle.discard()
            self._emit(
                p.Cancelled(
                    request_id=job.stop_request_id or job.request_id,
                    job_id=job.id,
                    reason=job.stop_reason or "interrupt",
                )
            )
        except torch.OutOfMemoryError as error:
            self._error(
                job,
                throttle,
                OutOfMemory(
                    f"out of memory even after halving the tiles: {error}".splitlines()[0],
                    "close other programs using the device, use device cpu, or restore a smaller image",
                ),
            )
        except EngineError as error:
            self._error(job, throttle, error)
        except Exception as error:  # a bug: report it, keep serving
            logger.exception("job %s (%s) failed", job.id, job.input)
            self._error(
                job,
                throttle,
                EngineError(
                    f"internal error: {type(error).__name__}: {error}",
                    hint="this is a bug: the engine log has the details; please report it",
                ),
            )

    def _error(self, job: Job, throttle: ProgressThrottle, error: EngineError) -> None:
        throttle.flush()
        message = error.message
        if str(job.input) not in message:
            message = f"{job.input}: {message}"
        self._emit(
            p.Error(
                request_id=job.request_id,
                job_id=job.id,
                kind=error.kind,
                message=message,
                hint=error.hint,
            )
        )

    def _restore(self, job: Job, throttle: ProgressThrottle, started: float) -> None:
        import torch

        from engine.restore_files import RestoreOptions, prepare_output_folder

        throttle.enter("load")
        restorer, device = self._restorer(job.options)
        timings = {"load": time.perf_counter() - started}
        with self._lock:
            if job.stop_reason:
                raise JobInterrupted("restoration interrupted before it began")
            self._pipeline = restorer.pipeline
        prepare_output_folder(job.output_dir)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        options = RestoreOptions.from_message(job.options, restorer.min_short_side)
        try:
            outcome = self._restore_once(job, restorer, options, throttle, {}, first=True)
        except torch.OutOfMemoryError:
            extra, message = halved_tiles(options)
            logger.warning("job %s: out of memory; %s", job.id, message)
            self._emit(p.Warning(request_id=job.request_id, job_id=job.id, message=message))
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            outcome = self._restore_once(job, restorer, options, throttle, extra, first=False)
        result, output, pipeline_done = outcome
        if result.failure is not None:
            raise result.failure
        if result.error:  # restore_file reports only EngineErrors; keep the message if not
            raise EngineError(result.error)
        timings.update({k: v for k, v in output.timings.items() if k != "total"})
        timings["save"] = time.perf_counter() - pipeline_done
        throttle.flush()
        if result.map_path is not None and output.degradation_maps is not None:
            legend = [list(pair) for pair in output.degradation_maps.legend]
            self._emit(
                p.DegradationMapReady(
                    request_id=job.request_id,
                    job_id=job.id,
                    path=str(result.map_path),
                    legend=legend,
                )
            )
        self._emit(
            p.Result(
                request_id=job.request_id,
                job_id=job.id,
                input=str(job.input),
                output=str(result.output),
                seconds=round(time.perf_counter() - started, 4),
                timings={k: round(v, 4) for k, v in timings.items()},
                peak_memory_bytes=peak_memory_bytes(device),
                tile_grid=output_tile_grid(output),
            )
        )

    def _restore_once(self, job, restorer, options, throttle, extra: dict, *, first: bool):
        """One try of `restore_file`; returns (FileResult, pipeline output, time it returned)."""
        import torch

        from engine.restore_files import restore_file

        pipeline = restorer.pipeline
        outcome: dict[str, Any] = {}
        inject_oom = first and "oom" in self._faults and self._faults["oom"] in job.input.name

        def on_progress(info) -> None:
            # The pipeline clears `interrupt` when it starts, so a stop asked for during
            # loading is re-asserted at its first callback.
            if job.stop_reason:
                pipeline.interrupt = True
            throttle(info)

        def on_warning(message: str) -> None:
            throttle.flush()
            self._emit(p.Warning(request_id=job.request_id, job_id=job.id, message=message))

        def run_pipeline(image, **kwargs):
            if inject_oom:
                raise torch.OutOfMemoryError(f"injected by {TEST_FAULTS_ENV}")
            output = pipeline(image, **kwargs)
            outcome["output"] = output
            outcome["done"] = time.perf_counter()
            throttle.enter("save")
            return output

        result = restore_file(
            run_pipeline,
            job.input,
            job.output_dir,
            options,
            pipeline_kwargs={"on_progress": on_progress, "on_warning": on_warning, **extra},
        )
        return result, outcome.get("output"), outcome.get("done", time.perf_counter())

    def _restorer(self, options: p.RestoreOptionsMessage):
        """The warm restorer for (model, device, dtype), loading it (and unloading the least
        recently used beyond `max_warm`) when needed."""
        import torch

        from engine.devices import resolve_device, resolve_dtype
        from engine.model_selection import load_restorer

        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        key = (options.model, str(device), str(dtype))
        restorer = self._warm.get(key)
        if restorer is not None:
            self._warm.move_to_end(key)
            return restorer, device
        while self._warm and len(self._warm) >= self.max_warm:
            old, _ = self._warm.popitem(last=False)
            logger.info("unloading %s to make room", old)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        logger.info("loading %s on %s (%s)", options.model, device, dtype)
        restorer = load_restorer(
            options.model, store_root=self.store_root, device=device, dtype=dtype
        )
        self._warm[key] = restorer
        return restorer, device


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
