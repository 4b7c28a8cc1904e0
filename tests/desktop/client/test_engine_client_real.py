"""EngineClient against the real engine (`python -m engine --stdio`), killed with SIGKILL mid-job."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from client_harness import S, collect, finished, make_client, run
from PIL import Image

from engine import protocol as p

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "engine" / "server.py").exists(),
        reason="the engine process (engine/server.py) is not written yet",
    ),
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]


def photo(path: Path) -> str:
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return str(path)


def test_real_engine_restores_survives_a_kill_and_restores_again(tiny_model_dir, tmp_path):
    def options(steps: int) -> p.RestoreOptionsMessage:
        return p.RestoreOptionsMessage(model=str(tiny_model_dir), steps=steps, upscale=2, seed=0)

    out = tmp_path / "out"

    async def test():
        client, states = make_client(
            start_timeout_s=120.0, request_timeout_s=60.0, shutdown_timeout_s=10.0
        )
        await client.spawn(store=tmp_path / "store", cwd=ROOT)
        assert client.hello_reply.device
        stream = client.events()

        [first] = await client.restore([photo(tmp_path / "one.png")], out, options(2))
        events = await collect(stream, finished(first), timeout=120)
        assert isinstance(events[-1], p.Result), events[-1]
        assert Path(events[-1].output).is_file()

        [doomed] = await client.restore([photo(tmp_path / "two.png")], out, options(500))
        await collect(
            stream,
            lambda ev: isinstance(ev[-1], p.Progress) and ev[-1].stage == "denoise",
            timeout=120,
        )
        os.kill(client.pid, signal.SIGKILL)
        events = await collect(stream, finished(doomed), timeout=30)
        assert isinstance(events[-1], p.Error) and events[-1].kind == "internal"
        assert events[-1].message == "the engine stopped unexpectedly"

        [last] = await client.restore([photo(tmp_path / "three.png")], out, options(2))
        events = await collect(stream, finished(last), timeout=120)
        assert isinstance(events[-1], p.Result), events[-1]
        assert states[:5] == [S.STARTING, S.READY, S.BUSY, S.READY, S.BUSY]
        assert states[5:8] == [S.LOST, S.RESTARTING, S.READY]
        await client.close()
        assert "code -9" in client.engine_log.text()  # the kill
        assert client.engine_log.lines[-1].endswith("code 0 ---")  # shutdown: a clean exit

    run(test, timeout=300)
