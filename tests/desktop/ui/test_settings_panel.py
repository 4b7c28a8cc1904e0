"""The settings panel greys out the settings the chosen model ignores (the starter's
diffusion-only ones, by what the engine lists) and keeps their values."""

from __future__ import annotations

import pytest

from desktop.state import EngineModels, JobSettings, JobsModel, JobView
from desktop.state.settings_model import DIFFUSION_ONLY
from desktop.ui.model_choice import MISSING_ROLE
from desktop.ui.settings_panel import SettingsPanel

FRESH = [{"name": "starter", "status": "installed"}, {"name": "dreamclear", "status": "missing"}]
"""A fresh machine: `auto` runs the starter."""
WITH_DREAMCLEAR = [
    {"name": "starter", "status": "installed"},
    {"name": "dreamclear", "status": "installed"},
]


@pytest.fixture
def engine_models():
    return EngineModels()


@pytest.fixture
def panel(qtbot, settings, engine_models):
    settings.set_value("prompt", "a red kite")  # in "my prompt" mode, so the line is live
    settings.set_value("prompt_mode", "prompt")
    panel = SettingsPanel(settings, engine_models)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def enabled(panel: SettingsPanel) -> set[str]:
    return {name for name, editor in panel.editors.items() if editor.isEnabled()}


def shows_starter(panel: SettingsPanel) -> bool:
    """Whether the panel greys out exactly the diffusion-only settings, with the hint."""
    if not panel.starter_hint.isVisible():
        return False
    return enabled(panel) == set(panel.editors) - DIFFUSION_ONLY


def choose(box, value: str, missing: bool = False) -> None:
    """Pick the entry of `value` as a user does (the "Get it…" one if `missing`)."""
    index = next(
        i
        for i in range(box.count())
        if box.itemData(i) == value and bool(box.itemData(i, MISSING_ROLE)) == missing
    )
    box.setCurrentIndex(index)
    box.activated.emit(index)


def shows_dreamclear(panel: SettingsPanel) -> bool:
    return not panel.starter_hint.isVisible() and enabled(panel) == set(panel.editors)


def test_the_starter_greys_out_what_it_ignores_and_switching_back_keeps_the_values(panel, settings):
    assert shows_dreamclear(panel)  # auto, before the engine has listed its models
    settings.set_value("steps", 12)
    settings.set_value("sampler", "dpm++")
    choose(panel.model_name, "starter")
    assert settings.value("model") == "starter" and shows_starter(panel)
    assert {"upscale", "color_fix", "strength", "device", "output_dir"} <= enabled(panel)
    assert "ignores steps" in panel.starter_hint.text()
    assert panel.editors["steps"].value() == 12  # greyed out, not cleared

    settings.set_value("cfg", 7.5)  # a greyed-out setting still follows its model
    assert panel.editors["cfg"].value() == 7.5
    settings.set_value("model", "dreamclear")
    assert shows_dreamclear(panel)
    settings.set_value("model", "starter")
    settings.set_value("model", "dreamclear")
    assert (panel.editors["steps"].value(), panel.editors["sampler"].currentData()) == (12, "dpm++")
    assert panel.prompt.text() == "a red kite"
    options = settings.options()
    assert (options.steps, options.sampler, options.cfg, options.prompt) == (
        12,
        "dpm++",
        7.5,
        "a red kite",
    )


def test_auto_runs_the_starter_while_the_engine_has_no_dreamclear(panel, settings, engine_models):
    assert settings.value("model") == "auto"
    engine_models.set_models(FRESH)
    assert shows_starter(panel)
    engine_models.set_models(WITH_DREAMCLEAR)
    assert shows_dreamclear(panel)
    engine_models.set_models(FRESH)
    settings.set_value("model", "/models/my-export")  # only the engine can tell what it holds
    assert shows_dreamclear(panel)
    settings.set_value("model", "dreamclear")
    assert shows_dreamclear(panel)


