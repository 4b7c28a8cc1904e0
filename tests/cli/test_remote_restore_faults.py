"""`dreamclear restore --engine` when the engine dies before or while answering: one error
line and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import io
import socket
import struct
import threading

import pytest

from engine import protocol as p
from engine.cli.remote_restore import run_remote_restore


def serve_once(behaviour: str) -> tuple[int, threading.Thread]:
    """A one-connection engine on 127.0.0.1 that misbehaves as `behaviour` says."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        connection, _ = listener.accept()
        with listener, connection:
            reader = connection.makefile("rb")
            reader.readline()  # hello
            if behaviour == "truncated":
                connection.sendall(p.encode(p.HelloReply(request_id="cli-1"))[:20])
            elif behaviour == "garbage":
                connection.sendall(b'{"type": "no such event"}\n')
            elif behaviour == "reset":
                # SO_LINGER 0: close() sends a reset, as a killed process's socket may.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif behaviour == "after_accepting":
                connection.sendall(p.encode(p.HelloReply(request_id="cli-1")))
                reader.readline()  # restore
                connection.sendall(p.encode(p.Accepted(request_id="cli-2", job_id="j", input="x")))
                connection.sendall(p.encode(p.Queued(request_id="cli-2", job_id="j")))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(
    "behaviour", ["closed", "truncated", "garbage", "reset", "after_accepting"]
)
def test_a_dying_engine_gives_one_error_and_exit_code_2(behaviour, tmp_path):
    port, thread = serve_once(behaviour)
    args = argparse.Namespace(
        engine=f"127.0.0.1:{port}", token="t", inputs=[str(tmp_path / "a.jpg")],
        output=str(tmp_path / "out"), model="auto", upscale=4, steps=50, cfg=4.5, seed=None,
        sampler="iddpm", prompt=None, caption="auto", color_fix="wavelet", strength=1.0,
        tile="auto", device="auto", dtype="auto", output_format=None, save_map=False,
        overwrite=False, skip_existing=False, max_megapixels=150.0,
    )  # fmt: skip
    stream = io.StringIO()
    assert run_remote_restore(args, stream) == 2
    thread.join(5)
    text = stream.getvalue()
    assert "Traceback" not in text
    assert text.count("error: ") == 1 and "hint: " in text
