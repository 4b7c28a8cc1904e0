"""GenIR's "export" stage: the accepted images as a training set `dreamclear train` reads.

An image is accepted by its final decision (`read_decisions`: the user's override in
RUN/filter/overrides.json wins over the filter's verdict in RUN/filter/verdicts.jsonl). Each
accepted image is one journal item (engine.jobs.journal), so a killed export resumes at the
first image not journalled:

    RUN/export/journal.jsonl
    RUN/export/images/KKKKKK.png   the generated image, hard-linked (copied across filesystems)
    RUN/export/lq/KKKKKK.png       with `export.lq_pairs`: its LQ image, 1/lq_scale the size
    RUN/export/manifest.jsonl      one line per exported image (file, key, prompt, seed, ...)
    RUN/export/rejected.jsonl      every rejected image (still in generate/) with its reasons
    RUN/export/dataset.json        the summary: counts, run seed, base model, settings
    RUN/export/train-starter.toml  a starter training config on images/ (a few held out)

The last four are written whole (atomically) at the end of every run. Run again after the
decisions changed (a new override, a new filter), images no longer accepted are removed from
images/ and lq/ (and forgotten by the journal) and newly accepted ones are added; under other
export settings the export is rebuilt. Nothing in generate/ is ever written: a hard link shares
the file, and every exported file is replaced by rename, never written through. The journal
checks its files by size on open (not sha256): a large export reopens fast, and the files
are only ever renamed into place whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import BadSettingError
from engine.genir.config import GenIRConfig
from engine.genir.journal_files import read_journal, read_journals
from engine.genir.train_starter import starter_config_text
from engine.imaging.atomic import atomic_write
from engine.jobs.journal import Journal, JournalHeader, item_seed

logger = logging.getLogger(__name__)

KIND = "genir.export"
VERSION = 1
"""Bumped when an exported item's files for the same settings change."""
FOLDER = "export"
JOURNAL = "journal.jsonl"
MANIFEST = "manifest.jsonl"
REJECTED = "rejected.jsonl"
SUMMARY = "dataset.json"
TRAIN_CONFIG = "train-starter.toml"
VERDICTS = Path("filter") / "verdicts.jsonl"
OVERRIDES = Path("filter") / "overrides.json"


def stage_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def read_decisions(run: Path) -> list[dict[str, Any]]:
    """Every verdict of RUN/filter/verdicts.jsonl, by key, with its final decision: "accepted"
    is the user's override where RUN/filter/overrides.json has one (then "override" holds it,
    {"accepted", "note"}), else the filter's; "filter_accepted" keeps the filter's own."""
    path = Path(run) / VERDICTS
    if not path.is_file():
        raise BadSettingError(
            f"{path} does not exist: the images have not been filtered yet",
            hint="run `dreamclear genir filter RUN` (or `dreamclear genir run RUN`) first",
        )
    overrides = _read_overrides(Path(run) / OVERRIDES)
    decisions: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            if not line.endswith("\n"):
                break  # torn by a crash of the filter: not a verdict yet
            verdict = json.loads(line)
            override = overrides.get(str(verdict["key"]))
            decisions[verdict["key"]] = verdict | {
                "filter_accepted": verdict["accepted"],
                "accepted": bool(override["accepted"] if override else verdict["accepted"]),
                "override": override,
            }
    return [decisions[key] for key in sorted(decisions)]


