"""`EngineSupervisor`: keep one engine alive, and say how it is (`ConnectionState`).

It starts the engine (`start`, from an `EngineSpec`) and stops it (`stop`: shutdown, then
terminate, then kill). When the engine dies it tells the job table, restarts it (with backoff,
at most `max_restarts` times in a row) and hands it the jobs that were waiting; when it gives
up, the jobs left fail. A running job that does not stop within `interrupt_timeout_s` of an
interrupt gets its engine killed (`watch_interrupt`), and is reported as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

from desktop.client.connection import EngineConnection, EngineSpec
from desktop.client.connection_state import (
    CONNECTED,
    CRASH_MESSAGE,
    ConnectionState,
    EngineClientError,
    check_transition,
)
from desktop.client.job_table import Job, JobTable
from desktop.client.settings import ClientSettings
from desktop.client.transport import EngineLog
from engine.protocol import Bye, Cancelled, Error, Event, HelloReply

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 8.0

StateCallback = Callable[[ConnectionState, ConnectionState], None]


class EngineSupervisor:
    """One engine, started once and restarted as needed. See the module doc.

    `on_event(conn, event)` gets every event of every engine it starts.
    """

    def __init__(
        self,
        settings: ClientSettings,
        engine_log: EngineLog,
        jobs: JobTable,
        on_event: Callable[[EngineConnection, Event], None],
    ) -> None:
        self.settings = settings
        self.engine_log = engine_log
        self.connection: EngineConnection | None = None
        """The current engine (lost, between a loss and a restart)."""
        self.hello_reply: HelloReply | None = None
        """What the latest engine said in its handshake."""
        self.error: EngineClientError | None = None
        """Why it gave up (state LOST and no restart coming); None otherwise."""
        self._jobs = jobs
        self._on_event = on_event
        self._state = ConnectionState.STOPPED
        self._state_callbacks: list[StateCallback] = []
        self._spec: EngineSpec | None = None
        self._request_ids = itertools.count(1)
        self._restarts_in_row = 0
        self._recovery: asyncio.Task[None] | None = None
        self._watchdogs: set[asyncio.Task[None]] = set()
        self._closing = False

    # --- the state --------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def on_state_changed(self, callback: StateCallback) -> Callable[[], None]:
        """Call `callback(old, new)` on every state change; returns the unsubscribe function."""
        self._state_callbacks.append(callback)
        return lambda: self._state_callbacks.remove(callback)

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

    def update_busy(self) -> None:
        """BUSY while the job table holds jobs, else READY (when connected)."""
        if self._state in CONNECTED:
            self._set_state(ConnectionState.BUSY if self._jobs else ConnectionState.READY)

    async def connected(self) -> EngineConnection:
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
        assert self.connection is not None
        return self.connection

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

    # --- starting and stopping --------------------------------------------------------------

    async def start(self, spec: EngineSpec) -> HelloReply:
        """Start (or connect to) the engine `spec` names and say hello."""
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

    async def restart(self) -> HelloReply:
        """Start again by hand (after giving up): close what is left, start the same engine."""
        if self._spec is None:
            raise EngineClientError("closed", "the engine was never started")
        spec = self._spec
        await self.stop()
        return await self.start(spec)

    async def shutdown(self) -> Bye | None:
        """Ask the engine to stop (no restart follows); its `bye`, or None if it did not say it."""
        self._closing = True
        conn = self.connection
        if conn is None:
            return None
        return await conn.shutdown(self.settings.shutdown_timeout_s)

    async def stop(self) -> None:
        """Shut the engine down for sure; the jobs left are cancelled; state STOPPED."""
        self._closing = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        for watchdog in list(self._watchdogs):
            watchdog.cancel()
        await self.shutdown()
        conn, self.connection = self.connection, None
        if conn is not None:
            await conn.close(self.settings.shutdown_timeout_s)
            await conn.stop_reading()
        self._jobs.end_all(lambda job: Cancelled(job_id=job.id, reason="shutdown"))
        self._set_state(ConnectionState.STOPPED)

    async def _open(self) -> None:
        assert self._spec is not None
        self.connection = await EngineConnection.open(
            self._spec,
            self.settings,
            self.engine_log,
            self._request_ids,
            self._on_event,
            self._connection_ended,
        )
        self.hello_reply = self.connection.hello_reply

    # --- a hung interrupt -------------------------------------------------------------------

    def watch_interrupt(self, conn: EngineConnection, job: Job) -> None:
        """Kill `conn`'s engine unless `job` ends within `interrupt_timeout_s`."""
        watchdog = asyncio.create_task(self._watch_interrupt(conn, job))
        self._watchdogs.add(watchdog)
        watchdog.add_done_callback(self._watchdogs.discard)

    async def _watch_interrupt(self, conn: EngineConnection, job: Job) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), self.settings.interrupt_timeout_s)
            return
        if conn is self.connection and not conn.lost and job.state == "running":
            log.warning(
                "the engine did not stop %s within %g s of interrupt; killing it",
                job.id,
                self.settings.interrupt_timeout_s,
            )
            job.interrupted = True
            conn.kill()

    # --- losing and restarting the engine ---------------------------------------------------

    def _connection_ended(self, conn: EngineConnection) -> None:
        last = conn.last_error
        if self._closing:
            lost = EngineClientError("closed", "the engine connection was closed")
        elif last is not None:  # the engine said why before it closed (e.g. another client)
            lost = EngineClientError(last.kind, last.message, last.hint)
        else:
            lost = EngineClientError("crashed", CRASH_MESSAGE)
        conn.fail_pending(lost)
        self._jobs.connection_lost(conn, lost)
        if (
            conn.established
            and conn is self.connection
            and not self._closing
            and self._recovery is None
        ):
            self._recovery = asyncio.create_task(self._recover(conn))

    async def _recover(self, conn: EngineConnection | None) -> None:
        """The engine died: settle its jobs, restart it, submit the queued jobs again."""
        try:
            while conn is not None:
                await self._lose(conn)
                conn = await self._restart()
                if conn is None:
                    return
                with contextlib.suppress(EngineClientError):
                    await self._jobs.submit(
                        conn,
                        self._jobs.queued(),
                        announce=False,
                        timeout=self.settings.request_timeout_s,
                    )
                if not conn.lost:
                    self._set_state(ConnectionState.BUSY if self._jobs else ConnectionState.READY)
                    return
        finally:
            self._recovery = None

    async def _lose(self, conn: EngineConnection) -> None:
        code = await conn.close(1.0)
        log.warning("the %s stopped unexpectedly (exit code %s)", conn.description, code)
        uptime = asyncio.get_running_loop().time() - conn.connected_at
        if self._jobs.ended_in(conn) or uptime >= self.settings.stable_s:
            self._restarts_in_row = 0  # it was working: a fresh count of restarts in a row
        if self._restarts_in_row >= self.settings.max_restarts:
            self.error = EngineClientError(
                "crashed",
                f"the engine stopped {self._restarts_in_row + 1} times in a row and was not "
                "restarted again",
            )
        self._set_state(ConnectionState.LOST)
        self._jobs.engine_lost(self.settings.requeue_on_crash)
        if self.error is not None:
            self._give_up(self.error)

    async def _restart(self) -> EngineConnection | None:
        """A new engine (with backoff between tries), or None when giving up."""
        while self.error is None:
            delay = self.settings.restart_backoff_s * 2**self._restarts_in_row
            await asyncio.sleep(min(delay, MAX_BACKOFF_S))
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
            assert self.connection is not None
            return self.connection
        return None

    def _give_up(self, error: EngineClientError) -> None:
        log.error("giving up on the engine: %s", error)
        self._jobs.end_all(
            lambda job: Error(
                job_id=job.id, kind="internal", message=error.message, hint=error.hint
            )
        )
