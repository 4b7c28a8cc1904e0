"""`EngineClient`: drive an engine process from asyncio (plain, or under qasync in the app).

The client's face: start (`spawn`) or connect (`connect`), send requests, hand the engine's
events to subscribers, report a `ConnectionState`. The work is done by four parts, each with
one job, wired together here:

    connection.py  EngineConnection  one engine: handshake, requests and their answers, events
    job_table.py   JobTable          the jobs handed to the engine, under our ids (the one place
                                     engine ids are mapped)
    supervisor.py  EngineSupervisor  start, stop, restart with backoff, kill on a hung interrupt
    event_hub.py   EventHub          every event to every subscriber (callbacks, async streams)

An event travels: the connection matches it to a waiting request, `_on_event` notes an error
nobody asked for, the job table puts a job's event under the job's id, and the hub passes it
on.

Job ids are the client's own ("job-1", ...; `new_job_id`), and the app uses them end to end:
it names a queue row with one before the job goes to the engine (`restore(..., job_ids=)`),
and every event of the job comes back under it, also after the job was submitted again to a
new engine. No Qt here: the desktop's state models subscribe to this client.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from desktop.client.connection import EngineConnection, ProcessSpec, TcpSpec
from desktop.client.connection_state import ConnectionState, EngineClientError
from desktop.client.event_hub import EventCallback, EventHub, EventStream
from desktop.client.job_table import JobTable
from desktop.client.settings import ClientSettings
from desktop.client.supervisor import EngineSupervisor, StateCallback
from desktop.client.transport import EngineLog
from engine.protocol import (
    Accepted,
    Bye,
    Cancel,
    Error,
    Event,
    Export,
    Exported,
    ExportFormat,
    HelloReply,
    Interrupt,
    ListModels,
    ModelAction,
    ModelActionKind,
    ModelDone,
    ModelProgress,
    ModelsReply,
    Request,
    RestoreOptionsMessage,
)

log = logging.getLogger(__name__)


class EngineClient:
    """One engine, started or connected to once and restarted as needed. See the module doc."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self.engine_log = EngineLog(self.settings.log_lines)
        """The engine's stderr (last lines, across restarts) for the diagnostic report."""
        self._events = EventHub()
        self._jobs = JobTable(self._events.dispatch, changed=self._jobs_changed)
        self._supervisor = EngineSupervisor(
            self.settings, self.engine_log, self._jobs, self._on_event
        )

    # --- observing --------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._supervisor.state

    @property
    def error(self) -> EngineClientError | None:
        """Why the client gave up (state LOST and no restart coming); None otherwise."""
        return self._supervisor.error

    @property
    def hello_reply(self) -> HelloReply | None:
        """What the current engine said in its handshake: version, device, capabilities."""
        return self._supervisor.hello_reply

    @property
    def pid(self) -> int | None:
        """The engine process's id (None over TCP or when none runs)."""
        conn = self._supervisor.connection
        return conn.pid if conn is not None else None

    @property
    def jobs(self) -> list[str]:
        """Ids of the jobs submitted and not finished, in the order they run."""
        return self._jobs.ids

    def on_state_changed(self, callback: StateCallback) -> Callable[[], None]:
        """Call `callback(old, new)` on every state change; returns the unsubscribe function."""
        return self._supervisor.on_state_changed(callback)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns the unsubscribe function."""
        return self._events.subscribe(callback)

    def events(self) -> EventStream:
        """An async iterator over the events from now on; it ends when the client stops."""
        return self._events.stream()

    async def wait_for_state(self, *states: ConnectionState, timeout: float) -> ConnectionState:
        """Wait until the state is one of `states`; TimeoutError after `timeout` seconds."""
        return await self._supervisor.wait_for_state(*states, timeout=timeout)

    # --- starting and stopping --------------------------------------------------------------

    async def spawn(
        self,
        argv: Sequence[str] | None = None,
        *,
        store: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> HelloReply:
        """Start `python -m engine --stdio [--store DIR]` (or `argv`) and say hello."""
        if argv is None:
            argv = [sys.executable, "-m", "engine", "--stdio"]
            if store is not None:
                argv += ["--store", str(store)]
        spec = ProcessSpec(tuple(argv), env, str(cwd) if cwd is not None else None)
        return await self._supervisor.start(spec)

    async def connect(self, host: str, port: int, token: str | None) -> HelloReply:
        """Connect to an engine serving TCP and say hello with its token."""
        return await self._supervisor.start(TcpSpec(host, port, token))

    async def restart(self) -> HelloReply:
        """Start again by hand (after the client gave up): close what is left, spawn/connect."""
        return await self._supervisor.restart()

    async def shutdown(self) -> Bye | None:
        """Ask the engine to stop (no restart follows); its `bye`, or None if it did not say it."""
        return await self._supervisor.shutdown()

    async def close(self) -> None:
        """Shut the engine down (shutdown, then terminate, then kill) and stop; state STOPPED.

        Event streams end. The client may be started again (`spawn`, `connect`).
        """
        if self.state is ConnectionState.STOPPED:
            return
        await self._supervisor.stop()
        self._events.end()

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- requests ---------------------------------------------------------------------------

    async def hello(self) -> HelloReply:
        """The current engine's handshake reply (each connection says hello once, on start)."""
        await self._supervisor.connected()
        assert self.hello_reply is not None
        return self.hello_reply

    async def list_models(self) -> ModelsReply:
        conn = await self._supervisor.connected()
        request = ListModels(id=conn.new_request_id())
        reply = await conn.request(request, self.settings.request_timeout_s)
        assert isinstance(reply, ModelsReply)
        return reply

    async def model_action(
        self,
        action: ModelActionKind,
        name: str | None = None,
        *,
        path: str | Path | None = None,
        link: bool = False,
        on_progress: Callable[[ModelProgress], None] | None = None,
    ) -> ModelsReply | ModelDone:
        """Manage the engine's model store (docs/protocol.md, `model_action`): a
        `ModelsReply` for "list", else the `ModelDone`; `on_progress` gets a download's
        `model_progress` events. An engine `error` is raised as EngineClientError."""
        conn = await self._supervisor.connected()
        request = ModelAction(
            id=conn.new_request_id(),
            action=action,
            name=name,
            path=None if path is None else str(path),
            link=link,
        )
        timeout: float | None = self.settings.request_timeout_s
        if action in ("import", "download"):
            # As long as it takes: None, since qasync's call_later cannot take an infinite
            # delay. An engine that dies ends the wait.
            timeout = None
        elif action == "verify":
            timeout = self.settings.slow_request_timeout_s

        def progress(event: Event) -> None:
            if isinstance(event, ModelProgress) and event.request_id == request.id:
                assert on_progress is not None
                on_progress(event)

        unsubscribe = self.subscribe(progress) if on_progress is not None else None
        try:
            reply = await conn.request(request, timeout)
        finally:
            if unsubscribe is not None:
                unsubscribe()
        assert isinstance(reply, ModelsReply | ModelDone)
        return reply

    async def export(
        self,
        source: str | Path,
        destination: str | Path,
        *,
        format: ExportFormat = "png",
        quality: int = 95,
        bit_depth: int = 8,
        name_pattern: str = "{stem}",
        stem: str | None = None,
        scale: int | None = None,
        overwrite: bool = False,
        keep_both: bool = False,
        dry_run: bool = False,
    ) -> Exported:
        """Have the engine write `source` again into the folder `destination` (docs/protocol.md,
        `export`); the `Exported` answer, or EngineClientError."""
        conn = await self._supervisor.connected()
        request = Export(
            id=conn.new_request_id(),
            source=str(source),
            destination=str(destination),
            format=format,
            quality=quality,
            bit_depth=bit_depth,
            name_pattern=name_pattern,
            stem=stem,
            scale=scale,
            overwrite=overwrite,
            keep_both=keep_both,
            dry_run=dry_run,
        )
        reply = await conn.request(request, self.settings.slow_request_timeout_s)
        assert isinstance(reply, Exported)
        return reply

    def new_job_id(self) -> str:
        """An id for a job to come ("job-1", "job-2", ...): what `restore` and every event of the
        job will call it. The app names its queue's rows with these."""
        return self._jobs.new_id()

    async def restore(
        self,
        inputs: Iterable[str | Path],
        output_dir: str | Path,
        options: RestoreOptionsMessage | None = None,
        *,
        job_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Submit one job per image file; their ids once the engine accepted them all.

        `job_ids` names the jobs, one per distinct input (from `new_job_id`; an id whose job
        ended may be used again, e.g. for a retry); by default they get new ids. Give files,
        not folders or globs: a folder's images do become jobs (announced by `accepted`
        events), but `restore` waits for one per input and times out.
        """
        conn = await self._supervisor.connected()
        paths = list(dict.fromkeys(str(Path(path)) for path in inputs))  # the engine drops repeats
        if job_ids is None:
            job_ids = [self._jobs.new_id() for _ in paths]
        jobs = self._jobs.add(paths, job_ids, str(output_dir), options or RestoreOptionsMessage())
        if not jobs:
            return []
        self._jobs_changed()
        await self._jobs.submit(conn, jobs, announce=True, timeout=self.settings.request_timeout_s)
        return [job.id for job in jobs]

    async def cancel(self, job_ids: Iterable[str] | None = None) -> None:
        """Drop queued jobs (None: all of them); the engine answers `cancelled` for each.

        A job just submitted is cancelled as soon as the engine accepted it."""
        engine_ids: list[str] | None = None
        if job_ids is not None:
            await self._supervisor.connected()
            engine_ids = await self._jobs.engine_ids(job_ids, self.settings.request_timeout_s)
            if not engine_ids:
                return
        conn = await self._supervisor.connected()
        await conn.send(Cancel(id=conn.new_request_id(), job_ids=engine_ids))

    async def interrupt(self, job_id: str | None = None) -> None:
        """Stop the running job (only if it is `job_id`); its engine is killed if it will not."""
        conn = await self._supervisor.connected()
        job = self._jobs.running() if job_id is None else self._jobs.get(job_id)
        engine_id = job.engine_id if job is not None else None
        if job_id is not None and engine_id is None:
            log.info("not interrupting %s: it is not running in the engine", job_id)
            return
        await conn.send(Interrupt(id=conn.new_request_id(), job_id=engine_id))
        if job is not None and job.state == "running":
            self._supervisor.watch_interrupt(conn, job)

    async def submit_job(self, request: Request) -> str:
        """Send a request that the engine runs as one job of its own (the GenIR stages,
        `train`) and return the engine's id for it, from its `accepted`; a refusal is raised
        as EngineClientError. The job's events come to subscribers under that engine id.

        Unlike `restore` jobs these are not kept across an engine restart: their state is in
        their run folder, and sending the request again to the new engine resumes them.
        `request.id` is set here."""
        conn = await self._supervisor.connected()
        request.id = conn.new_request_id()
        answer: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()

        def watch(event: Event) -> None:
            if event.request_id != request.id or answer.done():
                return
            if isinstance(event, Accepted):
                answer.set_result(event)
            elif isinstance(event, Error):
                answer.set_exception(EngineClientError(event.kind, event.message, event.hint))

        unsubscribe = self.subscribe(watch)
        try:
            await conn.send(request)
            async with asyncio.timeout(self.settings.request_timeout_s):
                accepted = await answer
        except TimeoutError:
            raise EngineClientError(
                "timeout", f"the engine did not accept '{request.TYPE}' in time"
            ) from None
        finally:
            unsubscribe()
        return accepted.job_id

    async def interrupt_job(self, engine_job_id: str) -> None:
        """Stop a job sent with `submit_job` (by the engine's id): dropped if it still waits
        in the engine's queue, interrupted if it runs (answered by `cancelled` either way)."""
        conn = await self._supervisor.connected()
        await conn.send(Cancel(id=conn.new_request_id(), job_ids=[engine_job_id]))
        await conn.send(Interrupt(id=conn.new_request_id(), job_id=engine_job_id))

    # --- events -----------------------------------------------------------------------------

    def _on_event(self, conn: EngineConnection, event: Event) -> None:
        """Every event of `conn` (its answers already handed to their requests): remember an
        error that answers nothing we asked, then on through the job table to subscribers."""
        if isinstance(event, Error) and event.job_id is None and not self._asked(conn, event):
            log.warning("the engine reported: %s (%s)", event.message, event.kind)
            conn.last_error = event  # e.g. "another client is connected", before it hangs up
        self._jobs.on_event(conn, event)

    def _jobs_changed(self) -> None:
        self._supervisor.update_busy()  # READY once the last job left, BUSY while any is left

    def _asked(self, conn: EngineConnection, event: Event) -> bool:
        request_id = event.request_id
        return request_id in conn.pending or self._jobs.awaits(conn, request_id)