def _read_overrides(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        overrides = json.loads(path.read_text("utf-8"))
        if not isinstance(overrides, dict) or not all(
            isinstance(o, dict) and isinstance(o.get("accepted"), bool) for o in overrides.values()
        ):
            raise ValueError('expected {"KEY": {"accepted": true|false, "note": "..."}}')
    except ValueError as error:  # JSON errors are ValueErrors
        raise BadSettingError(
            f"{path} is not a valid overrides file: {error}",
            hint="fix or remove it; `dreamclear genir override` writes it",
        ) from None
    return overrides


def decisions_digest(run: Path) -> str:
    """sha256 of the verdicts and overrides files: an export made from other decisions is stale."""
    digest = hashlib.sha256()
    for name in (VERDICTS, OVERRIDES):
        path = Path(run) / name
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ExportOutcome:
    images: int
    """Images in the export (accepted ones)."""
    rejected: int
    """Images listed in rejected.jsonl."""
    made: int
    """Images exported in this call (the others were journalled before)."""
    removed: int
    """Images removed in this call because they are no longer accepted."""
    path: Path
    """The stage's folder, RUN/export."""


def run_export_stage(
    run: Path,
    config: GenIRConfig,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> ExportOutcome:
    """Export every accepted image not journalled yet, then write the manifest, the rejected
    list, the summary and the starter training config. `check_cancelled` is called between
    images (it raises to stop); `report(images exported, images accepted)` after each."""
    run = Path(run)
    # Digest first: should the decisions change while they are read, the summary names the
    # older ones, and the export reads as stale (redone), never as current.
    digest = decisions_digest(run)
    decisions = read_decisions(run)
    accepted = [d for d in decisions if d["accepted"]]
    folder = stage_folder(run)
    header = _header(config)
    _rebuild_if_settings_changed(folder, header)
    subfolders = ("images", "lq") if config.export.lq_pairs else ("images",)
    for sub in subfolders:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    removed = _remove_unaccepted(folder, {d["key"] for d in accepted})
    generated = _generation_metadata(run)
    prompts = _prompts(run)
    made = 0
    with Journal.open(folder / JOURNAL, header, verify="size") as journal:
        for decision in accepted:
            if decision["key"] in journal:
                continue
            check_cancelled()
            key = decision["key"]
            known = generated.get(key, {})
            metadata = {
                "prompt": known.get("prompt", prompts.get(key)),
                "seed": known.get("seed"),
                "quality": decision.get("quality"),
                "source": decision["image"],
            }
            _export_image(journal, run, config, key, metadata)
            made += 1
            report(len(journal), len(accepted))
        items = dict(journal.items)
    manifest = [_manifest_line(folder, items[d["key"]]) for d in accepted]
    rejected = [_rejected_line(d) for d in decisions if not d["accepted"]]
    names = [Path(line["file"]).name for line in manifest]
    _write(folder / MANIFEST, _jsonl(manifest))
    _write(folder / REJECTED, _jsonl(rejected))
    held_out = _held_out(names, config.export.validation_images)
    if names:
        text = starter_config_text(
            images=(folder / "images").resolve(),
            validation=held_out,
            output_dir=(run / "train").resolve(),
            resolution=config.generation.resolution,
            seed=config.seed,
        )
        _write(folder / TRAIN_CONFIG, text.encode())
    else:
        logger.warning("no image is accepted: %s is not written", folder / TRAIN_CONFIG)
        (folder / TRAIN_CONFIG).unlink(missing_ok=True)
    summary = _summary(run, config, decisions, manifest, held_out, digest)
    _write(folder / SUMMARY, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode())
    return ExportOutcome(len(manifest), len(rejected), made, removed, folder)


def _header(config: GenIRConfig) -> JournalHeader:
    export = config.export
    return JournalHeader(
        KIND,
        {
            "seed": config.seed,
            "lq_pairs": export.lq_pairs,
            "lq_scale": export.lq_scale if export.lq_pairs else None,
            "version": VERSION,
        },
    )


def _rebuild_if_settings_changed(folder: Path, header: JournalHeader) -> None:
    """The export is derived data: under other settings it is made again, not refused."""
    journal = read_journal(folder / JOURNAL)
    if journal is None or (journal.kind, journal.settings) == (header.kind, header.settings):
        return
    logger.warning("export settings changed: rebuilding %s", folder)
    for sub in ("images", "lq"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    (folder / JOURNAL).unlink()


def _remove_unaccepted(folder: Path, accepted: set[int]) -> int:
    """Delete the exported files of images no longer accepted; the journal, finding them
    gone when it opens, forgets them. Only export/ is touched (a hard link's unlink leaves
    the generated file)."""
    removed = 0
    for path in sorted((folder / "images").glob("*")):
        if path.stem.isdigit() and int(path.stem) not in accepted:
            path.unlink()
            (folder / "lq" / f"{path.stem}.png").unlink(missing_ok=True)
            removed += 1
    return removed


def _generation_metadata(run: Path) -> dict[int, dict[str, Any]]:
    """Each generated image's journal metadata ({"prompt", "seed"}), by key; read-only."""
    found: dict[int, dict[str, Any]] = {}
    for journal in read_journals(Path(run) / "generate"):
        for key, record in journal.items.items():
            if isinstance(key, int):
                found[key] = record.metadata
    return found


def _prompts(run: Path) -> dict[int, str]:
    """The prompts of RUN/prompts/prompts.jsonl by key (a fallback where no journal says)."""
    path = Path(run) / "prompts" / "prompts.jsonl"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as file:
        lines = (json.loads(line) for line in file if line.endswith("\n"))
        return {line["key"]: line["prompt"] for line in lines}


def _export_image(
    journal: Journal, run: Path, config: GenIRConfig, key: int, metadata: dict[str, Any]
) -> None:
    source = run / metadata["source"]
    # Only generated images are exported: a verdicts file naming another path (absolute,
    # "..", a symlink out) must not turn the export into a way to read any file.
    if not source.resolve().is_relative_to((run / "generate").resolve()):
        raise BadSettingError(
            f"the verdict of image {key} names {metadata['source']}, outside {run / 'generate'}",
            hint="verdicts.jsonl is written by the filter stage: run it again",
        )
    if not source.is_file():
        raise BadSettingError(
            f"{source} is missing: the filter accepted an image that is not there",
            hint="run the generate and filter stages again (they redo missing images)",
        )
    started = time.perf_counter()
    folder = stage_folder(run)
    image = folder / "images" / f"{key:06d}{source.suffix.lower()}"
    _link_or_copy(source, image)
    outputs = [image]
    if config.export.lq_pairs:
        lq = folder / "lq" / f"{key:06d}.png"
        _write_lq(image, lq, scale=config.export.lq_scale, seed=item_seed(config.seed, f"lq:{key}"))
        outputs.append(lq)
    # A hard link keeps the generated file's modification time, which would make the export's
    # throughput (genir status) read as generation's: the item's own time says how long it took.
    seconds = round(time.perf_counter() - started, 6)
    journal.record(key, outputs, {**metadata, "seconds": seconds})


def _link_or_copy(source: Path, target: Path) -> None:
    """Put `source`'s bytes at `target` atomically: a hard link where the filesystem allows
    (no space, instant), else a copy; either way under a temp name first, then renamed."""
    temp = target.with_name(f".{target.name}.partial")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _write_lq(hq_path: Path, lq_path: Path, *, scale: int, seed: int) -> None:
    """The LQ image of `hq_path` by the published second-order degradation, seeded."""
    import numpy as np
    import torch
    from PIL import Image

    from engine.degradation.ops import to_uint8
    from engine.degradation.second_order import degrade

    with Image.open(hq_path) as image:
        pixels = np.asarray(image.convert("RGB"))
    hq = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0
    lq = to_uint8(degrade(hq, scale=scale, seed=seed).lq).permute(1, 2, 0).numpy()
    atomic_write(
        lq_path,
        lambda file: Image.fromarray(lq).save(file, format="PNG"),
        overwrite=True,
        fixed_temp=True,
    )


def _manifest_line(folder: Path, item) -> dict[str, Any]:
    image = item.outputs[0]
    line = {
        "file": image.path.relative_to(folder).as_posix(),
        "key": item.key,
        "prompt": item.metadata["prompt"],
        "seed": item.metadata["seed"],
        "sha256": image.sha256,
        "quality": item.metadata["quality"],
        "source": item.metadata["source"],
    }
    if len(item.outputs) > 1:
        line["lq"] = item.outputs[1].path.relative_to(folder).as_posix()
    return line


def _rejected_line(decision: dict[str, Any]) -> dict[str, Any]:
    reasons = list(decision.get("reasons") or [])
    override = decision["override"]
    if override is not None:
        reasons.append({"kind": "override", "text": override.get("note") or "rejected by you"})
    return {
        "key": decision["key"],
        "image": decision["image"],
        "quality": decision.get("quality"),
        "faces": decision.get("faces"),
        "judge": decision.get("judge"),
        "reasons": reasons,
    }


def _held_out(names: list[str], wanted: int) -> list[str]:
    """The last `wanted` images, leaving at least one to train on."""
    count = min(wanted, max(len(names) - 1, 0))
    return names[len(names) - count :] if count else []


def _summary(run, config, decisions, manifest, held_out, digest) -> dict[str, Any]:
    learned = Path(run) / "finetune" / "learned_prompts.json"
    base_sha256 = (
        json.loads(learned.read_text("utf-8")).get("base_sha256") if learned.is_file() else None
    )
    return {
        "format": 1,
        "images": len(manifest),
        "rejected": len(decisions) - len(manifest),
        "filtered": len(decisions),
        "overridden": sum(1 for d in decisions if d["override"] is not None),
        "lq_pairs": config.export.lq_pairs,
        "lq_scale": config.export.lq_scale if config.export.lq_pairs else None,
        "validation_images": held_out,
        "seed": config.seed,
        "base_model": str(config.base_model),
        "base_sha256": base_sha256,
        "settings": {
            "generation": asdict(config.generation),
            "filter": asdict(config.filter),
            "export": asdict(config.export),
        },
        "decisions_sha256": digest,
    }


def _jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda file: file.write(data), overwrite=True)
