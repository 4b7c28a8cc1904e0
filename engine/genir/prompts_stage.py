"""GenIR's "prompts" stage: scene descriptions drawn, screened for privacy, journalled.

Candidates come from the seeded template generator in chunks of `CHUNK_SIZE`, or with
`prompts.source = "llm"` from a local instruct LLM, one call of `prompts.llm_lines` per chunk
(engine.genir.llm_prompts, call k seeded from the run seed and k). Each chunk is screened
(engine.genir.privacy; then, for the LLM source without `prompts.people`, for person words,
reason kind "person"; then, with `prompts.llm_judge`, by the LLM judge of
engine.genir.judges, reason kind "judge") and written as one journal item (engine.jobs.journal) with
two files, so a killed run resumes at the first unfinished chunk and redoes nothing else:

    RUN/prompts/journal.jsonl
    RUN/prompts/chunks/accepted-000000.jsonl   {"index": 12, "prompt": "..."}
    RUN/prompts/chunks/rejected-000000.jsonl   {"index": 13, "prompt": "...",
                                                "reasons": [{"kind": "name", "text": "..."}]}

Chunks are drawn until `prompts.count` prompts are accepted; then the stage's results are
written whole (atomically): `prompts.jsonl`, exactly `count` accepted prompts with their key
(0, 1, ...) for later stages, and `rejected.jsonl`, every rejected prompt with its reasons.
The count is not a journal setting: the generator is prefix-stable, so a run asked for more
prompts later keeps its chunks and draws more; the seed and `people` are, so a resume under
others is refused, naming the setting.

The user's overrides (RUN/prompts/overrides.json, engine.genir.prompt_overrides) win when the
final files are written: a rejected candidate the user keeps is accepted, and always among
the `count` (its reasons stay in its line, beside "override"); an accepted one the user drops
goes to rejected.jsonl with the reason {"kind": "override", "text": note}. Chunks are counted with the overrides applied, so
drops that leave too few prompts draw further chunks. The chunks themselves never change: a
re-run after an override only writes the final files again (final.json records the
overrides file's sha256, so the stage shows as not done until then).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import BadInputError
from engine.genir.config import GenIRConfig
from engine.genir.privacy import Finding, screen
from engine.genir.prompt_overrides import (
    PromptOverride,
    overrides_sha256,
    read_prompt_overrides,
    record_written,
)
from engine.genir.prompts import iter_scene_prompts
from engine.imaging.atomic import atomic_write
from engine.jobs.journal import Journal, JournalHeader

KIND = "genir.prompts"
CHUNK_SIZE = 1000
"""Candidates per journal item: small enough that a kill loses little, large enough that a
million-prompt run journals only a thousand items."""
GENERATOR_VERSION = 1
"""Bumped when the template generator's output for a seed changes."""
FOLDER = "prompts"
ACCEPTED = "prompts.jsonl"
REJECTED = "rejected.jsonl"
JOURNAL = "journal.jsonl"
MAX_EMPTY_CHUNKS = 5
"""Chunks in a row with no accepted prompt before the stage stops, rather than loop forever
on a model that writes nothing usable or a judge that deletes everything."""
JUDGE_REASON = "deleted by the LLM judge (the paper's prompt instruction)"


def stage_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def chunk_files(run: Path, chunk: int) -> tuple[Path, Path]:
    """The accepted and rejected files of chunk `chunk`."""
    folder = stage_folder(run) / "chunks"
    return folder / f"accepted-{chunk:06d}.jsonl", folder / f"rejected-{chunk:06d}.jsonl"


@dataclass(frozen=True)
class PromptsOutcome:
    accepted: int
    """Prompts in prompts.jsonl (the config's count)."""
    rejected: int
    """Prompts in rejected.jsonl."""
    chunks_done: int
    """Chunks screened in this call (0 when everything was journalled already)."""
    path: Path
    """prompts.jsonl."""


