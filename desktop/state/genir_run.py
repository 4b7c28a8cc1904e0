"""What a GenIR run folder holds, read from its files (no Qt, no engine internals).

The run folder is the truth (docs/genir.md): the wizard keeps no record of its own and reads
this again whenever a stage reports progress or ends, and when a run is reopened. The layout
is the engine's contract (BRIEF "Shared contracts"):

    RUN/genir.toml                     the config
    RUN/pairs/caption/*.txt            one per finished pair (stage "pairs")
    RUN/finetune/learned_prompts.json  the fine-tuning's result
    RUN/prompts/prompts.jsonl          accepted prompts, rejected.jsonl beside it;
                                       overrides.json the user's, final.json the sha256 of
                                       the overrides the two were written with
    RUN/generate/images/{key:06d}.png  generated images
    RUN/filter/verdicts.jsonl          one verdict per image; overrides.json the user's
    RUN/export/dataset.json            the exported dataset's summary (manifest.jsonl and
                                       train-starter.toml beside it)

Reading is cheap (directory listings and small files) except the image sizes of the sources,
which `scan_sources` reads from the files' headers; call that off the GUI thread.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

CONFIG_NAME = "genir.toml"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
STAGES = ("pairs", "finetune", "prompts", "generate", "filter", "export")
"""The engine's stages in the order the wizard runs them (each needs the ones before)."""
DEFAULT_MIN_SIDE = 512
"""pairs.min_side's default in the engine's config, used when genir.toml leaves it out."""


@dataclass(frozen=True)
class SourceImage:
    path: Path
    key: str
    """Its path from the images folder, POSIX style (the engine's key for it)."""
    size: tuple[int, int] | None
    """Width and height; None when it cannot be read."""
    problem: str = ""
    """Why the pairs stage will skip it ("" when it is usable)."""

    @property
    def caption_path(self) -> Path:
        """Its sidecar caption file, which wins over every other caption source."""
        return self.path.with_suffix(".txt")


@dataclass(frozen=True)
class Sources:
    images: list[SourceImage]

    @property
    def usable(self) -> list[SourceImage]:
        return [image for image in self.images if not image.problem]

    @property
    def skipped(self) -> list[SourceImage]:
        return [image for image in self.images if image.problem]

    @property
    def captioned(self) -> int:
        return sum(1 for image in self.usable if image.caption_path.is_file())


def find_images(folder: Path) -> list[Path]:
    """The image files under `folder`, recursively, in a stable order (as the engine finds them)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def scan_sources(folder: Path, min_side: int) -> Sources:
    """Every image under `folder` with its size and, for those the pairs stage will skip,
    why (the same rule as the engine's: unreadable, or shorter side below `min_side`)."""
    images = []
    for path in find_images(folder):
        key = path.relative_to(folder).as_posix()
        try:
            with Image.open(path) as image:  # reads the header only
                size = image.size
        except (UnidentifiedImageError, OSError) as error:
            images.append(SourceImage(path, key, None, f"not a readable image ({error})"))
            continue
        problem = ""
        if min(size) < min_side:
            problem = f"{size[0]}x{size[1]} px: shorter side below the minimum of {min_side} px"
        images.append(SourceImage(path, key, size, problem))
    return Sources(images)


@dataclass
class RunState:
    """How far a run got. `complete[stage]` says whether a stage's results are all there."""

    run: Path
    config: dict[str, Any] = field(default_factory=dict)
    config_error: str = ""
    pairs: int = 0
    finetuned: bool = False
    prompts: int = 0
    rejected_prompts: int = 0
    prompts_stale: bool = False
    """The user overrode a privacy verdict since prompts.jsonl was written."""
    generated: int = 0
    verdicts: int = 0
    accepted: int = 0
    """Verdicts accepted, overrides applied."""
    exported: bool = False
    complete: dict[str, bool] = field(default_factory=dict)
    started: dict[str, bool] = field(default_factory=dict)
    """Whether any of a stage's results are there."""

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name, {})
        return value if isinstance(value, dict) else {}

    @property
    def images_folder(self) -> Path | None:
        images = self.config.get("images")
        return self.run / images if isinstance(images, str) else None

    @property
    def prompts_wanted(self) -> int:
        return int(self.section("prompts").get("count", 1000))

    @property
    def next_stage(self) -> str | None:
        """The stage the run reached: the last one with any results if they are not all
        there, else the one after it (None: the run is exported). Stages run out of order
        (prompts before the fine-tuning, from the command line) count by the furthest."""
        reached = [stage for stage in STAGES if self.started.get(stage)]
        if not reached:
            return STAGES[0]
        last = reached[-1]
        if not self.complete.get(last):
            return last
        index = STAGES.index(last) + 1
        return STAGES[index] if index < len(STAGES) else None