def test_a_job_that_started_stays_greyed_out_whatever_the_model(panel, settings, engine_models):
    settings.set_value("model", "dreamclear")
    jobs = JobsModel()
    jobs.add(JobView("row-1", "/photos/a.png", settings.options(), "/out"))
    panel.set_model(JobSettings(jobs, "row-1", settings))
    assert enabled(panel) == set(panel.editors) - {"seed_locked"}  # the job's seed is its own

    panel.model.set_value("model", "starter")
    assert enabled(panel) == set(panel.editors) - DIFFUSION_ONLY
    jobs.update("row-1", state="submitted")
    assert enabled(panel) == set() and panel.starter_hint.isVisible()
    assert not panel.reset_button.isEnabled()

    jobs.update("row-1", options=settings.options())  # dreamclear again, while it runs
    engine_models.set_models(WITH_DREAMCLEAR)
    assert enabled(panel) == set() and not panel.starter_hint.isVisible()


def test_strength_is_edited_in_percent_for_either_model(panel, settings, engine_models):
    engine_models.set_models(FRESH)  # auto runs the starter, which blends too
    spin = panel.editors["strength"]
    assert shows_starter(panel) and spin.isEnabled()
    assert (spin.value(), spin.suffix(), spin.minimum(), spin.maximum()) == (100, " %", 0, 100)
    spin.setValue(70)
    assert settings.value("strength") == 0.7 and settings.options().strength == 0.7
    settings.set_value("strength", 0.25)  # a model change shows in the editor
    assert spin.value() == 25

    jobs = JobsModel()
    jobs.add(JobView("row-1", "/photos/a.png", settings.options(), "/out"))
    panel.set_model(JobSettings(jobs, "row-1", settings))
    assert spin.value() == 25 and spin.isEnabled()
    spin.setValue(0)
    assert jobs.job("row-1").options.strength == 0.0 and settings.value("strength") == 0.25


def test_the_model_is_a_list_of_what_is_installed_and_a_missing_one_is_to_get(
    panel, settings, engine_models, qtbot
):
    imported = {"name": "my-swinir", "title": "my-swinir", "status": "installed"}
    parts = [{"name": "t5-xxl", "status": "installed"}, {"name": "llava", "status": "missing"}]
    engine_models.set_models([*FRESH, *parts, imported])
    box = panel.model_name
    texts = [box.itemText(i) for i in range(box.count())]
    assert texts == [
        "auto (the best installed)",
        "Starter restorer",
        "my-swinir",
        "DreamClear 1024 (not installed) — Get it…",
    ]  # no parts of DreamClear, no free text
    assert not box.isEditable()
    choose(box, "my-swinir")
    assert settings.value("model") == "my-swinir"
    with qtbot.waitSignal(panel.getModel) as asked:
        choose(box, "dreamclear", missing=True)
    assert asked.args == ["dreamclear"]
    assert settings.value("model") == "my-swinir" and box.currentData() == "my-swinir"
    engine_models.set_models(WITH_DREAMCLEAR)  # got it in the model manager
    choose(box, "dreamclear")
    assert settings.value("model") == "dreamclear"
    assert box.currentText() == "DreamClear 1024"
    engine_models.set_models(FRESH)  # removed: the job still names it, as not installed
    assert box.currentText() == "DreamClear 1024 (not installed)"
    assert box.currentData() == "dreamclear" and box.count() == 4


def test_the_offload_level_is_chosen_in_the_panel_and_greyed_for_the_starter(
    panel, settings, engine_models
):
    engine_models.set_models(WITH_DREAMCLEAR)
    combo = panel.editors["offload"]
    assert combo.isEnabled() and settings.value("offload") == "none"
    combo.setCurrentIndex(combo.findText("per model"))
    assert settings.value("offload") == "model" and settings.options().offload == "model"
    settings.set_value("offload", "sequential")  # a model change shows in the editor
    assert combo.currentText() == "per layer"
    engine_models.set_models(FRESH)  # auto runs the starter, which stays on the device
    assert "offload" not in enabled(panel)


def test_the_colour_fix_says_what_it_does_and_where_the_starter_skips_it(panel):
    tip = panel.editors["color_fix"].toolTip()
    assert "wavelet" in tip and "AdaIN" in tip
    assert "heavy damage" in tip
