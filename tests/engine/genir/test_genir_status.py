"""`genir status` (every stage's state, counts, throughput, ETA, read from files) and
`run_remaining` (only the stages not done run, in order), on fabricated run folders."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from genir_fabric import fabricate_run, set_overrides

from engine.errors import BadSettingError
from engine.genir import stages
from engine.genir.run_folder import load_run
from engine.genir.stages import run_remaining
from engine.genir.status import duration_text, genir_status


def _states(run) -> dict[str, str]:
    return {stage.name: stage.state for stage in genir_status(run).stages}


def test_status_of_a_run_generating_gives_counts_throughput_and_eta(tmp_path, base):
    run = fabricate_run(tmp_path / "run", base, upto="generate")
    # Four more prompts: six of ten images generated, one every 10 s.
    with open(run / "prompts" / "prompts.jsonl", "a") as file:
        for key in range(6, 10):
            file.write(json.dumps({"key": key, "index": key, "prompt": "a field"}) + "\n")
    for key in range(6):
        path = run / "generate" / "images" / f"{key:06d}.png"
        os.utime(path, (1_000_000 + 10 * key, 1_000_000 + 10 * key))
    status = genir_status(run)
    states = {s.name: s for s in status.stages}
    assert [s.name for s in status.stages] == list(stages.stage_names())
    assert {name: s.state for name, s in states.items()} == {
        "prompts": "done",
        "pairs": "done",
        "finetune": "done",
        "generate": "partial",
        "classifier": "todo",
        "filter": "todo",
        "export": "todo",
    }
    generate = states["generate"]
    assert (generate.done, generate.total, generate.unit) == (6, 10, "images")
    assert generate.per_hour == pytest.approx(360.0)
    assert generate.eta_s == pytest.approx(40.0)

    data = status.to_json()
    assert data["next"] == "generate" and data["format"] == 1
    assert data["stages"][3] == {
        "name": "generate",
        "state": "partial",
        "done": 6,
        "total": 10,
        "unit": "images",
        "per_hour": 360.0,
        "eta_s": 40.0,
        "counts": {},
        "note": "",
    }
    text = status.describe()
    assert "stage reached:" in text
    row = next(line for line in text.splitlines() if line.startswith("generate"))
    assert "partial" in row and "6/10 images" in row and "360" in row and "40s" in row


def test_status_counts_the_filters_decisions_with_overrides(tmp_path, base):
    run = fabricate_run(tmp_path / "run", base)
    (run / "filter" / "overrides.json").write_text('{"1": {"accepted": true, "note": ""}}')
    filtered = next(s for s in genir_status(run).stages if s.name == "filter")
    assert filtered.state == "done"
    assert filtered.counts == {"accepted": 6, "rejected": 0, "overridden": 1}
    assert genir_status(run).to_json()["next"] == "export"


def test_run_exports_a_run_whose_earlier_stages_are_done_and_then_runs_nothing(tmp_path, base):
    run = fabricate_run(tmp_path / "run", base)
    config = load_run(run)
    seen = []
    ran = run_remaining(run, config, starting=lambda state: seen.append(state.name))
    assert ran == ["export"] and seen == ["export"]
    assert (run / "export" / "manifest.jsonl").is_file()
    assert set(_states(run).values()) == {"done"}
    assert run_remaining(run, config) == []
    # A new override makes the export stale: run brings it up to date, and only it.
    set_overrides(run, {2: (False, "a face")})
    assert _states(run)["export"] == "stale"
    assert run_remaining(run, config) == ["export"]
    assert not (run / "export" / "images" / "000002.png").exists()


def test_after_the_export_status_says_so_and_times_the_export_not_the_generation(tmp_path, base):
    run = fabricate_run(tmp_path / "run", base)
    for key in range(6):  # generated one every 100 s; the export takes far less an image
        path = run / "generate" / "images" / f"{key:06d}.png"
        os.utime(path, (1_000_000 + 100 * key, 1_000_000 + 100 * key))
    run_remaining(run, load_run(run))
    status = genir_status(run)
    assert status.folder.stage == "export" and "stage reached: export" in status.describe()
    rates = {s.name: s.per_hour for s in status.stages}
    assert rates["generate"] == pytest.approx(36.0)
    # Hard links share the generated files' times: the export's rate is its own, not 36.
    assert rates["export"] is not None and rates["export"] > 3600


def test_run_goes_through_the_stages_left_in_order(tmp_path, base, monkeypatch):
    run = fabricate_run(tmp_path / "run", base, upto="pairs")
    calls = []

    def fake_work(entry):
        def work(run, config, *, check_cancelled, report):
            calls.append(entry.name)
            report(1, 1)

        return work

    monkeypatch.setattr(stages, "load_work", fake_work)
    reports = []
    ran = run_remaining(run, load_run(run), report=lambda *args: reports.append(args))
    # The fakes make no files, so every stage after pairs is still to do and each is run once.
    assert ran == calls == ["finetune", "generate", "classifier", "filter", "export"]
    assert reports[0] == ("finetune", 1, 1)


def test_a_stage_this_build_lacks_stops_the_run_naming_it(tmp_path, base, monkeypatch):
    # A build without the export stage's code: the run stops at it, naming it.
    run = fabricate_run(tmp_path / "run", base, upto="filter")
    table = tuple(
        dataclasses.replace(entry, work=None) if entry.name == "export" else entry
        for entry in stages.STAGES
    )
    monkeypatch.setattr(stages, "STAGES", table)
    with pytest.raises(BadSettingError, match="'export' is not part of this build"):
        run_remaining(run, load_run(run))


def test_every_built_stage_names_a_function_that_exists():
    for entry in stages.STAGES:
        if entry.work is not None:
            assert callable(stages.load_work(entry))


def test_durations_read_like_a_person_writes_them():
    assert [duration_text(s) for s in (7.4, 200, 3725)] == ["7s", "3m 20s", "1h 02m"]


def test_training_stages_count_their_checkpointed_steps(tmp_path):
    from engine.genir.stage_checks import checkpointed_steps

    output = tmp_path / "train"
    assert checkpointed_steps(output) == 0
    for step in (2, 4):
        folder = output / "checkpoints" / f"checkpoint_{step}"
        folder.mkdir(parents=True)
        (folder / "trainer-state.json").write_text(f'{{"step": {step}}}')
    (output / "checkpoints" / "checkpoint_6").mkdir()  # still being written: no state yet
    assert checkpointed_steps(output) == 4
