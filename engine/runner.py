"""The engine's job runner: one worker thread owns the device and runs jobs of any kind in order.

Requests arrive on the server's thread (`submit`, `cancel`, `interrupt`, `shutdown`); the
job's kind (`engine.jobs.base.JobKind`) checks and splits a request into jobs, the worker
pops them FIFO and runs them, and everything is reported through `emit(event)`, which must be
thread-safe (the server posts into its event loop). Per job the events are, in this order:

    accepted -> queued -> started -> (stage | progress | warning | the kind's own)*
             -> its final event (e.g. result) | error | cancelled

Progress is throttled at the source (`engine.progress`); stage changes, warnings, results and
errors never are. Models stay warm between jobs (`engine.model_cache`), shared by every kind.
Interrupt cancels the running job's token, which the job checks between small units of work;
cancel drops queued jobs. A job's `EngineError` fails that job; out of memory that escapes a
job becomes an `out_of_memory` error; any other exception is a bug, logged with its
traceback and reported as `internal`; the worker goes on with the next job in every case.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Callable, Iterable

from engine import protocol as p
from engine.errors import BadSettingError, EngineError, JobInterrupted, OutOfMemory
from engine.jobs.base import Emit, Job, JobContext, JobKind
from engine.model_cache import WarmModels, release_memory
from engine.path_policy import ANYWHERE, PathPolicy
from engine.progress import JOB_PROGRESS_HZ, JobProgress

logger = logging.getLogger(__name__)


class JobRunner:
    """The queue and the worker thread; see the module docstring."""

    def __init__(
        self,
        emit: Emit,
        kinds: Iterable[JobKind],
        *,
        max_warm: int = 1,
        progress_hz: float = JOB_PROGRESS_HZ,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        """`warm_up` runs first on the worker thread (e.g. importing the model code while the
        client gets ready): on that thread, so a first job never imports the same modules
        from a second thread at the same time (diffusers' circular imports break then)."""
        self._emit = emit
        self._warm_up = warm_up
        self.kinds: dict[type[p.Request], JobKind] = {kind.request_type: kind for kind in kinds}
        self.models = WarmModels(max_warm)
        self.progress_hz = progress_hz
        self._lock = threading.Condition()
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="engine-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # ------------------------------------------------------------------ requests

    def takes(self, request: p.Request) -> bool:
        """Whether `request` asks for jobs of a kind this runner knows."""
        return type(request) in self.kinds

    def submit(self, request: p.Request, paths: PathPolicy = ANYWHERE) -> list[str]:
        """Queue the jobs `request` asks for, its paths checked against `paths`; returns
        their ids (EngineError: none queued)."""
        kind = self.kinds[type(request)]
        planned = kind.plan(request, paths)
        ids = []
        with self._lock:
            if self._closing:
                raise BadSettingError("the engine is shutting down", hint="start it again")
            for one in planned:
                job = Job(id=uuid.uuid4().hex[:12], kind=kind, planned=one, request_id=request.id)
                ahead = len(self._queue) + (self._running is not None)
                self._emit(p.Accepted(request_id=request.id, job_id=job.id, input=one.label))
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
        if not job.cancel.cancelled:
            job.stop_request_id = request_id
            job.cancel.cancel(reason)
        return True

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        if self._warm_up is not None:
            try:
                self._warm_up()
            except Exception:  # the first job will meet the same failure and report it
                logger.exception("warming up failed")
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

    def _run(self, job: Job) -> None:
        """Run `job` and turn every way it can end into its one final event."""
        import torch

        self._emit(p.Started(request_id=job.request_id, job_id=job.id, input=job.planned.label))
        progress = JobProgress(job.id, job.request_id, self._emit, self.progress_hz)
        context = JobContext(
            job_id=job.id,
            request_id=job.request_id,
            emit=self._emit,
            cancel=job.cancel,
            progress=progress,
            models=self.models,
        )
        try:
            final = job.kind.run(job.planned.spec, context)
        except JobInterrupted:
            progress.discard()
            self._emit(
                p.Cancelled(
                    request_id=job.stop_request_id or job.request_id,
                    job_id=job.id,
                    reason=job.cancel.reason or "interrupt",
                )
            )
            return
        except torch.OutOfMemoryError as error:
            release_memory()
            failure: EngineError = OutOfMemory(
                f"out of memory: {error}".splitlines()[0],
                "close other programs using the device, use device cpu, or give the job "
                "less to do at once (a smaller image, fewer items)",
            )
        except EngineError as error:
            failure = error
        except Exception as error:  # a bug: report it, keep serving
            logger.exception("job %s (%s) failed", job.id, job.planned.label)
            failure = EngineError(
                f"internal error: {type(error).__name__}: {error}",
                hint="this is a bug: the engine log has the details; please report it",
            )
        else:
            progress.flush()
            self._emit(final)
            progress.discard()
            return
        self._error(job, progress, failure)

    def _error(self, job: Job, progress: JobProgress, error: EngineError) -> None:
        progress.flush()
        message = error.message
        if job.planned.label not in message:
            message = f"{job.planned.label}: {message}"
        self._emit(
            p.Error(
                request_id=job.request_id,
                job_id=job.id,
                kind=error.kind,
                message=message,
                hint=error.hint,
            )
        )
        progress.discard()
