"""A journalled job killed with SIGKILL at random moments resumes to exactly the files of an
uninterrupted run, journals every item once and leaves no temp file behind."""

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

SCRIPT = Path(__file__).with_name("journalled_job.py")
COUNT = 40
KILLS = 6

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")


def run_job(folder: Path) -> subprocess.Popen:
    command = [sys.executable, str(SCRIPT), str(folder), "--count", str(COUNT)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode()


def journalled_keys(folder: Path) -> list[int]:
    lines = (folder / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["key"] for line in lines[1:] if line.endswith("}")]


def sha256s(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("*.bin"))
    }


def test_killed_job_resumes_to_the_files_of_an_uninterrupted_run(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    killed.mkdir()
    finish(run_job(reference))
    assert len(sha256s(reference)) == COUNT

    rng = np.random.default_rng(0)
    done_after_kills = []
    for _ in range(KILLS):
        with run_job(killed) as process:
            assert process.stdout.readline(), "the job ended before opening its journal"
            time.sleep(rng.uniform(0.0, 0.4))
            process.send_signal(signal.SIGKILL)  # no clean-up of any kind
        done_after_kills.append(len(journalled_keys(killed)))
    assert any(0 < done < COUNT for done in done_after_kills), done_after_kills

    finish(run_job(killed))
    assert sha256s(killed) == sha256s(reference)
    keys = journalled_keys(killed)
    assert sorted(keys) == list(range(COUNT)), "an item journalled twice, or missing"
    lines = (killed / "journal.jsonl").read_text().splitlines()
    assert {json.loads(line)["type"] for line in lines} == {"header", "item"}
    expected = {f"{index:03d}.bin" for index in range(COUNT)} | {"journal.jsonl"}
    assert set(os.listdir(killed)) == expected, "a temp file was left behind"
