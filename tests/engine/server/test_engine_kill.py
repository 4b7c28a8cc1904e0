"""A killed engine leaves no partial result under a final name."""

from __future__ import annotations

import pytest
from engine_harness import EngineProcess, hello, options, write_photo


@pytest.mark.slow
def test_kill_9_mid_job_leaves_no_output_file(tiny_model_dir, tmp_path):
    engine = EngineProcess(["--stdio", "--store", str(tmp_path / "store")], tmp_path / "log")
    try:
        client = engine.stdio_client()
        assert hello(client)["type"] == "hello_reply"
        out = tmp_path / "out"
        client.send(
            {
                "type": "restore",
                "id": "r",
                "inputs": [str(write_photo(tmp_path / "photo.png"))],
                "output_dir": str(out),
                "options": options(tiny_model_dir, steps=500),
            }
        )
        client.until(lambda e: e["type"] == "progress" and e["stage"] == "denoise")
        engine.process.kill()
        engine.process.wait(10)
    finally:
        engine.stop()
    assert not (out / "photo_x2.png").exists()
    assert [p.name for p in out.iterdir()] == [] if out.exists() else True
