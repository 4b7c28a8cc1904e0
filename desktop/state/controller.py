"""`AppController`: owns the EngineClient and turns its events into the state models.

The controller owns the app's one queue, `JobsModel`: jobs wait there (where they can be
reordered, edited and cancelled for free) and go to the engine one at a time, the next when
the last one ended. The engine keeps its models warm between jobs, so the gap is a round trip.

A job has one id from the moment it is added: the client's (`EngineClient.new_job_id`). The
row is made under it, the job is handed to the client under it (`restore(job_ids=...)`), and
every event of the job comes back with it, so an event finds its row by `JobsModel.job`. The
client keeps the id across engine restarts and maps the engine's own ids (job_table.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import platform
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import PySide6
from PySide6.QtCore import QObject, QSize, QStandardPaths, Signal, qVersion
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

from desktop.client import ConnectionState, EngineClient
from desktop.client.connection_state import CONNECTED, EngineClientError
from desktop.state.connection_status import ConnectionStatus
from desktop.state.engine_models import EngineModels
from desktop.state.estimates import Estimate, SpeedBook, output_size
from desktop.state.jobs_model import ACTIVE, EDITABLE, JobsModel, JobView
from desktop.state.log_model import LogModel
from desktop.state.settings_model import SettingsModel
from engine import protocol as p

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})
THUMBNAIL_PX = 64


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders as their images (sorted, not recursive); repeats dropped."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES:
                    found[child.resolve()] = None
        else:
            found[path.resolve()] = None
    return list(found)


def load_thumbnail(
    path: str, size: int = THUMBNAIL_PX
) -> tuple[QImage | None, tuple[int, int] | None]:
    """A small QImage of `path` and the photo's upright size (None where unreadable); safe off
    the GUI thread."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if not (full.isValid() and full.width() > 0 and full.height() > 0):
        image = reader.read()
        return (None, None) if image.isNull() else (image, (image.width(), image.height()))
    upright = (full.width(), full.height())
    if reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90:
        upright = upright[::-1]
    reader.setScaledSize(
        full.scaled(QSize(size, size), PySide6.QtCore.Qt.AspectRatioMode.KeepAspectRatio)
    )
    image = reader.read()
    return (None, upright) if image.isNull() else (image, upright)


