"""Helpers to drive the real engine as a subprocess, over stdio or TCP, with the tiny model."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine import protocol as p

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 60.0
"""Per wait: generous, the CPU is shared; a healthy run takes a fraction of it."""


def write_photo(path: Path, size: int = 16) -> Path:
    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return path


def options(model: Path, **overrides) -> dict:
    return {"model": str(model), "steps": 2, "upscale": 2, "seed": 0, **overrides}


class EngineClient:
    """Events as dicts (each also checked against the protocol), read by a thread."""

    def __init__(self, read_line, write_bytes) -> None:
        self._write = write_bytes
        self.events: queue.Queue[dict | None] = queue.Queue()
        self.received: list[tuple[float, dict]] = []
        threading.Thread(target=self._pump, args=(read_line,), daemon=True).start()

    def _pump(self, read_line) -> None:
        while line := _read_or_nothing(read_line):
            p.decode(line, p.EVENTS)  # the engine follows the schema exactly
            event = json.loads(line)
            self.received.append((time.monotonic(), event))
            self.events.put(event)
        self.events.put(None)

    def send(self, message: dict | bytes) -> None:
        self._write(message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n")

    def next(self, timeout: float = TIMEOUT_S) -> dict | None:
        return self.events.get(timeout=timeout)

    def until(self, predicate, timeout: float = TIMEOUT_S) -> list[dict]:
        """Events up to and including the first that `predicate` accepts."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            assert event is not None, f"engine closed the stream; saw {seen}"
            seen.append(event)
            if predicate(event):
                return seen

    def request(self, message: dict) -> dict:
        """Send `message` and return the first event answering its id."""
        self.send(message)
        return self.until(lambda e: e.get("request_id") == message["id"])[-1]


def _read_or_nothing(read_line) -> bytes:
    try:
        return read_line()
    except (OSError, ValueError):  # the test hung up
        return b""


class EngineProcess:
    def __init__(self, args: list[str], log: Path, env: dict | None = None) -> None:
        self.log = log
        self.stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, **(env or {})},
        )

    def stdio_client(self) -> EngineClient:
        def write(data: bytes) -> None:
            self.process.stdin.write(data)
            self.process.stdin.flush()

        return EngineClient(self.process.stdout.readline, write)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.stderr.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def serve_tcp(folder: Path, *extra: str) -> tuple[EngineProcess, int, str]:
    """A TCP engine on a free loopback port with its own store: (process, port, token)."""
    args = ["--host", "127.0.0.1", "--port", "0", "--store", str(folder / "store"), *extra]
    engine = EngineProcess(args, folder / "engine.log")
    port = int(re.search(rb":(\d+)$", engine.process.stdout.readline().strip()).group(1))
    token = engine.process.stdout.readline().decode().split("token: ")[1].strip()
    return engine, port, token


class HangUpSocket(socket.socket):
    """Closing hangs up at once, even while the reader thread's file still refers to it."""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.shutdown(socket.SHUT_RDWR)
        super().close()


def tcp_client(port: int) -> tuple[EngineClient, socket.socket]:
    sock = HangUpSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    lines = sock.makefile("rb")
    return EngineClient(lines.readline, sock.sendall), sock


def connect(port: int, first: dict) -> tuple[EngineClient, socket.socket, dict]:
    """A TCP client and the engine's answer to `first`; retried while the engine still
    finishes with the previous client (it serves one at a time)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        client, sock = tcp_client(port)
        client.send(first)
        reply = client.next()
        if reply is not None and "another client" not in reply.get("message", ""):
            return client, sock, reply
        sock.close()
        assert time.monotonic() < deadline, "the engine never freed its client slot"
        time.sleep(0.05)


def connect_and_greet(port: int, token: str) -> tuple[EngineClient, socket.socket]:
    client, sock, reply = connect(port, {"type": "hello", "id": "hello", "token": token})
    assert reply["type"] == "hello_reply", reply
    return client, sock


def hello(client: EngineClient, **fields) -> dict:
    return client.request({"type": "hello", "id": "hello", "client": "tests", **fields})


def job_events(events: list[dict], job_id: str) -> list[str]:
    return [e["type"] for e in events if e.get("job_id") == job_id]
