"""The GenIR wizard's window driven page by page against the fake engine: a new run made with
`dreamclear genir init`, every stage run from its page, the pages showing what the run folder
holds, overrides and captions written, a run reopened at the stage it reached, the menu, and
the event loop's latency while thumbnails stream in."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest
from genir_fixtures import make_run
from PySide6.QtCore import QTimer

from desktop.ui.genir_wizard.window import GenirWizardWindow


@pytest.fixture
def open_wizard(qtbot, make_wizard):
    def open_(behaviour: str = "normal", *options: str) -> GenirWizardWindow:
        window = GenirWizardWindow(make_wizard(behaviour, *options))
        qtbot.addWidget(window)
        window.show()
        return window

    return open_


def press_and_wait(qtbot, window, page, stage, status="done"):
    window.go(page)
    controls = window.pages[page].train if stage == "train" else window.pages[page].controls
    qtbot.waitUntil(controls.button.isEnabled)  # redrawn a moment after the last stage ended
    controls.button.click()
    qtbot.waitUntil(lambda: window.wizard.stage_run(stage).status == status, timeout=20_000)
    qtbot.waitUntil(lambda: controls.button.text() not in ("Pause", "Cancel"))
    return controls


def test_the_whole_wizard_from_photos_to_training(qtbot, open_wizard, genir_run):
    window = open_wizard()
    assert window.open_run(genir_run) == "sources" and window.page == "sources"
    sources = window.sources
    qtbot.waitUntil(lambda: sources.grid.rowCount() == 3, timeout=10_000)
    assert "4 images, 3 usable" in sources.summary.text()
    assert sources.skipped.item(0).text().startswith("tiny0.png: 32x32 px")
    caption = sources.grid.item(0, 2)
    caption.setText("a harbour, edited")  # as the user's edit would
    sidecar = genir_run.parent / "photos" / "photo1.txt"
    assert sidecar.read_text() == "a harbour, edited\n"

    base = window.pages["base"]
    window.go("base")
    assert base.strength.value() == pytest.approx(0.6)
    base.strength.setValue(0.45)  # not saved by hand: starting the stage saves it
    press_and_wait(qtbot, window, "base", "pairs")
    assert window.wizard.setting("pairs", "sdedit_strength") == 0.45
    assert base.positive.pixmap() is not None and not base.positive.pixmap().isNull()
    assert window.wizard.page_reached() == "finetune"

    finetune = window.pages["finetune"]
    window.go("finetune")
    assert "Disk: about" in finetune.estimate.text()
    press_and_wait(qtbot, window, "finetune", "finetune")
    assert len(finetune.curve.losses) == 4
    # The same-seed grid: per caption the base's sample beside the learned prompts' one.
    assert [(a.name, b.name) for a, b in finetune.samples.shown] == [
        ("base-000.png", "000.png"),
        ("base-001.png", "001.png"),
    ]
    assert finetune.samples.grid.count() == 2 + 4  # two titles, two pairs
    assert "Time: about" in finetune.estimate.text() or finetune.update_estimate() is None

    prompts = window.pages["prompts"]
    press_and_wait(qtbot, window, "prompts", "prompts")
    qtbot.waitUntil(lambda: prompts.accepted.count() == 8)
    assert prompts.rejected.count() == 2 and "names a person" in prompts.rejected.item(0).text()

    generate = window.pages["generate"]
    press_and_wait(qtbot, window, "generate", "generate")
    qtbot.waitUntil(lambda: generate.grid.count() == 8 and generate.grid.pending == 0)
    assert "8 images (one per prompt), 8 made" in generate.estimate.text()

    filters = window.pages["filter"]
    press_and_wait(qtbot, window, "filter", "filter")
    qtbot.waitUntil(lambda: filters.kept.count() + filters.rejected.count() == 8)
    filters.slider.setValue(0)
    assert filters.counts.text() == "0.00: 7 kept, 1 rejected"  # the one with a face stays out
    filters.slider.setValue(50)
    filters.regroup()
    rejected_before = filters.rejected.count()
    filters.rejected.setCurrentRow(0)
    key = filters._key
    filters.note.setText("fine by me")
    filters.keep_button.click()
    saved = json.loads((genir_run / "filter" / "overrides.json").read_text())
    assert saved == {key: {"accepted": True, "note": "fine by me"}}
    qtbot.waitUntil(lambda: filters.rejected.count() == rejected_before - 1)

    export = window.pages["export"]
    press_and_wait(qtbot, window, "export", "export")
    qtbot.waitUntil(lambda: "Exported to" in export.summary.text())
    kept = json.loads((genir_run / "export" / "dataset.json").read_text())["images"]
    assert f"{kept} images" in export.summary.text()
    press_and_wait(qtbot, window, "export", "train")
    assert export.train.button.text() == "Run again"
    qtbot.waitUntil(lambda: window.steps.item(6).text().startswith("✓"))


def test_a_new_run_is_made_with_genir_init(qtbot, open_wizard, tmp_path):
    template = make_run(tmp_path / "t")
    window = open_wizard()
    sources = window.sources
    assert sources.new_box.isVisible()
    sources.run_edit.setText(str(tmp_path / "new-run"))
    sources.images_edit.setText(str(template.parent / "photos"))
    sources.base_edit.setText(str(template.parent / "base"))
    task = sources.create()
    qtbot.waitUntil(task.done, timeout=30_000)
    assert sources.error.text() == ""
    assert (tmp_path / "new-run" / "genir.toml").is_file() and window.page == "sources"
    assert not sources.new_box.isVisible()
    # the engine's defaults: 512 px minimum, so the 64 px test photos are all too small
    qtbot.waitUntil(lambda: "0 usable" in sources.summary.text(), timeout=10_000)


def test_a_failed_stage_shows_why_and_offers_resume(qtbot, open_wizard, genir_run):
    window = open_wizard("disk_full")
    window.open_run(genir_run)
    press_and_wait(qtbot, window, "prompts", "prompts")
    controls = press_and_wait(qtbot, window, "generate", "generate", status="failed")
    assert controls.error.isVisible() and "No space left" in controls.error.text()
    assert controls.button.text() == "Resume"


def test_pause_then_reopen_in_a_new_window_goes_on(qtbot, open_wizard, genir_run):
    window = open_wizard("normal", "--step-s", "0.15")
    window.open_run(genir_run)
    press_and_wait(qtbot, window, "prompts", "prompts")
    window.go("generate")
    controls = window.pages["generate"].controls
    controls.button.click()
    qtbot.waitUntil(lambda: window.wizard.stage_run("generate").step >= 2, timeout=20_000)
    assert controls.button.text() == "Pause"
    controls.button.click()
    qtbot.waitUntil(lambda: controls.button.text() == "Resume", timeout=20_000)
    made = window.wizard.state.generated
    assert 2 <= made < 8
    window.close()
    reopened = open_wizard("normal", "--step-s", "0.01")  # the app started again
    assert reopened.open_run(genir_run) == "generate"
    qtbot.waitUntil(lambda: reopened.pages["generate"].grid.count() == made)
    press_and_wait(qtbot, reopened, "generate", "generate")
    assert reopened.wizard.state.generated == 8


def test_the_file_menu_opens_the_wizard(make_controller, open_window, qtbot, genir_run):
    window = open_window(make_controller())
    titles = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "&New dataset (GenIR)…" in titles and "Open dataset &run…" in titles
    window.new_dataset()
    wizard_window = window.genir_window
    assert wizard_window.isVisible() and wizard_window.page == "sources"
    assert wizard_window.open_run(genir_run) == "sources"
    wizard_window.close()


def test_event_loop_stays_responsive_while_thumbnails_stream(qtbot, open_wizard, tmp_path):
    # 100 images a second, each with a progress event: five times the real engine's
    # throttled rate of progress events (about 20 a second)
    run = make_run(tmp_path, prompts=200)
    window = open_wizard("normal", "--step-s", "0.01")
    window.open_run(run)
    press_and_wait(qtbot, window, "prompts", "prompts")
    window.go("generate")
    late: list[float] = []
    interval_ms = 5
    last = [time.perf_counter()]

    def probe() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - interval_ms))
        last[0] = now

    timer = QTimer(interval=interval_ms)
    timer.timeout.connect(probe)
    timer.start()
    grid = window.pages["generate"].grid
    press_and_wait(qtbot, window, "generate", "generate")
    qtbot.waitUntil(lambda: grid.count() == 200 and grid.pending == 0, timeout=20_000)
    timer.stop()
    p99 = statistics.quantiles(late, n=100)[98]
    print(
        f"event-loop lateness over {len(late)} probes: p50 {statistics.median(late):.1f} ms, "
        f"p99 {p99:.1f} ms"
    )
    # The target is 16 ms (a frame). On a CPU shared past its cores (this project's test
    # machine: 2 cores, load often 6-8) the process is preempted in mid-callback, so there the
    # bound is looser; it still catches a real stall: a synchronous repaint or a relayout at each
    # progress event took this to 340 ms before they were removed.
    overloaded = os.getloadavg()[0] >= (os.cpu_count() or 1)
    assert p99 < (100 if overloaded else 16)


def test_fine_tune_estimate_follows_the_settings(qtbot, open_wizard, genir_run):
    window = open_wizard()
    window.open_run(genir_run)
    window.go("finetune")
    page = window.pages["finetune"]
    lora = page.estimate.text()
    assert "Disk: about" in lora and "measured after the first steps" in lora
    page.mode.setCurrentText("full")
    assert not page.rank.isEnabled() and page.estimate.text() != lora
    assert "GB" in page.estimate.text()  # SDXL's cross-attention in float32
    page.mode.setCurrentText("lora")
    assert page.rank.isEnabled() and page.estimate.text() == lora


def test_prompts_may_come_from_a_local_language_model(qtbot, open_wizard, genir_run):
    window = open_wizard()
    window.open_run(genir_run)
    window.go("prompts")
    page = window.pages["prompts"]
    assert page.source.currentText() == "template" and not page.llm_model.isEnabled()
    page.source.setCurrentText("llm")
    assert page.llm_model.isEnabled()
    page.llm_model.setText("genir-llm")
    assert page.form.save()
    text = (genir_run / "genir.toml").read_text()
    assert 'source = "llm"' in text and 'llm_model = "genir-llm"' in text


def test_the_user_overrules_the_privacy_filter_and_writes_the_prompts_again(
    qtbot, open_wizard, genir_run
):
    window = open_wizard()
    window.open_run(genir_run)
    press_and_wait(qtbot, window, "prompts", "prompts")
    page = window.pages["prompts"]
    qtbot.waitUntil(lambda: page.accepted.count() == 8)
    assert not page.keep.isEnabled() and not page.drop.isEnabled()
    assert not page.stale.isVisible()

    # Keep the first reject (index 8) with a note, drop the first accepted (index 0).
    page.rejected.setCurrentRow(0)
    assert page.keep.isEnabled() and not page.drop.isEnabled()
    page.note.setText("an invented name")
    page.keep.click()
    page.accepted.setCurrentRow(0)
    assert page.drop.isEnabled() and not page.keep.isEnabled()
    page.drop.click()
    overrides = json.loads((genir_run / "prompts" / "overrides.json").read_text())
    assert overrides == {
        "8": {"accepted": True, "note": "an invented name"},
        "0": {"accepted": False, "note": ""},
    }
    assert page.stale.isVisible() and "write the prompts again" in page.stale.text()
    assert "kept by you: an invented name" in page.rejected.item(0).text()
    assert "dropped by you" in page.accepted.item(0).text()

    # The stage's button writes them again; the lists show the effect, still marked.
    press_and_wait(qtbot, window, "prompts", "prompts")
    qtbot.waitUntil(lambda: not page.stale.isVisible())
    kept = [json.loads(line) for line in (genir_run / "prompts" / "prompts.jsonl").open()]
    assert len(kept) == 8 and [line["key"] for line in kept] == list(range(8))
    assert 8 in [line["index"] for line in kept] and 0 not in [line["index"] for line in kept]
    assert any("John Smith 0" in page.accepted.item(row).text() for row in range(8))
    texts = [page.rejected.item(row).text() for row in range(page.rejected.count())]
    assert any("scene 0\n" in text and "dropped by you" in text for text in texts)

    # Taking a decision back is recorded too, and asks for another run.
    row = next(r for r in range(8) if "John Smith" in page.accepted.item(r).text())
    page.accepted.setCurrentRow(row)
    assert page.undo.isEnabled()
    page.undo.click()
    assert "8" not in json.loads((genir_run / "prompts" / "overrides.json").read_text())
    assert page.stale.isVisible()


def test_captions_may_come_from_a_local_captioner(qtbot, open_wizard, genir_run, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = open_wizard()
    window.open_run(genir_run)
    sources = window.sources
    assert sources.caption_source.model().item(2).isEnabled()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("genir-captioner", True))
    sources.caption_source.setCurrentIndex(2)
    sources.caption_source.activated.emit(2)
    text = (genir_run / "genir.toml").read_text()
    assert 'captioner = "genir-captioner"' in text and 'captions = ""' in text
    sources.refresh()
    assert sources.caption_source.currentIndex() == 2
    # Back to sidecars: the captioner setting is cleared.
    sources.caption_source.activated.emit(0)
    assert 'captioner = ""' in (genir_run / "genir.toml").read_text()
