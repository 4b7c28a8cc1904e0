"""The new user's flow in the controller, against the fake engine: added photos wait for Start,
progress and previews reach the job, a result runs again as a new row, a failed job is retried
with its bad setting changed, and the estimates learn this session's speed."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from desktop.state import JobSettings
from desktop.testing.fake_engine import fake_engine_argv


def photo(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    Image.new("RGB", size, (200, 100, 50)).save(path)
    return path


def test_added_photos_wait_until_started(make_controller, qtbot, settings, tmp_path):
    controller = make_controller(auto_start=False)
    assert not settings.auto_start
    added = controller.add_paths([photo(tmp_path / "a.png"), photo(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: all(job.input_size == (8, 6) for job in added))  # a round trip later
    assert [job.state for job in added] == ["waiting", "waiting"]
    assert added[0].status_text == "ready: press Restore to start"
    assert controller.start_waiting([added[1].id]) == 1
    qtbot.waitUntil(lambda: added[1].state == "done", timeout=15_000)
    assert added[0].state == "waiting"  # only what was started
    assert controller.start_waiting() == 1
    qtbot.waitUntil(lambda: added[0].state == "done", timeout=15_000)


def test_start_automatically_runs_photos_as_they_are_added(make_controller, qtbot, tmp_path):
    controller = make_controller(auto_start=True)
    [job] = controller.add_paths([photo(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: job.state == "done", timeout=15_000)


def test_progress_fills_from_the_fraction_with_its_label_and_the_preview_reaches_the_job(
    make_controller, qtbot, tmp_path
):
    controller = make_controller(fake_engine_argv("normal", "--steps", "4", "--step-s", "0.05"))
    seen: list[tuple[float, str, str | None]] = []

    def record(job_id: str) -> None:
        job = controller.jobs.job(job_id)
        if job.state == "running":
            seen.append((job.fraction, job.status_text, job.preview_path))

    controller.jobs.jobChanged.connect(record)
    [job] = controller.add_paths([photo(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: job.state == "done", timeout=15_000)
    fractions = [fraction for fraction, _, _ in seen]
    assert 0.5 in fractions and fractions == sorted(fractions)
    assert any(text.startswith("Denoising 2/4 · 50% · ") for _, text, _ in seen)
    previews = {path for _, _, path in seen if path}
    assert previews == {job.preview_path} and Path(job.preview_path).is_file()


def test_a_result_runs_again_with_other_settings_as_a_new_row(
    make_controller, qtbot, settings, tmp_path
):
    controller = make_controller(auto_start=False)
    [first] = controller.add_paths([photo(tmp_path / "a.png")])
    controller.start_waiting()
    qtbot.waitUntil(lambda: first.state == "done", timeout=15_000)
    assert controller.run_again("no-such-job") is None
    again = controller.run_again(first.id)
    assert again is not None and again.id != first.id and again.rerun_of == first.id
    assert [job.id for job in controller.jobs.jobs] == [first.id, again.id]
    assert again.state == "waiting" and not again.start and again.input == first.input
    JobSettings(controller.jobs, again.id, settings).set_value("upscale", 2)
    assert first.options.upscale == 4  # the first job's settings are its own
    controller.start_waiting()
    qtbot.waitUntil(lambda: again.state == "done", timeout=15_000)
    assert Path(first.output).name == "a_x4.png" and Path(again.output).name == "a_x2.png"
    same = controller.run_again(first.id)
    controller.start_waiting()
    qtbot.waitUntil(lambda: same.state == "done", timeout=15_000)
    assert Path(same.output).name == "a_x4-2.png"  # the first result is kept
    assert first.state == "done" and first.output != same.output


def test_retry_runs_the_failed_job_with_the_setting_changed_since(
    make_controller, qtbot, settings, tmp_path
):
    models = "starter=installed,dreamclear=missing"
    controller = make_controller(fake_engine_argv("normal", "--models", models))
    settings.set_value("model", "dreamclear")
    [job] = controller.add_paths([photo(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: job.state == "failed", timeout=15_000)
    assert "not installed" in job.error and "Models" in job.hint
    JobSettings(controller.jobs, job.id, settings).set_value("model", "starter")
    controller.retry(job.id)
    qtbot.waitUntil(lambda: job.state == "done", timeout=15_000)
    assert job.options.model == "starter" and job.error == ""
    assert '"model": "starter"' in controller.client.engine_log.text()


def test_the_estimate_gives_the_output_size_and_learns_the_speed(
    make_controller, qtbot, settings, tmp_path
):
    controller = make_controller(auto_start=False)
    [job] = controller.add_paths([photo(tmp_path / "big.png", (3000, 2000))])
    qtbot.waitUntil(lambda: job.input_size == (3000, 2000))
    estimate = controller.estimate(job.id)
    assert (estimate.width, estimate.height) == (12000, 8000)
    assert estimate.large and not estimate.measured
    assert estimate.megabytes == 12000 * 8000 * 1.5 / 1e6
    JobSettings(controller.jobs, job.id, settings).set_value("upscale", 2)
    assert not controller.estimate(job.id).large  # 24 MP
    controller.start_waiting()
    qtbot.waitUntil(lambda: job.state == "done", timeout=15_000)
    learned = controller.estimate(job.id)
    assert learned.measured and abs(learned.seconds - 0.06) < 1e-9  # 0.1 s less 0.04 loading
