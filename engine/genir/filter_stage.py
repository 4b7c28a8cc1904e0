"""GenIR's "filter" stage (end of stage 3): which generated images the dataset keeps.

Every RUN/generate/images/{key:06d}.png (key: its prompt's in RUN/prompts/prompts.jsonl) is
scored by the quality classifier (P(positive), engine.genir.quality_classifier), the face
detector (faces found, engine.genir.faces) and, with `filter.judge`, the multimodal judge
(engine.genir.judge). Scores are journalled per image, one journal per scorer:

    RUN/filter/scores/quality.jsonl   settings: the classifier weights' sha256 and shape
    RUN/filter/scores/faces.jsonl     settings: the detector's
    RUN/filter/scores/judge.jsonl     settings: the judge's identity and instruction

so a killed run resumes at the first unscored image, a changed image (another size) is scored
again, and a scorer whose settings changed (a retrained classifier, another judge) starts its
journal afresh (the old one is kept as NAME.previous.jsonl) while the others keep theirs.
Thresholds are not in the journals: a run with another `quality_threshold` or `max_faces`
scores nothing and only decides again. The decisions, with the user's overrides
(RUN/filter/overrides.json, which win), are written whole to RUN/filter/verdicts.jsonl
(engine.genir.verdicts). No image is deleted or moved.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from engine.errors import BadInputError, BadSettingError
from engine.genir.config import GenIRConfig
from engine.genir.judge import Judge, JudgeVerdict, judge_identity, load_judge
from engine.genir.verdicts import (
    IMAGES,
    Reason,
    Verdict,
    filter_folder,
    image_name,
    read_overrides,
    write_verdicts,
)
from engine.jobs.journal import Journal, JournalHeader

if TYPE_CHECKING:  # torch: imported when the stage runs, not with the module
    from engine.genir.quality_classifier import LoadedClassifier

logger = logging.getLogger(__name__)

VERSION = 1
"""Bumped when a scorer's numbers for the same settings change."""
SCORES = "scores"
_IMAGE_NAME = re.compile(r"^\d{6,}$")


@dataclass(frozen=True)
class FilterOutcome:
    images: int
    """Generated images judged."""
    accepted: int
    """Of them, kept (overrides applied)."""
    scored: int
    """Images scored in this call (the rest came from the journals)."""
    path: Path
    """RUN/filter/verdicts.jsonl."""


def generated_images(run: Path) -> dict[int, Path]:
    """key -> path of every generated image (RUN/generate/images/NNNNNN.png)."""
    folder = Path(run) / IMAGES
    if not folder.is_dir():
        return {}
    return {
        int(path.stem): path
        for path in folder.iterdir()
        if path.suffix == ".png" and _IMAGE_NAME.match(path.stem)
    }


def read_prompts(run: Path) -> dict[int, str]:
    """key -> prompt from RUN/prompts/prompts.jsonl (empty when there is none)."""
    path = Path(run) / "prompts" / "prompts.jsonl"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as file:
        return {entry["key"]: entry["prompt"] for entry in map(json.loads, file)}


