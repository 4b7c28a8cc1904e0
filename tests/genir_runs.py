"""Fabricated GenIR run folders for the filter's tests: pairs and generated images written as
PNGs (no SDXL): sharp random textures are the positives, the same textures blurred the
negatives. Importable from every test folder (tests/ is on the path through its conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from engine.genir.run_folder import init_run

DATA = Path(__file__).parent / "data"


def sharp_texture(seed: int, size: int = 64) -> Image.Image:
    """Random coloured blocks of 1 to 4 px: all high frequency, like a detailed positive."""
    rng = np.random.default_rng(seed)
    block = int(rng.integers(1, 5))
    cells = rng.integers(0, 256, (size // block + 1, size // block + 1, 3), dtype=np.uint8)
    pixels = cells.repeat(block, 0).repeat(block, 1)[:size, :size]
    return Image.fromarray(np.ascontiguousarray(pixels))


def blurred(image: Image.Image, radius: float = 2.5) -> Image.Image:
    """The smeared look of an SDEdit negative."""
    return image.filter(ImageFilter.GaussianBlur(radius))


def make_run(tmp_path: Path, *, pairs: int = 6, size: int = 64, seed: int = 1) -> Path:
    """A run folder (a fake base: only its model_index.json is checked) with `pairs` pairs."""
    images, base = tmp_path / "images", tmp_path / "base"
    images.mkdir(parents=True)
    base.mkdir()
    (base / "model_index.json").write_text("{}")
    run = tmp_path / "run"
    init_run(run, images=images, base_model=base, seed=seed)
    folder = run / "pairs"
    for sub in ("positive", "negative", "caption"):
        (folder / sub).mkdir(parents=True)
    for index in range(pairs):
        name = f"p{index}-{index:08x}"
        positive = sharp_texture(100 + index, size)
        positive.save(folder / "positive" / f"{name}.png")
        blurred(positive).save(folder / "negative" / f"{name}.png")
        (folder / "caption" / f"{name}.txt").write_text("a texture\n")
    return run


def add_generated(run: Path, images: dict[int, Image.Image]) -> None:
    """Write RUN/generate/images/{key:06d}.png, the matching prompts.jsonl lines and an empty
    rejected.jsonl (as the prompts stage leaves them)."""
    folder = run / "generate" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    (run / "prompts").mkdir(exist_ok=True)
    with open(run / "prompts" / "prompts.jsonl", "w", encoding="utf-8") as file:
        for key in sorted(images):
            file.write(json.dumps({"key": key, "index": key, "prompt": f"scene {key}"}) + "\n")
    (run / "prompts" / "rejected.jsonl").write_text("")
    for key, image in images.items():
        image.save(folder / f"{key:06d}.png")


def astronaut(size: int = 256) -> Image.Image:
    """scikit-image's astronaut (public domain), a face in the upper middle."""
    with Image.open(DATA / "astronaut.png") as image:
        return image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def set_fields(run: Path, **fields: str) -> None:
    """Replace `name = ...` lines of genir.toml's [filter] table (values as TOML)."""
    config = run / "genir.toml"
    lines = config.read_text().splitlines()
    table = ""
    for number, line in enumerate(lines):
        if line.startswith("["):
            table = line.strip("[]")
        name = line.split(" = ")[0]
        if table == "filter" and name in fields:
            lines[number] = f"{name} = {fields[name]}"
    config.write_text("\n".join(lines) + "\n")