def run_prompts_stage(
    run: Path,
    config: GenIRConfig,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> PromptsOutcome:
    """Draw, screen and journal prompts until `config.prompts.count` are accepted, then write
    the stage's results. `check_cancelled` is called between chunks (it raises to stop);
    `report(accepted so far, wanted)` after each."""
    wanted = config.prompts.count
    folder = stage_folder(run)
    (folder / "chunks").mkdir(parents=True, exist_ok=True)
    header = JournalHeader(KIND, _settings(config))
    draw = _candidates(config)
    screens = _screens(config)
    overrides = read_prompt_overrides(run)
    sha256 = overrides_sha256(run)
    accepted = screened = empty = 0
    with Journal.open(folder / JOURNAL, header) as journal:
        for chunk in itertools.count():
            if accepted >= wanted:
                break
            if chunk in journal:
                made = journal.items[chunk].metadata["accepted"]
                accepted += _with_overrides(run, chunk, made, overrides)
                continue
            check_cancelled()
            made = _screen_chunk(journal, run, chunk, draw(chunk), screens)
            accepted += _with_overrides(run, chunk, made, overrides)
            screened += 1
            empty = 0 if made else empty + 1
            if empty >= MAX_EMPTY_CHUNKS:
                raise BadInputError(
                    f"{empty} chunks of prompts in a row gave no accepted prompt "
                    f"(see {folder / 'chunks'}).",
                    hint="the language model writes no usable descriptions, or the judge "
                    "deletes them all: try another prompts.llm_model, or prompts.source = "
                    '"template", or prompts.llm_judge = false',
                )
            report(min(accepted, wanted), wanted)
        used = chunk
    kept, rejected = _gather(run, used, wanted, overrides)
    _write_lines(folder / ACCEPTED, kept)
    _write_lines(folder / REJECTED, rejected)
    record_written(run, sha256)
    return PromptsOutcome(len(kept), len(rejected), screened, folder / ACCEPTED)


def _settings(config: GenIRConfig) -> dict[str, Any]:
    prompts = config.prompts
    settings: dict[str, Any] = {
        "seed": config.seed,
        "people": prompts.people,
        "chunk_size": CHUNK_SIZE,
        "generator": GENERATOR_VERSION,
    }
    # Added only when used, so runs from before these settings existed still resume.
    if prompts.source != "template":
        settings |= {"source": prompts.source, "llm_lines": prompts.llm_lines}
    if prompts.source == "llm" or prompts.llm_judge:
        settings["llm_model"] = str(Path(prompts.llm_model).resolve())
    if prompts.llm_judge:
        settings["llm_judge"] = True
    return settings


def _candidates(config: GenIRConfig) -> Callable[[int], list[str]]:
    """chunk index -> that chunk's candidate prompts. The template's chunks are consecutive
    slices of one seeded stream, so chunks before the asked one are drawn and dropped."""
    prompts = config.prompts
    if prompts.source == "llm":
        from engine.genir.llm_prompts import LLMPromptWriter

        writer = LLMPromptWriter.from_folder(prompts.llm_model, lines=prompts.llm_lines)
        return lambda chunk: writer.write(config.seed, chunk)
    stream = iter_scene_prompts(config.seed, people=prompts.people)
    position = 0

    def template_chunk(chunk: int) -> list[str]:
        nonlocal position
        for _ in range(position, chunk):
            for _ in itertools.islice(stream, CHUNK_SIZE):
                pass
        position = chunk + 1
        return list(itertools.islice(stream, CHUNK_SIZE))

    return template_chunk


Screen = Callable[[list[str]], list[list[Finding]]]
"""A screen after the privacy filter: each prompt's findings, [] to keep it."""


def _screens(config: GenIRConfig) -> list[Screen]:
    """The LLM source's person screen (unless `people`), then the LLM judge (when asked)."""
    prompts = config.prompts
    screens: list[Screen] = []
    if prompts.source == "llm" and not prompts.people:
        from engine.genir.llm_prompts import person_findings

        screens.append(lambda batch: [person_findings(p) for p in batch])
    if prompts.llm_judge:
        from engine.genir.judges import PromptJudge

        judge = PromptJudge.from_folder(prompts.llm_model)
        verdict = [Finding("judge", JUDGE_REASON)]
        screens.append(lambda batch: [[] if ok else verdict for ok in judge(batch)])
    return screens


def _screen_chunk(
    journal: Journal, run: Path, chunk: int, prompts: list[str], screens: list[Screen]
) -> int:
    first = chunk * CHUNK_SIZE
    result = screen(prompts)
    index = {prompt: first + offset for offset, prompt in enumerate(prompts)}
    passed = result.accepted
    rejected_pairs = list(result.rejected)
    for extra in screens:
        if not passed:
            break
        findings = extra(passed)
        rejected_pairs += [(p, f) for p, f in zip(passed, findings, strict=True) if f]
        passed = [p for p, f in zip(passed, findings, strict=True) if not f]
    accepted = [{"index": index[p], "prompt": p} for p in passed]
    rejected = [
        {
            "index": index[p],
            "prompt": p,
            "reasons": [{"kind": f.kind, "text": f.text} for f in findings],
        }
        for p, findings in sorted(rejected_pairs, key=lambda pair: index[pair[0]])
    ]
    accepted_path, rejected_path = chunk_files(run, chunk)
    journal.write(
        chunk,
        {accepted_path: _jsonl(accepted), rejected_path: _jsonl(rejected)},
        {"accepted": len(accepted), "rejected": len(rejected)},
    )
    return len(accepted)


def _with_overrides(run: Path, chunk: int, made: int, overrides: dict[int, PromptOverride]) -> int:
    """Chunk `chunk`'s accepted prompts (`made` by the screens) with the overrides applied.
    A chunk's candidates have indices chunk * CHUNK_SIZE onwards (fewer for the LLM source)."""
    first = chunk * CHUNK_SIZE
    if not any(first <= index < first + CHUNK_SIZE for index in overrides):
        return made
    return sum(1 for line in _decided(run, chunk, overrides) if line[0])


def _decided(
    run: Path, chunk: int, overrides: dict[int, PromptOverride]
) -> list[tuple[bool, dict[str, Any]]]:
    """Chunk `chunk`'s candidates in index order, each (kept, its line), overrides applied:
    the line records the override; a dropped one gets the reason "override"."""
    accepted_path, rejected_path = chunk_files(run, chunk)
    lines = [(True, line) for line in read_jsonl(accepted_path)]
    lines += [(False, line) for line in read_jsonl(rejected_path)]
    decided = []
    for screened, line in sorted(lines, key=lambda pair: pair[1]["index"]):
        override = overrides.get(line["index"])
        if override is None:
            decided.append((screened, line))
            continue
        line = {**line, "override": {"accepted": override.accepted, "note": override.note}}
        if not override.accepted:
            reason = {"kind": "override", "text": override.note or "dropped by the user"}
            line["reasons"] = [*line.get("reasons", []), reason]
        decided.append((override.accepted, line))
    return decided


def _gather(
    run: Path, chunks: int, wanted: int, overrides: dict[int, PromptOverride]
) -> tuple[list[dict], list[dict]]:
    """`wanted` accepted prompts of chunks 0..chunks-1 (overrides applied), keyed in candidate
    order, and the rejects. The prompts the user kept always count (a kept one late in the
    last chunk would otherwise fall beyond the count and be in neither file); the first
    accepted others fill the rest."""
    decided = [line for chunk in range(chunks) for line in _decided(run, chunk, overrides)]
    forced = sum(1 for kept, line in decided if kept and "override" in line)
    others = max(wanted - forced, 0)
    kept: list[dict] = []
    rejected: list[dict] = []
    for accepted, line in decided:
        if not accepted:
            rejected.append(line)
        elif len(kept) < wanted and ("override" in line or others > 0):
            others -= "override" not in line
            kept.append({"key": len(kept), **line})
    return kept, rejected


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def _jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    data = _jsonl(records)
    atomic_write(path, lambda file: file.write(data), overwrite=True)
