"""GenIR's export stage on fabricated run folders: what is exported, the manifest, LQ pairs,
overrides, resume after an interrupt or a kill -9, and generate/ never touched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from genir_fabric import RESOLUTION, fabricate_run, set_overrides
from PIL import Image

from engine.errors import BadSettingError, JobInterrupted
from engine.genir.export_stage import read_decisions, run_export_stage
from engine.genir.run_folder import load_run
from engine.genir.stage_checks import export_state
from engine.jobs.journal import item_seed

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def run(tmp_path, base) -> Path:
    return fabricate_run(tmp_path / "run", base)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and modification time (ns) under `folder`."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _journal_keys(run: Path) -> list:
    lines = _lines(run / "export" / "journal.jsonl")
    return [line["key"] for line in lines if line["type"] == "item"]


def _set(run: Path, old: str, new: str) -> None:
    config = run / "genir.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


def test_accepted_images_are_linked_with_a_manifest_and_rejects_listed(run):
    generated = _snapshot(run / "generate")
    outcome = run_export_stage(run, load_run(run))
    assert (outcome.images, outcome.rejected, outcome.made) == (5, 1, 5)
    export = run / "export"
    names = sorted(p.name for p in (export / "images").iterdir())
    assert names == [f"{key:06d}.png" for key in (0, 2, 3, 4, 5)]
    source = run / "generate" / "images" / "000002.png"
    copy = export / "images" / "000002.png"
    assert copy.read_bytes() == source.read_bytes()
    assert copy.stat().st_ino == source.stat().st_ino  # a hard link: same filesystem here

    manifest = _lines(export / "manifest.jsonl")
    assert [line["key"] for line in manifest] == [0, 2, 3, 4, 5]
    line = manifest[1]
    assert line == {
        "file": "images/000002.png",
        "key": 2,
        "prompt": "a stone bridge over a river, scene 2",
        "seed": item_seed(3, 2),
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "quality": 0.62,
        "source": "generate/images/000002.png",
    }
    rejected = _lines(export / "rejected.jsonl")
    assert [(r["key"], r["image"]) for r in rejected] == [(1, "generate/images/000001.png")]
    assert rejected[0]["reasons"] == [{"kind": "quality", "text": "quality 0.12 < 0.5"}]

    summary = json.loads((export / "dataset.json").read_text())
    assert (summary["images"], summary["rejected"], summary["filtered"]) == (5, 1, 6)
    assert summary["seed"] == 3 and summary["base_model"].endswith("base")
    assert summary["base_sha256"] == "ab" * 32
    assert summary["validation_images"] == ["000004.png", "000005.png"]
    assert summary["settings"]["generation"]["resolution"] == RESOLUTION
    assert summary["lq_pairs"] is False and not (export / "lq").exists()
    assert export_state(run, load_run(run)).state == "done"
    # The generated images and their journal are exactly as they were.
    assert _snapshot(run / "generate") == generated

    again = run_export_stage(run, load_run(run))
    assert (again.images, again.made, again.removed) == (5, 0, 0)


def test_lq_pairs_come_from_the_published_degradation_seeded_per_item(run):
    import torch

    from engine.degradation.ops import to_uint8
    from engine.degradation.second_order import degrade

    _set(run, "lq_pairs = false", "lq_pairs = true")
    _set(run, "lq_scale = 4", "lq_scale = 2")
    run_export_stage(run, load_run(run))
    manifest = _lines(run / "export" / "manifest.jsonl")
    assert [line["lq"] for line in manifest][:2] == ["lq/000000.png", "lq/000002.png"]
    with Image.open(run / "export" / "lq" / "000003.png") as image:
        assert image.size == (RESOLUTION // 2, RESOLUTION // 2)
        lq = np.asarray(image)
    with Image.open(run / "export" / "images" / "000003.png") as image:
        hq = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1) / 255.0
    expected = to_uint8(degrade(hq, scale=2, seed=item_seed(3, "lq:3")).lq).permute(1, 2, 0)
    np.testing.assert_array_equal(lq, expected.numpy())
    assert json.loads((run / "export" / "dataset.json").read_text())["lq_scale"] == 2


def test_an_override_then_a_re_export_follows_the_users_decisions(run):
    run_export_stage(run, load_run(run))
    set_overrides(run, {1: (True, "fine to me"), 2: (False, "a face in the window")})
    state = export_state(run, load_run(run))
    assert state.state == "stale" and "decisions changed" in state.note
    decisions = {d["key"]: d for d in read_decisions(run)}
    assert decisions[1]["accepted"] and not decisions[1]["filter_accepted"]
    assert not decisions[2]["accepted"] and decisions[2]["override"]["note"]

    outcome = run_export_stage(run, load_run(run))
    assert (outcome.images, outcome.made, outcome.removed) == (5, 1, 1)
    names = sorted(p.name for p in (run / "export" / "images").iterdir())
    assert names == [f"{key:06d}.png" for key in (0, 1, 3, 4, 5)]
    assert (run / "generate" / "images" / "000002.png").is_file()  # never deleted
    rejected = _lines(run / "export" / "rejected.jsonl")
    assert [r["key"] for r in rejected] == [2]
    assert rejected[0]["reasons"] == [{"kind": "override", "text": "a face in the window"}]
    assert json.loads((run / "export" / "dataset.json").read_text())["overridden"] == 2
    assert export_state(run, load_run(run)).state == "done"
    # Key 2 was journalled, then forgotten: no key is journalled twice while it is held.
    keys = _journal_keys(run)
    assert keys == [0, 2, 3, 4, 5, 1]


def test_another_export_setting_rebuilds_the_export(run):
    run_export_stage(run, load_run(run))
    _set(run, "lq_pairs = false", "lq_pairs = true")
    assert export_state(run, load_run(run)).state == "stale"
    outcome = run_export_stage(run, load_run(run))
    assert outcome.made == 5
    assert len(list((run / "export" / "lq").glob("*.png"))) == 5


def test_an_interrupted_export_resumes_and_ends_as_an_uninterrupted_one(tmp_path, base):
    whole = fabricate_run(tmp_path / "whole", base)
    run_export_stage(whole, load_run(whole))
    run = fabricate_run(tmp_path / "run", base)
    calls = []

    def check_cancelled():
        calls.append(1)
        if len(calls) == 3:
            raise JobInterrupted("stop")

    with pytest.raises(JobInterrupted):
        run_export_stage(run, load_run(run), check_cancelled=check_cancelled)
    assert export_state(run, load_run(run)).state == "partial"
    assert _journal_keys(run) == [0, 2]
    outcome = run_export_stage(run, load_run(run))
    assert outcome.made == 3
    for name in ("manifest.jsonl", "rejected.jsonl"):
        assert (run / "export" / name).read_bytes() == (whole / "export" / name).read_bytes()


KILLED_EXPORT = """
import sys, time
from engine.genir.export_stage import run_export_stage
from engine.genir.run_folder import load_run
run = sys.argv[1]
run_export_stage(run, load_run(run), report=lambda done, total: time.sleep(1))
"""


def test_a_killed_export_resumes_with_no_duplicate(run):
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(run)], cwd=ROOT)
    journal = run / "export" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.is_file() and len(_journal_keys(run)) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= len(_journal_keys(run)) < 5
    outcome = run_export_stage(run, load_run(run))
    keys = _journal_keys(run)
    assert sorted(keys) == [0, 2, 3, 4, 5] and len(set(keys)) == len(keys)
    assert outcome.images == 5
    for line in _lines(run / "export" / "manifest.jsonl"):
        data = (run / "export" / line["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == line["sha256"]


def test_export_needs_the_filters_verdicts(tmp_path, base):
    run = fabricate_run(tmp_path / "run", base, upto="generate")
    with pytest.raises(BadSettingError, match="not been filtered yet") as error:
        run_export_stage(run, load_run(run))
    assert "genir filter" in error.value.hint


def test_nothing_accepted_exports_nothing_and_writes_no_training_config(tmp_path, base):
    reasons = [{"kind": "faces", "text": "1 face"}]
    run = fabricate_run(tmp_path / "run", base, count=2, rejected={0: reasons, 1: reasons})
    outcome = run_export_stage(run, load_run(run))
    assert (outcome.images, outcome.rejected) == (0, 2)
    assert not (run / "export" / "train-starter.toml").exists()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("lq_scale = 4", "lq_scale = 3", "'export.lq_scale' must be 1, 2, 4 or 8"),
        ("validation_images = 2", "validation_images = -1", "'export.validation_images'"),
    ],
)
def test_export_settings_are_checked(run, old, new, message):
    from engine.typed_config import ConfigError

    _set(run, old, new)
    with pytest.raises(ConfigError, match=message):
        load_run(run)


def test_a_broken_overrides_file_is_a_clear_error(run):
    (run / "filter" / "overrides.json").write_text('{"1": {"accepted": "yes"}}')
    with pytest.raises(BadSettingError, match="not a valid overrides file") as error:
        run_export_stage(run, load_run(run))
    assert "genir override" in error.value.hint


def test_a_verdict_naming_a_file_outside_generate_is_refused(run, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    verdicts = run / "filter" / "verdicts.jsonl"
    text = verdicts.read_text().replace("generate/images/000000.png", str(secret))
    verdicts.write_text(text)
    with pytest.raises(BadSettingError, match="outside"):
        run_export_stage(run, load_run(run))
    assert not any((run / "export" / "images").iterdir())
