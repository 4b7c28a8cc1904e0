"""Faults injected by the engine's own tests through `DREAMCLEAR_TEST_FAULTS`.

A comma-separated list of `fault:name-part` entries, read once when the engine starts. Unset,
it changes nothing. `oom:PART` makes the first attempt of each restore job whose input file
name contains PART raise torch.OutOfMemoryError, to exercise the retry with halved tiles.
"""

from __future__ import annotations

import os

TEST_FAULTS_ENV = "DREAMCLEAR_TEST_FAULTS"


def parse_faults(text: str) -> dict[str, str]:
    """`"oom:photo"` -> {"oom": "photo"}."""
    faults = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, target = entry.partition(":")
        faults[name] = target
    return faults


def faults_from_environment() -> dict[str, str]:
    return parse_faults(os.environ.get(TEST_FAULTS_ENV, ""))
