"""A GenIR run folder ready for the "generate" stage on the tiny SDXL: prompts drawn, learned
prompts written by hand, generation at 64 px in 2 steps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from learned_fixture import write_learned_prompts

from engine.genir.generate_stage import IMAGES, stage_folder
from engine.genir.learned_prompts import finetune_folder
from engine.genir.prompts_stage import run_prompts_stage
from engine.genir.run_folder import init_run, load_run


def make_generate_run(
    tmp_path: Path, base: Path, name: str = "run", *, count: int = 6, **generation
) -> Path:
    """A run of `count` prompts; `generation` overrides that section's fields."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    run = tmp_path / name
    init_run(run, images=images, base_model=base, seed=4)
    settings = {"resolution": 64, "steps": 2, "batch_size": 2, **generation}
    set_generation(run, **settings)
    config = run / "genir.toml"
    config.write_text(config.read_text().replace("count = 1000", f"count = {count}"))
    run_prompts_stage(run, load_run(run))
    write_learned_prompts(finetune_folder(run), base)
    return run


def set_generation(run: Path, **fields) -> None:
    """Set fields of genir.toml's [generation] section."""
    config = run / "genir.toml"
    head, section, tail = config.read_text().partition("[generation]\n")
    body, next_section, rest = tail.partition("\n[")
    lines = body.split("\n")
    for field, value in fields.items():
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{field} ="))
        lines[index] = f"{field} = {json.dumps(value)}"
    config.write_text(head + section + "\n".join(lines) + next_section + rest)


def image_sha256s(run: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((stage_folder(run) / IMAGES).glob("*.png"))
    }


def journalled_keys(run: Path) -> list[int]:
    """Every item key of every generation journal, repeats kept."""
    keys = []
    for journal in sorted(stage_folder(run).glob("journal-*.jsonl")):
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if entry["type"] == "item":
                keys.append(entry["key"])
    return keys
