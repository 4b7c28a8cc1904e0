"""Prompts from a local LLM (a tiny random Llama built offline): seeded calls, the line
parser, the stage's chunks, resume and settings, and the LLM judge's wiring."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from engine.errors import BadInputError, BadSettingError
from engine.genir import prompts_stage
from engine.genir.judges import PAPER_PROMPT_INSTRUCTION, PromptJudge
from engine.genir.llm_prompts import PRIVACY_INSTRUCTION, LLMPromptWriter, parse_descriptions
from engine.genir.prompts_stage import read_jsonl, run_prompts_stage
from engine.genir.run_folder import load_run
from engine.genir.tiny_local_models import save_tiny_llm
from engine.typed_config import ConfigError


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory) -> Path:
    return save_tiny_llm(tmp_path_factory.mktemp("models") / "tiny-llm", seed=0)


def _llm_config(run: Path, llm_dir: Path, count: int = 6, **prompts):
    config = load_run(run)
    settings = {"source": "llm", "llm_model": str(llm_dir), "llm_lines": 4, "count": count}
    settings |= prompts
    return dataclasses.replace(config, prompts=dataclasses.replace(config.prompts, **settings))


def test_parser_takes_one_description_per_line():
    answer = (
        "Sure! Here are three descriptions:\n"
        "1. A misty harbour at dawn with rusty chains\n"
        '- "A quiet birch grove in autumn light"\n'
        "\n"
        "word\n"
        "A misty harbour at dawn with rusty chains\n"
        "A lighthouse on a cliff under"
    )
    assert parse_descriptions(answer, finished=False) == [
        "A misty harbour at dawn with rusty chains",
        "A quiet birch grove in autumn light",
    ]
    assert parse_descriptions(answer)[-1] == "A lighthouse on a cliff under"


def test_calls_are_seeded_and_ask_with_the_privacy_instruction(llm_dir):
    writer = LLMPromptWriter.from_folder(llm_dir, lines=4)
    assert writer.request(0, 0)[0]["content"] == PRIVACY_INSTRUCTION
    assert "4 different descriptions" in writer.request(0, 0)[1]["content"]
    first = writer.write(seed=0, call=0)
    assert first and first == writer.write(seed=0, call=0)
    assert writer.write(seed=0, call=1) != first


def test_stage_with_the_llm_source_is_screened_journalled_and_resumable(run, llm_dir):
    config = _llm_config(run, llm_dir)
    outcome = run_prompts_stage(run, config)
    prompts = read_jsonl(outcome.path)
    assert [p["key"] for p in prompts] == list(range(6))
    writer = LLMPromptWriter.from_folder(llm_dir, lines=4)
    written = writer.write(config.seed, 0)
    rejected = {r["prompt"] for r in read_jsonl(run / "prompts" / "rejected.jsonl")}
    chunk = read_jsonl(prompts_stage.chunk_files(run, 0)[0])
    assert [p["prompt"] for p in chunk] == [p for p in written if p not in rejected]
    assert [p["prompt"] for p in prompts] == [p["prompt"] for p in chunk][:6]
    header = json.loads((run / "prompts" / "journal.jsonl").read_text().splitlines()[0])
    assert "llm_model" in json.dumps(header)

    before = outcome.path.read_bytes()
    again = run_prompts_stage(run, config)
    assert again.chunks_done == 0 and again.path.read_bytes() == before

    with pytest.raises(BadSettingError, match="llm_lines"):
        run_prompts_stage(run, _llm_config(run, llm_dir, llm_lines=5))


def test_the_llm_judge_uses_the_paper_instruction_and_keeps_what_it_returns(llm_dir):
    judge = PromptJudge.from_folder(llm_dir)
    assert judge.instruction == PAPER_PROMPT_INSTRUCTION
    prompts = ["a stone bridge over a river", "a lake at dawn"]
    verdicts = judge(prompts)
    assert verdicts == judge(prompts) and len(verdicts) == 2  # greedy: the same each time

    class Echo(PromptJudge):
        """A judge whose model returns all but the second prompt, numbered."""

    echo = Echo(judge.tokenizer, judge.model)
    from engine.genir import judges

    original = judges.chat
    try:
        judges.chat = lambda tokenizer, model, messages, **kw: (
            "1. a stone bridge over a river\n2. a harbour",
            True,
        )
        assert echo(prompts) == [True, False]
    finally:
        judges.chat = original


def test_a_judge_that_deletes_everything_stops_the_stage(run, llm_dir, monkeypatch):
    monkeypatch.setattr(PromptJudge, "__call__", lambda self, prompts: [False] * len(prompts))
    config = load_run(run)
    config = dataclasses.replace(
        config,
        prompts=dataclasses.replace(
            config.prompts, llm_judge=True, llm_model=str(llm_dir), count=3
        ),
    )
    with pytest.raises(BadInputError, match="no accepted prompt"):
        run_prompts_stage(run, config)
    rejected = read_jsonl(run / "prompts" / "chunks" / "rejected-000000.jsonl")
    assert rejected and all(r["reasons"][0]["kind"] == "judge" for r in rejected)


def test_llm_source_needs_a_model(run):
    text = (run / "genir.toml").read_text().replace('source = "template"', 'source = "llm"')
    (run / "genir.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"prompts\.llm_model"):
        load_run(run)


def test_an_engine_job_checks_the_llm_folder_against_the_allowed_folders(run, llm_dir):
    from engine import protocol as p
    from engine.jobs.genir_stages import GenirPromptsJobs
    from engine.path_policy import PathNotAllowedError, PathPolicy

    text = (run / "genir.toml").read_text()
    (run / "genir.toml").write_text(text.replace('llm_model = ""', f'llm_model = "{llm_dir}"'))
    request = p.GenirPrompts(run=str(run))
    assert GenirPromptsJobs().plan(request, PathPolicy([run.parent, llm_dir]))
    with pytest.raises(PathNotAllowedError):
        GenirPromptsJobs().plan(request, PathPolicy([run.parent]))


def test_llm_prompts_with_a_person_are_rejected_unless_people_are_allowed(
    run, llm_dir, monkeypatch
):
    from engine.genir import llm_prompts

    written = ["a fisherman mending nets on a pier", "a quiet pier at dawn", "Two Women Smile"]
    monkeypatch.setattr(llm_prompts.LLMPromptWriter, "write", lambda self, seed, call: written)
    outcome = run_prompts_stage(run, _llm_config(run, llm_dir, count=1))
    assert [p["prompt"] for p in read_jsonl(outcome.path)] == ["a quiet pier at dawn"]
    reasons = {r["prompt"]: r["reasons"] for r in read_jsonl(run / "prompts" / "rejected.jsonl")}
    assert reasons["a fisherman mending nets on a pier"] == [
        {"kind": "person", "text": "fisherman"}
    ]
    assert reasons["Two Women Smile"] == [{"kind": "person", "text": "Women"}]

    other = run.parent / "run-people"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("prompts"))
    config = _llm_config(other, llm_dir, count=3, people=True)
    assert len(read_jsonl(run_prompts_stage(other, config).path)) == 3