def read_run(run: Path, usable_sources: int | None = None) -> RunState:
    """How far `run` got, from its files. `usable_sources` (from `scan_sources`) tells when
    the pairs are complete; without it, any pair counts as a start and the pairs stage is
    complete once the fine-tuning has begun on them."""
    run = Path(run)
    state = RunState(run)
    try:
        with open(run / CONFIG_NAME, "rb") as file:
            state.config = tomllib.load(file)
    except OSError as error:
        state.config_error = f"no {CONFIG_NAME} in {run} ({error.strerror})"
    except tomllib.TOMLDecodeError as error:
        state.config_error = f"{CONFIG_NAME} is not valid TOML: {error}"
    state.pairs = _count(run / "pairs" / "caption", "*.txt")
    state.finetuned = (run / "finetune" / "learned_prompts.json").is_file()
    prompts_file = run / "prompts" / "prompts.jsonl"
    state.prompts = count_lines(prompts_file)
    state.rejected_prompts = count_lines(run / "prompts" / "rejected.jsonl")
    state.prompts_stale = prompts_file.is_file() and prompt_overrides_stale(run)
    state.generated = _count(run / "generate" / "images", "*.png")
    verdicts = read_verdicts(run)
    overrides = read_overrides(run)
    state.verdicts = len(verdicts)
    state.accepted = sum(1 for v in verdicts if decided(v, overrides.get(str(v.get("key"))), None))
    state.exported = any((run / "export" / name).is_file() for name in EXPORT_MARKERS)
    if usable_sources is None:
        pairs_done = state.pairs > 0 and state.finetuned
    else:
        pairs_done = state.pairs > 0 and state.pairs >= usable_sources
    state.complete = {
        "pairs": pairs_done,
        "finetune": state.finetuned,
        "prompts": prompts_file.is_file()
        and state.prompts >= state.prompts_wanted
        and not state.prompts_stale,
        "generate": state.prompts > 0 and state.generated >= state.prompts,
        "filter": state.verdicts > 0 and state.verdicts >= state.generated,
        "export": state.exported,
    }
    state.started = {
        "pairs": state.pairs > 0,
        "finetune": state.finetuned,
        "prompts": state.prompts > 0,
        "generate": state.generated > 0,
        "filter": state.verdicts > 0,
        "export": state.exported,
    }
    return state


EXPORT_MARKERS = ("dataset.json",)
"""The export stage's summary, written after its images and manifest: its presence means the
export finished."""


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The complete JSON lines of `path` (a line torn by a crash is left out); [] if absent."""
    records: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                if limit is not None and len(records) >= limit:
                    break
                if not line.endswith("\n"):
                    break
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        return []
    return records


def read_verdicts(run: Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(run) / "filter" / "verdicts.jsonl")


def read_overrides(run: Path) -> dict[str, dict[str, Any]]:
    """The user's decisions, {"<key>": {"accepted": bool, "note": str}}; {} if none."""
    try:
        data = json.loads((Path(run) / "filter" / "overrides.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def read_prompt_overrides(run: Path) -> dict[str, dict[str, Any]]:
    """The user's decisions on the privacy filter's verdicts, {"<candidate index>":
    {"accepted": bool, "note": str}} (RUN/prompts/overrides.json); {} if none."""
    try:
        data = json.loads((Path(run) / "prompts" / "overrides.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def prompt_overrides_stale(run: Path) -> bool:
    """Whether prompts/overrides.json differs from the one the prompts stage last applied
    (its sha256 in prompts/final.json, as the engine's stage check reads it)."""
    path = Path(run) / "prompts" / "overrides.json"
    now = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    try:
        final = json.loads((Path(run) / "prompts" / "final.json").read_text(encoding="utf-8"))
        applied = final.get("overrides_sha256") if isinstance(final, dict) else None
    except (OSError, json.JSONDecodeError):
        applied = None
    return now != applied


def decided(
    verdict: dict[str, Any], override: dict[str, Any] | None, threshold: float | None
) -> bool:
    """Whether an image is kept: the user's override wins; else the verdict, or, with a
    `threshold`, the verdict with its quality reason judged again at that threshold (the
    other reasons, faces and the judge, stand)."""
    if override is not None and isinstance(override.get("accepted"), bool):
        return override["accepted"]
    if threshold is None:
        return bool(verdict.get("accepted"))
    others = [r for r in verdict.get("reasons", []) if r.get("kind") != "quality"]
    return not others and float(verdict.get("quality", 0.0)) >= threshold


def count_lines(path: Path) -> int:
    """Complete lines in `path`; 0 if absent."""
    try:
        with open(path, "rb") as file:
            return sum(1 for line in file if line.endswith(b"\n"))
    except OSError:
        return 0


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def finetune_samples(run: Path) -> list[tuple[Path, Path]]:
    """The newest same-seed sample pairs of the fine-tuning (base, learned), one per caption:
    `base-NNN.png` and `NNN.png` of the last RUN/finetune/train/validation/step_N/ holding any
    (engine/genir/finetune_samples.py writes them at the end of a run)."""
    folder = run / "finetune" / "train" / "validation"
    steps = sorted(folder.glob("step_*"), reverse=True) if folder.is_dir() else []
    for step in steps:
        pairs = [
            (base, step / base.name.removeprefix("base-"))
            for base in sorted(step.glob("base-*.png"))
            if (step / base.name.removeprefix("base-")).is_file()
        ]
        if pairs:
            return pairs
    return []
