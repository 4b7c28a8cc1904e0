"""SettingsModel: observable values kept in QSettings across restarts, reset, job options."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from desktop.state import SettingsModel
from desktop.state.settings_model import options_values


def test_values_persist_and_reset(tmp_path, qtbot):
    path = str(tmp_path / "s.ini")
    model = SettingsModel(QSettings(path, QSettings.Format.IniFormat))
    with qtbot.waitSignal(
        model.valueChanged, check_params_cb=lambda n, v: n == "steps" and v == 20
    ):
        model.set_value("steps", 20)
    model.set_value("sampler", "dpm++")
    model.set_value("seed", 1234)
    model.set_value("seed_locked", True)
    model.set_value("tile", 128)
    model.sync()
    again = SettingsModel(QSettings(path, QSettings.Format.IniFormat))
    assert again.value("steps") == 20 and again.value("sampler") == "dpm++"
    assert again.value("tile") == 128 and again.value("seed_locked") is True
    options = again.options()
    assert (options.steps, options.seed, options.sampler, options.save_map) == (
        20,
        1234,
        "dpm++",
        True,
    )
    again.reset()
    assert again.value("steps") == 50 and again.value("tile") == "auto"
    again.sync()
    assert SettingsModel(QSettings(path, QSettings.Format.IniFormat)).value("steps") == 50


def test_bad_values_are_refused_and_bad_saved_ones_ignored(tmp_path):
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("restore/sampler", '"euler"')
    store.setValue("restore/steps", "not json")
    model = SettingsModel(store)
    assert model.value("sampler") == "iddpm" and model.value("steps") == 50
    with pytest.raises(ValueError):
        model.set_value("upscale", 7)


def test_prompt_modes_and_unlocked_seed(tmp_path):
    model = SettingsModel(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert model.options().caption == "auto" and model.options().prompt is None
    model.set_value("prompt_mode", "prompt")
    model.set_value("prompt", "a red barn")
    assert model.options().prompt == "a red barn"
    model.set_value("prompt_mode", "none")
    assert model.options().caption == "none" and model.options().prompt is None
    seeds = {model.options().seed for _ in range(5)}
    assert len(seeds) > 1  # a fresh seed per job unless locked


def test_strength_is_a_fraction_kept_and_sent_with_every_job(tmp_path):
    path = str(tmp_path / "s.ini")
    model = SettingsModel(QSettings(path, QSettings.Format.IniFormat))
    assert model.value("strength") == 1.0 and model.options().strength == 1.0
    model.set_value("strength", 0.7)
    for bad in (1.2, -0.1, float("nan"), True, "0.7"):
        with pytest.raises(ValueError, match="strength"):
            model.set_value("strength", bad)
    model.sync()
    again = SettingsModel(QSettings(path, QSettings.Format.IniFormat))
    assert again.value("strength") == 0.7 and again.options().strength == 0.7
    assert options_values(again.options(), "/out")["strength"] == 0.7
    store = QSettings(str(tmp_path / "bad.ini"), QSettings.Format.IniFormat)
    store.setValue("restore/strength", "3")
    assert SettingsModel(store).value("strength") == 1.0  # a bad saved value is ignored
