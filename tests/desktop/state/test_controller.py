"""AppController against the scripted fake engine: queue, progress, cancel, retry, errors, loss."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

from desktop.testing.fake_engine import fake_engine_argv


def photo(path: Path) -> Path:
    Image.new("RGB", (8, 8), (200, 100, 50)).save(path)
    return path


def wait_states(qtbot, controller, states: list[str], timeout: int = 15_000) -> None:
    qtbot.waitUntil(lambda: [j.state for j in controller.jobs.jobs] == states, timeout=timeout)


def test_jobs_run_in_order_with_progress_and_results(make_controller, qtbot, tmp_path):
    controller = make_controller()
    seen: list[tuple[str, int]] = []
    controller.jobs.jobChanged.connect(
        lambda job_id: seen.append((job_id, controller.jobs.job(job_id).step))
    )
    paths = [photo(tmp_path / f"p{i}.png") for i in range(3)]
    added = controller.add_paths(paths)
    assert [job.state for job in controller.jobs.jobs][1:] == ["waiting", "waiting"]
    with qtbot.waitSignals([controller.jobFinished] * 3, timeout=15_000):
        pass
    wait_states(qtbot, controller, ["done"] * 3)
    assert [job.output for job in controller.jobs.jobs] == [
        str(tmp_path / "out" / f"p{i}_x4.png") for i in range(3)
    ]
    assert (added[0].id, 3) in seen  # progress reached the row
    assert all(job.options.save_map for job in added)
    assert controller.status.state == "ready"
    qtbot.waitUntil(lambda: all(job.thumbnail is not None for job in controller.jobs.jobs))


def test_the_strength_setting_is_sent_with_each_job(make_controller, qtbot, settings, tmp_path):
    controller = make_controller()
    settings.set_value("strength", 0.6)
    added = controller.add_paths([photo(tmp_path / "grain.png")])
    assert added[0].options.strength == 0.6
    wait_states(qtbot, controller, ["done"])
    assert '"strength": 0.6' in controller.client.engine_log.text()  # the fake engine logs it


def test_the_offload_setting_reaches_the_engine_request(make_controller, qtbot, settings, tmp_path):
    controller = make_controller()
    settings.set_value("offload", "sequential")
    added = controller.add_paths([photo(tmp_path / "big.png")])
    assert added[0].options.offload == "sequential"
    wait_states(qtbot, controller, ["done"])
    assert '"offload": "sequential"' in controller.client.engine_log.text()  # as sent


def test_folder_with_a_bad_file_fails_that_job_with_its_hint(make_controller, qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "bad.png", "c.png"):
        photo(folder / name)
    (folder / "notes.txt").write_text("not an image")
    controller = make_controller()
    controller.add_paths([folder])
    assert [job.name for job in controller.jobs.jobs] == ["a.png", "bad.png", "c.png"]
    wait_states(qtbot, controller, ["done", "failed", "done"])
    bad = controller.jobs.jobs[1]
    assert bad.error == "cannot read" and bad.hint == "fix"
    assert "failed: cannot read" in bad.status_text
    assert any("bad.png: cannot read" in line for line in controller.log.errors)
    controller.retry(bad.id)
    wait_states(qtbot, controller, ["done", "failed", "done"])


def test_a_job_has_one_id_from_its_row_to_the_engine_and_back(make_controller, qtbot, tmp_path):
    controller = make_controller()
    seen: list[tuple[str, str]] = []
    controller.client.subscribe(
        lambda event: seen.append((event.TYPE, getattr(event, "job_id", None) or ""))
    )
    [job] = controller.add_paths([photo(tmp_path / "bad.png")])
    wait_states(qtbot, controller, ["failed"])
    controller.retry(job.id)
    assert job.state == "submitted"
    wait_states(qtbot, controller, ["failed"])
    assert {job_id for _, job_id in seen if job_id} == {job.id}  # both tries, every event
    assert [kind for kind, _ in seen if kind in ("accepted", "error")] == ["accepted", "error"] * 2


def test_cancel_waiting_interrupt_running_cancel_all_and_retry(make_controller, qtbot, tmp_path):
    controller = make_controller(fake_engine_argv("normal", "--steps", "200", "--step-s", "0.02"))
    jobs = controller.add_paths([photo(tmp_path / f"p{i}.png") for i in range(4)])
    qtbot.waitUntil(lambda: jobs[0].state == "running" and jobs[0].step >= 1, timeout=10_000)
    assert controller.move(jobs[3].id, -1)  # reorder waiting jobs
    assert [job.name for job in controller.jobs.jobs] == ["p0.png", "p1.png", "p3.png", "p2.png"]
    assert not controller.move(jobs[0].id, 1)  # the running job stays
    controller.cancel(jobs[1].id)
    assert jobs[1].state == "cancelled"
    controller.cancel(jobs[0].id)  # running: interrupted
    qtbot.waitUntil(lambda: jobs[0].state == "cancelled", timeout=10_000)
    qtbot.waitUntil(lambda: jobs[3].state == "running", timeout=10_000)
    controller.cancel_all()
    wait_states(qtbot, controller, ["cancelled"] * 4)
    assert controller.status.state == "ready"
    controller.retry(jobs[2].id)
    qtbot.waitUntil(lambda: jobs[2].state == "running", timeout=10_000)
    controller.cancel(jobs[2].id)
    qtbot.waitUntil(lambda: jobs[2].state == "cancelled", timeout=10_000)


def test_engine_lost_shows_in_the_status_and_recovers(make_controller, qtbot, tmp_path):
    runs = tmp_path / "runs"
    controller = make_controller(fake_engine_argv("crash", "--runs", str(runs), "--until", "1"))
    states: list[str] = []
    controller.status.stateChanged.connect(states.append)
    jobs = controller.add_paths([photo(tmp_path / "one.png"), photo(tmp_path / "two.png")])
    wait_states(qtbot, controller, ["failed", "done"])
    assert jobs[0].error == "the engine stopped unexpectedly" and "restarted" in jobs[0].hint
    assert states[:2] == ["busy", "lost"] and "restarting" in states and states[-1] == "ready"
    assert controller.client.hello_reply.engine_version == "fake-normal-run2"
    controller.retry(jobs[0].id)
    wait_states(qtbot, controller, ["done", "done"])


def test_diagnostic_report_and_pasted_image(make_controller, qtbot, tmp_path):
    from PySide6.QtGui import QColor, QImage

    controller = make_controller()
    image = QImage(12, 10, QImage.Format.Format_RGB32)
    image.fill(QColor("teal"))
    [job] = controller.add_image(image)
    assert Path(job.input).parent == tmp_path / "data" / "pasted" and Path(job.input).is_file()
    qtbot.waitUntil(lambda: job.state == "done", timeout=10_000)
    report = controller.diagnostic_report()
    assert "engine: fake-normal-run1" in report and "device: cpu" in report
    assert "fake engine run 1: normal" in report  # the engine's stderr


def test_the_engines_models_tell_what_auto_runs(make_controller, qtbot):
    controller = make_controller()
    qtbot.waitUntil(lambda: controller.models.known)  # asked for after hello
    assert controller.models.installed("dreamclear") and not controller.models.runs_starter("auto")
    fresh = make_controller(
        fake_engine_argv("normal", "--models", "starter=installed,dreamclear=missing")
    )
    qtbot.waitUntil(lambda: fresh.models.known)
    assert fresh.models.runs_starter("auto") and fresh.models.runs_starter("starter")
    assert not fresh.models.runs_starter("dreamclear")
    assert not fresh.models.runs_starter("/models/my-export")


def test_queue_rows_show_the_settings_the_jobs_model_uses(make_controller, qtbot, tmp_path):
    controller = make_controller(
        fake_engine_argv("normal", "--models", "starter=installed,dreamclear=missing")
    )
    controller.settings.set_value("strength", 0.6)
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    [job] = controller.add_paths([photo])
    jobs = controller.jobs
    assert job.options.model == "auto"
    qtbot.waitUntil(lambda: controller.models.known)
    text = jobs.settings_text(job)
    assert "starter" in text and "steps" not in text and "CFG" not in text
    assert "strength 60%" in text and "colour fix wavelet" in text
    tip = jobs.data(jobs.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "starter" in tip and "CFG" not in tip
    job.options.model = "dreamclear"
    assert "steps" in jobs.settings_text(job) and "CFG" in jobs.settings_text(job)


def test_rows_are_repainted_when_the_engines_models_change(make_controller, qtbot, tmp_path):
    controller = make_controller()
    qtbot.waitUntil(lambda: controller.models.known)
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    [job] = controller.add_paths([photo])
    assert "steps" in controller.jobs.settings_text(job)  # auto is DreamClear here
    with qtbot.waitSignal(controller.jobs.dataChanged):
        controller.models.set_models([{"name": "dreamclear", "status": "missing"}])
    assert "starter" in controller.jobs.settings_text(job)


def test_skip_existing_marks_a_photo_already_restored(make_controller, qtbot, settings, tmp_path):
    controller = make_controller()
    settings.set_value("skip_existing", True)
    settings.set_value("output_dir", str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old_x4.png").write_bytes(b"restored before")
    added = controller.add_paths([photo(tmp_path / "old.png"), photo(tmp_path / "new.png")])
    assert all(job.options.skip_existing for job in added)
    wait_states(qtbot, controller, ["done", "done"])
    old, new = controller.jobs.jobs
    assert old.skipped and old.status_text == "already restored: skipped"
    assert not new.skipped and new.status_text.startswith("done in")
