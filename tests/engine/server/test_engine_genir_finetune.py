"""`genir_finetune` over stdio: the real engine trains the dual prompts of a tiny run in a
child process (the trainer's task `genir-prompts`), relays its steps with the loss, and ends
with the run's finetune folder holding the contract files."""

from __future__ import annotations

import json

import pytest
from engine_harness import hello

ENDINGS = {"result", "error", "cancelled"}


@pytest.fixture(scope="module")
def engine(single_thread_engine):
    return single_thread_engine


@pytest.mark.slow
def test_the_engine_finetunes_a_run_in_a_child_process(
    engine, tmp_path, tiny_sdxl_dir, make_finetune_run
):
    _, client = engine
    run = make_finetune_run(tmp_path, tiny_sdxl_dir)
    client.send({"type": "genir_finetune", "id": "f1", "run": str(run)})
    events = client.until(lambda e: e["type"] in ENDINGS, timeout=300)
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["output"] == str(run / "finetune")
    steps = [e for e in events if e["type"] == "progress" and e.get("stage") == "finetune"]
    assert steps and (steps[-1]["step"], steps[-1]["steps"]) == (2, 2)
    assert "loss" in steps[-1]["label"]
    learned = json.loads((run / "finetune" / "learned_prompts.json").read_text())
    assert learned["positive_tokens"] and learned["cross_attention"] == "lora"
    assert (run / "finetune" / "learned_tokens.safetensors").is_file()


def test_a_folder_without_pairs_fails_clearly_and_the_engine_goes_on(engine, tmp_path):
    _, client = engine
    client.send({"type": "genir_finetune", "id": "f2", "run": str(tmp_path / "nothing")})
    events = client.until(lambda e: e["type"] in ENDINGS, timeout=60)
    assert events[-1]["type"] == "error" and events[-1]["kind"] == "bad_setting"
    assert "genir" in hello(client)["capabilities"]
