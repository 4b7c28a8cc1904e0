"""The wizard's state against the fake engine: stages run, the run folder is read back, and
the failure paths (crash, full disk, a base that does not load, cancel) end resumable."""

from __future__ import annotations

import asyncio
import json

import pytest

from desktop.state import toml_edit
from desktop.state.genir_run import read_run, scan_sources
from desktop.testing.fake_genir import quality_of
from engine.protocol import GenirPrompts


def run_stage(qtbot, wizard, stage, until=("done",)):
    task = wizard.start(stage)
    assert task is not None
    qtbot.waitUntil(lambda: wizard.stage_run(stage).status in until, timeout=20_000)
    return wizard.stage_run(stage)


def test_sources_scan_counts_images_and_says_why_one_is_too_small(genir_run):
    state = read_run(genir_run)
    sources = scan_sources(state.images_folder, 48)
    assert len(sources.images) == 4 and len(sources.usable) == 3
    [small] = sources.skipped
    assert small.key == "tiny0.png" and "32x32 px" in small.problem and "48" in small.problem
    assert sources.captioned == 3
    assert [i.key for i in sources.usable][-1] == "sub/photo0.png"


def test_every_stage_runs_and_the_run_reopens_where_it_got(make_wizard, qtbot, genir_run):
    wizard = make_wizard()
    assert wizard.open_run(genir_run) == "sources"
    wizard.set_usable_sources(3)
    stages_pages = [
        ("pairs", "finetune"),
        ("finetune", "prompts"),
        ("prompts", "generate"),
        ("generate", "filter"),
        ("filter", "export"),
    ]
    appeared = []
    wizard.imagesAppeared.connect(appeared.extend)
    for stage, page in stages_pages:
        run = run_stage(qtbot, wizard, stage)
        assert run.step == run.steps > 0, stage
        assert wizard.page_reached() == page, stage
    assert wizard.stage_run("finetune").losses[-1] < wizard.stage_run("finetune").losses[0]
    assert [p.name for p in appeared] == [f"{k:06d}.png" for k in range(8)]
    run_stage(qtbot, wizard, "export")
    assert wizard.state.exported and wizard.page_reached() == "export"
    train = wizard.train_starter(max_steps=3)
    assert train is not None
    qtbot.waitUntil(lambda: wizard.stage_run("train").status == "done", timeout=20_000)
    assert wizard.stage_run("train").steps == 3
    # a new wizard (the app reopened) reads the same run to the same page
    again = make_wizard()
    assert again.open_run(genir_run) == "export"


def test_crash_mid_generation_then_resume_keeps_the_images(make_wizard, qtbot, tmp_path):
    from genir_fixtures import make_run

    run = make_run(tmp_path)
    runs = tmp_path / "runs.txt"
    wizard = make_wizard("genir_crash", "--runs", str(runs))
    wizard.open_run(run)
    for stage in ("prompts",):
        run_stage(qtbot, wizard, stage)
    failed = run_stage(qtbot, wizard, "generate", until=("failed",))
    assert "engine stopped" in failed.error and "Resume" in failed.hint and failed.resumable
    assert wizard.state.generated == 2
    qtbot.waitUntil(lambda: wizard.client.state.value in ("ready", "busy"), timeout=20_000)
    run_stage(qtbot, wizard, "generate")  # the restarted engine behaves
    assert wizard.state.generated == 8 and wizard.state.complete["generate"]


def test_a_full_disk_fails_the_stage_with_the_reason(make_wizard, qtbot, genir_run):
    wizard = make_wizard("disk_full")
    wizard.open_run(genir_run)
    run_stage(qtbot, wizard, "prompts")
    failed = run_stage(qtbot, wizard, "generate", until=("failed",))
    assert "No space left on device" in failed.error and "free some disk space" in failed.hint
    assert wizard.state.generated == 2


def test_a_base_model_that_does_not_load_is_explained(make_wizard, qtbot, genir_run):
    wizard = make_wizard("base_fails")
    wizard.open_run(genir_run)
    failed = run_stage(qtbot, wizard, "pairs", until=("failed",))
    assert "base model could not be loaded" in failed.error and "Base model" in failed.hint


@pytest.mark.parametrize("stage", ["pairs", "finetune", "prompts", "generate", "filter", "export"])
def test_cancel_at_each_stage_then_resume(make_wizard, qtbot, genir_run, stage):
    wizard = make_wizard("normal", "--step-s", "0.2")
    wizard.open_run(genir_run)
    before = {"finetune": ["pairs"], "generate": ["prompts"], "filter": ["prompts", "generate"]}
    before["export"] = [*before["filter"], "filter"]
    for earlier in before.get(stage, []):
        run_stage(qtbot, wizard, earlier)
    wizard.start(stage)
    qtbot.waitUntil(lambda: wizard.stage_run(stage).step >= 1, timeout=20_000)
    wizard.cancel(stage)
    qtbot.waitUntil(lambda: wizard.stage_run(stage).status == "cancelled", timeout=20_000)
    assert wizard.stage_run(stage).resumable


