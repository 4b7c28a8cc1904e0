"""Checkpoints resume at exactly the same data position and loss curve, even after kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from trainer import checkpoints
from trainer.config import ConfigError
from trainer.loop import train

STEPS = 10


def loss_curve(config) -> list[float]:
    rows = checkpoints.read_csv(config.checkpointing.output_dir / "losses.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    return [float(row["loss"]) for row in rows]


@pytest.fixture(scope="module")
def reference_curve(make_starter_config):
    config = make_starter_config("reference", max_steps=STEPS)
    train(config)
    return loss_curve(config)


def test_resume_continues_the_same_loss_curve(make_starter_config, reference_curve):
    train(make_starter_config("split", max_steps=3))
    config = make_starter_config("split", max_steps=STEPS)
    with pytest.raises(ConfigError, match="--resume latest"):
        train(config)  # never silently starts over in a folder that has a run
    train(config, resume="latest")
    assert loss_curve(config) == pytest.approx(reference_curve, rel=1e-5, abs=1e-7)


def test_resume_from_a_checkpoint_path(make_starter_config, reference_curve):
    config = make_starter_config("path", max_steps=5)
    train(config)
    first = checkpoints.complete_checkpoints(config.checkpointing.output_dir)[0]
    assert checkpoints.read_marker(first)["step"] == 4
    config = make_starter_config("path", max_steps=STEPS)
    train(config, resume=str(first))
    assert loss_curve(config) == pytest.approx(reference_curve, rel=1e-5, abs=1e-7)


def kill_training_when(out: Path, done: Callable[[], object], what: str) -> None:
    """Run `dreamclear train` on the run's train.toml until `done()`, then SIGKILL it."""
    command = [sys.executable, "-m", "dreamclear.cli", "train", str(out.parent / "train.toml")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(out.parent / "log.txt", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not done():
                assert process.poll() is None, (out.parent / "log.txt").read_text()
                assert time.monotonic() < deadline, f"{what}: not within 90 s"
                time.sleep(0.02)
        finally:
            process.kill()  # SIGKILL: no clean-up of any kind
            process.wait()


def test_killed_run_resumes_from_last_complete_checkpoint(make_starter_config, reference_curve):
    config = make_starter_config("killed", max_steps=1000)
    out = config.checkpointing.output_dir
    kill_training_when(out, lambda: checkpoints.complete_checkpoints(out), "a checkpoint")

    # A save the kill cut short: a newer folder with a truncated weights file, no marker.
    latest = checkpoints.complete_checkpoints(out)[-1]
    resumed_step = checkpoints.read_marker(latest)["step"]
    torn = out / "checkpoints" / f"checkpoint_{checkpoints.next_checkpoint_index(out)}"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"\x00" * 10)
    assert checkpoints.resolve_checkpoint(out, "latest") == latest
    with pytest.raises(ConfigError, match="incomplete"):
        checkpoints.resolve_checkpoint(out, str(torn))

    assert resumed_step < STEPS, "the killed run got too far before the kill"
    config = make_starter_config("killed", max_steps=STEPS)
    train(config, resume="latest")
    assert loss_curve(config) == pytest.approx(reference_curve, rel=1e-5, abs=1e-7)
    assert not torn.exists() or checkpoints.is_complete(torn)
    assert checkpoints.read_marker(checkpoints.complete_checkpoints(out)[-1])["step"] == STEPS


def test_run_killed_before_its_first_checkpoint_logs_every_step_once(
    make_starter_config, reference_curve
):
    config = make_starter_config("early", max_steps=1000, checkpoint_every=1000)
    out = config.checkpointing.output_dir
    logged = lambda: len(checkpoints.read_csv(out / "losses.csv")) >= 5  # noqa: E731
    kill_training_when(out, logged, "5 steps")
    assert not checkpoints.complete_checkpoints(out)
    validated = lambda: [int(row["step"]) for row in checkpoints.read_csv(metrics)]  # noqa: E731
    metrics = out / "validation" / "metrics.csv"
    assert validated() == [4]

    # Nothing to resume from: the run starts over, and so do its logs.
    config = make_starter_config("early", max_steps=STEPS, checkpoint_every=1000)
    train(config, resume="latest")
    assert loss_curve(config) == pytest.approx(reference_curve, rel=1e-5, abs=1e-7)
    assert validated() == [4, 8, STEPS]


class Payload:
    """Unpickled, it creates `marker`: what a replaced checkpoint file could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# Files accelerate's save_state writes and its load_state reads, pickles all of them.
ACCELERATE_PICKLES = (
    "optimizer.bin",
    "scheduler.bin",
    "sampler.bin",
    "dl_state_dict.bin",
    "scaler.pt",
    "random_states_0.pkl",
    "custom_checkpoint_0.pkl",
)
INERT_SUFFIXES = (".safetensors", ".json", ".toml")


def plant_payloads(out: Path, names: Callable[[Path], set[str]], marker: Path) -> None:
    for folder in checkpoints.complete_checkpoints(out):
        for name in names(folder):
            torch.save({"state": Payload(marker)}, folder / name)


def resume_in_subprocess(out: Path) -> subprocess.CompletedProcess:
    train_toml = str(out.parent / "train.toml")
    command = [sys.executable, "-m", "dreamclear.cli", "train", train_toml, "--resume", "latest"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_resume_refuses_checkpoint_files_that_would_run_code(make_starter_config, tmp_path):
    config = make_starter_config("tampered", max_steps=4)
    train(config)
    out, marker = config.checkpointing.output_dir, tmp_path / "code-ran"
    pickle_ish = lambda folder: {  # noqa: E731
        *ACCELERATE_PICKLES,
        *(path.name for path in folder.iterdir() if path.suffix not in INERT_SUFFIXES),
    }
    plant_payloads(out, pickle_ish, marker)

    make_starter_config("tampered", max_steps=STEPS)
    result = resume_in_subprocess(out)
    assert not marker.exists(), "resuming ran code from the checkpoint folder"
    assert result.returncode == 1, result.stderr[-3000:]
    assert "could run code" in result.stderr
    assert checkpoints.read_marker(checkpoints.complete_checkpoints(out)[-1])["step"] == 4


def test_resume_never_opens_pickles_it_does_not_need(
    make_starter_config, reference_curve, tmp_path
):
    """A checkpoint of an older version (or a tampered one) holds accelerate's pickles of the
    progress and the generator states: they are not read, and the resume stays exact."""
    config = make_starter_config("old_files", max_steps=4)
    train(config)
    out, marker = config.checkpointing.output_dir, tmp_path / "code-ran"
    not_needed = lambda folder: {  # noqa: E731
        name for name in ACCELERATE_PICKLES if name != "optimizer.bin"
    }
    plant_payloads(out, not_needed, marker)

    config = make_starter_config("old_files", max_steps=STEPS)
    result = resume_in_subprocess(out)
    assert not marker.exists(), "resuming ran code from the checkpoint folder"
    assert result.returncode == 0, result.stderr[-3000:]
    assert loss_curve(config) == pytest.approx(reference_curve, rel=1e-5, abs=1e-7)
