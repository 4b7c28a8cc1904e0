"""GenIR's "generate" stage (stage 3): one image per prompt under the learned prompts.

Each prompt of RUN/prompts/prompts.jsonl (key k) becomes RUN/generate/images/{k:06d}.png,
made by the base with stage 2's learned prompts loaded (engine.genir.learned_prompts): the
learned positive tokens before the scene, the learned negative tokens as the negative prompt,
classifier-free guidance `generation.cfg`, seed `item_seed(run seed, k)`. Each image is
written atomically, then journalled with its prompt, seed and the time it was done.

Batches are a fixed function of the key: batch b holds keys b*B .. b*B+B-1 (B the batch size),
always run at size B (the last one padded with copies of its last prompt), each image from its
own generator. The same seeds at another batch size give other bytes, so the batch size is a
journal setting; so are the seed, steps, CFG, resolution, base, learned prompts, precision and
`VERSION`: a resume under another is refused, naming it.

Sharding (accelerate): process i of n takes the batches b with b % n == i (with a batch size
of 1, the keys k with k % n == i) and writes its own journal, RUN/generate/journal-i-of-n.jsonl.
On start every process reads the journals of other process counts (read-only; refusing one
of other settings or in use by a running launch) and skips their images, so a resume with
another process count never makes an image twice nor changes one, and since a batch is the
same whatever the count, its images are those an unsharded run makes. Do not run two
launches with different process counts on one run at the same time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import BadInputError, BadSettingError, OutputError
from engine.genir.config import GenIRConfig
from engine.genir.learned_prompts import LearnedPrompts, finetune_folder, read_learned_prompts
from engine.jobs.journal import Journal, JournalHeader, JournalItem, item_seed, read_journal

if os.name == "posix":
    import fcntl

logger = logging.getLogger(__name__)

KIND = "genir.generate"
VERSION = 1
"""Bumped when an image's bytes for the same settings change."""
FOLDER = "generate"
IMAGES = "images"
JOURNAL_NAME = re.compile(r"journal-(\d+)-of-(\d+)\.jsonl")


@dataclass(frozen=True)
class Shard:
    """Which part of the work one process does: batches b with b % count == index."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise BadSettingError(
                f"shard {self.index} of {self.count} does not exist",
                hint="give INDEX/COUNT with 0 <= INDEX < COUNT",
            )

    @property
    def journal_name(self) -> str:
        return f"journal-{self.index}-of-{self.count}.jsonl"


@dataclass(frozen=True)
class GeneratedImage:
    key: int
    prompt: str
    seed: int
    path: Path
    sha256: str
    time: float
    """When it was journalled (seconds since the epoch)."""


@dataclass(frozen=True)
class GenerateOutcome:
    generated: int
    """Images of this process's shard in the journals, made now or before."""
    made: int
    """Images made in this call."""
    wanted: int
    """Images this process's shard is to make (its prompts)."""
    path: Path
    """The stage's folder, RUN/generate."""


def stage_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def image_path(run: Path, key: int) -> Path:
    return stage_folder(run) / IMAGES / f"{key:06d}.png"


def accelerate_shard() -> Shard:
    """This process's shard under `accelerate launch` (or torchrun); one shard otherwise.
    accelerate's state is made only in a launched process group, so a plain run (the engine's
    server, a test) keeps no global state."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard()
    state = _accelerate_state()
    return Shard(state.process_index, state.num_processes)


def _accelerate_state():
    """accelerate's process state; on a machine without a GPU it must be told to use the CPUs
    (gloo), else it sees no process group and every process would think it is alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def read_prompts(run: Path) -> dict[int, str]:
    """The prompts of RUN/prompts/prompts.jsonl, by key."""
    path = Path(run) / "prompts" / "prompts.jsonl"
    if not path.is_file():
        raise BadInputError(
            f"{path} is missing: the run has no prompts yet",
            hint=f"draw them first: `dreamclear genir prompts {run}`",
        )
    with open(path, encoding="utf-8") as file:
        lines = [json.loads(line) for line in file if line.strip()]
    prompts = {line["key"]: line["prompt"] for line in lines}
    if list(prompts) != list(range(len(prompts))):
        # Batches are ranges of keys; the prompts stage writes keys 0, 1, ... in order.
        raise BadInputError(
            f"{path} does not hold the keys 0 to {len(prompts) - 1} in order",
            hint=f"write it again: `dreamclear genir prompts {run}`",
        )
    return prompts


