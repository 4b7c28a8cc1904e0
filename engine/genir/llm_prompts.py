"""Scene descriptions written by a local instruct LLM, as the paper makes its prompts.

Each call asks for `lines` descriptions, one per line, under `PRIVACY_INSTRUCTION` (the paper
says its instructions forbid personal or sensitive content but does not print them: this
wording is ours). To spread the descriptions over many kinds of scene, each call names a few
scene kinds drawn from the template generator's list with the call's seed. The answer is
parsed one description per line: list markers and quotes are stripped, headers (ending in
":"), one-word lines, over-long lines and repeats are dropped, and so is the last line of an
answer cut at the token limit (it is unfinished). The privacy filter screens the rest later,
like the template's prompts, and, unless `prompts.people`, `person_findings` rejects those
that put a person in the scene (the instruction forbids it; a model may not obey).

Call `k` of a run is seeded with `item_seed(run seed, k)`: on the same machine and software a
call gives the same text, so a resumed run draws what an uninterrupted one would; another
GPU, driver or transformers version may give other text (engine.genir.local_models).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from engine.genir.local_models import chat, load_text_model
from engine.genir.privacy import Finding
from engine.genir.prompts import SCENES
from engine.jobs.journal import item_seed

PRIVACY_INSTRUCTION = (
    "You write short descriptions of photographs for an image generator. Describe places, "
    "landscapes, buildings, objects, plants, animals, materials, light and weather. Never "
    "mention a real or named person, a face, personal data (names, addresses, phone numbers, "
    "email addresses, user names, web addresses), brands, or violent, sexual or otherwise "
    "inappropriate content."
)
SCENE_HINTS = 3
"""Scene kinds named in each request, for variety between calls."""
TOKENS_PER_LINE = 60
"""The answer's token budget per asked line (a description is 15 to 40 tokens)."""
MAX_CHARS = 400
"""Longer lines are not descriptions (SDXL reads 77 tokens anyway)."""

_PERSON_TEXT = """man men woman women person persons people boy boys girl girls child children kid kids
    baby babies face faces portrait portraits selfie lady ladies gentleman gentlemen guy guys
    teenager teenagers crowd crowds tourist tourists fisherman fishermen farmer
    farmers worker workers vendor vendors pedestrian pedestrians passer-by passers-by rider
    riders hiker hikers bride groom dancer dancers musician musicians"""
PERSON_WORDS = frozenset(_PERSON_TEXT.split())
"""Words that put a person in a scene. The template adds people only with `prompts.people`;
an LLM may write them in spite of its instruction, so its prompts are screened for these."""
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\(?\d+[.):])\s*")


class LLMPromptWriter:
    """Writes scene descriptions with a local instruct LLM (see the module docstring)."""

    def __init__(self, tokenizer: Any, model: Any, lines: int = 20):
        self.tokenizer = tokenizer
        self.model = model
        self.lines = lines

    @classmethod
    def from_folder(cls, folder: str | Path, lines: int = 20) -> LLMPromptWriter:
        return cls(*load_text_model(folder), lines=lines)

    def request(self, seed: int, call: int) -> list[dict[str, str]]:
        """The chat messages of call `call` of a run seeded `seed`."""
        rng = random.Random(item_seed(seed, call))
        hints = ", ".join(scene.text for scene in rng.sample(SCENES, SCENE_HINTS))
        ask = (
            f"Write {self.lines} different descriptions of photographs, one per line, each "
            f"a single sentence of 10 to 30 words. Include scenes such as {hints}, and "
            "others of your own. Write only the descriptions: no numbering, no title."
        )
        return [
            {"role": "system", "content": PRIVACY_INSTRUCTION},
            {"role": "user", "content": ask},
        ]

    def write(self, seed: int, call: int) -> list[str]:
        """The descriptions of call `call` of a run seeded `seed` (parsed, not screened)."""
        answer, finished = chat(
            self.tokenizer,
            self.model,
            self.request(seed, call),
            max_new_tokens=TOKENS_PER_LINE * self.lines,
            seed=item_seed(seed, call),
        )
        return parse_descriptions(answer, finished=finished)


def person_findings(prompt: str) -> list[Finding]:
    """A finding of kind "person" for each person word in `prompt` ([] when there is none)."""
    words = (m.group() for m in _WORD.finditer(prompt))
    return [Finding("person", w) for w in dict.fromkeys(words) if w.lower() in PERSON_WORDS]


def parse_descriptions(answer: str, *, finished: bool = True) -> list[str]:
    """One description per line of `answer` (see the module docstring for what is dropped)."""
    lines = answer.splitlines()
    if not finished and lines:
        lines = lines[:-1]
    found: list[str] = []
    for line in lines:
        text = " ".join(_LIST_MARKER.sub("", line, count=1).split()).strip("\"'\u201c\u201d")
        if len(text.split()) < 2 or len(text) > MAX_CHARS or text.endswith(":"):
            continue
        if text not in found:
            found.append(text)
    return found
