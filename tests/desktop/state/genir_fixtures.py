"""Fixtures for the GenIR wizard's tests: a fabricated run folder (as `dreamclear genir init`
writes it, with the fine-tuning's section) over a folder of small photos, and a wizard driving
the fake engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from desktop.client import EngineClient
from desktop.testing.fake_engine import fake_engine_argv

CONFIG = """\
# A GenIR dataset build, written by `dreamclear genir init` (fabricated for the tests).

# Folder of high-quality positive images (searched recursively).
images = "{images}"

# SDXL base model folder in diffusers layout.
base_model = "{base}"

seed = 0

[prompts]
# Scene descriptions to generate.
count = {prompts}
people = false
source = "template"
llm_model = ""

[pairs]
sdedit_strength = 0.6
steps = 30
negative_words = ["cartoon", "painting", "over-smooth", "dirty"]
size = 64
# Positives whose shorter side is below this many pixels are skipped and reported.
min_side = 48
captions = ""
captioner = ""

[finetune]
steps = 4
cross_attention = "lora"
lora_rank = 4
vectors_per_token = 2

[generation]
resolution = 64
steps = 30
cfg = 7.0
batch_size = 1

[filter]
quality_threshold = 0.5
max_faces = 0
judge = false
"""


def make_run(root: Path, *, photos: int = 3, small: int = 1, prompts: int = 8) -> Path:
    """A run folder at root/run over root/photos (`photos` of 64 px with sidecar captions,
    `small` of 32 px, too small) and a base folder at root/base."""
    images = root / "photos"
    (images / "sub").mkdir(parents=True)
    for n in range(photos):
        path = images / ("sub" if n == 0 else "") / f"photo{n}.png"
        Image.new("RGB", (64, 80), (40 * n, 90, 120)).save(path)
        path.with_suffix(".txt").write_text(f"a photo number {n}")
    for n in range(small):
        Image.new("RGB", (32, 32), (200, 0, 0)).save(images / f"tiny{n}.png")
    base = root / "base"
    base.mkdir()
    (base / "model_index.json").write_text("{}")
    run = root / "run"
    run.mkdir()
    (run / "genir.toml").write_text(CONFIG.format(images=images, base=base, prompts=prompts))
    return run


@pytest.fixture
def genir_run(tmp_path) -> Path:
    return make_run(tmp_path)


@pytest.fixture
def make_wizard(loop, qtbot):
    """`make_wizard(behaviour, *options)`: a GenirWizard over a started fake engine."""
    from app_fixtures import FAST

    from desktop.state.genir_wizard import GenirWizard

    made: list[tuple[EngineClient, GenirWizard]] = []

    def make(behaviour: str = "normal", *options: str) -> GenirWizard:
        client = EngineClient(FAST)
        task = asyncio.ensure_future(client.spawn(fake_engine_argv(behaviour, *options)))
        qtbot.waitUntil(task.done, timeout=20_000)
        task.result()
        wizard = GenirWizard(client)
        made.append((client, wizard))
        return wizard

    yield make
    for client, wizard in made:
        wizard.close()
        task = asyncio.ensure_future(client.close())
        qtbot.waitUntil(task.done, timeout=10_000)
