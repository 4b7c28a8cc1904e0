"""JobSettings: a waiting job's settings edited like the defaults, straight into the job."""

from __future__ import annotations

import pytest

from desktop.state import JobSettings, JobsModel, JobView


@pytest.fixture
def jobs(settings):
    model = JobsModel()
    settings.set_value("seed", 77)
    settings.set_value("seed_locked", True)
    model.add(JobView("row-1", "/photos/a.png", settings.options(), "/out"))
    return model


def test_edits_go_straight_to_the_job_and_leave_the_defaults(jobs, settings, qtbot):
    edited = JobSettings(jobs, "row-1", settings)
    assert edited.editable and edited.name == "a.png"
    assert (edited.value("steps"), edited.value("seed"), edited.value("output_dir")) == (
        50,
        77,
        "/out",
    )
    with qtbot.waitSignal(jobs.jobChanged, check_params_cb=lambda job_id: job_id == "row-1"):
        edited.set_value("steps", 12)
    edited.set_value("prompt", "a red kite")
    edited.set_value("prompt_mode", "prompt")
    edited.set_value("output_dir", "/elsewhere")
    edited.set_value("strength", 0.4)
    job = jobs.job("row-1")
    assert (job.options.steps, job.options.seed, job.options.prompt) == (12, 77, "a red kite")
    assert job.options.strength == 0.4 and settings.value("strength") == 1.0
    assert job.output_dir == "/elsewhere"
    assert settings.value("steps") == 50 and settings.value("prompt") == ""
    with pytest.raises(ValueError, match="upscale"):
        edited.set_value("upscale", 5)


def test_changes_made_elsewhere_show_and_a_started_job_is_read_only(jobs, settings, qtbot):
    edited = JobSettings(jobs, "row-1", settings)
    settings.set_value("steps", 30)
    with qtbot.waitSignal(
        edited.valueChanged, check_params_cb=lambda name, value: (name, value) == ("steps", 30)
    ):
        jobs.update("row-1", options=settings.options())  # "apply defaults to selected"
    edited.set_value("steps", 8)
    with qtbot.waitSignal(edited.editableChanged, check_params_cb=lambda e: e is False):
        jobs.update("row-1", state="submitted")
    edited.set_value("steps", 9)
    edited.reset()
    assert jobs.job("row-1").options.steps == 8 and edited.value("steps") == 8


def test_reset_gives_the_job_the_current_defaults(jobs, settings):
    edited = JobSettings(jobs, "row-1", settings)
    edited.set_value("cfg", 9.0)
    settings.set_value("sampler", "dpm++")
    edited.reset()
    options = jobs.job("row-1").options
    assert (options.cfg, options.sampler) == (4.5, "dpm++")
    assert edited.value("sampler") == "dpm++"
