"""The wizard against the real engine over the tiny SDXL base: a new run made through the
Sources page, then every stage from its page, as far as this engine takes them (an engine
without a stage yet does not accept its request: the rest is skipped, saying which). Each stage
needs the ones before it, but the prompts, which need nothing, run second."""

from __future__ import annotations

import asyncio

import pytest
from genir_fixtures import make_run

from desktop.client import ClientSettings, EngineClient
from desktop.state.genir_wizard import GenirWizard
from desktop.ui.genir_wizard.window import GenirWizardWindow

pytestmark = pytest.mark.slow

TINY = {
    ("pairs", "size"): 64,
    ("pairs", "min_side"): 48,
    ("pairs", "steps"): 2,
    ("pairs", "sdedit_strength"): 0.5,
    ("prompts", "count"): 4,
    ("generation", "resolution"): 64,
    ("generation", "steps"): 2,
    ("finetune", "steps"): 2,
    ("finetune", "resolution"): 64,  # 1024 by default: training and samples at SDXL's size
    ("finetune", "sample_images"): 1,
    # The filter trains the quality classifier first (1500 steps by default).
    ("filter", "classifier_steps"): 2,
    ("filter", "classifier_crop"): 32,
    ("filter", "classifier_width"): 8,
    ("filter", "classifier_batch_size"): 2,
    ("filter", "quality_threshold"): 0.0,
    ("filter", "max_faces"): 8,  # a random model's noise may look like faces
}
"""Small enough for a CPU; a key this engine's config does not have is left out."""


def test_the_wizard_runs_the_real_stages(loop, qtbot, tmp_path, tiny_sdxl_dir):
    photos = make_run(tmp_path / "inputs").parent / "photos"
    client = EngineClient(ClientSettings(start_timeout_s=120, request_timeout_s=30))
    started = asyncio.ensure_future(client.spawn(store=tmp_path / "store"))
    qtbot.waitUntil(started.done, timeout=120_000)
    started.result()
    wizard = GenirWizard(client)
    window = GenirWizardWindow(wizard)
    qtbot.addWidget(window)
    window.show()
    try:
        sources = window.sources
        sources.run_edit.setText(str(tmp_path / "run"))
        sources.images_edit.setText(str(photos))
        sources.base_edit.setText(str(tiny_sdxl_dir))
        made = sources.create()
        qtbot.waitUntil(made.done, timeout=30_000)
        assert wizard.run is not None, sources.error.text()
        settings = {key: value for key, value in TINY.items() if wizard.has_setting(*key)}
        assert wizard.save_settings(settings) == ""
        window.open_run(wizard.run)
        qtbot.waitUntil(lambda: sources.grid.rowCount() == 3, timeout=20_000)
        for page, stage in (
            ("base", "pairs"),
            ("prompts", "prompts"),  # before the fine-tuning: it needs none, and runs on main
            ("finetune", "finetune"),
            ("generate", "generate"),
            ("filter", "filter"),
            ("export", "export"),
            ("export", "train"),
        ):
            window.go(page)
            task = wizard.train_starter(max_steps=2) if stage == "train" else wizard.start(stage)
            assert task is not None
            qtbot.waitUntil(
                lambda stage=stage: wizard.stage_run(stage).status in ("done", "failed"),
                timeout=300_000,
            )
            run = wizard.stage_run(stage)
            if run.status == "failed" and "did not accept" in run.error:
                pytest.skip(f"this engine has no '{stage}' stage yet ({run.error})")
            assert run.status == "done", (stage, run.error, run.hint)
            assert run.step == run.steps > 0, stage
        assert wizard.page_reached() == "export"
    finally:
        closing = asyncio.ensure_future(client.close())
        qtbot.waitUntil(closing.done, timeout=30_000)