def run_filter_stage(
    run: Path,
    config: GenIRConfig,
    *,
    judge: Judge | None = None,
    classifier: LoadedClassifier | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> FilterOutcome:
    """Score every generated image not scored yet, then decide them all and write
    verdicts.jsonl. `judge` is used when `filter.judge` is true (default: the store's
    `genir-judge`, engine.genir.judge.load_judge); `classifier` is a
    `LoadedClassifier` (default: the run's, a clear error naming the train command when it has
    none); `check_cancelled` is called between images (it raises to stop); `report(images
    scored, images)` after each."""
    from engine.genir.faces import FaceDetector
    from engine.genir.quality_classifier import load_classifier, weights_sha256

    run = Path(run)
    settings = config.filter
    images = generated_images(run)
    if not images:
        raise BadSettingError(
            f"{run} has no generated images in {IMAGES}",
            hint="run the generation stage first (`dreamclear genir generate RUN`)",
        )
    prompts = read_prompts(run)
    orphans = sorted(set(images) - set(prompts))
    if orphans:
        logger.warning("%d generated images have no prompt in prompts.jsonl", len(orphans))
    if classifier is None:
        classifier = load_classifier(run)
        classifier_sha = weights_sha256(run)
    else:
        classifier_sha = classifier.info.get("weights_sha256", "")
    if not settings.judge:
        judge = None
    elif judge is None:
        judge = load_judge(run, settings)
    detector = FaceDetector(
        detection_side=settings.face_detection_side,
        min_neighbors=settings.face_min_neighbors,
        cascades=settings.face_cascades,
    )
    scorers: dict[str, tuple[dict, Callable[[Image.Image], dict]]] = {
        "quality": (
            {"classifier_sha256": classifier_sha, **classifier.settings()},
            lambda image: {"quality": round(classifier.probability(image), 6)},
        ),
        "faces": (detector.settings(), lambda image: {"faces": detector.count(image)}),
    }
    if judge is not None:
        scorers["judge"] = (
            {"identity": judge_identity(judge), "instruction": settings.judge_instruction},
            lambda image: _judged(judge, image),
        )
    folder = filter_folder(run) / SCORES
    folder.mkdir(parents=True, exist_ok=True)
    journals = {name: _open_scores(folder, name, s) for name, (s, _) in scorers.items()}
    scored = 0
    try:
        keys = sorted(images)
        for done, key in enumerate(keys, start=1):
            pending = [name for name, journal in journals.items() if key not in journal]
            if pending:
                check_cancelled()
                image = _open_image(images[key])
                for name in pending:
                    journals[name].record(key, [images[key]], scorers[name][1](image))
                scored += 1
            report(done, len(keys))
        scores = {
            name: {key: dict(item.metadata) for key, item in journal.items.items()}
            for name, journal in journals.items()
        }
    finally:
        for journal in journals.values():
            journal.close()
    overrides = read_overrides(run)
    verdicts = [
        decide(
            key,
            prompts.get(key, ""),
            scores["quality"][key]["quality"],
            scores["faces"][key]["faces"],
            _verdict(scores["judge"][key]) if judge is not None else None,
            config,
        ).with_override(overrides.get(key))
        for key in sorted(images)
    ]
    path = write_verdicts(run, verdicts)
    accepted = sum(v.final for v in verdicts)
    logger.info("filter: %d of %d images kept (%d scored now)", accepted, len(verdicts), scored)
    return FilterOutcome(len(verdicts), accepted, scored, path)


def decide(
    key: int,
    prompt: str,
    quality: float,
    faces: int,
    judged: JudgeVerdict | None,
    config: GenIRConfig,
) -> Verdict:
    """The filter's own verdict on one image from its scores (no override)."""
    settings = config.filter
    reasons = []
    if quality < settings.quality_threshold:
        reasons.append(
            Reason(
                "quality",
                f"quality {quality:.3f} is below the threshold {settings.quality_threshold}",
            )
        )
    if faces > settings.max_faces:
        reasons.append(
            Reason("faces", f"{faces} face(s) found, at most {settings.max_faces} allowed")
        )
    if judged is not None and not judged.ok:
        reasons.append(Reason("judge", judged.reason))
    return Verdict(
        key, image_name(key), not reasons, quality, faces, judged, tuple(reasons), prompt
    )


def _open_scores(folder: Path, name: str, settings: dict) -> Journal:
    """The scorer's journal; one of other settings (or kind) is kept aside and started anew."""
    path = folder / f"{name}.jsonl"
    header = JournalHeader(f"genir.filter.{name}", {**settings, "version": VERSION})
    try:
        return Journal.open(path, header, verify="size")
    except BadSettingError as error:
        logger.info("%s: scoring again (%s)", path, error.message)
        path.replace(folder / f"{name}.previous.jsonl")
        return Journal.open(path, header, verify="size")


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as error:
        raise BadInputError(
            f"cannot read the generated image {path} ({error})",
            hint="delete it and run the generation stage again to make it anew",
        ) from None


def _judged(judge: Judge, image: Image.Image) -> dict:
    ok, reason = judge(image)
    return {"ok": bool(ok), "reason": str(reason)}


def _verdict(entry: dict) -> JudgeVerdict:
    return JudgeVerdict(bool(entry["ok"]), str(entry["reason"]))
