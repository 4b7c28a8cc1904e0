"""`train` over stdio: the real engine trains a tiny starter in a child process, relays its
steps, stops it on interrupt and resumes from its checkpoint, and outlives a failed one."""

from __future__ import annotations

import psutil
import pytest
from engine_harness import EngineProcess, job_events
from PIL import Image

from dreamclear_studio_resources import resource_path
from trainer import checkpoints

ENDINGS = {"result", "error", "cancelled"}


@pytest.fixture(scope="module")
def engine(single_thread_engine):
    return single_thread_engine


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("aqua.jpg", "dune.jpg", "bridge.jpg"):
        with Image.open(resource_path("photos") / name) as image:
            image.thumbnail((1024, 160))
            image.save(folder / name, quality=95)
    return folder


def starter_config(folder, photos, max_steps: int = 3, extra: str = ""):
    """A starter run of a few 32-48 px crops, a checkpoint every 2 steps."""
    text = f"""
task = "starter"
max_steps = {max_steps}
seed = 3
{extra}
[data]
photos = "{photos}"
validation_photos = ["bridge.jpg"]
crop_min = 32
crop_max = 48
batch_size = 2
samples_per_epoch = 6

[checkpointing]
output_dir = "{folder / "out"}"
checkpoint_every = 2

[validation]
every = 0
num_images = 1
crop = 64

[starter]
num_feat = 8
num_block = 1
estimator_channels = 8
"""
    path = folder / "train.toml"
    path.write_text(text, encoding="utf-8")
    return path


def train(client, config, request_id: str, **fields) -> list[dict]:
    client.send({"type": "train", "id": request_id, "config": str(config), **fields})
    return client.until(lambda e: e["type"] in ENDINGS and e.get("job_id"), timeout=120)


def children_of(engine: EngineProcess) -> list[psutil.Process]:
    return psutil.Process(engine.process.pid).children(recursive=True)


@pytest.mark.slow
def test_the_engine_trains_in_a_child_and_relays_its_steps(engine, photos, tmp_path):
    _, client = engine
    config = starter_config(tmp_path, photos, max_steps=3)
    events = train(client, config, "t1")
    result = events[-1]
    assert result["type"] == "result", events
    assert result["input"] == str(config) and result["output"] == str(tmp_path / "out" / "export")
    assert (tmp_path / "out" / "export").is_dir()
    job = result["job_id"]
    assert job_events(events, job)[:3] == ["accepted", "queued", "started"]
    assert [e["stage"] for e in events if e["type"] == "stage"] == ["load", "train"]
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["steps"] == 3
    assert progress[-1]["fraction"] == 1.0
    assert progress[-1]["label"].startswith("Training step 3/3, loss ")


@pytest.mark.slow
def test_interrupt_stops_the_child_and_train_resumes_from_its_checkpoint(engine, photos, tmp_path):
    process, client = engine
    config = starter_config(tmp_path, photos, max_steps=1000)
    client.send({"type": "train", "id": "t2", "config": str(config)})
    # Step 3 is reported after checkpoint 2 is complete.
    seen = client.until(lambda e: e["type"] == "progress" and e["step"] >= 3, timeout=120)
    assert children_of(process)
    client.send({"type": "interrupt", "id": "i1"})
    events = client.until(lambda e: e["type"] in ENDINGS and e.get("job_id"), timeout=60)
    assert events[-1]["type"] == "cancelled", seen + events
    assert not children_of(process)  # the child is gone before `cancelled`
    # It stopped after its step with a checkpoint: no step it reported is lost.
    reported = max(e["step"] for e in seen + events if e["type"] == "progress")
    latest = checkpoints.complete_checkpoints(tmp_path / "out")[-1]
    saved = checkpoints.read_marker(latest)["step"]
    assert saved >= reported

    events = train(client, config, "t3", max_steps=saved + 2)
    assert events[-1]["type"] == "result", events
    steps = [e["step"] for e in events if e["type"] == "progress"]
    assert steps == [saved + 1, saved + 2]
    rows = (tmp_path / "out" / "losses.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, saved + 3))


def test_a_failing_child_is_a_clear_error_and_the_engine_goes_on(engine, photos, tmp_path):
    process, client = engine
    bad = starter_config(tmp_path, photos, extra="learning_rat = 1e-4")
    events = train(client, bad, "t4")
    error = events[-1]
    assert error["type"] == "error" and error["kind"] == "bad_setting", events
    assert "learning_rat" in error["message"] and error["job_id"]
    # A config the engine can check itself is refused before a job.
    error = client.request({"type": "train", "id": "t5", "config": str(tmp_path / "none.toml")})
    assert error["kind"] == "bad_setting" and error["job_id"] is None

    assert client.request({"type": "models", "id": "m1"})["type"] == "models_reply"
    assert process.process.poll() is None