class AppController(QObject):
    """The app's business logic; `client_factory()` makes its EngineClient."""

    jobFinished = Signal(str)
    """A job ended with a result (its row id)."""
    engineInfoChanged = Signal()
    """A new engine said hello (version, device)."""

    def __init__(
        self,
        client_factory: Callable[[], EngineClient],
        settings: SettingsModel,
        *,
        data_dir: str | Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client_factory()
        self.settings = settings
        self.models = EngineModels(self)
        self.jobs = JobsModel(self, runs_starter=self.models.runs_starter)
        self.models.changed.connect(self.jobs.refresh_all)
        self.speeds = SpeedBook(self)
        self.status = ConnectionStatus(self)
        self.log = LogModel(parent=self)
        self.data_dir = Path(
            data_dir
            or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thumbnails = concurrent.futures.ThreadPoolExecutor(1, "thumbnails")
        self._engine_argv: Sequence[str] | None = None
        self._engine_store: str | None = None
        self._unsubscribe = [
            self.client.on_state_changed(self._on_state),
            self.client.subscribe(self._on_event),
        ]

    @property
    def store_location(self) -> str | None:
        """The `--store` the engine was started with (None: the engine's default)."""
        return self._engine_store

    # --- engine -----------------------------------------------------------------------------

    def start(self, argv: Sequence[str] | None = None, *, store: str | None = None) -> asyncio.Task:
        """Start the engine in the background (the window is already up); returns the task."""
        self._engine_argv, self._engine_store = argv, store
        self.status.set_state(ConnectionState.STARTING)
        return self._spawn(self._start(), "starting the engine")

    async def _start(self) -> None:
        try:
            await self.client.spawn(self._engine_argv, store=self._engine_store)
        except EngineClientError as error:
            self._engine_failed(error)
            return
        self._hello()

    def restart_engine(self) -> asyncio.Task:
        """Start the engine again by hand (after the client gave up on it)."""
        return self._spawn(self._restart(), "restarting the engine")

    async def _restart(self) -> None:
        if self.client.state is ConnectionState.STOPPED:
            await self._start()
            return
        try:
            await self.client.restart()
        except EngineClientError as error:
            self._engine_failed(error)
            return
        self._hello()

    def _hello(self) -> None:
        reply = self.client.hello_reply
        if reply is not None:
            log.info("engine %s on %s", reply.engine_version, reply.device)
            self.status.set_detail(reply.device)
        self.engineInfoChanged.emit()
        self._spawn(self._list_models(), "listing the engine's models")
        self._pump()

    async def _list_models(self) -> None:
        # The reply reaches `_on_event` like every event, as the model manager's lists do.
        try:
            await self.client.list_models()
        except EngineClientError as error:
            log.info("the engine did not list its models: %s", error)

    def _engine_failed(self, error: EngineClientError) -> None:
        log.error("the engine could not start: %s", error)
        self.status.set_detail(str(error))
        self.status.set_state(self.client.state)

    async def close(self) -> None:
        """Stop the engine (its running job is cancelled) and forget the client."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self.client.close()
        for task in list(self._tasks):
            task.cancel()
        self._thumbnails.shutdown(wait=False, cancel_futures=True)
        self.status.set_state(ConnectionState.STOPPED)

    # --- queue ------------------------------------------------------------------------------

    def add_paths(self, paths: Iterable[str | Path]) -> list[JobView]:
        """One waiting job per image (folders give their images), with the current settings;
        they start when the user says (`start_waiting`) unless "Start automatically" is on."""
        added = []
        output_dir = str(self.settings.value("output_dir"))
        start = self.settings.auto_start
        for path in expand_inputs(paths):
            options = self.settings.options()
            job = JobView(self.client.new_job_id(), str(path), options, output_dir, start=start)
            self.jobs.add(job)
            added.append(job)
            self._spawn(self._thumbnail(job.id, job.input), "making a thumbnail")
        if added:
            log.info("added %d job(s)", len(added))
        self._pump()
        return added

    def add_image(self, image: QImage) -> list[JobView]:
        """A pasted image: saved as a PNG in the app's data folder, then added like a file."""
        folder = self.data_dir / "pasted"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / time.strftime("pasted-%Y%m%d-%H%M%S.png")
        n = 1
        while path.exists():
            n += 1
            path = folder / time.strftime(f"pasted-%Y%m%d-%H%M%S-{n}.png")
        if not image.save(str(path), "PNG"):
            log.error("could not save the pasted image to %s", path)
            return []
        return self.add_paths([path])

    def start_waiting(self, job_ids: Iterable[str] | None = None) -> int:
        """Start the waiting jobs `job_ids` (all waiting jobs if None), in queue order; returns
        how many were not started yet."""
        wanted = None if job_ids is None else set(job_ids)
        started = 0
        for job in self.jobs.jobs:
            if job.state == "waiting" and not job.start and (wanted is None or job.id in wanted):
                self.jobs.update(job.id, start=True)
                started += 1
        self._pump()
        return started

    def run_again(self, job_id: str) -> JobView | None:
        """A new waiting row below finished job `job_id`, with its photo and settings to change
        before it starts; the first result is kept (the engine never overwrites a file)."""
        job = self.jobs.job(job_id)
        if job is None or job.state != "done":
            return None
        again = JobView(
            self.client.new_job_id(),
            job.input,
            job.options,
            job.output_dir,
            input_size=job.input_size,
            thumbnail=job.thumbnail,
            rerun_of=job.id,
        )
        self.jobs.add(again, after=job.id)
        log.info("%s: run again as a new job", job.name)
        return again

    def estimate(self, job_id: str) -> Estimate | None:
        """Job `job_id`'s output size and time (None until its photo's size is known)."""
        job = self.jobs.job(job_id)
        if job is None or job.input_size is None:
            return None
        restorer = self.models.restorer(job.options.model)
        return self.speeds.estimate(restorer, job.input_size, job.options.upscale)

    def apply_settings(self, job_id: str) -> None:
        """Give a job that has not run yet (or failed) the current settings."""
        job = self.jobs.job(job_id)
        if job is not None and job.state in EDITABLE:
            self.jobs.update(job_id, options=self.settings.options())

    def move(self, job_id: str, delta: int) -> bool:
        return self.jobs.move(job_id, delta)

    def cancel(self, job_id: str) -> None:
        """Drop a waiting or queued job, or stop the running one."""
        job = self.jobs.job(job_id)
        if job is None:
            return
        if job.state == "waiting":
            self.jobs.update(job_id, state="cancelled")
        elif job.state == "submitted":
            self._spawn(self.client.cancel([job_id]), "cancelling a job")
        elif job.state == "running":
            self._spawn(self.client.interrupt(job_id), "interrupting a job")

    def cancel_all(self) -> None:
        for job in self.jobs.jobs:
            if job.state == "waiting" or job.state in ACTIVE:
                self.cancel(job.id)

    def retry(self, job_id: str) -> None:
        job = self.jobs.job(job_id)
        if job is None or job.state not in ("failed", "cancelled"):
            return
        self.jobs.update(
            job_id,
            state="waiting",
            start=True,
            error="",
            hint="",
            warnings=[],
            stage="",
            step=0,
            steps=0,
            tile=0,
            tiles=0,
            eta_s=None,
            progress=None,
            label="",
            preview_path=None,
        )
        self._pump()

    def retry_failed(self) -> None:
        for job in self.jobs.jobs:
            if job.state == "failed":
                self.retry(job.id)

    def clear_finished(self) -> None:
        for job in self.jobs.jobs:
            if job.state in ("done", "cancelled"):
                self.jobs.remove(job.id)

    def _pump(self) -> None:
        """Send the next waiting job to the engine when it has none."""
        if self.client.state not in CONNECTED:
            return
        if any(job.state in ACTIVE for job in self.jobs.jobs):
            return
        job = self.jobs.next_waiting()
        if job is None:
            return
        self.jobs.update(job.id, state="submitted")
        self._spawn(self._submit(job), f"submitting {job.name}")

    async def _submit(self, job: JobView) -> None:
        try:
            Path(job.output_dir).mkdir(parents=True, exist_ok=True)
            await self.client.restore([job.input], job.output_dir, job.options, job_ids=[job.id])
        except (EngineClientError, OSError) as error:
            if job.id not in self.client.jobs:  # never accepted: nobody else will end it
                hint = getattr(error, "hint", "") or "Check the output folder in the settings."
                self._fail(job, str(getattr(error, "message", error)), hint)
        finally:
            self._pump()

    # --- events -----------------------------------------------------------------------------

    def _on_state(self, _old: ConnectionState, new: ConnectionState) -> None:
        self.status.set_state(new)
        if new is ConnectionState.LOST:
            error = self.client.error
            self.status.set_detail(str(error) if error else "the engine stopped; restarting it")
            log.warning("engine lost%s", f": {error}" if error else "")
        elif new in CONNECTED:
            if _old is ConnectionState.RESTARTING:
                self._hello()
            self._pump()

    def _on_event(self, event: p.Event) -> None:
        if isinstance(event, p.ModelsReply):
            self.models.set_models(event.models)
            return
        job_id = getattr(event, "job_id", None)
        job = self.jobs.job(job_id) if job_id is not None else None
        if job is None:
            if isinstance(event, p.Error):
                log.error("engine: %s (%s)", event.message, event.kind)
            elif isinstance(event, p.Warning):
                log.warning("engine: %s", event.message)
            return
        if isinstance(event, p.Started):
            self.jobs.update(job.id, state="running", stage="load", progress=None, label="")
        elif isinstance(event, p.StageEvent):
            self.jobs.update(job.id, stage=event.stage)
        elif isinstance(event, p.Progress):
            self.jobs.update(
                job.id,
                stage=event.stage,
                step=event.step,
                steps=event.steps,
                tile=event.tile,
                tiles=event.tiles,
                eta_s=event.eta_s,
                progress=event.fraction,
                label=event.label,
            )
        elif isinstance(event, p.Preview):
            self.jobs.update(job.id, preview_path=event.path)
        elif isinstance(event, p.Warning):
            log.warning("%s: %s", job.name, event.message)
            self.jobs.update(job.id, warnings=[*job.warnings, event.message])
        elif isinstance(event, p.DegradationMapReady):
            self.jobs.update(job.id, map_path=event.path)
        elif isinstance(event, p.Result):
            grid = [tuple(box) for box in event.tile_grid]
            self.jobs.update(
                job.id,
                state="done",
                output=event.output,
                seconds=event.seconds,
                skipped=event.skipped,
                tile_grid=grid,
                stage="",
                eta_s=None,
            )
            log.info("%s restored in %.1f s: %s", job.name, event.seconds, event.output)
            self._measured(job, event)
            self.jobFinished.emit(job.id)
            self._pump()
        elif isinstance(event, p.Error):
            self._fail(job, event.message, event.hint)
            self._pump()
        elif isinstance(event, p.Cancelled):
            self.jobs.update(job.id, state="cancelled", stage="", eta_s=None)
            log.info("%s cancelled (%s)", job.name, event.reason)
            self._pump()

    def _measured(self, job: JobView, result: p.Result) -> None:
        """Learn the restorer's speed from a job it finished (not from a skipped one). Loading
        the model is left out: the engine keeps it warm for the next job."""
        seconds = result.seconds - result.timings.get("load", 0.0)
        if result.skipped or seconds <= 0 or job.input_size is None:
            return
        output = output_size(job.input_size, job.options.upscale)
        self.speeds.record(self.models.restorer(job.options.model), output, seconds)

    def _fail(self, job: JobView, message: str, hint: str) -> None:
        self.jobs.update(job.id, state="failed", error=message, hint=hint, stage="", eta_s=None)
        self.log.add_error(f"{job.name}: {message}")
        log.warning("%s failed: %s", job.name, message)

    # --- helpers ----------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def done(task: asyncio.Task) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error("%s failed: %s", what, error)

        task.add_done_callback(done)
        return task

    async def _thumbnail(self, job_id: str, path: str) -> None:
        image, size = await asyncio.get_running_loop().run_in_executor(
            self._thumbnails, load_thumbnail, path
        )
        self.jobs.update(job_id, thumbnail=image, input_size=size)

    def diagnostic_report(self) -> str:
        """Versions, the engine's device, recent errors and engine log lines, as plain text."""
        reply = self.client.hello_reply
        try:
            version = metadata.version("dreamclear-studio")
        except metadata.PackageNotFoundError:
            version = "unknown"
        lines = [
            "DreamClear Studio diagnostic report",
            f"app: {version}",
            f"python: {sys.version.split()[0]} ({platform.platform()})",
            f"PySide6: {PySide6.__version__}, Qt {qVersion()}",
            f"protocol: {p.PROTOCOL_VERSION}",
            f"engine: {reply.engine_version if reply else 'not connected'}",
            f"device: {reply.device if reply else 'unknown'}",
            f"capabilities: {', '.join(reply.capabilities) if reply else ''}",
            f"connection: {self.client.state.value}"
            + (f" ({self.client.error})" if self.client.error else ""),
            f"settings: {self.settings.values()}",
            "",
            "recent errors:",
            *(f"  {line}" for line in self.log.errors[-20:]),
            "",
            "engine log (last lines):",
            *(f"  {line}" for line in self.client.engine_log.lines[-60:]),
        ]
        return "\n".join(lines) + "\n"
