"""`EngineClient`: drive an engine process from asyncio (plain, or under qasync in the app).

It starts the engine (`spawn`) or connects to one (`connect`), says hello, sends requests,
hands the engine's events to subscribers, and keeps a `ConnectionState`. When the engine dies
it restarts it (with backoff, at most `max_restarts` times in a row), reports the job that was
running as failed (or runs it once more, `requeue_on_crash`) and submits the queued jobs again
in order. A running job that does not stop within `interrupt_timeout_s` of `interrupt()` gets
its engine killed and restarted, and is reported as cancelled.

Job ids are the client's own ("job-1", ...): they stay the same when a job is submitted to a
new engine after a restart. Every job event handed to subscribers carries the client's id.
No Qt here: the desktop's state models subscribe to this client.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from desktop.client.connection_state import (
    CONNECTED,
    ConnectionState,
    EngineClientError,
    check_transition,
)
from desktop.client.transport import EngineLog, ProcessTransport, TcpTransport, Transport
from engine.protocol import (
    EVENTS,
    PROTOCOL_VERSION,
    Accepted,
    Bye,
    Cancel,
    Cancelled,
    Error,
    Event,
    Export,
    Exported,
    ExportFormat,
    Hello,
    HelloReply,
    Interrupt,
    ListModels,
    ModelAction,
    ModelActionKind,
    ModelDone,
    ModelProgress,
    ModelsReply,
    ProtocolError,
    Request,
    Restore,
    RestoreOptionsMessage,
    Result,
    Shutdown,
    Started,
    decode,
    encode,
    unsupported_options,
)
from engine.protocol import Warning as EngineWarning

log = logging.getLogger(__name__)

CRASH_MESSAGE = "the engine stopped unexpectedly"
CRASH_HINT = (
    "The engine was restarted. Restore the photo again; if it stops again, try a smaller tile "
    "size or the CPU, and send the engine log (Help > Diagnostics) with a report."
)
_MAX_BACKOFF_S = 8.0


@dataclass
class ClientSettings:
    """How patient the client is, and what it does when the engine dies."""

    start_timeout_s: float = 120.0
    """How long a new engine may take to answer `hello` (it imports torch first)."""
    request_timeout_s: float = 10.0
    """How long `list_models`, `restore` and `shutdown` wait for their answer."""
    slow_request_timeout_s: float = 300.0
    """How long `export` and a model `verify` (reading every header) wait for their answer;
    a model `import` or `download` waits as long as it takes (or until the engine dies)."""
    interrupt_timeout_s: float = 5.0
    """How long a running job may take to stop after `interrupt` before its engine is killed."""
    requeue_on_crash: bool = False
    """Run the job that was running when the engine died once more instead of failing it."""
    max_restarts: int = 3
    """Restarts in a row before giving up; a finished job or `stable_s` of uptime resets it."""
    restart_backoff_s: float = 0.5
    """Wait before the first restart in a row; doubled for each further one (at most 8 s)."""
    stable_s: float = 60.0
    """An engine that ran this long before dying starts a fresh count of restarts in a row."""
    shutdown_timeout_s: float = 5.0
    """`close()`: wait this long for `bye`, then for the exit, then after terminate."""
    log_lines: int = 2000
    """Lines of the engine's stderr kept for the diagnostic report."""
    client_name: str = "dreamclear-studio"
    """Sent in `hello`, for the engine's log."""


@dataclass(frozen=True)
class _ProcessSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str] | None
    cwd: str | None


@dataclass(frozen=True)
class _TcpSpec:
    host: str
    port: int
    token: str | None


@dataclass(eq=False)
class _Job:
    id: str
    """The client's id, stable across restarts."""
    input: str
    output_dir: str
    options: RestoreOptionsMessage
    engine_id: str | None = None
    """The id the current engine gave it; None until `accepted`."""
    state: Literal["submitted", "queued", "running"] = "submitted"
    requeued: bool = False
    """Already run once more after a crash (it is not requeued twice)."""
    interrupted: bool = False
    """Its engine was killed because it did not stop after `interrupt`."""
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Submission:
    jobs: list[_Job]
    future: asyncio.Future[None]
    announce: bool
    """A new submission (its `accepted` events are passed on), not one after a restart."""