def run_generate_stage(
    run: Path,
    config: GenIRConfig,
    *,
    pipe=None,
    limit: int | None = None,
    shard: Shard | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> GenerateOutcome:
    """Generate and journal this process's images not journalled yet (at most `limit` now).

    `pipe` is a freshly loaded SDXL text-to-image pipeline of the run's base (default: loaded
    from it, on this process's device); the learned prompts are loaded into it. `shard`
    defaults to accelerate's. `check_cancelled` is called between batches (it raises to stop);
    `report(images done, images wanted)` after each image, both counted in this shard."""
    run = Path(run)
    shard = shard or accelerate_shard()
    prompts = read_prompts(run)
    learned, _ = read_learned_prompts(finetune_folder(run))
    device, dtype = _placement(pipe, shard)
    header = _header(config, learned, dtype)
    folder = stage_folder(run)
    (folder / IMAGES).mkdir(parents=True, exist_ok=True)
    size = config.generation.batch_size
    batches = [
        range(b * size, min(b * size + size, len(prompts)))
        for b in range(shard.index, -(-len(prompts) // size), shard.count)
    ]
    wanted = sum(len(batch) for batch in batches)
    elsewhere = _done_elsewhere(folder, header, shard)
    _check_prompts(elsewhere.values(), prompts)
    made, ready = 0, False
    with Journal.open(folder / shard.journal_name, header) as journal:
        _check_prompts(journal.items.values(), prompts)

        done = sum(1 for b in batches for k in b if k in journal or k in elsewhere)
        report(done, wanted)
        for batch in batches:
            missing = [k for k in batch if k not in journal and k not in elsewhere]
            if not missing:
                continue
            if limit is not None and made >= limit:
                break
            check_cancelled()
            if not ready:
                pipe = _prepare(pipe, config, run, device, dtype, learned)
                ready = True
            images = _generate_batch(pipe, learned, config, [prompts[k] for k in batch], batch)
            for key, image in zip(batch, images, strict=True):
                if key not in missing or (limit is not None and made >= limit):
                    continue
                journal.write(
                    key,
                    {image_path(run, key): lambda file, image=image: image.save(file, "PNG")},
                    {
                        "prompt": prompts[key],
                        "seed": item_seed(config.seed, key),
                        "time": time.time(),
                    },
                )
                made += 1
                done += 1
                report(done, wanted)
    return GenerateOutcome(done, made, wanted, folder)


def _prepare(pipe, config: GenIRConfig, run: Path, device, dtype, learned: LearnedPrompts):
    """Load the base (unless given) and the learned prompts (those journalled) into it."""
    from engine.genir.learned_prompts import apply_learned_prompts

    if pipe is None:
        from diffusers import StableDiffusionXLPipeline

        pipe = StableDiffusionXLPipeline.from_pretrained(
            config.base_model, local_files_only=True, torch_dtype=dtype
        ).to(device)
    pipe.set_progress_bar_config(disable=True)
    loaded = apply_learned_prompts(pipe, finetune_folder(run), base_model=config.base_model)
    if loaded.sha256 != learned.sha256:
        raise OutputError(
            f"{finetune_folder(run)} changed while generation started",
            hint="wait for the fine-tuning to finish, then run generation again",
        )
    return pipe


def _placement(pipe, shard: Shard):
    """The device and precision images are made in: the given pipeline's, else this process's
    GPU (its accelerate device when sharded) in bf16/fp16, or the CPU in fp32."""
    if pipe is not None:
        return pipe.device, pipe.unet.dtype
    from engine.devices import resolve_placement

    if shard.count > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = _accelerate_state().device
        if device.type == "cuda":
            return resolve_placement(device)
        # accelerate's CPU device is "cpu:0"; measured: with it 3 of 4 tiny images came out
        # other bytes than with "cpu", so a sharded CPU run would differ from an unsharded one.
    return resolve_placement()


def _header(config: GenIRConfig, learned: LearnedPrompts, dtype) -> JournalHeader:
    generation = config.generation
    return JournalHeader(
        KIND,
        {
            "seed": config.seed,
            "steps": generation.steps,
            "cfg": generation.cfg,
            "resolution": generation.resolution,
            "batch_size": generation.batch_size,
            "base_model": str(config.base_model.resolve()),
            "learned_prompts": learned.sha256,
            "dtype": str(dtype).removeprefix("torch."),
            "version": VERSION,
        },
    )


def _generate_batch(pipe, learned: LearnedPrompts, config: GenIRConfig, scenes, keys) -> list:
    """The images of `keys` (their scenes `scenes`), run at the full batch size (the last
    batch padded with copies of its last item), each from its own seeded generator."""
    import torch

    generation = config.generation
    pad = generation.batch_size - len(keys)
    seeds = [item_seed(config.seed, key) for key in keys]
    seeds += seeds[-1:] * pad
    scenes = list(scenes) + list(scenes[-1:]) * pad
    images = pipe(
        prompt=[learned.positive_prompt(scene) for scene in scenes],
        negative_prompt=[learned.negative_prompt()] * len(scenes),
        num_inference_steps=generation.steps,
        guidance_scale=generation.cfg,
        height=generation.resolution,
        width=generation.resolution,
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
    ).images
    return images[: len(keys)]


def _check_prompts(items, prompts: dict[int, str]) -> None:
    for item in items:
        now = prompts.get(item.key)
        if now is not None and now != item.metadata.get("prompt"):
            raise BadSettingError(
                f"image {item.key:06d}.png was generated for the prompt "
                f"{item.metadata.get('prompt')!r}, but prompts.jsonl now gives {now!r}",
                hint="the prompts were edited after generation began (an override of the "
                "privacy filter, prompts/overrides.json, re-run since?): restore the prompts "
                "it was made with (take the override back and write the prompts again), or "
                "move the run's generate/ folder away to generate again",
            )


def journals(folder: Path) -> list[tuple[Shard, Path]]:
    """The generation journals in `folder` (RUN/generate), by shard."""
    found = []
    for path in sorted(Path(folder).glob("journal-*-of-*.jsonl")):
        match = JOURNAL_NAME.fullmatch(path.name)
        if match:
            found.append((Shard(int(match[1]), int(match[2])), path))
    return found


def _done_elsewhere(folder: Path, header: JournalHeader, shard: Shard) -> dict[int, JournalItem]:
    """The images journalled by launches of another process count, read-only; a journal of
    other settings is refused, naming the setting, one in use by a running launch too."""
    done: dict[int, JournalItem] = {}
    for other, path in journals(folder):
        if other.count == shard.count:
            continue
        with _unused(path):
            done.update(read_journal(path, header))
    return done


class _unused:
    """Holds a shared lock on a journal while it is read: refused if a running process of
    another launch holds it (Journal.open locks it exclusively)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> None:
        if os.name != "posix":
            return
        self.fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise OutputError(
                f"{self.path} is in use: a generation with another process count is running",
                hint="wait for it to finish or stop it; run one launch per run folder at a time",
            ) from None

    def __exit__(self, *exc_info: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)


def generated_images(run: Path, *, verify: str = "size") -> list[GeneratedImage]:
    """Every journalled image of the run, across all journals, once each, by key. Images
    whose file is missing or changed (`verify`: "size" or "sha256") are left out."""
    found: dict[int, GeneratedImage] = {}
    for _, path in journals(stage_folder(run)):
        for item in read_journal(path, verify=verify).values():
            output = item.outputs[0]
            found.setdefault(
                item.key,
                GeneratedImage(
                    item.key,
                    item.metadata["prompt"],
                    item.metadata["seed"],
                    output.path,
                    output.sha256,
                    item.metadata.get("time", 0.0),
                ),
            )
    return [found[key] for key in sorted(found)]