def test_threshold_counts_and_overrides_are_kept(make_wizard, qtbot, genir_run):
    wizard = make_wizard()
    wizard.open_run(genir_run)
    for stage in ("prompts", "generate", "filter"):
        run_stage(qtbot, wizard, stage)
    scores = {k: quality_of(k) for k in range(8)}
    faces = {k for k in range(8) if k % 7 == 3}
    for threshold in (0.0, 0.3, 0.5, 0.9):
        kept = sum(1 for k, q in scores.items() if q >= threshold and k not in faces)
        assert wizard.counts(threshold) == (kept, 8 - kept)
    rejected = next(k for k, q in scores.items() if q < 0.5)
    kept_before = wizard.counts(0.5)[0]
    wizard.set_override(rejected, True, "looks fine to me")
    assert wizard.counts(0.5)[0] == kept_before + 1
    saved = json.loads((genir_run / "filter" / "overrides.json").read_text())
    assert saved == {str(rejected): {"accepted": True, "note": "looks fine to me"}}
    run_stage(qtbot, wizard, "filter")  # filtering again keeps the user's decision
    assert json.loads((genir_run / "filter" / "overrides.json").read_text()) == saved
    assert wizard.counts(0.5)[0] == kept_before + 1


def test_settings_are_written_in_place_keeping_comments(make_wizard, genir_run):
    wizard = make_wizard()
    wizard.open_run(genir_run)
    assert wizard.save_settings({("pairs", "sdedit_strength"): 0.45, ("prompts", "count"): 5}) == ""
    text = (genir_run / "genir.toml").read_text()
    assert "# Positives whose shorter side" in text
    assert wizard.setting("pairs", "sdedit_strength") == 0.45 and wizard.state.prompts_wanted == 5
    why = wizard.save_settings({("finetune", "no_such_field"): 1})
    assert "no setting finetune.no_such_field" in why


def test_toml_edit_refuses_what_would_not_read_back():
    text = '[a]\nx = 1 # one\n[b]\nx = "s"\n'
    assert (
        toml_edit.set_values(text, {("b", "x"): 'q"uote'})
        == '[a]\nx = 1 # one\n[b]\nx = "q\\"uote"\n'
    )
    with pytest.raises(toml_edit.MissingKey):
        toml_edit.set_values(text, {("c", "x"): 1})


def test_a_stage_waiting_behind_another_job_is_cancelled_from_the_queue(
    make_wizard, qtbot, genir_run
):
    wizard = make_wizard("normal", "--step-s", "0.2")
    wizard.open_run(genir_run)
    # another client's job (here: the app's restore queue) runs first
    other = asyncio.ensure_future(wizard.client.submit_job(GenirPrompts(run=str(genir_run))))
    qtbot.waitUntil(other.done, timeout=10_000)
    wizard.start("pairs")
    qtbot.waitUntil(lambda: wizard.stage_run("pairs").engine_job is not None, timeout=10_000)
    wizard.cancel("pairs")
    qtbot.waitUntil(lambda: wizard.stage_run("pairs").status == "cancelled", timeout=10_000)
    assert wizard.stage_run("pairs").step == 0  # it never ran


def test_fine_tune_disk_estimate_counts_sdxl_cross_attention(tmp_path, tiny_sdxl_dir):
    from desktop.state.genir_estimates import cross_attention_widths, finetune_bytes

    blocks, text = cross_attention_widths(tmp_path / "no-such-model")  # SDXL's shape
    assert (blocks.count(640), blocks.count(1280), text) == (10, 60, 2048)
    tokens = 2 * (768 + 1280) * 4
    assert finetune_bytes(tmp_path, "lora", 4, 2) == tokens + 4 * 785_920 * 4
    assert finetune_bytes(tmp_path, "full", 4, 2) == tokens + 545_670_400 * 4
    assert finetune_bytes(tmp_path, "none", 4, 2) == tokens
    tiny, tiny_text = cross_attention_widths(tiny_sdxl_dir)  # read from its unet/config.json
    assert tiny and tiny_text == 64


def test_training_may_use_another_trainer_config(make_wizard, qtbot, genir_run, tmp_path):
    wizard = make_wizard()
    wizard.open_run(genir_run)
    other = tmp_path / "mine" / "dreamclear.toml"
    other.parent.mkdir()
    other.write_text('task = "dreamclear"\n')
    wizard.train_config = other
    wizard.train_starter(max_steps=2)
    qtbot.waitUntil(lambda: wizard.stage_run("train").status == "done", timeout=20_000)
    # The fake engine answers with the folder beside the config (the real: its export).
    assert wizard.stage_run("train").output == str(other.parent / "export")
