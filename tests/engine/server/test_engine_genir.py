"""GenIR's "prompts" stage as an engine job over stdio: capability, events, resume, refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from engine_harness import hello, job_events

from engine.genir.run_folder import init_run

sys.path.insert(0, str(Path(__file__).parents[1] / "genir"))  # the GenIR run helpers
from generate_run import journalled_keys, make_generate_run


def _run_folder(tmp_path):
    images, base = tmp_path / "images", tmp_path / "base"
    images.mkdir()
    base.mkdir()
    (base / "model_index.json").write_text("{}")
    run = tmp_path / "run"
    init_run(run, images=images, base_model=base, seed=2)
    config = run / "genir.toml"
    config.write_text(config.read_text().replace("count = 1000", "count = 1500"))
    return run


def test_the_engine_runs_the_prompts_stage_and_resumes_it(stdio_engine, tmp_path):
    _, client = stdio_engine
    assert "genir" in hello(client)["capabilities"]
    run = _run_folder(tmp_path)
    client.send({"type": "genir_prompts", "id": "g1", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    job = events[0]["job_id"]
    assert job_events(events, job)[:3] == ["accepted", "queued", "started"]
    assert {"type": "stage", "stage": "prompts"}.items() <= next(
        e for e in events if e["type"] == "stage"
    ).items()
    result = events[-1]
    assert result["type"] == "result", result
    assert result["input"] == str(run)
    lines = (run / "prompts" / "prompts.jsonl").read_text().splitlines()
    assert result["output"] == str(run / "prompts" / "prompts.jsonl")
    assert len(lines) == 1500 and json.loads(lines[0])["key"] == 0
    last = [e for e in events if e["type"] == "progress"][-1]
    assert (last["step"], last["steps"]) == (1500, 1500)

    # Sent again, everything is journalled: the same file, nothing redone.
    before = (run / "prompts" / "journal.jsonl").read_bytes()
    client.send({"type": "genir_prompts", "id": "g2", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "result"
    assert (run / "prompts" / "journal.jsonl").read_bytes() == before


def test_a_folder_that_is_no_run_is_refused_before_a_job(stdio_engine, tmp_path):
    _, client = stdio_engine
    error = client.request({"type": "genir_prompts", "id": "g3", "run": str(tmp_path)})
    assert error["type"] == "error" and error["kind"] == "bad_setting"
    assert "not a GenIR run folder" in error["message"] and error["hint"]
    assert error["job_id"] is None
    error = client.request({"type": "genir_prompts", "id": "g4"})
    assert error["kind"] == "bad_setting"


def test_the_engine_runs_the_pairs_stage(stdio_engine, tmp_path, tiny_sdxl_dir):
    from PIL import Image

    _, client = stdio_engine
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 64), (20, 140, 90)).save(images / "a.png")
    (images / "a.txt").write_text("a green door\n")
    run = tmp_path / "run"
    init_run(run, images=images, base_model=tiny_sdxl_dir, seed=2)
    config = run / "genir.toml"
    text = config.read_text().replace("steps = 30", "steps = 2", 1)
    config.write_text(text.replace("size = 1024", "size = 64").replace("= 512", "= 64"))
    client.send({"type": "genir_pairs", "id": "p1", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["output"] == str(run / "pairs")
    assert {"type": "stage", "stage": "pairs"}.items() <= next(
        e for e in events if e["type"] == "stage"
    ).items()
    last = [e for e in events if e["type"] == "progress"][-1]
    assert (last["step"], last["steps"]) == (1, 1)
    assert len(list((run / "pairs" / "negative").glob("*.png"))) == 1
    error = client.request({"type": "genir_pairs", "id": "p2"})
    assert error["kind"] == "bad_setting" and "genir_pairs needs a run folder" in error["message"]


@pytest.mark.slow
def test_the_engine_trains_the_classifier_then_filters(stdio_engine, tmp_path):
    from genir_runs import add_generated, astronaut, make_run, set_fields, sharp_texture

    _, client = stdio_engine
    run = make_run(tmp_path, pairs=3)
    set_fields(
        run,
        quality_threshold="0.0",
        classifier_crop="32",
        classifier_width="8",
        classifier_batch_size="2",
        classifier_steps="2",
    )
    add_generated(run, {0: sharp_texture(0, 96), 1: astronaut(256)})
    # No classifier yet: the job trains it (the trainer in a child process), then filters.
    client.send({"type": "genir_filter", "id": "f1", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"}, timeout=300)
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["output"] == str(run / "filter" / "verdicts.jsonl")
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages.index("train") < stages.index("filter"), stages
    assert (run / "classifier" / "quality_classifier.safetensors").is_file()
    last = [e for e in events if e["type"] == "progress"][-1]
    assert (last["stage"], last["step"], last["steps"]) == ("filter", 2, 2)
    lines = [json.loads(x) for x in (run / "filter" / "verdicts.jsonl").read_text().splitlines()]
    assert [line["accepted"] for line in lines] == [True, False]  # the astronaut has a face

    # Sent again with the classifier there: no training, the stored scores decide at once.
    client.send({"type": "genir_filter", "id": "f2", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "result", events[-1]
    assert "train" not in [e["stage"] for e in events if e["type"] == "stage"]


def test_the_engine_runs_the_generate_stage_interrupted_then_resumed(
    stdio_engine, tmp_path, tiny_sdxl_dir
):
    _, client = stdio_engine
    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=6, batch_size=1)
    client.send({"type": "genir_generate", "id": "n1", "run": str(run)})
    events = client.until(
        lambda e: (
            (e["type"] == "progress" and e["step"] >= 1)
            or e["type"] in {"result", "error", "cancelled"}
        )
    )
    assert events[-1]["type"] == "progress", events[-1]
    assert {"type": "stage", "stage": "generate"}.items() <= next(
        e for e in events if e["type"] == "stage"
    ).items()
    client.send({"type": "interrupt", "id": "n2", "job_id": events[-1]["job_id"]})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "cancelled", events[-1]
    done = len(journalled_keys(run))
    assert 1 <= done < 6

    client.send({"type": "genir_generate", "id": "n3", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["output"] == str(run / "generate")
    steps = [(e["step"], e["steps"]) for e in events if e["type"] == "progress"]
    assert steps[0][0] >= done and steps[-1] == (6, 6)
    assert sorted(journalled_keys(run)) == list(range(6))
