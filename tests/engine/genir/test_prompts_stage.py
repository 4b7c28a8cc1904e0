"""The "prompts" stage: journalled chunks, exact counts, rejects with reasons, resume."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from engine.errors import BadSettingError, JobInterrupted
from engine.genir import prompts_stage
from engine.genir.config import GenIRConfig
from engine.genir.privacy import check_prompt
from engine.genir.prompts import scene_prompts
from engine.genir.prompts_stage import CHUNK_SIZE, read_jsonl, run_prompts_stage
from engine.genir.run_folder import load_run, run_status

PLANTED = "call 555-123-4567"


def _planted_in(candidates: int) -> int:
    """How many of the first `candidates` carry the planted phone number."""
    return sum(1 for index in range(candidates) if index % 7 == 3)


def _with_count(config: GenIRConfig, count: int, **changes) -> GenIRConfig:
    prompts = dataclasses.replace(config.prompts, count=count)
    return dataclasses.replace(config, prompts=prompts, **changes)


@pytest.fixture
def planted(monkeypatch):
    """Every 7th candidate carries a phone number."""

    def candidates(seed, *, people=False):
        for index, prompt in enumerate(prompts_stage_original(seed, people=people)):
            yield f"{prompt}, {PLANTED}" if index % 7 == 3 else prompt

    prompts_stage_original = prompts_stage.iter_scene_prompts
    monkeypatch.setattr(prompts_stage, "iter_scene_prompts", candidates)


def test_writes_exactly_count_prompts_and_the_rejects_with_reasons(run, planted):
    config = _with_count(load_run(run), 2100)
    outcome = run_prompts_stage(run, config)
    kept = read_jsonl(outcome.path)
    assert outcome.accepted == len(kept) == 2100
    assert [line["key"] for line in kept] == list(range(2100))
    assert not any(check_prompt(line["prompt"]) for line in kept)
    assert outcome.chunks_done == 3  # 1000 candidates a chunk, 6 of 7 accepted
    rejected = read_jsonl(run / "prompts" / "rejected.jsonl")
    assert outcome.rejected == len(rejected) == _planted_in(3 * CHUNK_SIZE)
    assert all(r["index"] % 7 == 3 for r in rejected)
    assert rejected[0]["reasons"] == [{"kind": "phone", "text": "555-123-4567"}]
    # The indices say where each prompt came from in the candidate order.
    candidates = list(itertools.islice(prompts_stage.iter_scene_prompts(5), 3000))
    assert all(candidates[line["index"]] == line["prompt"] for line in kept + rejected)

    status = run_status(run)
    assert status.stage == "prompts"
    assert status.counts["prompts accepted"] == 2100


def test_the_configs_count_completes_the_stage(run):
    outcome = run_prompts_stage(run, load_run(run))
    assert outcome.accepted == 1000 and outcome.rejected == 0
    assert [line["prompt"] for line in read_jsonl(outcome.path)] == scene_prompts(1000, seed=5)
    status = run_status(run)
    assert status.stage == "prompts"
    assert status.counts["prompts accepted"] == 1000
    assert "prompts accepted: 1000" in status.describe()


def test_an_interrupted_run_resumes_where_it_stopped(run, tmp_path, planted):
    config = _with_count(load_run(run), 3000)
    calls = []

    def stop_after_two():
        calls.append(1)
        if len(calls) == 3:
            raise JobInterrupted("stopped")

    with pytest.raises(JobInterrupted):
        run_prompts_stage(run, config, check_cancelled=stop_after_two)
    assert run_status(run).stage == "prompts (partial)"
    assert run_status(run).counts["prompts accepted"] == 2 * CHUNK_SIZE - _planted_in(
        2 * CHUNK_SIZE
    )
    resumed = run_prompts_stage(run, config)
    assert resumed.chunks_done == 2  # chunks 2 and 3 (3000 wanted, 857 a chunk)

    fresh_run = tmp_path / "fresh"
    fresh = run_prompts_stage(fresh_run, config)
    assert read_jsonl(resumed.path) == read_jsonl(fresh.path)
    assert (run / "prompts" / "rejected.jsonl").read_bytes() == (
        fresh_run / "prompts" / "rejected.jsonl"
    ).read_bytes()


def test_a_lost_chunk_is_redone_and_more_prompts_extend_the_run(run):
    config = load_run(run)
    first = read_jsonl(run_prompts_stage(run, _with_count(config, 1500)).path)
    (run / "prompts" / "chunks" / "accepted-000001.jsonl").unlink()
    again = run_prompts_stage(run, _with_count(config, 2500))
    assert again.chunks_done == 2  # chunk 1 redone, chunk 2 new
    assert read_jsonl(again.path)[:1500] == first
    assert run_prompts_stage(run, _with_count(config, 2500)).chunks_done == 0


def test_a_resume_with_another_seed_is_refused_naming_it(run):
    config = load_run(run)
    run_prompts_stage(run, config)
    with pytest.raises(BadSettingError, match="seed = 6"):
        run_prompts_stage(run, dataclasses.replace(config, seed=6))


def test_progress_is_reported_per_chunk(run):
    reports = []
    run_prompts_stage(run, _with_count(load_run(run), 2500), report=lambda *a: reports.append(a))
    assert reports == [(1000, 2500), (2000, 2500), (2500, 2500)]
