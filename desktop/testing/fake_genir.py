"""The fake engine's GenIR stages: scripted, torch-free, writing small files.

Each stage job writes what the real stage's contract says it writes (BRIEF "Shared contracts",
docs/genir.md), tiny and fast, into the run folder, so the wizard's reading of the folder is
exercised: pairs, finetune/learned_prompts.json, prompts.jsonl and rejected.jsonl, one 32 px
PNG per prompt in generate/images, filter/verdicts.jsonl (quality from the key, so tests know
it), export/dataset.json, manifest.jsonl and train-starter.toml. Every stage skips what is
already there, so sending it again resumes it, as the real journal does. (`train` is the fake
engine's own, in fake_engine.py.) Progress: stage = the stage's name,
step of steps, a label (with "loss X" while fine-tuning and training), an ETA.

Failure behaviours (the fake engine's first argument):
  genir_crash   exits with code 3 in the generate stage once 2 new images are written
  disk_full     the generate stage fails (kind "output", "No space left on device") at its
                third image
  base_fails    the pairs, finetune and generate stages fail at once (kind "bad_checkpoint")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine import protocol as p


class FakeEngine(Protocol):
    """What the stages use of desktop.testing.fake_engine.FakeEngine."""

    behaviour: str
    step_s: float
    interrupted: bool

    def emit(self, event: p.Event) -> None: ...


log = logging.getLogger("fake_engine")

REQUESTS: dict[type[p.Request], str] = {
    p.GenirPairs: "pairs",
    p.GenirFinetune: "finetune",
    p.GenirPrompts: "prompts",
    p.GenirGenerate: "generate",
    p.GenirFilter: "filter",
    p.GenirExport: "export",
}
CAPABILITIES = ("genir", "train")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass
class StageJob:
    id: str
    stage: str
    request: p.Request

    @property
    def input(self) -> str:
        return getattr(self.request, "run", "") or getattr(self.request, "config", "")


class Failed(Exception):
    def __init__(self, kind: p.ErrorKind, message: str, hint: str) -> None:
        super().__init__(message)
        self.kind, self.hint = kind, hint


class Interrupted(Exception):
    pass


async def run_stage(engine: FakeEngine, job: StageJob) -> None:
    """Run one stage job to its result, error or cancellation."""
    engine.emit(p.Started(job_id=job.id, input=job.input))
    engine.emit(p.StageEvent(job_id=job.id, stage=job.stage))  # type: ignore[arg-type]
    stage = STAGES[job.stage]
    try:
        if engine.behaviour == "base_fails" and job.stage in ("pairs", "finetune", "generate"):
            raise Failed(
                "bad_checkpoint",
                "the base model could not be loaded: unet/diffusion_pytorch_model.safetensors "
                "is truncated",
                "choose another base model on the Base model page, or verify this one in "
                "Engine › Models",
            )
        output = await stage(engine, job, Progress(engine, job))
    except Failed as failure:
        engine.emit(
            p.Error(job_id=job.id, kind=failure.kind, message=str(failure), hint=failure.hint)
        )
        return
    except Interrupted:
        engine.emit(p.Cancelled(job_id=job.id, reason="interrupt"))
        return
    engine.emit(p.Result(job_id=job.id, input=job.input, output=str(output), seconds=0.1))


@dataclass
class Progress:
    engine: FakeEngine
    job: StageJob

    async def step(self, step: int, steps: int, label: str = "") -> None:
        """Wait one step, stop if interrupted, report the position."""
        await asyncio.sleep(self.engine.step_s)
        if self.engine.interrupted:
            raise Interrupted
        self.engine.emit(
            p.Progress(
                job_id=self.job.id,
                stage=self.job.stage,  # type: ignore[arg-type]
                step=step,
                steps=steps,
                fraction=step / max(steps, 1),
                label=label or f"{self.job.stage} {step}/{steps}",
                eta_s=(steps - step) * self.engine.step_s,
            )
        )


def _config(run: Path) -> dict[str, Any]:
    with open(run / "genir.toml", "rb") as file:
        return tomllib.load(file)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _png(colour: tuple[int, int, int], size: int = 32, turn: int = 0) -> bytes:
    """A small PNG: `colour` shaded by a gradient turned by `turn` degrees (so the images
    of a grid tell apart)."""
    import io

    from PIL import Image

    shade = Image.linear_gradient("L").rotate(turn).resize((size, size))
    image = Image.composite(
        Image.new("RGB", (size, size), colour), Image.new("RGB", (size, size)), shade
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def _pairs(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    run = Path(job.input)
    config = _config(run)
    from PIL import Image

    images = Path(config["images"])
    images = images if images.is_absolute() else run / images
    min_side = config.get("pairs", {}).get("min_side", 512)
    usable = []
    for path in sorted(q for q in images.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as image:
                if min(image.size) >= min_side:
                    usable.append(path)
        except OSError:
            continue
    folder = run / "pairs"
    for done, path in enumerate(usable, 1):
        caption = folder / "caption" / f"{path.stem}.txt"
        if not caption.is_file():
            sidecar = path.with_suffix(".txt")
            text = sidecar.read_text() if sidecar.is_file() else path.stem
            positive, negative = _pair_pictures(path)
            _write(folder / "positive" / f"{path.stem}.png", positive)
            _write(folder / "negative" / f"{path.stem}.png", negative)
            _write(caption, text.encode())
        await progress.step(done, len(usable), f"Making pair {done}/{len(usable)}")
    return folder


def _pair_pictures(path: Path, size: int = 128) -> tuple[bytes, bytes]:
    """The photo cropped square, and a blurred, posterised copy standing in for SDEdit's."""
    import io

    from PIL import Image, ImageFilter, ImageOps

    with Image.open(path) as image:
        positive = ImageOps.fit(image.convert("RGB"), (size, size))
    negative = ImageOps.posterize(positive.filter(ImageFilter.GaussianBlur(3)), 3)
    pictures = []
    for picture in (positive, negative):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        pictures.append(buffer.getvalue())
    return pictures[0], pictures[1]


