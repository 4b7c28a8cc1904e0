"""The engine process: JSON-lines requests in, events out, over stdio or TCP (docs/protocol.md).

asyncio owns the connection; the `JobRunner`'s worker thread owns the device and posts its
events into the loop with `call_soon_threadsafe`. One client at a time: over stdio that is
the parent process (end of input shuts the engine down); over TCP a second client is told
so and closed, and a client that leaves has its jobs cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import sys
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import protocol as p
from engine.connection import HELLO_TIMEOUT_S, READ_CHUNK, Connection
from engine.errors import BadSettingError, EngineError, error_event
from engine.jobs.genir_stages import (
    GenirExportJobs,
    GenirFilterJobs,
    GenirFinetuneJobs,
    GenirGenerateJobs,
    GenirPairsJobs,
    GenirPromptsJobs,
)
from engine.jobs.restore import RestoreJobs
from engine.jobs.train_job import TrainJobs
from engine.model_service import ModelService
from engine.path_policy import ANYWHERE, PathPolicy
from engine.runner import JobRunner

logger = logging.getLogger(__name__)

CAPABILITIES = [
    "restore",
    "models",
    "cancel",
    "interrupt",
    "model_action",
    "export",
    "genir",
    "train",
    *p.ADDED_OPTIONS,
]
"""What `hello_reply` lists: optional requests and the restore options added within version 1."""
MAX_PENDING_CONNECTIONS = 16
"""TCP connections that have not authenticated yet; more are closed at once."""


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
    allow: list[Path] | None = None
    """The folders TCP clients may use (None: home and the temporary folder)."""


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
        self._facts_done = threading.Event()
        self.runner = JobRunner(
            self._post,
            [
                RestoreJobs(config.store_root),
                GenirPromptsJobs(),
                GenirPairsJobs(),
                GenirFilterJobs(),
                GenirFinetuneJobs(),
                GenirGenerateJobs(),
                GenirExportJobs(),
                TrainJobs(),
            ],
            warm_up=self._warm_up,
        )
        self.models = ModelService(config.store_root, self._post)
        self._facts: asyncio.Future | None = None
        self._background_tasks: set[asyncio.Task] = set()
        self.remote_paths = PathPolicy.for_remote_clients(config.allow)
        self._pending: set[Connection] = set()
        """TCP connections still to authenticate."""

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

    async def hello_reply(self, request_id: str) -> p.HelloReply:
        device, _ = await self.facts()
        return p.HelloReply(
            request_id=request_id,
            engine_version=engine_version(),
            capabilities=list(CAPABILITIES),
            device=device,
        )

    def _device_facts(self) -> tuple[str, list[dict[str, Any]]]:
        try:
            return device_facts()
        finally:
            self._facts_done.set()

    def _warm_up(self) -> None:
        """On the worker thread: import the model code while the client gets ready (seconds
        off the first job), once torch is imported (by the device facts), never alongside."""
        self._facts_done.wait()
        _import_model_code()

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
            self._background(request, self.models.handle(request, self.facts, client.paths))
        elif isinstance(request, p.Export):
            self._background(request, self._export(client, request))
        elif isinstance(request, p.GenirStatus):
            self._background(request, self._genir_status(client, request))
        elif self.runner.takes(request):
            try:
                # Ids are known before the posted accepted/queued events are delivered.
                client.jobs.update(self.runner.submit(request, client.paths))
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
        else:
            # A message type of the protocol that this engine has no handler for: said at
            # once, so a client never waits out its timeout for an answer that cannot come.
            client.send(
                p.Error(
                    request_id=request.id,
                    kind="protocol",
                    message=f"this engine does not handle `{request.TYPE}`",
                    hint="check the engine's capabilities in its hello reply",
                )
            )

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
            client.send(await asyncio.to_thread(export_file, request, client.paths))
        except EngineError as error:
            client.send(error_event(request.id, error))

    async def _genir_status(self, client: Connection, request: p.GenirStatus) -> None:
        """In a thread: it reads files only, so it answers even while a stage job runs."""
        from engine.genir.run_folder import load_run
        from engine.genir.status import genir_status

        def status() -> p.GenirStatusReply:
            if not request.run:
                raise BadSettingError("genir_status needs a run folder", hint="name one in `run`")
            run = client.paths.check(request.run, "the run folder")
            # The status counts the run's images: like a stage job, only in allowed folders.
            client.paths.check(str(load_run(run).images), "the run's images folder")
            return p.GenirStatusReply(
                request_id=request.id, run=str(run), status=genir_status(run).to_json()
            )

        try:
            client.send(await asyncio.to_thread(status))
        except EngineError as error:
            client.send(error_event(request.id, error))

    # ------------------------------------------------------------------ transports

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        self._facts = asyncio.ensure_future(asyncio.to_thread(self._device_facts))
        self.runner.start()  # imports the model code first (seconds off the first job)
        if self.config.stdio:
            await self._serve_stdio()
        else:
            await self._serve_tcp()
        await asyncio.to_thread(self.runner.shutdown)
        return 0

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

        self.client = Connection(
            self, reader, write, needs_token=False, name="stdio", paths=ANYWHERE
        )
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

        try:
            connection = Connection(
                self, reader, write, needs_token=True, name=name, paths=self.remote_paths
            )
            greeting = await self._authenticate(connection)
            if greeting is None:
                return
            if self.client is not None:
                logger.warning("%s: refused, another client is connected", name)
                await write(p.encode(_another_client(greeting.id)))
                return
            self.client = connection
            logger.info("%s: connected", name)
            try:
                await connection.serve(greeting)
            finally:
                self.client = None
                if not self.stopped.is_set():
                    # Jobs belong to their connection: nobody is left to hear about them.
                    self.runner.cancel(None)
                    self.runner.interrupt(None)
        except (ConnectionError, OSError):
            logger.info("%s: connection lost", name)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            logger.info("%s: closed", name)

    async def _authenticate(self, connection: Connection) -> p.Hello | None:
        """The connection's valid `hello`, or None once it was refused (too many waiting,
        no hello in time, a wrong token or version). It holds no client slot meanwhile."""
        if len(self._pending) >= MAX_PENDING_CONNECTIONS:
            logger.warning("%s: refused, too many connections waiting for hello", connection.name)
            return None
        self._pending.add(connection)
        try:
            return await asyncio.wait_for(connection.authenticate(), HELLO_TIMEOUT_S)
        except TimeoutError:
            logger.warning("%s: no hello within %.0f s; closing", connection.name, HELLO_TIMEOUT_S)
            return None
        finally:
            self._pending.discard(connection)


def _another_client(request_id: str) -> p.Error:
    return p.Error(
        request_id=request_id,
        kind="protocol",
        message="another client is connected to this engine",
        hint="close the other client, or start another engine on another port",
    )


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
