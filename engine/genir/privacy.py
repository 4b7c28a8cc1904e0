"""The prompt privacy/NSFW filter: rules, not a model, and every rejection says why.

The paper asks a language model to delete prompts with "personal privacy violations or NSFW
material". No such model runs offline here, so the filter is rules over the text; a prompt
lost to a false alarm costs nothing (the generator makes more), a leaked name costs a lot, so
doubtful cases are rejected. Each finding has a kind and the text that matched:

- "email": name@domain.tld.
- "url": http(s)://..., www...., or a bare domain with a common top-level domain.
- "handle": @name (not inside an email).
- "phone": 7 or more digits in one run of digits, spaces, dots, dashes and brackets, or a
  leading + and country code. Camera numbers ("35mm", "1/250", "f/1.8", "24-70mm") pass.
- "address": a house number (with an optional letter) and one to three capitalised words
  ending in a street word ("221B Baker Street", "12 Elm Rd"). "a street at dusk" passes.
- "name": a title and a capitalised word ("Dr Smith", "Mrs. Jones"); a given name from
  resources/genir/given_names.txt, in any case, unless it is also an everyday word or a
  place (rose, dawn, jack, Florence, Sydney...); such a name only counts capitalised and
  followed by a capitalised word that is not a place word ("Grace Kelly" is rejected,
  "Victoria Falls", "Sydney Opera House" and "Bishop Rock lighthouse" pass).
- "nsfw": a word from resources/genir/nsfw_words.txt, whole words, any case, also plural
  ("Sussex" and "sextant" pass).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dreamclear_studio_resources import resource_path

FindingKind = Literal[
    "email", "url", "handle", "phone", "address", "name", "nsfw", "person", "judge"
]
"""The rules' kinds; "person" and "judge" are the prompts stage's later screens (a person in
an LLM-written prompt, a prompt the optional LLM judge deleted)."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NAMES_THAT_ARE_WORDS = _words(
    """Lily Rose Daisy Dawn Grace Summer Autumn Amber Ivy Jade Hazel Florence
    Georgia Jordan Austin Sydney Paris Victoria Mercedes Iris Violet Holly Heather Willow
    Mark Bob Frank Jack Tom Leo Oscar Victor Hugo Li Wei Mei Ana Eva Ali Carol Martin
    Christian""".lower()
)
"""Given names that are also everyday words or places: names only as part of a full name."""

PLACE_WORDS = _words(
    """Falls Lake River Bay Harbour Harbor Opera House Station Street Road Bridge Park Island
    Islands Mountain Mountains Valley Cathedral Castle Tower Square Hill Hills Beach Forest
    Garden Gardens Point Rock Sound Creek Canyon Gate Palace Museum Airport Port City County
    Hall Church Abbey Chapel Market Lighthouse Peak Glacier Desert Coast Cove Head Heights"""
)
"""Capitalised words that after a name-like word make a place, not a person."""

TITLES = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Professor|Sir|Dame|Madam)"
STREET_WORDS = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Place|Pl"
    r"|Way|Terrace|Crescent|Close|Square|Sq|Highway|Hwy|Parkway)"
)
TOP_LEVEL_DOMAINS = r"(?:com|org|net|io|co|uk|de|fr|edu|gov|info|me|ly|app|dev|ai|jp|cn|ru)"

PATTERNS: tuple[tuple[FindingKind, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)),
    ("url", re.compile(rf"\b[\w-]+(?:\.[\w-]+)*\.{TOP_LEVEL_DOMAINS}\b(?:/\S*)?", re.IGNORECASE)),
    ("handle", re.compile(r"(?<![\w.@])@[A-Za-z0-9_]{2,}")),
    ("phone", re.compile(r"(?<![\w/.])\+\d{1,3}[\s.-]?\(?\d[\d\s().-]{4,}\d")),
    ("phone", re.compile(r"(?<![\w/.])\(?\d[\d\s().-]{5,}\d(?![\w/])")),
    ("address", re.compile(rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'-]*\s+){{1,3}}{STREET_WORDS}\b")),
    ("name", re.compile(rf"\b{TITLES}\.?\s+[A-Z][\w'-]+")),
)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    text: str
    """The part of the prompt that matched."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.text!r}"


@functools.cache
def given_names() -> frozenset[str]:
    return _word_list("given_names.txt")


@functools.cache
def nsfw_words() -> frozenset[str]:
    return _word_list("nsfw_words.txt")


def _word_list(name: str) -> frozenset[str]:
    text = resource_path("genir", name).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    return frozenset(word.lower() for line in lines for word in line.split())


WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def check_prompt(prompt: str) -> list[Finding]:
    """Everything in `prompt` that is personal data or NSFW; [] when it may be used.

    A part of the text is reported once, under the first kind it matches in the order of
    `PATTERNS` (an email is not also a URL and a name); NSFW words are always reported."""
    findings: list[Finding] = []
    claimed: list[tuple[int, int]] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(prompt):
            if _overlaps(match.span(), claimed) or _not_a_phone(kind, match.group()):
                continue
            claimed.append(match.span())
            findings.append(Finding(kind, match.group().strip()))
    findings += _names(prompt, claimed)
    findings += [
        Finding("nsfw", m.group())
        for m in WORD.finditer(prompt)
        if _singular(m.group().lower()) & nsfw_words()
    ]
    return list(dict.fromkeys(findings))


def _overlaps(span: tuple[int, int], claimed: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in claimed)


def _not_a_phone(kind: FindingKind, text: str) -> bool:
    """A phone number has at least 7 digits; a year range ("1920-1930") is none."""
    if kind != "phone":
        return False
    digits = sum(c.isdigit() for c in text)
    return digits < 7 or re.fullmatch(r"\d{4}\s*-\s*\d{4}", text) is not None


def _names(prompt: str, claimed: list[tuple[int, int]]) -> list[Finding]:
    words = [m for m in WORD.finditer(prompt) if not _overlaps(m.span(), claimed)]
    findings = []
    for index, match in enumerate(words):
        word = match.group()
        key = word.lower().removesuffix("'s")
        if key not in given_names():
            continue
        if key not in NAMES_THAT_ARE_WORDS:
            findings.append(Finding("name", word))
            continue
        following = words[index + 1] if index + 1 < len(words) else None
        if (
            following is not None
            and prompt[match.end() : following.start()] == " "
            and word[0].isupper()
            and following.group()[0].isupper()
            and following.group() not in PLACE_WORDS
        ):
            findings.append(Finding("name", f"{word} {following.group()}"))
    return findings


def _singular(word: str) -> set[str]:
    return {word, word.removesuffix("s"), word.removesuffix("es")}


@dataclass(frozen=True)
class Screened:
    accepted: list[str]
    rejected: list[tuple[str, list[Finding]]]
    """Each rejected prompt with the reasons."""


def screen(prompts: Iterable[str]) -> Screened:
    """Split `prompts` into those that may be used and those rejected, with reasons."""
    accepted: list[str] = []
    rejected: list[tuple[str, list[Finding]]] = []
    for prompt in prompts:
        findings = check_prompt(prompt)
        if findings:
            rejected.append((prompt, findings))
        else:
            accepted.append(prompt)
    return Screened(accepted, rejected)