async def _finetune(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    run = Path(job.input)
    steps = int(_config(run).get("finetune", {}).get("steps", 6))
    steps = min(steps, 20)
    for step in range(1, steps + 1):
        await progress.step(step, steps, f"Fine-tuning {step}/{steps}, loss {1.0 / step:.4f}")
    learned = {
        "format": 1,
        "base_model": str(_config(run).get("base_model", "")),
        "base_sha256": "0" * 64,
        "positive_tokens": ["<genir-pos-0>"],
        "negative_tokens": ["<genir-neg-0>"],
        "cross_attention": "lora",
        "lora_rank": 4,
        "settings": {},
    }
    samples = run / "finetune" / "train" / "validation" / f"step_{steps:06d}"
    for index in range(2):  # the same-seed pairs the real trainer writes at the end
        _write(samples / f"base-{index:03d}.png", _png((120, 120, 120), turn=40 * index))
        _write(samples / f"{index:03d}.png", _png((200, 140, 60), turn=40 * index))
    _write(run / "finetune" / "learned_prompts.json", json.dumps(learned).encode())
    return run / "finetune"


async def _prompts(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    """Candidates 0..count-1 accepted, count and count+1 rejected (a name); the user's
    prompts/overrides.json applied as the engine does (a kept reject is accepted with its
    reasons, a dropped prompt rejected with the reason "override", further candidates drawn
    to keep the count), and final.json records the overrides' sha256."""
    run = Path(job.input)
    count = int(_config(run).get("prompts", {}).get("count", 10))
    overrides_path = run / "prompts" / "overrides.json"
    overrides = json.loads(overrides_path.read_text()) if overrides_path.is_file() else {}
    # Every candidate from count + 2 on is accepted: one more per drop keeps the count.
    drops = sum(1 for o in overrides.values() if not o.get("accepted"))
    last = max([count + 2, *(int(index) + 1 for index in overrides)]) + drops
    decided = []
    for index in range(last):
        line, kept = _fake_candidate(index, count)
        override = overrides.get(str(index))
        if override is not None:
            line["override"] = override
            kept = override["accepted"]
            if not kept:
                reason = {"kind": "override", "text": override.get("note") or "dropped"}
                line["reasons"] = [*line.get("reasons", []), reason]
        decided.append((kept, line))
    # As the engine: the prompts the user kept always count, the first others fill the rest.
    others = count - sum(1 for kept, line in decided if kept and "override" in line)
    accepted: list[dict[str, Any]] = []
    rejected = [line for kept, line in decided if not kept]
    for kept, line in decided:
        if kept and len(accepted) < count and ("override" in line or others > 0):
            others -= "override" not in line
            accepted.append({"key": len(accepted), **line})
    chunk = max(1, count // 4)
    for done in range(chunk, count + chunk, chunk):
        await progress.step(min(done, count), count)
    _write(run / "prompts" / "rejected.jsonl", _jsonl(rejected))
    _write(run / "prompts" / "prompts.jsonl", _jsonl(accepted))
    present = overrides_path.is_file()
    sha256 = hashlib.sha256(overrides_path.read_bytes()).hexdigest() if present else None
    _write(run / "prompts" / "final.json", json.dumps({"overrides_sha256": sha256}).encode())
    return run / "prompts" / "prompts.jsonl"


def _fake_candidate(index: int, count: int) -> tuple[dict[str, Any], bool]:
    """Candidate `index` and whether the fake privacy filter accepts it."""
    if index in (count, count + 1):
        n = index - count
        return {
            "index": index,
            "prompt": f"a portrait of John Smith {n}",
            "reasons": [{"kind": "name", "text": "names a person: John Smith"}],
        }, False
    places = ("a quiet harbour", "a pine forest", "a desert road", "an old stone bridge")
    light = ("at dusk", "in morning fog", "under a clear noon sky", "after rain")
    prompt = f"{places[index % 4]} {light[index // 4 % 4]}, 35 mm lens, scene {index}"
    return {"index": index, "prompt": prompt}, True


async def _generate(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    run = Path(job.input)
    prompts = [json.loads(line) for line in (run / "prompts" / "prompts.jsonl").open()]
    folder = run / "generate" / "images"
    positives = sorted((run / "pairs" / "positive").glob("*.png"))
    written = 0
    for done, prompt in enumerate(prompts, 1):
        key = prompt["key"]
        path = folder / f"{key:06d}.png"
        if not path.is_file():
            if engine.behaviour == "disk_full" and written == 2:
                raise Failed(
                    "output",
                    f"No space left on device writing {path}",
                    "free some disk space, then press Resume: the images made are kept",
                )
            if engine.behaviour == "genir_crash" and written == 2:
                log.error("fake engine: crashing in the generate stage")
                os._exit(3)
            _write(path, _generated(key, positives))
            written += 1
        await progress.step(done, len(prompts), f"Generating {done}/{len(prompts)}")
    return folder


def _generated(key: int, positives: list[Path]) -> bytes:
    """A stand-in for image `key`: a pair's positive turned and cropped (so thumbnails look
    like photos), or a shaded square when there are no pairs."""
    if not positives:
        return _png(((key * 53) % 256, (key * 97) % 256, 160), turn=key * 29)
    import io

    from PIL import Image, ImageOps

    with Image.open(positives[key % len(positives)]) as image:
        picture = image.convert("RGB").rotate(key * 13 % 360, expand=False)
    picture = ImageOps.mirror(picture) if key % 2 else picture
    buffer = io.BytesIO()
    ImageOps.fit(picture.crop((16, 16, 112, 112)), (96, 96)).save(buffer, "PNG")
    return buffer.getvalue()


def quality_of(key: int) -> float:
    """The fake classifier's score of image `key` (tests compute counts from it)."""
    return round((key * 37 % 100) / 100, 2)


async def _filter(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    run = Path(job.input)
    settings = _config(run).get("filter", {})
    threshold = float(settings.get("quality_threshold", 0.5))
    images = sorted((run / "generate" / "images").glob("*.png"))
    verdicts = []
    for done, path in enumerate(images, 1):
        key = int(path.stem)
        quality, faces = quality_of(key), 1 if key % 7 == 3 else 0
        reasons = []
        if quality < threshold:
            reasons.append({"kind": "quality", "text": f"quality {quality:.2f} < {threshold}"})
        if faces > int(settings.get("max_faces", 0)):
            reasons.append({"kind": "faces", "text": f"{faces} face found"})
        verdicts.append(
            {
                "key": key,
                "image": f"generate/images/{path.name}",
                "accepted": not reasons,
                "quality": quality,
                "faces": faces,
                "judge": None,
                "reasons": reasons,
            }
        )
        await progress.step(done, len(images), f"Judging {done}/{len(images)}")
    _write(run / "filter" / "verdicts.jsonl", _jsonl(verdicts))
    return run / "filter" / "verdicts.jsonl"


async def _export(engine: FakeEngine, job: StageJob, progress: Progress) -> Path:
    run = Path(job.input)
    verdicts = [json.loads(line) for line in (run / "filter" / "verdicts.jsonl").open()]
    try:
        overrides = json.loads((run / "filter" / "overrides.json").read_text())
    except OSError:
        overrides = {}
    kept = [
        v["image"]
        for v in verdicts
        if overrides.get(str(v["key"]), {}).get("accepted", v["accepted"])
    ]
    for done in range(1, len(kept) + 1):
        await progress.step(done, len(kept), f"Exporting {done}/{len(kept)}")
    folder = run / "export"
    # The real export's files (engine/genir/export_stage.py), their fields the wizard reads.
    summary = {"format": 1, "images": len(kept), "filtered": len(verdicts), "lq_pairs": False}
    _write(folder / "train-starter.toml", b'task = "starter"\n')
    _write(folder / "manifest.jsonl", _jsonl([{"file": image} for image in kept]))
    _write(folder / "dataset.json", json.dumps(summary, indent=1).encode())
    return folder


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


STAGES = {
    "pairs": _pairs,
    "finetune": _finetune,
    "prompts": _prompts,
    "generate": _generate,
    "filter": _filter,
    "export": _export,
}
