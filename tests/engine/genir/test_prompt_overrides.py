"""The user's overrides of the privacy filter's verdicts (RUN/prompts/overrides.json): they
win when the prompts stage writes its final files, survive re-runs, and a change to them
makes the stage write the files again (without screening anything again)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.errors import BadSettingError, OutputError
from engine.genir import prompts_stage
from engine.genir.config import GenIRConfig
from engine.genir.prompt_overrides import read_prompt_overrides, set_prompt_override
from engine.genir.prompts_stage import read_jsonl, run_prompts_stage
from engine.genir.run_folder import load_run
from engine.genir.stage_checks import prompts_state

PLANTED = "call 555-123-4567"
ACCEPTED_IN_CHUNK_0 = 1000 - sum(1 for i in range(1000) if i % 7 == 3)  # 857


@pytest.fixture
def planted(monkeypatch):
    """Every 7th candidate (index 3, 10, ...) carries a phone number: the filter rejects it."""
    original = prompts_stage.iter_scene_prompts

    def candidates(seed, *, people=False):
        for index, prompt in enumerate(original(seed, people=people)):
            yield f"{prompt}, {PLANTED}" if index % 7 == 3 else prompt

    monkeypatch.setattr(prompts_stage, "iter_scene_prompts", candidates)


def _config(run, count: int = ACCEPTED_IN_CHUNK_0) -> GenIRConfig:
    config = load_run(run)
    return dataclasses.replace(config, prompts=dataclasses.replace(config.prompts, count=count))


def _by_index(path):
    return {line["index"]: line for line in read_jsonl(path)}


def test_a_kept_rejected_prompt_is_accepted_with_its_reasons(run, planted):
    config = _config(run)
    run_prompts_stage(run, config)
    set_prompt_override(run, 3, True, "a made-up number")
    outcome = run_prompts_stage(run, config)
    assert outcome.chunks_done == 0  # nothing screened again
    kept = read_jsonl(outcome.path)
    assert len(kept) == ACCEPTED_IN_CHUNK_0
    assert [line["key"] for line in kept] == list(range(len(kept)))
    assert [line["index"] for line in kept][:5] == [0, 1, 2, 3, 4]  # candidate order
    line = kept[3]
    assert line["override"] == {"accepted": True, "note": "a made-up number"}
    assert line["reasons"] == [{"kind": "phone", "text": "555-123-4567"}]
    assert 3 not in _by_index(run / "prompts" / "rejected.jsonl")
    assert 999 not in {line["index"] for line in kept}  # the count holds: the last one left


def test_a_kept_prompt_beyond_the_count_still_counts(run, planted):
    config = _config(run, 10)  # indices 0..10 give 10 accepted (3 and 10 rejected)
    run_prompts_stage(run, config)
    set_prompt_override(run, 500, True, "")  # accepted by the filter, beyond the count
    set_prompt_override(run, 997, True, "")  # rejected by the filter (997 % 7 == 3)
    run_prompts_stage(run, config)
    indices = [line["index"] for line in read_jsonl(run / "prompts" / "prompts.jsonl")]
    assert indices == [0, 1, 2, 4, 5, 6, 7, 8, 500, 997]
    assert 997 not in _by_index(run / "prompts" / "rejected.jsonl")


def test_a_dropped_prompt_is_rejected_and_more_are_drawn(run, planted):
    config = _config(run)
    run_prompts_stage(run, config)
    set_prompt_override(run, 0, False, "too close to my street")
    outcome = run_prompts_stage(run, config)
    assert outcome.chunks_done == 1  # one prompt short: chunk 1 drawn
    kept = read_jsonl(outcome.path)
    assert len(kept) == ACCEPTED_IN_CHUNK_0 and kept[0]["index"] == 1
    assert [line["key"] for line in kept] == list(range(len(kept)))
    assert kept[-1]["index"] == 1000
    dropped = _by_index(run / "prompts" / "rejected.jsonl")[0]
    assert dropped["reasons"] == [{"kind": "override", "text": "too close to my street"}]
    assert dropped["override"] == {"accepted": False, "note": "too close to my street"}


def test_the_stage_notices_a_changed_overrides_file_and_keeps_it(run, planted):
    config = _config(run, 100)
    run_prompts_stage(run, config)
    assert prompts_state(run, config).state == "done"
    journal = (run / "prompts" / "journal.jsonl").read_bytes()
    before = (run / "prompts" / "prompts.jsonl").read_bytes()

    set_prompt_override(run, 2, False, "")
    assert prompts_state(run, config).state == "partial"  # `genir run` writes it again
    run_prompts_stage(run, config)
    assert prompts_state(run, config).state == "done"
    after = (run / "prompts" / "prompts.jsonl").read_bytes()
    assert after != before
    assert (run / "prompts" / "journal.jsonl").read_bytes() == journal
    assert _by_index(run / "prompts" / "rejected.jsonl")[2]["reasons"][0]["kind"] == "override"

    # Overrides survive re-runs, and a second one adds to the first.
    set_prompt_override(run, 10, True, "fine")
    run_prompts_stage(run, config)
    run_prompts_stage(run, config)
    assert read_prompt_overrides(run) == {
        2: read_prompt_overrides(run)[2],
        10: read_prompt_overrides(run)[10],
    }
    assert not read_prompt_overrides(run)[2].accepted
    kept = _by_index(run / "prompts" / "prompts.jsonl")
    assert 10 in kept and 2 not in kept

    # Taking a decision back (keep what the filter kept) restores the first files.
    set_prompt_override(run, 2, True, "")
    set_prompt_override(run, 10, False, "")
    run_prompts_stage(run, config)
    assert [(r["index"], r["prompt"]) for r in read_jsonl(run / "prompts" / "prompts.jsonl")] == [
        (r["index"], r["prompt"]) for r in map(json.loads, before.decode().splitlines())
    ]


def test_bad_overrides_and_unknown_indices_are_clear_errors(run, planted):
    config = _config(run, 10)
    with pytest.raises(BadSettingError, match="no screened prompt with index 3"):
        set_prompt_override(run, 3, True)
    run_prompts_stage(run, config)
    with pytest.raises(BadSettingError, match="index 5000"):
        set_prompt_override(run, 5000, True)
    (run / "prompts" / "overrides.json").write_text('{"3": {"accepted": "yes"}}')
    with pytest.raises(OutputError, match="not a prompt overrides file") as error:
        run_prompts_stage(run, config)
    assert "never writes it" in error.value.hint
    (run / "prompts" / "overrides.json").write_text("[1, 2]")
    with pytest.raises(OutputError, match="not a prompt overrides file"):
        read_prompt_overrides(run)
