"""One client connection of the engine: JSON lines in, events out, in order.

Over stdio the parent process is trusted: it may send `hello` (and everything else) at will.
Over TCP a connection must first prove itself (`authenticate`): its first line must be a
`hello` with the right token, checked before anything else (the protocol version included),
within `HELLO_TIMEOUT_S`; anything else is answered once and the connection closed. Only an
authenticated connection may take the engine's one client slot, so nobody without the token
can keep the real client out. Requests are decoded and type-checked by `engine.protocol`; a
request that still trips a bug is answered with an `internal` error and the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine import protocol as p
from engine.path_policy import PathPolicy

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
HELLO_TIMEOUT_S = 10.0
"""A TCP connection that has not sent a valid `hello` by then is closed."""
OVERSIZED = object()
"""Yielded by `read_lines` in place of a line over the size limit (already discarded)."""
FORMAT_HINT = "one JSON object per line with a known `type` and fields; see docs/protocol.md"


async def read_lines(reader: asyncio.StreamReader, limit: int = p.MAX_MESSAGE_BYTES):
    """Lines without their newline; a line longer than `limit` (newline included) is
    skipped up to its newline and yielded as OVERSIZED, without ever being held whole."""
    buffer = bytearray()
    discarding = False
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            if buffer.strip() and not discarding:
                yield bytes(buffer)
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not discarding:
                    buffer += chunk[start:]
                    if len(buffer) >= limit:
                        discarding = True
                        buffer.clear()
                break
            if discarding:
                discarding = False
                yield OVERSIZED
            else:
                buffer += chunk[start:end]
                yield OVERSIZED if len(buffer) >= limit else bytes(buffer)
            buffer.clear()
            start = end + 1


class Engine(Protocol):
    """What a connection needs of the engine that serves it (`engine.server.EngineServer`)."""

    token: str

    async def hello_reply(self, request_id: str) -> p.HelloReply: ...

    async def dispatch(self, client: Connection, request: p.Request) -> None: ...


class Connection:
    """One client: reads requests, answers them, and sends the events of its jobs in order."""

    def __init__(
        self,
        engine: Engine,
        reader: asyncio.StreamReader,
        write: Callable[[bytes], Awaitable[None]],
        *,
        needs_token: bool,
        name: str,
        paths: PathPolicy,
    ) -> None:
        self.engine = engine
        self.paths = paths
        """The paths this client may name in its requests."""
        self.lines = read_lines(reader)
        self.write = write
        self.needs_token = needs_token
        self.name = name
        self.greeted = False
        self.jobs: set[str] = set()
        self.outbox: asyncio.Queue[p.Event | None] = asyncio.Queue()
        self.closing = False

    def send(self, event: p.Event) -> None:
        self.outbox.put_nowait(event)

    # ------------------------------------------------------------------ TCP handshake

    async def authenticate(self) -> p.Hello | None:
        """The first line, if it is a `hello` with the right token and our protocol version;
        otherwise it is answered with one error and None is returned (close the connection).
        Call it under a timeout; it writes directly (the sender does not run yet)."""
        line = await anext(self.lines, None)
        if line is None or line is OVERSIZED:
            return None
        try:
            request = p.decode(line, p.REQUESTS)
        except p.ProtocolError as error:
            await self._refuse(p.Error(kind=error.kind, message=str(error), hint=FORMAT_HINT))
            return None
        if not isinstance(request, p.Hello):
            await self._refuse(_before_hello(request))
            return None
        if not self._token_ok(request):
            logger.warning("%s: hello with a wrong or missing token; closing", self.name)
            await self._refuse(_unauthorized(request))
            return None
        if request.protocol != p.PROTOCOL_VERSION:
            await self._refuse(_wrong_version(request))
            return None
        return request

    async def _refuse(self, error: p.Error) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.write(p.encode(error))

    def _token_ok(self, request: p.Hello) -> bool:
        return isinstance(request.token, str) and hmac.compare_digest(
            request.token.encode(), self.engine.token.encode()
        )

    # ------------------------------------------------------------------ serving

    async def serve(self, greeting: p.Hello | None = None) -> None:
        """Answer requests until the client leaves (or asks to stop); `greeting` is a `hello`
        that `authenticate` already read."""
        sender = asyncio.create_task(self._sender())
        try:
            if greeting is not None:
                await self.hello(greeting)
            async for line in self.lines:
                if line is OVERSIZED:
                    self.send(
                        p.Error(
                            kind="protocol",
                            message=f"message over {p.MAX_MESSAGE_BYTES} bytes discarded",
                            hint="send image paths, never image data; keep each line under "
                            "the limit",
                        )
                    )
                elif line.strip():
                    await self.handle(line)
                if self.closing:
                    break
        finally:
            self.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender

    async def _sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            try:
                line = p.encode(event)
            except p.ProtocolError as error:
                logger.error("could not encode %s: %s", event.TYPE, error)
                line = p.encode(p.Error(message=f"an answer could not be sent: {error}"))
            try:
                await self.write(line)
            except (ConnectionError, BrokenPipeError, OSError):
                logger.info("%s: connection lost while sending", self.name)
                return

    async def handle(self, line: bytes) -> None:
        try:
            request = p.decode(line, p.REQUESTS)
        except p.ProtocolError as error:
            self.send(
                p.Error(
                    request_id=_request_id(line),
                    kind=error.kind,
                    message=str(error),
                    hint=FORMAT_HINT,
                )
            )
            return
        if isinstance(request, p.Hello):
            await self.hello(request)
        elif not self.greeted:
            self.send(_before_hello(request))
        else:
            try:
                await self.engine.dispatch(self, request)
            except Exception as error:  # a bug: answer it, keep the connection and its jobs
                logger.exception("%s %s failed", request.TYPE, request.id)
                self.send(
                    p.Error(
                        request_id=request.id,
                        message=f"internal error: {type(error).__name__}: {error}",
                        hint="this is a bug: the engine log has the details; please report it",
                    )
                )

    async def hello(self, request: p.Hello) -> None:
        if self.needs_token and not self._token_ok(request):
            logger.warning("%s: hello with a wrong or missing token; closing", self.name)
            self.send(_unauthorized(request))
            self.closing = True
            return
        if request.protocol != p.PROTOCOL_VERSION:
            self.send(_wrong_version(request))
            self.closing = self.needs_token
            return
        self.greeted = True
        logger.info("%s: hello from %s", self.name, request.client or "an unnamed client")
        self.send(await self.engine.hello_reply(request.id))


def _before_hello(request: p.Request) -> p.Error:
    return p.Error(
        request_id=request.id,
        kind="protocol",
        message=f"{request.TYPE} before hello",
        hint="send hello first on every connection",
    )


def _unauthorized(request: p.Hello) -> p.Error:
    return p.Error(
        request_id=request.id,
        kind="unauthorized",
        message="wrong or missing token",
        hint="pass the token the engine printed when it started (or its --token)",
    )


def _wrong_version(request: p.Hello) -> p.Error:
    return p.Error(
        request_id=request.id,
        kind="version",
        message=f"client speaks protocol {request.protocol!r}, "
        f"this engine speaks {p.PROTOCOL_VERSION}",
        hint="update the client or the engine so that both are the same release",
    )


def _request_id(line: bytes) -> str | None:
    """The `id` of a line that is JSON but not a valid request, to answer it by name (an id
    too long to echo is not echoed)."""
    try:
        payload = json.loads(line)
    except ValueError:
        return None
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and len(value) <= p.MAX_ID_CHARS else None
