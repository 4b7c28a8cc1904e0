"""The user's decisions on the privacy filter's verdicts: RUN/prompts/overrides.json.

    {"<candidate index>": {"accepted": bool, "note": str}}

The index is the candidate's `index` in the stage's chunks (chunks/accepted-*.jsonl,
rejected.jsonl). Written only by `set_prompt_override` (`dreamclear genir override-prompt`)
and the desktop wizard, never by the prompts stage, so re-running the stage keeps them. The
stage applies them when it writes prompts.jsonl and rejected.jsonl; it records the file's
sha256 in RUN/prompts/final.json, so an override made after the last run shows the stage as
not done (the journal's chunks stay as they are: applying an override draws nothing again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import BadSettingError, OutputError
from engine.imaging.atomic import atomic_write

OVERRIDES = "prompts/overrides.json"
FINAL = "prompts/final.json"
"""{"overrides_sha256": str | null}: the overrides the final files were written with."""


@dataclass(frozen=True)
class PromptOverride:
    accepted: bool
    note: str = ""


def read_prompt_overrides(run: Path) -> dict[int, PromptOverride]:
    """The user's decisions by candidate index ({} when none was made)."""
    path = Path(run) / OVERRIDES
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise TypeError
        overrides = {}
        for key, value in raw.items():
            if not isinstance(value, dict) or not isinstance(value.get("accepted"), bool):
                raise TypeError
            overrides[int(key)] = PromptOverride(value["accepted"], str(value.get("note", "")))
        return overrides
    except (ValueError, TypeError):
        raise OutputError(
            f'{path} is not a prompt overrides file ({{"<index>": {{"accepted": bool, '
            f'"note": str}}}})',
            hint="fix or move it away; the prompts stage never writes it",
        ) from None


def overrides_sha256(run: Path) -> str | None:
    """sha256 of overrides.json (None: no file), to tell whether the final files are stale."""
    path = Path(run) / OVERRIDES
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def written_with(run: Path) -> str | None:
    """The overrides' sha256 the final files were last written with (None: none, or unknown)."""
    try:
        return json.loads((Path(run) / FINAL).read_text(encoding="utf-8"))["overrides_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_written(run: Path, sha256: str | None) -> None:
    data = json.dumps({"overrides_sha256": sha256}).encode() + b"\n"
    atomic_write(Path(run) / FINAL, lambda file: file.write(data), overwrite=True)


def set_prompt_override(run: Path, index: int, accepted: bool, note: str = "") -> PromptOverride:
    """Record the user's decision on candidate `index`, which the stage must have screened."""
    run = Path(run)
    if index not in _screened_indices(run):
        raise BadSettingError(
            f"{run} has no screened prompt with index {index}",
            hint="give the `index` of a line of prompts/prompts.jsonl or prompts/rejected.jsonl "
            f"(run `dreamclear genir prompts {run}` first)",
        )
    overrides = read_prompt_overrides(run)
    override = overrides[index] = PromptOverride(accepted, note)
    text = json.dumps(
        {str(k): asdict(v) for k, v in sorted(overrides.items())}, indent=1, ensure_ascii=False
    )
    atomic_write(run / OVERRIDES, lambda file: file.write((text + "\n").encode()), overwrite=True)
    return override


def _screened_indices(run: Path) -> set[int]:
    indices: set[int] = set()
    for path in sorted((run / "prompts" / "chunks").glob("*.jsonl")):
        with open(path, encoding="utf-8") as file:
            indices.update(int(json.loads(line)["index"]) for line in file)
    return indices
