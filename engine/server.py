"""The engine process: JSON-lines requests in, events out, over stdio or TCP (docs/protocol.md).

asyncio owns the connection; the `JobRunner`'s worker thread owns the device and posts its
events into the loop with `call_soon_threadsafe`. One client at a time: over stdio that is
the parent process (end of input shuts the engine down); over TCP a second client is told
so and closed, and a client that leaves has its jobs cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine import protocol as p
from engine.errors import EngineError, error_event
from engine.jobs.restore import RestoreJobs
from engine.model_service import ModelService
from engine.runner import JobRunner

logger = logging.getLogger(__name__)

CAPABILITIES = [
    "restore",
    "models",
    "cancel",
    "interrupt",
    "model_action",
    "export",
    *p.ADDED_OPTIONS,
]
"""What `hello_reply` lists: optional requests and the restore options added within version 1."""
READ_CHUNK = 1 << 16
OVERSIZED = object()
"""Yielded by `read_lines` in place of a line over the size limit (already discarded)."""


@dataclass
class ServeConfig:
    stdio: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    """Required in `hello` over TCP; a random one is made (and printed) when None."""
    allow_remote: bool = False
    """Bind a non-loopback host; only when the user named it with --host."""
    store_root: str | None = None


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dreamclear-studio")
    except PackageNotFoundError:
        return "unknown"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def device_facts() -> tuple[str, list[dict[str, Any]]]:
    """The device jobs run on by default (for `hello`) and every device (for `models`)."""
    import psutil
    import torch

    memory = psutil.virtual_memory()
    devices: list[dict[str, Any]] = [
        {
            "name": "cpu",
            "kind": "cpu",
            "total_memory_bytes": int(memory.total),
            "free_memory_bytes": int(memory.available),
        }
    ]
    default = "cpu"
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            devices.append(
                {
                    "name": f"cuda:{index}",
                    "kind": "cuda",
                    "title": props.name,
                    "total_memory_bytes": int(total),
                    "free_memory_bytes": int(free),
                }
            )
        first = devices[1]
        default = f"cuda:0 ({first['title']}, {first['total_memory_bytes'] / 1e9:.0f} GB)"
    return default, devices


class Connection:
    """One client: reads requests, answers them, and sends the events of its jobs in order."""

    def __init__(
        self,
        engine: EngineServer,
        reader: asyncio.StreamReader,
        write: Callable[[bytes], Awaitable[None]],
        *,
        needs_token: bool,
        name: str,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.write = write
        self.needs_token = needs_token
        self.name = name
        self.greeted = False
        self.jobs: set[str] = set()
        self.outbox: asyncio.Queue[p.Event | None] = asyncio.Queue()
        self.closing = False

    def send(self, event: p.Event) -> None:
        self.outbox.put_nowait(event)

    async def _sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            try:
                line = p.encode(event)
            except p.ProtocolError as error:
                logger.error("could not encode %s: %s", event.TYPE, error)
                line = p.encode(p.Error(request_id=event.request_id, message=str(error)))
            try:
                await self.write(line)
            except (ConnectionError, BrokenPipeError, OSError):
                logger.info("%s: connection lost while sending", self.name)
                return

    async def serve(self) -> None:
        sender = asyncio.create_task(self._sender())
        try:
            async for line in read_lines(self.reader):
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

    async def handle(self, line: bytes) -> None:
        try:
            request = p.decode(line, p.REQUESTS)
        except p.ProtocolError as error:
            self.send(
                p.Error(
                    request_id=_request_id(line),
                    kind=error.kind,
                    message=str(error),
                    hint="one JSON object per line with a known `type`; see docs/protocol.md",
                )
            )
            return
        if isinstance(request, p.Hello):
            await self.hello(request)
        elif not self.greeted:
            self.send(
                p.Error(
                    request_id=request.id,
                    kind="protocol",
                    message=f"{request.TYPE} before hello",
                    hint="send hello first on every connection",
                )
            )
        else:
            await self.engine.dispatch(self, request)

    async def hello(self, request: p.Hello) -> None:
        if request.protocol != p.PROTOCOL_VERSION:
            self.send(
                p.Error(
                    request_id=request.id,
                    kind="version",
                    message=f"client speaks protocol {request.protocol!r}, "
                    f"this engine speaks {p.PROTOCOL_VERSION}",
                    hint="update the client or the engine so that both are the same release",
                )
            )
            return
        if self.needs_token and not (
            isinstance(request.token, str)
            and hmac.compare_digest(request.token.encode(), self.engine.token.encode())
        ):
            logger.warning("%s: hello with a wrong or missing token; closing", self.name)
            self.send(
                p.Error(
                    request_id=request.id,
                    kind="unauthorized",
                    message="wrong or missing token",
                    hint="pass the token the engine printed when it started (or its --token)",
                )
            )
            self.closing = True
            return
        self.greeted = True
        logger.info("%s: hello from %s", self.name, request.client or "an unnamed client")
        device, _ = await self.engine.facts()
        self.send(
            p.HelloReply(
                request_id=request.id,
                engine_version=engine_version(),
                capabilities=list(CAPABILITIES),
                device=device,
            )
        )


def _request_id(line: bytes) -> str | None:
    """The `id` of a line that is JSON but not a valid request, to answer it by name."""
    try:
        payload = json.loads(line)
    except ValueError:
        return None
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def new_token() -> str:
    """A fresh engine token: 192 random bits in hex. Not urlsafe base64, whose tokens start
    with "-" one time in 64, and `dreamclear restore --token -x...` then reads as an option."""
    return secrets.token_hex(24)


class EngineServer:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.token = config.token or new_token()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: Connection | None = None
        self.stopped = asyncio.Event()
        self.runner = JobRunner(self._post, [RestoreJobs(config.store_root)])
        self.models = ModelService(config.store_root, self._post)
        self._facts: asyncio.Future | None = None
        self._background_tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ events

    def _post(self, event: p.Event) -> None:
        """Called from any thread; the loop delivers events in the order they were posted."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: p.Event) -> None:
        client = self.client
        job_id = getattr(event, "job_id", None)
        if client is not None and (job_id is None or job_id in client.jobs):
            client.send(event)

    def facts(self) -> Awaitable[tuple[str, list[dict[str, Any]]]]:
        """Device facts, computed once in a thread (importing torch takes seconds)."""
        assert self._facts is not None
        return asyncio.shield(self._facts)

    # ------------------------------------------------------------------ requests

    async def dispatch(self, client: Connection, request: p.Request) -> None:
        if isinstance(request, p.ListModels):
            await self.models.handle(p.ModelAction(id=request.id, action="list"), self.facts)
        elif isinstance(request, p.ModelAction):
            # Imports copy gigabytes and downloads take minutes: the reader must stay free
            # for `interrupt`, and the job worker for restores.
            self._background(request, self.models.handle(request, self.facts))
        elif isinstance(request, p.Export):
            self._background(request, self._export(client, request))
        elif self.runner.takes(request):
            try:
                # Ids are known before the posted accepted/queued events are delivered.
                client.jobs.update(self.runner.submit(request))
            except EngineError as error:
                client.send(error_event(request.id, error))
        elif isinstance(request, p.Cancel):
            self.runner.cancel(request.job_ids, request.id)
        elif isinstance(request, p.Interrupt):
            self.runner.interrupt(request.job_id, request.id)
        elif isinstance(request, p.Shutdown):
            logger.info("shutdown asked for")
            await asyncio.to_thread(self.runner.shutdown, request.id)
            await asyncio.sleep(0)  # let the worker's last posted events reach the outbox
            client.send(p.Bye(request_id=request.id))
            client.closing = True
            self.stopped.set()

    def _background(self, request: p.Request, work: Awaitable[None]) -> None:
        """Run `work` beside the connection's reader; a bug in it is logged and answered
        as an `internal` error, and the engine keeps serving."""

        async def guarded() -> None:
            try:
                await work
            except Exception as error:
                logger.exception("%s %s failed", request.TYPE, request.id)
                self._post(
                    p.Error(
                        request_id=request.id,
                        message=f"internal error: {type(error).__name__}: {error}",
                        hint="see the engine log",
                    )
                )

        task = asyncio.create_task(guarded())
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _export(self, client: Connection, request: p.Export) -> None:
        """In a thread, not the job worker: restores go on while a result is converted."""
        from engine.export import export_file

        try:
            client.send(await asyncio.to_thread(export_file, request))
        except EngineError as error:
            client.send(error_event(request.id, error))

    # ------------------------------------------------------------------ transports

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        self._facts = asyncio.ensure_future(asyncio.to_thread(device_facts))
        warming = asyncio.ensure_future(self._warm_up())
        self.runner.start()
        if self.config.stdio:
            await self._serve_stdio()
        else:
            await self._serve_tcp()
        warming.cancel()
        await asyncio.to_thread(self.runner.shutdown)
        return 0

    async def _warm_up(self) -> None:
        """Import the model code while the client gets ready (seconds off the first job)."""
        await self.facts()
        await asyncio.to_thread(_import_model_code)

    async def _serve_stdio(self) -> None:
        # The protocol owns the real stdout; anything else printed (by us or a library,
        # from Python or C) goes to stderr instead of corrupting the stream.
        out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
        reader = asyncio.StreamReader(limit=p.MAX_MESSAGE_BYTES)
        threading.Thread(
            target=_pump_stdin, args=(reader, self.loop), name="engine-stdin", daemon=True
        ).start()
        write_lock = threading.Lock()

        def write_now(line: bytes) -> None:
            with write_lock:
                out.write(line)

        async def write(line: bytes) -> None:
            await asyncio.to_thread(write_now, line)

        self.client = Connection(self, reader, write, needs_token=False, name="stdio")
        logger.info("engine serving on stdio (protocol %d)", p.PROTOCOL_VERSION)
        serving = asyncio.create_task(self.client.serve())
        stopped = asyncio.create_task(self.stopped.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        await serving  # after `bye` the connection ends by itself
        stopped.cancel()

    async def _serve_tcp(self) -> None:
        host = self.config.host
        if not is_loopback(host):
            if not self.config.allow_remote:
                raise EngineError(
                    f"refusing to listen on non-loopback address {host}",
                    hint="name it with --host explicitly, or tunnel to 127.0.0.1 over SSH",
                )
            logger.warning(
                "listening on %s, which is reachable from other machines: anyone who knows "
                "the token can restore files as this user; an SSH tunnel to 127.0.0.1 is safer",
                host,
            )
        server = await asyncio.start_server(self._on_client, host, self.config.port)
        port = server.sockets[0].getsockname()[1]
        # stdout, for the person (or script) that started the engine: where, and the token.
        print(f"dreamclear engine listening on {host}:{port}", flush=True)
        print(f"token: {self.token}", flush=True)
        logger.info("engine serving on %s:%d (protocol %d)", host, port, p.PROTOCOL_VERSION)
        async with server:
            await self.stopped.wait()
            server.close()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        name = f"tcp {peer[0]}:{peer[1]}" if peer else "tcp"

        async def write(line: bytes) -> None:
            writer.write(line)
            await writer.drain()

        if self.client is not None:
            logger.warning("%s: refused, another client is connected", name)
            await write(
                p.encode(
                    p.Error(
                        kind="protocol",
                        message="another client is connected to this engine",
                        hint="close the other client, or start another engine on another port",
                    )
                )
            )
            writer.close()
            return
        connection = Connection(self, reader, write, needs_token=True, name=name)
        self.client = connection
        logger.info("%s: connected", name)
        try:
            await connection.serve()
        finally:
            self.client = None
            if not self.stopped.is_set():
                # Jobs belong to their connection: nobody is left to hear about them.
                self.runner.cancel(None)
                self.runner.interrupt(None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            logger.info("%s: closed", name)


def _import_model_code() -> None:
    import engine.pipelines.restore
    import engine.restore_files
    import engine.restorers
    import engine.weights.components_io  # noqa: F401


def _pump_stdin(reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
    """Feed stdin into `reader` from a thread: portable, and never blocks the loop."""
    fd = sys.stdin.fileno()
    while True:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            loop.call_soon_threadsafe(reader.feed_eof)
            return
        loop.call_soon_threadsafe(reader.feed_data, chunk)


def serve(config: ServeConfig) -> int:
    """Run the engine until `shutdown` (or, over stdio, the end of input); the exit code."""
    return asyncio.run(EngineServer(config).run())
