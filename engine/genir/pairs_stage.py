"""GenIR's "pairs" stage (stage 1): each positive with its SDEdit negative and its caption.

Positives and captions come from engine.genir.positives, negatives from engine.genir.sdedit.
Each pair is one journal item (engine.jobs.journal), keyed by the image's path from the images
folder, seeded with `item_seed(run seed, key)`; its three files are written atomically before
its journal line, so a killed run resumes at the first unfinished pair and redoes nothing else:

    RUN/pairs/journal.jsonl
    RUN/pairs/positive/NAME.png   the positive at the working size (what img2img started from)
    RUN/pairs/negative/NAME.png   its SDEdit negative
    RUN/pairs/caption/NAME.txt    its caption

NAME is the image's file stem and a short hash of its key (two images of one stem in two
folders get two names). The seed, strength, steps, working size, negative words and base model
are journal settings: a resume under other values is refused, naming the setting.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.genir.config import GenIRConfig
from engine.genir.positives import Captioner, Positive, Skipped, find_positives, require_captions
from engine.jobs.journal import Journal, JournalHeader, item_seed

logger = logging.getLogger(__name__)

KIND = "genir.pairs"
VERSION = 1
"""Bumped when a pair's files for the same settings change."""
FOLDER = "pairs"
JOURNAL = "journal.jsonl"


def stage_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def pair_files(run: Path, key: str) -> tuple[Path, Path, Path]:
    """The positive, negative and caption files of the pair keyed `key`."""
    name = f"{Path(key).stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    folder = stage_folder(run)
    return (
        folder / "positive" / f"{name}.png",
        folder / "negative" / f"{name}.png",
        folder / "caption" / f"{name}.txt",
    )


@dataclass(frozen=True)
class PairsOutcome:
    pairs: int
    """Pairs in the journal, done now or before."""
    made: int
    """Pairs made in this call."""
    skipped: tuple[Skipped, ...]
    """Images that are not positives, with why (too small, unreadable)."""
    path: Path
    """The stage's folder, RUN/pairs."""


def run_pairs_stage(
    run: Path,
    config: GenIRConfig,
    *,
    pipe=None,
    captioner: Captioner | None = None,
    limit: int | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> PairsOutcome:
    """Make and journal the pair of every positive not journalled yet (at most `limit` now).
    `pipe` is a loaded SDXL img2img or text-to-image pipeline (default: loaded from the base
    folder); `captioner` writes missing captions (default: `pairs.captioner`'s model, loaded
    only when a positive has no written caption); `check_cancelled` is called between pairs (it raises to stop); `report(pairs
    done, positives)` after each."""
    from engine.genir import sdedit

    pairs = config.pairs
    sdedit.check_strength(pairs.sdedit_strength, pairs.steps)
    positives, skipped = find_positives(
        config.images,
        min_side=pairs.min_side,
        captions_file=Path(pairs.captions) if pairs.captions else None,
    )
    for item in skipped:
        logger.warning("%s is not used as a positive: %s", item.key, item.reason)
    if captioner is None and pairs.captioner and any(p.caption is None for p in positives):
        from engine.genir.captioner import ModelCaptioner

        captioner = ModelCaptioner.from_folder(pairs.captioner)
    require_captions(positives, captioner)
    folder = stage_folder(run)
    for sub in ("positive", "negative", "caption"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    made = 0
    with Journal.open(folder / JOURNAL, _header(config)) as journal:
        todo = [p for p in positives if p.key not in journal]
        if todo and (limit is None or limit > 0):
            img2img = sdedit.load_img2img(config.base_model, pipe=pipe)
        for positive in todo:
            if limit is not None and made >= limit:
                break
            check_cancelled()
            _make_pair(journal, run, config, img2img, positive, captioner)
            made += 1
            report(len(journal), len(positives))
        done = len(journal)
    return PairsOutcome(done, made, tuple(skipped), folder)


def _header(config: GenIRConfig) -> JournalHeader:
    pairs = config.pairs
    settings = {
        "seed": config.seed,
        "sdedit_strength": pairs.sdedit_strength,
        "steps": pairs.steps,
        "size": pairs.size,
        "negative_words": list(pairs.negative_words),
        "base_model": str(config.base_model.resolve()),
        "version": VERSION,
    }
    if pairs.captioner:
        # Only when set, so runs from before the setting existed still resume.
        settings["captioner"] = str(Path(pairs.captioner).resolve())
    return JournalHeader(KIND, settings)


def _make_pair(journal, run, config, img2img, positive: Positive, captioner) -> None:
    from engine.genir import sdedit

    pairs = config.pairs
    caption = positive.caption if positive.caption is not None else captioner(positive.path)
    image = sdedit.working_image(positive.path, pairs.size)
    negative = sdedit.sdedit_negative(
        img2img,
        image,
        sdedit.negative_prompt_text(pairs.negative_words, caption),
        strength=pairs.sdedit_strength,
        steps=pairs.steps,
        seed=item_seed(config.seed, positive.key),
    )
    positive_path, negative_path, caption_path = pair_files(run, positive.key)
    journal.write(
        positive.key,
        {
            positive_path: lambda file: image.save(file, format="PNG"),
            negative_path: lambda file: negative.save(file, format="PNG"),
            caption_path: (caption + "\n").encode(),
        },
        {"source": positive.key, "caption": caption},
    )


def count_pairs(run: Path) -> int:
    """Pairs whose three files are in the folder (read from the files, not the journal)."""
    folder = stage_folder(run) / "caption"
    if not folder.is_dir():
        return 0
    return sum(
        1
        for caption in folder.glob("*.txt")
        if all(
            (caption.parent.parent / sub / f"{caption.stem}.png").is_file()
            for sub in ("positive", "negative")
        )
    )
