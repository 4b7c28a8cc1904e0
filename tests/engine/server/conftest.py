"""The engine under test: a real `python -m engine` subprocess."""

from __future__ import annotations

import pytest
from engine_harness import EngineProcess, hello


@pytest.fixture(scope="module")
def stdio_engine(tmp_path_factory):
    """One engine over stdio for a test module, greeted, with the OOM fault armed for inputs
    whose name contains `oom-me`."""
    folder = tmp_path_factory.mktemp("engine")
    engine = EngineProcess(
        ["--stdio", "--store", str(folder / "store"), "--log-level", "debug"],
        folder / "engine.log",
        env={"DREAMCLEAR_TEST_FAULTS": "oom:oom-me"},
    )
    client = engine.stdio_client()
    assert hello(client)["type"] == "hello_reply"
    yield engine, client
    engine.stop()
