"""What every job kind is, and what a running job gets from the runner.

A job kind (restore today; GenIR stages and training runs next) turns one request into jobs
(`plan`: validate, expand, before anything is queued) and runs one job (`run`: on the device
worker's thread, reporting through its `JobContext`, returning its final event). The runner
(`engine.runner`) owns everything else: the queue, the one worker, the warm models, the
events that announce a job and the one that ends it when it fails or is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from engine import protocol as p
from engine.cancel import CancelToken
from engine.model_cache import WarmModels
from engine.path_policy import PathPolicy
from engine.progress import JobProgress

Emit = Callable[[p.Event], None]
"""Delivers an event to the client; thread-safe (the server posts into its event loop)."""

Spec = TypeVar("Spec")


@dataclass
class PlannedJob(Generic[Spec]):
    """One job of a request, before it has an id: what it is about, and its typed options."""

    label: str
    """What `accepted` and `started` name as the job's `input` (a file, a run folder)."""
    spec: Spec


@dataclass
class JobContext:
    """Handed to `JobKind.run`: where to report, whether to stop, and the warm models."""

    job_id: str
    request_id: str | None
    emit: Emit
    """For the job's own events (a preview, a degradation map); progress goes through `report`."""
    cancel: CancelToken
    """Check it between small units of work (`cancel.raise_if_cancelled()`)."""
    progress: JobProgress
    models: WarmModels
    """Shared by every job kind: one device, so one set of loaded models."""

    def stage(self, name: str) -> None:
        """Announce a stage that reports no steps (loading, saving)."""
        self.progress.enter(name)

    def report(self, info: Any) -> None:
        """A position: `info` has stage, step, steps, tile and tiles (counters from 1)."""
        self.progress(info)

    def warn(self, message: str) -> None:
        self.progress.flush()
        self.emit(p.Warning(request_id=self.request_id, job_id=self.job_id, message=message))


class JobKind(Protocol[Spec]):
    """A kind of job, answering one request type. Both methods raise `EngineError`s for what a
    user can cause: from `plan` the request is refused whole (an `error` event), from `run`
    that one job fails (an `error` event for it) and the queue goes on."""

    request_type: ClassVar[type[p.Request]]

    def plan(self, request: Any, paths: PathPolicy) -> list[PlannedJob[Spec]]:
        """Check the request and split it into jobs, on the server's thread: no heavy work.
        Every path the request names goes through `paths.check` first."""
        ...

    def run(self, spec: Spec, context: JobContext) -> p.Event:
        """Do one job on the device worker's thread; return its final event (e.g. `result`)."""
        ...


@dataclass
class Job:
    """A queued or running job, as the runner holds it."""

    id: str
    kind: JobKind
    planned: PlannedJob
    request_id: str | None
    cancel: CancelToken = field(default_factory=CancelToken)
    stop_request_id: str | None = None
    """The `interrupt` or `shutdown` request that stopped it, which its `cancelled` answers."""
