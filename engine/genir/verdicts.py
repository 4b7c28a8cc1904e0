"""GenIR's filter decisions on disk: the stage's verdicts and the user's overrides.

    RUN/filter/verdicts.jsonl   one line per generated image, written whole by the filter
                                stage (atomically), in key order:
        {"key": 0, "image": "generate/images/000000.png", "accepted": true,
         "quality": 0.93, "faces": 0, "judge": null | {"ok": bool, "reason": str},
         "reasons": [{"kind": "quality" | "faces" | "judge", "text": str}],
         "prompt": str, "override": null | {"accepted": bool, "note": str}}
    RUN/filter/overrides.json   the user's decisions, {"<key>": {"accepted": bool, "note": str}},
                                written only by `set_override` (the CLI's `genir override`,
                                the wizard), never by the filter stage.

`accepted` and `reasons` are the filter's own (it rejects an image for its reasons, keeps it
when there are none); `override` records the user's decision as it was when the line was
written. The final decision is the override's when there is one, else `accepted`:
`final_decisions(run)` applies overrides.json afresh, so an override made after the last
filter run counts at once (the export stage reads them the same way). Rejected images stay
where they are: nothing here moves a file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import BadSettingError, OutputError
from engine.genir.judge import JudgeVerdict
from engine.imaging.atomic import atomic_write

FOLDER = "filter"
VERDICTS = "verdicts.jsonl"
OVERRIDES = "overrides.json"
IMAGES = "generate/images"
"""Where the generated images are, relative to the run folder."""

ReasonKind = Literal["quality", "faces", "judge"]


def filter_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def image_name(key: int) -> str:
    """The generated image of prompt `key`, relative to the run folder."""
    return f"{IMAGES}/{key:06d}.png"


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    text: str


@dataclass(frozen=True)
class Override:
    accepted: bool
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    key: int
    image: str
    """The image, relative to the run folder."""
    accepted: bool
    """The filter's own decision: no reasons to reject (an override does not change it)."""
    quality: float
    """The quality classifier's P(positive)."""
    faces: int
    """Faces the detector found."""
    judge: JudgeVerdict | None = None
    """The multimodal judge's verdict; None when the judge is off."""
    reasons: tuple[Reason, ...] = ()
    """Why the filter rejects the image (empty: it keeps it)."""
    prompt: str = ""
    override: Override | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "image": self.image,
            "accepted": self.accepted,
            "quality": self.quality,
            "faces": self.faces,
            "judge": self.judge._asdict() if self.judge else None,
            "reasons": [asdict(reason) for reason in self.reasons],
            "prompt": self.prompt,
            "override": asdict(self.override) if self.override else None,
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Verdict:
        judge, override = entry.get("judge"), entry.get("override")
        return cls(
            key=int(entry["key"]),
            image=str(entry["image"]),
            accepted=bool(entry["accepted"]),
            quality=float(entry["quality"]),
            faces=int(entry["faces"]),
            judge=JudgeVerdict(bool(judge["ok"]), str(judge["reason"])) if judge else None,
            reasons=tuple(Reason(r["kind"], r["text"]) for r in entry.get("reasons", [])),
            prompt=str(entry.get("prompt", "")),
            override=Override(bool(override["accepted"]), str(override.get("note", "")))
            if override
            else None,
        )

    @property
    def final(self) -> bool:
        """Kept: the override's decision when there is one, else the filter's."""
        return self.override.accepted if self.override else self.accepted

    def with_override(self, override: Override | None) -> Verdict:
        """This verdict with `override` recorded (None: none)."""
        return dataclasses.replace(self, override=override)


# ----------------------------------------------------------------------------- verdicts


def read_verdicts(run: Path) -> list[Verdict]:
    """The verdicts of the last filter run (empty when the filter has not run)."""
    path = filter_folder(run) / VERDICTS
    if not path.is_file():
        return []
    verdicts = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            try:
                verdicts.append(Verdict.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                raise OutputError(
                    f"{path}: line {number} is not a verdict",
                    hint="run `dreamclear genir filter RUN` again to rewrite it",
                ) from None
    return verdicts


def write_verdicts(run: Path, verdicts: list[Verdict]) -> Path:
    """Replace verdicts.jsonl with `verdicts` (atomically: readers see the old or the new)."""
    path = filter_folder(run) / VERDICTS
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        json.dumps(v.to_json(), ensure_ascii=False, allow_nan=False) + "\n" for v in verdicts
    )
    atomic_write(path, lambda file: file.write(text.encode()), overwrite=True)
    return path


def final_decisions(run: Path) -> dict[int, bool]:
    """key -> kept, for every image the filter judged, the current overrides applied."""
    overrides = read_overrides(run)
    return {v.key: v.with_override(overrides.get(v.key)).final for v in read_verdicts(run)}


# ----------------------------------------------------------------------------- overrides


def read_overrides(run: Path) -> dict[int, Override]:
    """The user's decisions by key (empty when none was made)."""
    path = filter_folder(run) / OVERRIDES
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            int(key): Override(bool(value["accepted"]), str(value.get("note", "")))
            for key, value in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise OutputError(
            f'{path} is not an overrides file ({{"<key>": {{"accepted": bool, "note": str}}}})',
            hint="fix or move it away; the filter never writes it",
        ) from None


def set_override(run: Path, key: int, accepted: bool, note: str = "") -> Override:
    """Record the user's decision on image `key` (which must exist) in overrides.json and,
    when the filter has run, in verdicts.jsonl too. Returns the override."""
    run = Path(run)
    if not (run / image_name(key)).is_file():
        raise BadSettingError(
            f"{run} has no generated image {key} ({image_name(key)})",
            hint="give the key of a generated image (see RUN/filter/verdicts.jsonl)",
        )
    overrides = read_overrides(run)
    override = overrides[key] = Override(accepted, note)
    folder = filter_folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(
        {str(k): asdict(v) for k, v in sorted(overrides.items())}, indent=1, ensure_ascii=False
    )
    atomic_write(
        folder / OVERRIDES, lambda file: file.write((text + "\n").encode()), overwrite=True
    )
    verdicts = read_verdicts(run)
    if verdicts:
        write_verdicts(run, [v.with_override(overrides.get(v.key)) for v in verdicts])
    return override
