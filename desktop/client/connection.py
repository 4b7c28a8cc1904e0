"""`EngineConnection`: one connection to one engine, from `hello` until its stream ends.

It starts the engine process (or connects over TCP), shakes hands, sends requests, matches the
answers to the requests waiting for them, and reads every event, which it hands on (answers
included) to its owner's `on_event`. When the stream ends it says so once (`on_end`). It knows
nothing of jobs or restarts: the job table and the supervisor do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from desktop.client.connection_state import EngineClientError
from desktop.client.settings import ClientSettings
from desktop.client.transport import EngineLog, ProcessTransport, TcpTransport, Transport
from engine.protocol import (
    EVENTS,
    PROTOCOL_VERSION,
    Bye,
    Error,
    Event,
    Exported,
    Hello,
    HelloReply,
    ModelDone,
    ModelsReply,
    ProtocolError,
    Request,
    Shutdown,
    decode,
    encode,
)

log = logging.getLogger(__name__)

ANSWERS = (HelloReply, ModelsReply, ModelDone, Exported, Error)
"""The events that answer a request (matched by its id)."""


@dataclass(frozen=True)
class ProcessSpec:
    """An engine child process speaking on stdio."""

    argv: tuple[str, ...]
    env: Mapping[str, str] | None
    cwd: str | None


@dataclass(frozen=True)
class TcpSpec:
    """An engine started on its own, serving TCP."""

    host: str
    port: int
    token: str | None


EngineSpec = ProcessSpec | TcpSpec
"""Where an engine comes from: what a restart starts again."""


class EngineConnection:
    """One engine. `open` it; `request`/`send`; `shutdown`; `close`. See the module doc."""

    def __init__(
        self,
        transport: Transport,
        request_ids: Iterator[int],
        on_event: Callable[[EngineConnection, Event], None],
        on_end: Callable[[EngineConnection], None],
    ) -> None:
        self.transport = transport
        self.hello_reply: HelloReply | None = None
        """What this engine said in its handshake: version, device, capabilities."""
        self.pending: dict[str, asyncio.Future[Event]] = {}
        """Requests waiting for their answer, by request id."""
        self.established = False
        """The handshake succeeded: losing it now means losing a working engine."""
        self.lost = False
        """Its stream ended (or the handshake failed): nothing more comes from it."""
        self.last_error: Error | None = None
        """The last `error` answering nothing we asked (e.g. "another client is connected"),
        set by the owner: why the engine went away, if it said so."""
        self.connected_at = 0.0
        self._bye: asyncio.Future[Bye] | None = None
        self._request_ids = request_ids
        self._on_event = on_event
        self._on_end = on_end
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        spec: EngineSpec,
        settings: ClientSettings,
        engine_log: EngineLog,
        request_ids: Iterator[int],
        on_event: Callable[[EngineConnection, Event], None],
        on_end: Callable[[EngineConnection], None],
    ) -> EngineConnection:
        """Start or connect to an engine and shake hands; EngineClientError if that fails."""
        if isinstance(spec, ProcessSpec):
            transport: Transport = await ProcessTransport.spawn(
                spec.argv, engine_log, spec.env, spec.cwd
            )
            token = None
        else:
            transport = await TcpTransport.connect(spec.host, spec.port, settings.request_timeout_s)
            token = spec.token
        conn = cls(transport, request_ids, on_event, on_end)
        hello = Hello(id=conn.new_request_id(), token=token, client=settings.client_name)
        try:
            reply = await conn.request(hello, settings.start_timeout_s)
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
            await conn.stop_reading()
            raise
        conn.established = True
        conn.connected_at = asyncio.get_running_loop().time()
        conn.hello_reply = reply
        log.info(
            "engine %s ready on %s (protocol %d)",
            reply.engine_version,
            reply.device,
            reply.protocol,
        )
        return conn

    @property
    def pid(self) -> int | None:
        """The engine process's id (None over TCP or once lost)."""
        return None if self.lost else self.transport.pid

    @property
    def description(self) -> str:
        return self.transport.description

    def new_request_id(self) -> str:
        return f"r{next(self._request_ids)}"

    async def send(self, request: Request) -> None:
        """Send `request` without waiting for anything; EngineClientError if it cannot go."""
        await self.transport.send(encode(request))

    async def request(self, request: Request, timeout: float | None) -> Event:
        """Send `request` and wait for the event answering it (`timeout` None: however long it
        takes); an `error` answer is raised."""
        reply: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self.pending[request.id] = reply
        try:
            await self.send(request)
            answer = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise EngineClientError(
                "timeout", f"the engine did not answer '{request.TYPE}' within {timeout:g} s"
            ) from None
        finally:
            self.pending.pop(request.id, None)
        if isinstance(answer, Error):
            raise EngineClientError(answer.kind, answer.message, answer.hint)
        return answer

    async def shutdown(self, timeout: float) -> Bye | None:
        """Ask the engine to stop; its `bye`, or None if it did not say it in time."""
        if self.lost:
            return None
        self._bye = asyncio.get_running_loop().create_future()
        try:
            await self.send(Shutdown(id=self.new_request_id()))
            return await asyncio.wait_for(asyncio.shield(self._bye), timeout)
        except (EngineClientError, TimeoutError) as error:
            log.warning("the engine did not say bye: %s", error or "timed out")
            return None

    def kill(self) -> None:
        """Stop the engine now (a process is killed; a connection is dropped)."""
        self.transport.kill()

    async def close(self, grace_s: float) -> int | None:
        """End the connection (`Transport.close`); the exit code when known."""
        return await self.transport.close(grace_s)

    async def stop_reading(self) -> None:
        """Stop the reader now (after `close`), whatever is left unread."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def fail_pending(self, error: EngineClientError) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(error)

    async def _read(self) -> None:
        try:
            while (line := await self.transport.read_line()) is not None:
                try:
                    event = decode(line, EVENTS)
                except ProtocolError as error:
                    log.warning("ignored a line from the engine: %s", error)
                    continue
                try:
                    self._answer(event)
                    self._on_event(self, event)
                except Exception:
                    log.exception("handling %s failed", event.TYPE)
        finally:
            self.lost = True
            self._on_end(self)

    def _answer(self, event: Event) -> None:
        """Hand an answer to the request waiting for it (it goes on to `on_event` too)."""
        waiting = self.pending.get(event.request_id or "")
        if waiting is not None and isinstance(event, ANSWERS) and not waiting.done():
            waiting.set_result(event)
        if isinstance(event, Bye) and self._bye is not None and not self._bye.done():
            self._bye.set_result(event)
