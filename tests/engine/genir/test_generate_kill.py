"""`dreamclear genir generate` killed with SIGKILL mid-run (a real process), then resumed,
gives the files of an uninterrupted run and journals each image once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from generate_run import image_sha256s, journalled_keys, make_generate_run

from engine.genir.generate_stage import IMAGES, run_generate_stage, stage_folder
from engine.genir.run_folder import load_run

ROOT = Path(__file__).resolve().parents[3]
COUNT = 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]


def _command(run: Path) -> list[str]:
    return [sys.executable, "-m", "dreamclear.cli", "genir", "generate", str(run)]


def _env() -> dict[str, str]:
    # One thread in every process, so the reference and the resumed run compute alike.
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _finish(run: Path) -> str:
    result = subprocess.run(
        _command(run), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_killed_generation_resumes_to_the_bytes_of_an_uninterrupted_one(tmp_path, tiny_sdxl_dir):
    reference = make_generate_run(tmp_path, tiny_sdxl_dir, "reference", count=COUNT)
    killed = make_generate_run(tmp_path, tiny_sdxl_dir, "killed", count=COUNT)
    # In this process (one torch thread, like the children), saving a third process start.
    run_generate_stage(reference, load_run(reference))
    assert len(image_sha256s(reference)) == COUNT

    images = stage_folder(killed) / IMAGES
    with subprocess.Popen(
        _command(killed), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        deadline = time.monotonic() + 90
        while len(list(images.glob("*.png"))) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no image after 90 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # no clean-up of any kind
    done = len(journalled_keys(killed))
    assert 0 < done < COUNT, done

    assert f"{COUNT} of {COUNT} images" in _finish(killed)
    assert image_sha256s(killed) == image_sha256s(reference)
    keys = journalled_keys(killed)
    assert sorted(keys) == list(range(COUNT)), "an image journalled twice, or missing"
    assert sorted(os.listdir(images)) == [f"{key:06d}.png" for key in range(COUNT)]
