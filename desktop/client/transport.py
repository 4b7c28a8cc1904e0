"""Byte pipes to an engine: a child process on stdio, or a TCP connection. JSON lines, no parsing.

Both give `send(line)`, `read_line()` (None at end of stream), `kill()` and `close()`, so the
client above them does not care where the engine runs. The child's stderr goes to an
`EngineLog`, a bounded buffer the diagnostic report shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence

from desktop.client.connection_state import EngineClientError
from engine.protocol import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
engine_log = logging.getLogger("desktop.client.engine")

_LINE_LIMIT = MAX_MESSAGE_BYTES + 1
"""The longest line read in one piece (message plus newline); longer ones are dropped."""
_LOG_LINE_CHARS = 4000


class EngineLog:
    """The last `max_lines` lines the engine wrote to stderr, across restarts."""

    def __init__(self, max_lines: int = 2000) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)

    def append(self, line: str) -> None:
        if len(line) > _LOG_LINE_CHARS:
            line = line[:_LOG_LINE_CHARS] + " [...]"
        self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        return "\n".join(self._lines)


class Transport:
    """One connection to one engine. Subclasses fill in how bytes get there."""

    description = "engine"
    pid: int | None = None
    returncode: int | None = None

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, line: bytes) -> None:
        try:
            self._writer.write(line)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as error:
            raise EngineClientError(
                "connection", f"cannot send to the {self.description}: {error}"
            ) from error

    async def read_line(self) -> bytes | None:
        """The next line with its newline; None once the engine closed its end."""
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:
                log.warning(
                    "dropped a line over %d bytes from the %s", _LINE_LIMIT, self.description
                )
                continue
            except ConnectionError as error:
                log.warning("the %s connection broke: %s", self.description, error)
                return None
            return line or None

    def kill(self) -> None:
        """Stop the engine now (a process is killed; a connection is dropped)."""
        raise NotImplementedError

    async def close(self, grace_s: float) -> int | None:
        """End the connection, waiting up to `grace_s` per step; the exit code when known."""
        raise NotImplementedError


class ProcessTransport(Transport):
    """An engine child process speaking JSON lines on its stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, engine_log_buffer: EngineLog) -> None:
        assert process.stdout is not None and process.stdin is not None
        super().__init__(process.stdout, process.stdin)
        self._process = process
        self.pid = process.pid
        self.description = f"engine process {process.pid}"
        self._stderr_task = asyncio.create_task(self._pump_stderr(engine_log_buffer))

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        engine_log_buffer: EngineLog,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ProcessTransport:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=_LINE_LIMIT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except OSError as error:
            raise EngineClientError(
                "start_failed", f"cannot start the engine ({' '.join(argv)}): {error}"
            ) from error
        engine_log_buffer.append(f"--- engine started: pid {process.pid} ---")
        log.info("started the engine: pid %d: %s", process.pid, " ".join(argv))
        return cls(process, engine_log_buffer)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def _pump_stderr(self, buffer: EngineLog) -> None:
        stream = self._process.stderr
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the limit: keep what fits in the log
                continue
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            buffer.append(line)
            engine_log.debug("%s", line)
        code = await self._process.wait()
        buffer.append(f"--- engine exited: pid {self._process.pid}, code {code} ---")

    def kill(self) -> None:
        if self._process.returncode is None:
            log.warning("killing the %s", self.description)
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    async def close(self, grace_s: float) -> int | None:
        """Close stdin, then wait, terminate, kill: each step waits up to `grace_s`."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._writer.close()
        for stop in (None, self._process.terminate, self._process.kill):
            if self._process.returncode is not None:
                break
            if stop is not None:
                log.warning("the %s did not exit; %s", self.description, stop.__name__)
                with contextlib.suppress(ProcessLookupError):
                    stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), grace_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), grace_s)
        return self._process.returncode


class TcpTransport(Transport):
    """A connection to an engine started on its own (`python -m engine --host --port`)."""

    @classmethod
    async def connect(cls, host: str, port: int, timeout_s: float) -> TcpTransport:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=_LINE_LIMIT), timeout_s
            )
        except (OSError, TimeoutError) as error:
            raise EngineClientError(
                "connection", f"cannot connect to the engine at {host}:{port}: {error}"
            ) from error
        transport = cls(reader, writer)
        transport.description = f"engine at {host}:{port}"
        return transport

    def kill(self) -> None:
        log.warning("dropping the connection to the %s", self.description)
        self._writer.transport.abort()

    async def close(self, grace_s: float) -> int | None:
        self._writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._writer.wait_closed(), grace_s)
        return None
