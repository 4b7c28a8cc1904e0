"""Size and time estimates before a job starts, and which restorer a model setting runs."""

from __future__ import annotations

import pytest

from desktop.state import EngineModels
from desktop.state.estimates import DEFAULT_S_PER_MP, SpeedBook


def test_the_issue_photo_at_x4_is_named_in_pixels_megabytes_and_time():
    estimate = SpeedBook().estimate("dreamclear", (2048, 1152), 4)
    assert (estimate.width, estimate.height) == (8192, 4608)
    assert estimate.megapixels == pytest.approx(37.75, abs=0.01)
    assert estimate.seconds == pytest.approx(37.75 * DEFAULT_S_PER_MP["dreamclear"], abs=1)
    assert estimate.large  # over 32 MP: warned
    assert not SpeedBook().estimate("dreamclear", (1024, 768), 4).large  # 12.6 MP


def test_measured_speed_replaces_the_default_and_leans_to_the_latest_job():
    book = SpeedBook()
    book.record("starter", (1000, 1000), 2.0)  # 2 s per MP
    assert book.estimate("starter", (500, 500), 4).seconds == pytest.approx(8.0)
    book.record("starter", (1000, 1000), 5.0)  # 5 s per MP: (2 + 2 * 5) / 3
    assert book.estimate("starter", (1000, 1000), 1).seconds == pytest.approx(4.0)
    book.record("starter", (500, 500), 5.0)  # 20 s per MP, but mostly fixed costs: ignored
    assert book.estimate("starter", (1000, 1000), 1).seconds == pytest.approx(4.0)
    imported = book.estimate("my-model", (1000, 1000), 1)
    assert not imported.measured and imported.seconds == DEFAULT_S_PER_MP["dreamclear"]


def test_a_model_setting_names_the_restorer_it_runs():
    models = EngineModels()
    assert models.restorer("auto") == "dreamclear"  # until the engine lists its models
    models.set_models([{"name": "dreamclear", "status": "missing"}])
    assert models.restorer("auto") == "starter"
    assert models.restorer("my-model") == "my-model"
    assert [c.value for c in models.choices()] == ["auto", "starter", "dreamclear"]
    assert [c.installed for c in models.choices()] == [True, False, False]