@dataclass(eq=False)
class _Connection:
    transport: Transport
    pending: dict[str, asyncio.Future[Event]] = field(default_factory=dict)
    submissions: dict[str, _Submission] = field(default_factory=dict)
    engine_jobs: dict[str, _Job] = field(default_factory=dict)
    bye: asyncio.Future[Bye] | None = None
    reader: asyncio.Task[None] | None = None
    established: bool = False
    lost: bool = False
    last_error: Error | None = None
    """The last `error` answering nothing we asked (e.g. "another client is connected")."""
    connected_at: float = 0.0


_END = object()


class EventStream:
    """The engine's events from now on, until the client stops: `async for event in stream`.

    Subscribed when created (not when first iterated), so nothing is missed in between.
    """

    def __init__(self, client: EngineClient) -> None:
        self._client = client
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        client._streams.append(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _END:
            self.close()
            raise StopAsyncIteration
        assert isinstance(item, Event)
        return item

    def close(self) -> None:
        """Stop receiving (a stream nobody reads would keep every event)."""
        with contextlib.suppress(ValueError):
            self._client._streams.remove(self._queue)


StateCallback = Callable[[ConnectionState, ConnectionState], None]
EventCallback = Callable[[Event], None]


class EngineClient:
    """One engine, started or connected to once and restarted as needed. See the module doc."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self.engine_log = EngineLog(self.settings.log_lines)
        """The engine's stderr (last lines, across restarts) for the diagnostic report."""
        self.hello_reply: HelloReply | None = None
        """What the current engine said in its handshake: version, device, capabilities."""
        self.error: EngineClientError | None = None
        """Why the client gave up (state LOST and no restart coming); None otherwise."""
        self._state = ConnectionState.STOPPED
        self._spec: _ProcessSpec | _TcpSpec | None = None
        self._conn: _Connection | None = None
        self._jobs: dict[str, _Job] = {}
        self._streams: list[asyncio.Queue[object]] = []
        self._event_callbacks: list[EventCallback] = []
        self._state_callbacks: list[StateCallback] = []
        self._request_ids = itertools.count(1)
        self._job_ids = itertools.count(1)
        self._restarts_in_row = 0
        self._recovery: asyncio.Task[None] | None = None
        self._watchdogs: set[asyncio.Task[None]] = set()
        self._closing = False

    # --- observing --------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def pid(self) -> int | None:
        """The engine process's id (None over TCP or when none runs)."""
        return self._conn.transport.pid if self._conn and not self._conn.lost else None

    @property
    def jobs(self) -> list[str]:
        """Ids of the jobs submitted and not finished, in the order they run."""
        return list(self._jobs)

    def on_state_changed(self, callback: StateCallback) -> Callable[[], None]:
        """Call `callback(old, new)` on every state change; returns the unsubscribe function."""
        self._state_callbacks.append(callback)
        return lambda: self._state_callbacks.remove(callback)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns the unsubscribe function."""
        self._event_callbacks.append(callback)
        return lambda: self._event_callbacks.remove(callback)

    def events(self) -> EventStream:
        """An async iterator over the events from now on; it ends when the client stops."""
        return EventStream(self)

    async def wait_for_state(self, *states: ConnectionState, timeout: float) -> ConnectionState:
        """Wait until the state is one of `states`; TimeoutError after `timeout` seconds."""
        if self._state in states:
            return self._state
        reached: asyncio.Future[ConnectionState] = asyncio.get_running_loop().create_future()

        def check(_old: ConnectionState, new: ConnectionState) -> None:
            if new in states and not reached.done():
                reached.set_result(new)

        unsubscribe = self.on_state_changed(check)
        try:
            return await asyncio.wait_for(reached, timeout)
        finally:
            unsubscribe()

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
        spec = _ProcessSpec(tuple(argv), env, str(cwd) if cwd is not None else None)
        return await self._start(spec)

    async def connect(self, host: str, port: int, token: str | None) -> HelloReply:
        """Connect to an engine serving TCP and say hello with its token."""
        return await self._start(_TcpSpec(host, port, token))

    async def restart(self) -> HelloReply:
        """Start again by hand (after the client gave up): close what is left, spawn/connect."""
        if self._spec is None:
            raise EngineClientError("closed", "the engine was never started")
        spec = self._spec
        await self._stop()
        return await self._start(spec)

    async def shutdown(self) -> Bye | None:
        """Ask the engine to stop (no restart follows); its `bye`, or None if it did not say it."""
        self._closing = True
        conn = self._conn
        if conn is None or conn.lost:
            return None
        conn.bye = asyncio.get_running_loop().create_future()
        try:
            await conn.transport.send(encode(Shutdown(id=self._request_id())))
            return await asyncio.wait_for(
                asyncio.shield(conn.bye), self.settings.shutdown_timeout_s
            )
        except (EngineClientError, TimeoutError) as error:
            log.warning("the engine did not say bye: %s", error or "timed out")
            return None

    async def close(self) -> None:
        """Shut the engine down (shutdown, then terminate, then kill) and stop; state STOPPED.

        Event streams end. The client may be started again (`spawn`, `connect`).
        """
        if self._state is ConnectionState.STOPPED:
            return
        await self._stop()
        for queue in self._streams:
            queue.put_nowait(_END)

    async def _stop(self) -> None:
        self._closing = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        for watchdog in list(self._watchdogs):
            watchdog.cancel()
        await self.shutdown()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.transport.close(self.settings.shutdown_timeout_s)
            if conn.reader is not None:
                conn.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.reader
        for job in list(self._jobs.values()):
            self._finish(job, Cancelled(job_id=job.id, reason="shutdown"))
        self._set_state(ConnectionState.STOPPED)

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- requests ---------------------------------------------------------------------------

    async def hello(self) -> HelloReply:
        """The current engine's handshake reply (each connection says hello once, on start)."""
        await self._wait_connected()
        assert self.hello_reply is not None
        return self.hello_reply

    async def list_models(self) -> ModelsReply:
        conn = await self._wait_connected()
        reply = await self._request(conn, ListModels(id=self._request_id()))
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
        conn = await self._wait_connected()
        request = ModelAction(
            id=self._request_id(),
            action=action,
            name=name,
            path=None if path is None else str(path),
            link=link,
        )
        timeout: float | None = None
        if action in ("import", "download"):
            timeout = math.inf  # as long as it takes; an engine that dies ends the wait
        elif action == "verify":
            timeout = self.settings.slow_request_timeout_s

        def progress(event: Event) -> None:
            if isinstance(event, ModelProgress) and event.request_id == request.id:
                assert on_progress is not None
                on_progress(event)

        unsubscribe = self.subscribe(progress) if on_progress is not None else None
        try:
            reply = await self._request(conn, request, timeout)
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
        conn = await self._wait_connected()
        request = Export(
            id=self._request_id(),
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
        reply = await self._request(conn, request, self.settings.slow_request_timeout_s)
        assert isinstance(reply, Exported)
        return reply

    async def restore(
        self,
        inputs: Iterable[str | Path],
        output_dir: str | Path,
        options: RestoreOptionsMessage | None = None,
    ) -> list[str]:
        """Submit one job per image file; their ids once the engine accepted them all.

        Give files, not folders or globs: a folder's images do become jobs (announced by
        `accepted` events), but `restore` waits for one per input and times out.
        """
        conn = await self._wait_connected()
        options = options or RestoreOptionsMessage()
        paths = dict.fromkeys(str(Path(path)) for path in inputs)  # the engine drops repeats
        jobs = [_Job(self._job_id(), path, str(output_dir), options) for path in paths]
        if not jobs:
            return []
        for job in jobs:
            self._jobs[job.id] = job
        self._update_busy()
        await self._submit(conn, jobs, announce=True)
        return [job.id for job in jobs]

    async def cancel(self, job_ids: Iterable[str] | None = None) -> None:
        """Drop queued jobs (None: all of them); the engine answers `cancelled` for each."""
        conn = await self._wait_connected()
        engine_ids: list[str] | None = None
        if job_ids is not None:
            jobs = [self._jobs.get(job_id) for job_id in job_ids]
            engine_ids = [job.engine_id for job in jobs if job is not None and job.engine_id]
            if not engine_ids:
                return
        await conn.transport.send(encode(Cancel(id=self._request_id(), job_ids=engine_ids)))

    async def interrupt(self, job_id: str | None = None) -> None:
        """Stop the running job (only if it is `job_id`); its engine is killed if it will not."""
        conn = await self._wait_connected()
        if job_id is None:
            job = next((j for j in self._jobs.values() if j.state == "running"), None)
        else:
            job = self._jobs.get(job_id)
        engine_id = job.engine_id if job is not None else None
        if job_id is not None and engine_id is None:
            log.info("not interrupting %s: it is not running in the engine", job_id)
            return
        await conn.transport.send(encode(Interrupt(id=self._request_id(), job_id=engine_id)))
        if job is not None and job.state == "running":
            watchdog = asyncio.create_task(self._watch_interrupt(conn, job))
            self._watchdogs.add(watchdog)
            watchdog.add_done_callback(self._watchdogs.discard)

    # --- internals: connection --------------------------------------------------------------

    def _request_id(self) -> str:
        return f"r{next(self._request_ids)}"

    def _job_id(self) -> str:
        return f"job-{next(self._job_ids)}"

    def _set_state(self, new: ConnectionState) -> None:
        old = self._state
        if new is old:
            return
        check_transition(old, new)
        self._state = new
        log.info("engine connection: %s -> %s", old.name, new.name)
        for callback in list(self._state_callbacks):
            try:
                callback(old, new)
            except Exception:
                log.exception("a state callback failed")

    def _update_busy(self) -> None:
        if self._state in CONNECTED:
            self._set_state(ConnectionState.BUSY if self._jobs else ConnectionState.READY)

    async def _wait_connected(self) -> _Connection:
        """The live connection, waiting through a restart; EngineClientError if there is none."""
        while self._state not in CONNECTED:
            if self._state is ConnectionState.STOPPED:
                raise EngineClientError("closed", "the engine is not running")
            if self._state is ConnectionState.LOST and self._recovery is None:
                raise self.error or EngineClientError("crashed", CRASH_MESSAGE)
            others = [state for state in ConnectionState if state is not self._state]
            try:
                await self.wait_for_state(*others, timeout=self.settings.start_timeout_s)
            except TimeoutError:
                raise EngineClientError("timeout", "the engine did not come back") from None
        assert self._conn is not None
        return self._conn

    async def _start(self, spec: _ProcessSpec | _TcpSpec) -> HelloReply:
        if self._state not in (ConnectionState.STOPPED, ConnectionState.LOST):
            raise RuntimeError(f"the engine is already {self._state.value}")
        self._spec = spec
        self._closing = False
        self.error = None
        self._restarts_in_row = 0
        self._set_state(ConnectionState.STARTING)
        try:
            await self._open()
        except EngineClientError as error:
            self.error = error
            self._set_state(ConnectionState.LOST)
            raise
        except BaseException:
            self._set_state(ConnectionState.STOPPED)
            raise
        self._set_state(ConnectionState.READY)
        assert self.hello_reply is not None
        return self.hello_reply

    async def _open(self) -> None:
        """Start or connect to an engine and shake hands; it becomes `self._conn`."""
        spec = self._spec
        if isinstance(spec, _ProcessSpec):
            transport: Transport = await ProcessTransport.spawn(
                spec.argv, self.engine_log, spec.env, spec.cwd
            )
            token = None
        else:
            assert spec is not None
            transport = await TcpTransport.connect(
                spec.host, spec.port, self.settings.request_timeout_s
            )
            token = spec.token
        conn = _Connection(transport)
        self._conn = conn
        conn.reader = asyncio.create_task(self._read(conn))
        hello = Hello(id=self._request_id(), token=token, client=self.settings.client_name)
        try:
            reply = await self._request(conn, hello, self.settings.start_timeout_s)
            assert isinstance(reply, HelloReply)
            if reply.protocol != PROTOCOL_VERSION:
                raise EngineClientError(
                    "version",
                    f"the engine speaks protocol {reply.protocol}, this app {PROTOCOL_VERSION}",
                )
            if conn.lost:
                raise EngineClientError("start_failed", "the engine stopped right after starting")
        except BaseException:
            conn.lost = True
            transport.kill()
            await transport.close(1.0)
            raise
        conn.established = True
        conn.connected_at = asyncio.get_running_loop().time()
        self.hello_reply = reply
        log.info(
            "engine %s ready on %s (protocol %d)",
            reply.engine_version,
            reply.device,
            reply.protocol,
        )

    async def _request(
        self, conn: _Connection, request: Request, timeout: float | None = None
    ) -> Event:
        """Send `request` and wait for the event answering it; an `error` answer is raised."""
        timeout = self.settings.request_timeout_s if timeout is None else timeout
        reply: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        conn.pending[request.id] = reply
        try:
            await conn.transport.send(encode(request))
            answer = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise EngineClientError(
                "timeout", f"the engine did not answer '{request.TYPE}' within {timeout:g} s"
            ) from None
        finally:
            conn.pending.pop(request.id, None)
        if isinstance(answer, Error):
            raise EngineClientError(answer.kind, answer.message, answer.hint)
        return answer

    async def _submit(self, conn: _Connection, jobs: list[_Job], announce: bool) -> None:
        """Send `restore` requests for `jobs` (one per run of equal settings) and await `accepted`.

        A new submission raises what went wrong; a submission again after a restart reports
        refused jobs as failed and goes on with the others, unless the engine died again.
        """
        for _, group in itertools.groupby(jobs, key=lambda job: (job.output_dir, job.options)):
            batch = list(group)
            request = Restore(
                id=self._request_id(),
                inputs=[job.input for job in batch],
                output_dir=batch[0].output_dir,
                options=batch[0].options,
            )
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            conn.submissions[request.id] = _Submission(batch, future, announce)
            for job in batch:
                job.state = "submitted"
            try:
                self._check_engine_takes(request.options)
                await conn.transport.send(encode(request))
                await asyncio.wait_for(asyncio.shield(future), self.settings.request_timeout_s)
                continue
            except TimeoutError:
                error = EngineClientError("timeout", "the engine did not accept the photos in time")
            except EngineClientError as refused:
                error = refused
            self._fail_submission(conn, request.id, error)
            if announce or conn.lost:
                raise error
            log.warning("could not submit %d job(s) again: %s", len(batch), error)

    def _check_engine_takes(self, options: RestoreOptionsMessage) -> None:
        """Refuse options the current engine is too old to read (docs/protocol.md,
        "Versioning"); left at their defaults they are not sent at all, so any engine takes them."""
        reply = self.hello_reply
        unsupported = unsupported_options(options, reply.capabilities if reply else ())
        if unsupported:
            names = ", ".join(unsupported)
            raise EngineClientError(
                "bad_setting",
                f"the engine ({reply.engine_version if reply else 'unknown'}) is older than this "
                f"app and cannot apply {names}",
                f"update the engine, or put {names} back to its default",
            )

    def _fail_submission(
        self, conn: _Connection, request_id: str, error: EngineClientError
    ) -> None:
        """The engine will not accept the rest of a submission: drop or report its jobs."""
        submission = conn.submissions.pop(request_id, None)
        if submission is None:
            return
        if not submission.future.done():
            submission.future.set_exception(error)
            submission.future.exception()  # its submitter may have stopped waiting: no warning
        for job in submission.jobs:
            if job.engine_id is not None:
                continue
            if submission.announce:
                self._jobs.pop(job.id, None)  # restore() raises: its caller is told
            elif error.kind in ("crashed", "connection"):
                job.state = "queued"  # the next restart submits it again
            else:
                self._finish(job, Error(job_id=job.id, kind="internal", message=str(error)))
        self._update_busy()

    async def _watch_interrupt(self, conn: _Connection, job: _Job) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), self.settings.interrupt_timeout_s)
            return
        if conn is self._conn and not conn.lost and job.state == "running":
            log.warning(
                "the engine did not stop %s within %g s of interrupt; killing it",
                job.id,
                self.settings.interrupt_timeout_s,
            )
            job.interrupted = True
            conn.transport.kill()

    # --- internals: events ------------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        try:
            while (line := await conn.transport.read_line()) is not None:
                try:
                    event = decode(line, EVENTS)
                except ProtocolError as error:
                    log.warning("ignored a line from the engine: %s", error)
                    continue
                try:
                    self._on_event(conn, event)
                except Exception:
                    log.exception("handling %s failed", event.TYPE)
        finally:
            self._on_lost(conn)

    def _on_lost(self, conn: _Connection) -> None:
        conn.lost = True
        last = conn.last_error
        if self._closing:
            lost = EngineClientError("closed", "the engine connection was closed")
        elif last is not None:  # the engine said why before it closed (e.g. another client)
            lost = EngineClientError(last.kind, last.message, last.hint)
        else:
            lost = EngineClientError("crashed", CRASH_MESSAGE)
        for future in conn.pending.values():
            if not future.done():
                future.set_exception(lost)
        for request_id in list(conn.submissions):
            self._fail_submission(conn, request_id, lost)
        if conn.established and conn is self._conn and not self._closing and self._recovery is None:
            self._recovery = asyncio.create_task(self._recover(conn))

    def _on_event(self, conn: _Connection, event: Event) -> None:
        request_id = event.request_id
        submission = conn.submissions.get(request_id) if request_id else None
        if submission is not None:
            if isinstance(event, Accepted):
                self._on_accepted(conn, submission, event)
                return
            elif isinstance(event, Error) and event.job_id is None:
                error = EngineClientError(event.kind, event.message, event.hint)
                self._fail_submission(conn, request_id, error)
        elif request_id in conn.pending and isinstance(
            event, HelloReply | ModelsReply | ModelDone | Exported | Error
        ):
            future = conn.pending[request_id]
            if not future.done():
                future.set_result(event)
        elif isinstance(event, Error) and event.job_id is None:
            log.warning("the engine reported: %s (%s)", event.message, event.kind)
            conn.last_error = event
        if isinstance(event, Bye) and conn.bye is not None and not conn.bye.done():
            conn.bye.set_result(event)

        job = conn.engine_jobs.get(getattr(event, "job_id", None) or "")
        if job is not None:
            event = dataclasses.replace(event, job_id=job.id)  # type: ignore[call-arg]
            if isinstance(event, Started):
                job.state = "running"
            elif isinstance(event, Result | Cancelled | Error):
                conn.engine_jobs.pop(job.engine_id or "", None)
                self._restarts_in_row = 0
                self._finish(job, event)
                self._update_busy()
                return
        self._dispatch(event)

    def _on_accepted(self, conn: _Connection, submission: _Submission, event: Accepted) -> None:
        # Matched by path: the engine queues missing files last. A path it did not get from us
        # (a folder's or a glob's file) becomes a job of its own, announced like the others.
        waiting = [job for job in submission.jobs if job.engine_id is None]
        job = next((j for j in waiting if j.input == event.input), None)
        if job is None:
            first = submission.jobs[0]
            job = _Job(self._job_id(), event.input, first.output_dir, first.options)
            self._jobs[job.id] = job
            log.info("the engine added %s for %s", job.id, event.input)
        elif len(waiting) == 1 and not submission.future.done():
            submission.future.set_result(None)
            conn.submissions.pop(event.request_id or "", None)
        job.engine_id = event.job_id
        if job.state == "submitted":
            job.state = "queued"
        conn.engine_jobs[event.job_id] = job
        if submission.announce:
            self._dispatch(dataclasses.replace(event, job_id=job.id))

    def _finish(self, job: _Job, event: Event) -> None:
        self._jobs.pop(job.id, None)
        job.done.set()
        self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        for queue in self._streams:
            queue.put_nowait(event)
        for callback in list(self._event_callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("an event callback failed on %s", event.TYPE)

    # --- internals: losing and restarting the engine ----------------------------------------

    async def _recover(self, conn: _Connection) -> None:
        """The engine died: report its jobs, restart it, submit the queued jobs again."""
        try:
            while conn is not None:
                await self._lose(conn)
                conn = await self._restart()
                if conn is None:
                    return
                queued = [job for job in self._jobs.values() if job.state == "queued"]
                with contextlib.suppress(EngineClientError):
                    await self._submit(conn, queued, announce=False)
                if not conn.lost:
                    self._set_state(ConnectionState.BUSY if self._jobs else ConnectionState.READY)
                    return
        finally:
            self._recovery = None

    async def _lose(self, conn: _Connection) -> None:
        code = await conn.transport.close(1.0)
        log.warning("the %s stopped unexpectedly (exit code %s)", conn.transport.description, code)
        if asyncio.get_running_loop().time() - conn.connected_at >= self.settings.stable_s:
            self._restarts_in_row = 0
        if self._restarts_in_row >= self.settings.max_restarts:
            self.error = EngineClientError(
                "crashed",
                f"the engine stopped {self._restarts_in_row + 1} times in a row and was not "
                "restarted again",
            )
        self._set_state(ConnectionState.LOST)
        for job in list(self._jobs.values()):
            if job.state != "running":
                job.state, job.engine_id = "queued", None
            elif job.interrupted:
                self._finish(job, Cancelled(job_id=job.id, reason="interrupt"))
            elif self.settings.requeue_on_crash and not job.requeued:
                job.state, job.engine_id, job.requeued = "queued", None, True
                message = f"{CRASH_MESSAGE} while restoring this photo; it is restored once more"
                self._dispatch(EngineWarning(job_id=job.id, message=message))
            else:
                error = Error(
                    job_id=job.id, kind="internal", message=CRASH_MESSAGE, hint=CRASH_HINT
                )
                self._finish(job, error)
        if self.error is not None:
            self._give_up(self.error)

    async def _restart(self) -> _Connection | None:
        """A new engine (with backoff between tries), or None when giving up."""
        while self.error is None:
            delay = self.settings.restart_backoff_s * 2**self._restarts_in_row
            await asyncio.sleep(min(delay, _MAX_BACKOFF_S))
            self._restarts_in_row += 1
            self._set_state(ConnectionState.RESTARTING)
            try:
                await self._open()
            except EngineClientError as error:
                log.warning("restart %d failed: %s", self._restarts_in_row, error)
                if error.kind in ("version", "unauthorized"):
                    self.error = error
                elif self._restarts_in_row >= self.settings.max_restarts:
                    self.error = EngineClientError(
                        "crashed",
                        f"the engine could not be restarted ({self._restarts_in_row} tries): "
                        f"{error.message}",
                    )
                self._set_state(ConnectionState.LOST)
                if self.error is not None:
                    self._give_up(self.error)
                continue
            assert self._conn is not None
            return self._conn
        return None

    def _give_up(self, error: EngineClientError) -> None:
        log.error("giving up on the engine: %s", error)
        for job in list(self._jobs.values()):
            self._finish(
                job,
                Error(job_id=job.id, kind="internal", message=error.message, hint=error.hint),
            )
