"""`JobTable`: the restore jobs handed to the engine and not finished, under the desktop's ids.

This is not a queue of its own: the app's queue (state/jobs_model.py, owned by the
AppController) decides what waits and in which order, and hands a job over only when the
engine should run it. The table keeps what a restart needs: each job's input and settings and
whether the engine has it queued or running, so that jobs handed over survive a new engine
under the same id.

Engine ids are mapped here and nowhere else. The engine names each job in its `accepted`
event; the table keeps that name for the current connection only (a restarted engine names
its jobs afresh, and may reuse an old name for another job) and rewrites every job event to
the job's own id before it is passed on. The other way, a request for a job reads the job's current
`engine_id` (a cancel first waits for the `accepted` of a job just handed over).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from desktop.client.connection import EngineConnection
from desktop.client.connection_state import CRASH_HINT, CRASH_MESSAGE, EngineClientError
from engine.protocol import (
    Accepted,
    Cancelled,
    Error,
    Event,
    Restore,
    RestoreOptionsMessage,
    Result,
    Started,
    unsupported_options,
)
from engine.protocol import Warning as EngineWarning

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    id: str
    """The desktop's id: the same in every event, across engine restarts."""
    input: str
    output_dir: str
    options: RestoreOptionsMessage
    engine_id: str | None = None
    """The current engine's name for it; None until its `accepted`."""
    state: Literal["submitted", "queued", "running"] = "submitted"
    requeued: bool = False
    """Already run once more after a crash (it is not requeued twice)."""
    interrupted: bool = False
    """Its engine was killed because it did not stop after `interrupt`."""
    named: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while the current engine knows it by `engine_id`, and once it left the table."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once it left the table."""


@dataclass(eq=False)
class Submission:
    """One `restore` request: its jobs, and a future done when the engine accepted them all."""

    jobs: list[Job]
    future: asyncio.Future[None]
    announce: bool
    """A new submission (its `accepted` events are passed on), not one after a restart."""


@dataclass(eq=False)
class EngineJobs:
    """What one engine connection holds: its `restore` requests waiting for `accepted`, and
    its names for our jobs."""

    conn: EngineConnection
    submissions: dict[str, Submission] = field(default_factory=dict)
    by_engine_id: dict[str, Job] = field(default_factory=dict)
    ended: int = 0
    """Jobs this engine finished: one that did was working."""


