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


@pytest.fixture(scope="module")
def starter_model_dir(tmp_path_factory):
    """A tiny randomly initialised starter saved in the bundled layout."""
    import torch
    from safetensors.torch import save_file

    from engine.models.starter import DegradationEstimator, build_starter_restorer
    from engine.weights import starter_io

    starter = tmp_path_factory.mktemp("starter")
    torch.manual_seed(0)
    restorer = build_starter_restorer(num_feat=8, num_block=1)
    state = {k: v.contiguous() for k, v in restorer.state_dict().items()}
    save_file(state, starter / starter_io.RESTORER_FILE)
    DegradationEstimator(channels=8, num_layers=1).save_pretrained(
        starter / starter_io.ESTIMATOR_FOLDER
    )
    return starter


@pytest.fixture(scope="module")
def single_thread_engine(tmp_path_factory):
    """An engine over stdio whose processes use one torch thread each: the engine and the
    training child it starts share a small CPU."""
    folder = tmp_path_factory.mktemp("engine")
    engine = EngineProcess(
        ["--stdio", "--store", str(folder / "store"), "--log-level", "debug"],
        folder / "engine.log",
        env={"OMP_NUM_THREADS": "1"},
    )
    client = engine.stdio_client()
    assert {"genir", "train"} <= set(hello(client)["capabilities"])
    yield engine, client
    engine.stop()
