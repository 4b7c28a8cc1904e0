"""The "pairs" stage on the tiny SDXL: SDEdit's step count, strength refusals, captions,
too-small images, and a resume that gives the bytes of an uninterrupted run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import BadInputError, BadSettingError
from engine.genir import sdedit
from engine.genir.pairs_stage import JOURNAL, pair_files, run_pairs_stage, stage_folder
from engine.genir.run_folder import init_run, load_run, run_status

KEYS = ("a.png", "b.png", "sub/c.png", "sub/d.jpg")


def _write_images(folder: Path, *, captions: bool = True) -> None:
    for index, key in enumerate(KEYS):
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 80), (40 * index, 120, 200 - 30 * index)).save(path)
        if captions:
            path.with_suffix(".txt").write_text(f"a photo number {index}\n")
    Image.new("RGB", (40, 90)).save(folder / "small.png")


def _run(tmp_path: Path, base: Path, name: str = "run", **pairs) -> Path:
    images = tmp_path / "images"
    if not images.exists():
        images.mkdir()
        _write_images(images)
    run = tmp_path / name
    init_run(run, images=images, base_model=base, seed=3)
    settings = {"size": 64, "min_side": 64, "steps": 4, "sdedit_strength": 0.5, **pairs}
    config = run / "genir.toml"
    text = config.read_text()
    for field, value in settings.items():
        text = _set(text, field, value)
    config.write_text(text)
    return run


def _set(text: str, field: str, value) -> str:
    """Set the `pairs` section's `field` (replacing its line, or adding one)."""
    head, section, tail = text.partition("[pairs]\n")
    lines = tail.split("\n")
    line = f"{field} = {json.dumps(value)}"
    index = next((i for i, old in enumerate(lines) if old.startswith(f"{field} =")), None)
    if index is None:
        lines.insert(0, line)
    else:
        lines[index] = line
    return head + section + "\n".join(lines)


def _files(run: Path) -> dict[str, bytes]:
    folder = stage_folder(run)
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != JOURNAL
    }


@pytest.fixture(scope="module")
def img2img(tiny_sdxl_dir):
    return sdedit.load_img2img(tiny_sdxl_dir)


def test_sdedit_runs_int_steps_times_strength_steps(img2img):
    calls = []
    step = img2img.scheduler.step

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    img2img.scheduler.step = counted
    try:
        image = Image.new("RGB", (64, 64), (90, 120, 150))
        for steps, strength in ((10, 0.35), (4, 1.0), (7, 0.5)):
            calls.clear()
            sdedit.sdedit_negative(img2img, image, "blurry", strength=strength, steps=steps, seed=1)
            assert len(calls) == int(steps * strength)
    finally:
        del img2img.scheduler.step


@pytest.mark.parametrize("strength", [0.0, 1.5, -0.2])
def test_strength_outside_zero_one_is_refused(strength):
    with pytest.raises(BadSettingError, match="outside"):
        sdedit.check_strength(strength, 30)


def test_a_strength_that_runs_no_step_is_refused():
    with pytest.raises(BadSettingError, match="no denoising step"):
        sdedit.check_strength(0.1, 5)


def test_pairs_from_sidecar_captions_and_too_small_images_reported(tmp_path, tiny_sdxl_dir):
    run = _run(tmp_path, tiny_sdxl_dir)
    outcome = run_pairs_stage(run, load_run(run))
    assert (outcome.pairs, outcome.made) == (4, 4)
    assert [(s.key, s.reason) for s in outcome.skipped] == [
        ("small.png", "40x90 px, shorter side below pairs.min_side 64")
    ]
    for index, key in enumerate(KEYS):
        positive, negative, caption = pair_files(run, key)
        assert caption.read_text() == f"a photo number {index}\n"
        with Image.open(positive) as a, Image.open(negative) as b:
            assert a.size == b.size == (64, 64)
    status = run_status(run)
    assert status.counts["pairs"] == 4 and status.counts["positive images"] == 5


def test_a_resumed_run_gives_the_bytes_of_an_uninterrupted_one(tmp_path, tiny_sdxl_dir, img2img):
    whole = _run(tmp_path, tiny_sdxl_dir, "whole")
    run_pairs_stage(whole, load_run(whole), pipe=img2img)

    resumed = _run(tmp_path, tiny_sdxl_dir, "resumed")
    first = run_pairs_stage(resumed, load_run(resumed), pipe=img2img, limit=2)
    assert (first.pairs, first.made) == (2, 2)
    seen = []

    def stop_after_one():
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pairs_stage(resumed, load_run(resumed), pipe=img2img, check_cancelled=stop_after_one)
    last = run_pairs_stage(resumed, load_run(resumed), pipe=img2img)
    assert (last.pairs, last.made) == (4, 1)
    assert _files(resumed) == _files(whole)
    lines = (stage_folder(resumed) / JOURNAL).read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines[1:]]
    assert sorted(keys) == sorted(KEYS)


def test_a_resume_under_another_strength_is_refused(tmp_path, tiny_sdxl_dir, img2img):
    run = _run(tmp_path, tiny_sdxl_dir)
    run_pairs_stage(run, load_run(run), pipe=img2img, limit=1)
    config = load_run(run)
    changed = dataclasses.replace(
        config, pairs=dataclasses.replace(config.pairs, sdedit_strength=0.75)
    )
    with pytest.raises(BadSettingError, match="sdedit_strength"):
        run_pairs_stage(run, changed, pipe=img2img)


def test_a_missing_caption_names_the_images_and_the_ways_to_caption(tmp_path, tiny_sdxl_dir):
    run = _run(tmp_path, tiny_sdxl_dir)
    (tmp_path / "images" / "sub" / "c.txt").unlink()
    with pytest.raises(BadInputError, match=r"1 positive images have no caption: sub/c.png") as e:
        run_pairs_stage(run, load_run(run))
    assert "sidecar" in e.value.hint and "pairs.captions" in e.value.hint
    assert "captioner" in e.value.hint
    assert not (stage_folder(run) / JOURNAL).exists()


def test_captions_from_a_captions_file_and_a_captioner(tmp_path, tiny_sdxl_dir, img2img):
    images = tmp_path / "images"
    images.mkdir()
    _write_images(images, captions=False)
    (tmp_path / "captions.tsv").write_text("a.png\tfrom the file\n")
    run = _run(tmp_path, tiny_sdxl_dir, captions=str(tmp_path / "captions.tsv"))
    outcome = run_pairs_stage(
        run, load_run(run), pipe=img2img, captioner=lambda path: f"seen {path.name}"
    )
    assert outcome.pairs == 4
    assert pair_files(run, "a.png")[2].read_text() == "from the file\n"
    assert pair_files(run, "sub/d.jpg")[2].read_text() == "seen d.jpg\n"


def test_img2img_from_a_loaded_text_to_image_pipeline_shares_its_modules(tiny_sdxl_dir):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, local_files_only=True)
    img2img = sdedit.load_img2img(pipe=pipe)
    assert img2img.unet is pipe.unet and img2img.vae is pipe.vae
    image = Image.new("RGB", (64, 64), (90, 120, 150))
    negative = sdedit.sdedit_negative(img2img, image, "blurry", strength=0.5, steps=2, seed=1)
    assert negative.size == (64, 64)