class JobTable:
    """The jobs handed to the engine, in the order they run. See the module doc.

    `dispatch(event)` passes an event on to the client's subscribers; `changed()` is called
    when jobs left the table (the client is READY once it is empty).
    """

    def __init__(self, dispatch: Callable[[Event], None], changed: Callable[[], None]) -> None:
        self._dispatch = dispatch
        self._changed = changed
        self._jobs: dict[str, Job] = {}
        self._engine: EngineJobs | None = None
        self._ids = itertools.count(1)

    # --- the table --------------------------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        return list(self._jobs)

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def running(self) -> Job | None:
        return next((job for job in self._jobs.values() if job.state == "running"), None)

    def queued(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.state == "queued"]

    def new_id(self) -> str:
        """A job id not used before by this table: "job-1", "job-2", ..."""
        return f"job-{next(self._ids)}"

    def add(
        self,
        inputs: Sequence[str],
        job_ids: Sequence[str],
        output_dir: str,
        options: RestoreOptionsMessage,
    ) -> list[Job]:
        """New jobs, one per input, under `job_ids` (none of them in the table)."""
        if len(job_ids) != len(inputs):
            raise ValueError(f"{len(inputs)} input(s) but {len(job_ids)} job id(s)")
        taken = [job_id for job_id in job_ids if job_id in self._jobs]
        if taken:
            raise ValueError(f"job id(s) already with the engine: {', '.join(taken)}")
        jobs = [
            Job(job_id, path, output_dir, options)
            for path, job_id in zip(inputs, job_ids, strict=True)
        ]
        self._jobs.update((job.id, job) for job in jobs)
        return jobs

    def finish(self, job: Job, event: Event) -> None:
        """`job` left the table with `event` (passed on)."""
        self._drop(job)
        self._dispatch(event)

    def end_all(self, event_for: Callable[[Job], Event]) -> None:
        """Every job leaves the table, each with `event_for(job)`."""
        for job in list(self._jobs.values()):
            self.finish(job, event_for(job))

    # --- handing jobs to an engine ----------------------------------------------------------

    async def submit(
        self, conn: EngineConnection, jobs: list[Job], *, announce: bool, timeout: float
    ) -> None:
        """Send `restore` requests for `jobs` (one per run of equal settings) and await
        `accepted`.

        A new submission (`announce`) raises what went wrong; a submission again after a
        restart reports refused jobs as failed and goes on with the others, unless the engine
        died again.
        """
        engine = self._engine_of(conn)
        for _, group in itertools.groupby(jobs, key=lambda job: (job.output_dir, job.options)):
            batch = list(group)
            request = Restore(
                id=conn.new_request_id(),
                inputs=[job.input for job in batch],
                output_dir=batch[0].output_dir,
                options=batch[0].options,
            )
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            engine.submissions[request.id] = Submission(batch, future, announce)
            for job in batch:
                job.state = "submitted"
            try:
                check_engine_takes(conn, request.options)
                await conn.send(request)
                await asyncio.wait_for(asyncio.shield(future), timeout)
                continue
            except TimeoutError:
                error = EngineClientError("timeout", "the engine did not accept the photos in time")
            except EngineClientError as refused:
                error = refused
            self._fail_submission(engine, request.id, error)
            if announce or conn.lost:
                raise error
            log.warning("could not submit %d job(s) again: %s", len(batch), error)

    def awaits(self, conn: EngineConnection, request_id: str | None) -> bool:
        """Whether `request_id` is a `restore` that `conn` has not accepted in full yet."""
        engine = self._engine
        return engine is not None and engine.conn is conn and request_id in engine.submissions

    async def engine_ids(self, job_ids: Iterable[str], timeout: float) -> list[str]:
        """The current engine's names for these jobs. A job handed over and not accepted yet is
        waited for (up to `timeout`), so that a cancel right after `restore` still reaches it."""
        jobs = [job for job_id in job_ids if (job := self._jobs.get(job_id)) is not None]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for job in jobs:
                    await job.named.wait()
        return [job.engine_id for job in jobs if job.engine_id is not None]

    # --- the engine's events ----------------------------------------------------------------

    def on_event(self, conn: EngineConnection, event: Event) -> None:
        """Pass on an event of `conn`, a job's under the job's own id; keep the jobs' states."""
        engine = self._engine if self._engine is not None and self._engine.conn is conn else None
        if engine is None:
            self._dispatch(event)
            return
        submission = engine.submissions.get(event.request_id or "")
        if submission is not None:
            if isinstance(event, Accepted):
                self._accepted(engine, submission, event)
                return
            if isinstance(event, Error) and event.job_id is None:
                error = EngineClientError(event.kind, event.message, event.hint)
                self._fail_submission(engine, event.request_id or "", error)
        job = engine.by_engine_id.get(getattr(event, "job_id", None) or "")
        if job is None:
            self._dispatch(event)
            return
        event = dataclasses.replace(event, job_id=job.id)  # type: ignore[call-arg]
        if isinstance(event, Started):
            job.state = "running"
        elif isinstance(event, Result | Cancelled | Error):
            engine.by_engine_id.pop(job.engine_id or "", None)
            engine.ended += 1
            self.finish(job, event)
            self._changed()
            return
        self._dispatch(event)

    def ended_in(self, conn: EngineConnection) -> int:
        """How many jobs `conn`'s engine finished."""
        engine = self._engine
        return engine.ended if engine is not None and engine.conn is conn else 0

    def _engine_of(self, conn: EngineConnection) -> EngineJobs:
        # One engine at a time: a new connection starts with no names and no requests.
        if self._engine is None or self._engine.conn is not conn:
            self._engine = EngineJobs(conn)
        return self._engine

    def _accepted(self, engine: EngineJobs, submission: Submission, event: Accepted) -> None:
        # Matched by path: the engine queues missing files last. A path it did not get from us
        # (a folder's or a glob's file) becomes a job of its own, announced like the others.
        waiting = [job for job in submission.jobs if job.engine_id is None]
        job = next((j for j in waiting if j.input == event.input), None)
        if job is None:
            first = submission.jobs[0]
            job = Job(self.new_id(), event.input, first.output_dir, first.options)
            self._jobs[job.id] = job
            log.info("the engine added %s for %s", job.id, event.input)
        elif len(waiting) == 1 and not submission.future.done():
            submission.future.set_result(None)
            engine.submissions.pop(event.request_id or "", None)
        job.engine_id = event.job_id
        job.named.set()
        if job.state == "submitted":
            job.state = "queued"
        engine.by_engine_id[event.job_id] = job
        if submission.announce:
            self._dispatch(dataclasses.replace(event, job_id=job.id))

    def _fail_submission(
        self, engine: EngineJobs, request_id: str, error: EngineClientError
    ) -> None:
        """The engine will not accept the rest of a submission: drop or report its jobs."""
        submission = engine.submissions.pop(request_id, None)
        if submission is None:
            return
        if not submission.future.done():
            submission.future.set_exception(error)
            submission.future.exception()  # its submitter may have stopped waiting: no warning
        for job in submission.jobs:
            if job.engine_id is not None:
                continue
            if submission.announce:  # restore() raises: its caller is told
                self._drop(job)
            elif error.kind in ("crashed", "connection"):
                job.state = "queued"  # the next restart submits it again
            else:
                self.finish(job, Error(job_id=job.id, kind="internal", message=str(error)))
        self._changed()

    # --- losing the engine ------------------------------------------------------------------

    def connection_lost(self, conn: EngineConnection, error: EngineClientError) -> None:
        """`conn`'s stream ended: its submissions fail with `error`."""
        engine = self._engine
        if engine is not None and engine.conn is conn:
            for request_id in list(engine.submissions):
                self._fail_submission(engine, request_id, error)

    def engine_lost(self, requeue_on_crash: bool) -> None:
        """The engine is gone: the running job fails (or runs once more), the others wait for
        the next engine, under the same ids."""
        self._engine = None
        for job in list(self._jobs.values()):
            if job.state != "running":
                self._forget_name(job)
                job.state = "queued"
            elif job.interrupted:
                self.finish(job, Cancelled(job_id=job.id, reason="interrupt"))
            elif requeue_on_crash and not job.requeued:
                self._forget_name(job)
                job.state, job.requeued = "queued", True
                message = f"{CRASH_MESSAGE} while restoring this photo; it is restored once more"
                self._dispatch(EngineWarning(job_id=job.id, message=message))
            else:
                error = Error(
                    job_id=job.id, kind="internal", message=CRASH_MESSAGE, hint=CRASH_HINT
                )
                self.finish(job, error)

    def _drop(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        job.named.set()  # nothing to wait for any more
        job.done.set()

    @staticmethod
    def _forget_name(job: Job) -> None:
        job.engine_id = None
        job.named.clear()


def check_engine_takes(conn: EngineConnection, options: RestoreOptionsMessage) -> None:
    """Refuse options the engine is too old to read (docs/protocol.md, "Versioning"); left at
    their defaults they are not sent at all, so any engine takes them."""
    reply = conn.hello_reply
    unsupported = unsupported_options(options, reply.capabilities if reply else ())
    if unsupported:
        names = ", ".join(unsupported)
        raise EngineClientError(
            "bad_setting",
            f"the engine ({reply.engine_version if reply else 'unknown'}) is older than this "
            f"app and cannot apply {names}",
            f"update the engine, or put {names} back to its default",
        )
