"""A GenIR run folder fabricated without models: each stage's files as the shared contracts
(BRIEF, docs/genir.md) say they look, so later stages, status and `genir run` can be tested
alone and fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.genir.run_folder import init_run
from engine.jobs.journal import Journal, JournalHeader, item_seed

RESOLUTION = 64
STAGES = ("prompts", "pairs", "finetune", "generate", "classifier", "filter")


def fabricate_run(
    folder: Path,
    base: Path,
    *,
    count: int = 6,
    rejected: dict[int, list[dict]] | None = None,
    upto: str = "filter",
    seed: int = 3,
) -> Path:
    """A run of `count` prompts whose stages up to `upto` (in `STAGES`) are done; the filter
    rejects the keys of `rejected` with those reasons (default: key 1 for its quality)."""
    rejected = (
        {1: [{"kind": "quality", "text": "quality 0.12 < 0.5"}]} if rejected is None else rejected
    )
    done = set(STAGES[: STAGES.index(upto) + 1])
    images = folder.parent / f"{folder.name}-positives"
    images.mkdir(parents=True)
    _noise_image(images / "p.png", 0)
    init_run(folder, images=images, base_model=base, seed=seed)
    config = folder / "genir.toml"
    text = config.read_text().replace("count = 1000", f"count = {count}")
    text = text.replace("resolution = 1024", f"resolution = {RESOLUTION}").replace("= 512", "= 64")
    config.write_text(text)
    prompts = [f"a stone bridge over a river, scene {key}" for key in range(count)]
    if "prompts" in done:
        lines = [{"key": k, "index": k, "prompt": p} for k, p in enumerate(prompts)]
        _write_jsonl(folder / "prompts" / "prompts.jsonl", lines)
        _write_jsonl(folder / "prompts" / "rejected.jsonl", [])
    if "pairs" in done:
        (folder / "pairs" / "caption").mkdir(parents=True)
        with Journal.open(folder / "pairs" / "journal.jsonl", JournalHeader("genir.pairs")) as j:
            pair = {folder / "pairs" / "caption" / "p.txt": b"a bridge\n"}
            for side in ("positive", "negative"):
                (folder / "pairs" / side).mkdir()
                pair[folder / "pairs" / side / "p.png"] = (images / "p.png").read_bytes()
            j.write("p.png", pair)
    if "finetune" in done:
        (folder / "finetune").mkdir()
        (folder / "finetune" / "learned_prompts.json").write_text(
            json.dumps({"format": 1, "base_sha256": "ab" * 32})
        )
        (folder / "finetune" / "learned_tokens.safetensors").write_bytes(b"fake")
    if "generate" in done:
        generated = folder / "generate" / "images"
        generated.mkdir(parents=True)
        header = JournalHeader("genir.generate", {"seed": seed})
        with Journal.open(folder / "generate" / "journal.jsonl", header) as journal:
            for key, prompt in enumerate(prompts):
                path = generated / f"{key:06d}.png"
                _noise_image(path, key)
                journal.record(key, [path], {"prompt": prompt, "seed": item_seed(seed, key)})
    if "classifier" in done:
        (folder / "classifier").mkdir()
        for name in ("quality_classifier.safetensors", "quality_classifier.json"):
            (folder / "classifier" / name).write_bytes(b"{}")
    if "filter" in done:
        verdicts = [
            {
                "key": key,
                "image": f"generate/images/{key:06d}.png",
                "accepted": key not in rejected,
                "quality": 0.12 if key in rejected else round(0.6 + key / 100, 2),
                "faces": 0,
                "judge": None,
                "reasons": rejected.get(key, []),
            }
            for key in range(count)
        ]
        _write_jsonl(folder / "filter" / "verdicts.jsonl", verdicts)
    return folder


def set_overrides(run: Path, overrides: dict[int, tuple[bool, str]]) -> None:
    """Write RUN/filter/overrides.json as `dreamclear genir override` would."""
    data = {str(key): {"accepted": ok, "note": note} for key, (ok, note) in overrides.items()}
    (run / "filter" / "overrides.json").write_text(json.dumps(data))


def _noise_image(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (RESOLUTION, RESOLUTION, 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _write_jsonl(path: Path, lines: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
