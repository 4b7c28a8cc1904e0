"""`dreamclear restore` on several processes (engine/cli/restore_ranks.py): the split, the
file-based gather, and whole runs: ranks simulated one after another in this process, and
two real CPU processes under torchrun (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamclear.cli import main
from engine.cli.restore_progress import FileOutcome
from engine.cli.restore_ranks import (
    RANKS_FOLDER,
    STARTED_SLACK_S,
    SUMMARY_FILE,
    RankReport,
    Ranks,
    gather,
    rank_device,
    shard,
)

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--steps", "2", "--seed", "0", "--upscale", "2"]


def photos(folder: Path, count: int, broken: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:02d}.png")
    if broken:
        (folder / "broken.png").write_bytes(b"not a png")
    return folder


def results(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file())


def summary(out: Path) -> dict:
    return json.loads((out / RANKS_FOLDER / SUMMARY_FILE).read_text())


# ------------------------------------------------------------------------- pieces


def test_ranks_come_from_the_launchers_environment():
    assert Ranks.from_environment({}) == Ranks()
    assert not Ranks.from_environment({"WORLD_SIZE": "1", "RANK": "0"}).several
    got = Ranks.from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (got.rank, got.world_size, got.local_rank, got.several) == (3, 4, 1, True)
    assert Ranks.from_environment({"WORLD_SIZE": "2", "RANK": "x"}) == Ranks()


def test_every_input_goes_to_one_rank_and_same_names_to_the_same_rank():
    inputs = [Path(f"in/{name}") for name in ("a.png", "a.bmp", "b.jpg", "c.png", "d.png")]
    shares = [shard(inputs, rank, 3) for rank in range(3)]
    assert sorted(str(path) for share in shares for path in share) == sorted(map(str, inputs))
    assert shares[0] == [Path("in/a.png"), Path("in/a.bmp"), Path("in/d.png")]  # both a_x4.png
    assert shares[1] == [Path("in/b.jpg")] and shares[2] == [Path("in/c.png")]


def test_a_rank_runs_on_its_own_gpu_only_when_there_is_one():
    # No CUDA here: auto stays auto (the CPU); an explicit device is kept as it is.
    assert rank_device("auto", 1) == "auto"
    assert rank_device("cuda:3", 1) == "cuda:3" and rank_device("cpu", 1) == "cpu"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_gather_waits_for_finished_ranks_and_gives_up_on_a_silent_one(tmp_path):
    clock = Clock()
    ranks = [RankReport(tmp_path, Ranks(r, 3, r), clock) for r in range(3)]
    ranks[1].write([FileOutcome("x.png", "x_x4.png")], finished=True)
    ranks[2].write([FileOutcome("y.png", error="y.png: broken")])  # then silence
    shares = {1: [Path("x.png")], 2: [Path("y.png"), Path("z.png"), Path("w.png")]}
    got = gather(ranks[0], shares, timeout_s=30, sleep=clock.sleep)
    assert [o.input for o in got.outcomes] == ["x.png", "y.png"]
    assert got.missing == ["rank 2 did not report for 30 s: 2 of its 3 input(s) unaccounted"]


def test_gather_ignores_a_rank_file_left_by_an_older_run(tmp_path):
    clock = Clock()
    old = RankReport(tmp_path, Ranks(1, 2, 1), clock)
    old.write([FileOutcome("old.png", "old_x4.png")], finished=True)
    clock.now += STARTED_SLACK_S + 3600
    rank0 = RankReport(tmp_path, Ranks(0, 2, 0), clock)
    got = gather(rank0, {1: [Path("new.png")]}, timeout_s=5, sleep=clock.sleep)
    assert got.outcomes == [] and "1 of its 1 input(s) unaccounted" in got.missing[0]


# ------------------------------------------------------------- whole runs, in process


def run_rank(monkeypatch, capsys, rank: int, args: list[str]) -> tuple[int, str]:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    code = main(["restore", *args])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_two_ranks_split_the_batch_and_rank_0_sums_it_up(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """Rank 1 runs first here (rank 0 finds its report waiting); the bad input's error
    reaches the summary whichever rank met it."""
    folder, out = photos(tmp_path / "in", 4, broken=True), tmp_path / "out"
    args = [str(folder), "-o", str(out), "--model", str(tiny_model_dir), *FAST]
    code1, text1 = run_rank(monkeypatch, capsys, 1, args)
    assert code1 == 0 and "rank 1/2 done:" in text1  # a failure is rank 0's to report
    code0, text0 = run_rank(monkeypatch, capsys, 0, args)
    assert code0 == 1, text0
    assert "all 2 ranks (5 inputs): 4 restored, 1 failed" in text0
    assert "broken.png: not an image file" in text0
    assert results(out) == [f"p{i:02d}_x2.png" for i in range(4)]
    report = summary(out)
    assert (report["inputs"], report["restored"], report["failed"]) == (5, 4, 1)


def test_skip_existing_finishes_what_an_interrupted_batch_left(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    folder, out = photos(tmp_path / "in", 4), tmp_path / "out"
    args = [str(folder), "-o", str(out), "--model", str(tiny_model_dir), *FAST]
    assert main(["restore", str(folder / "p00.png"), str(folder / "p03.png"), *args[1:]]) == 0
    capsys.readouterr()  # two done before the "interruption"
    run_rank(monkeypatch, capsys, 1, [*args, "--skip-existing"])
    code, text = run_rank(monkeypatch, capsys, 0, [*args, "--skip-existing"])
    assert code == 0, text
    assert "2 restored, 0 failed, 2 skipped" in text
    assert results(out) == [f"p{i:02d}_x2.png" for i in range(4)]  # each written once


# ----------------------------------------------------------- two real CPU processes


def torchrun(*args, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["TRANSFORMERS_OFFLINE"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(29500 + os.getpid() % 1000)]
    command += ["-m", "dreamclear.cli", "restore", *map(str, args)]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_restores_each_photo_once(tiny_model_dir, tmp_path):
    folder, out = photos(tmp_path / "in", 5, broken=True), tmp_path / "out"
    run = torchrun(folder, "-o", out, "--model", tiny_model_dir, *FAST, stderr=subprocess.PIPE)
    _, err = run.communicate(timeout=240)
    assert "all 2 ranks (6 inputs): 5 restored, 1 failed" in err, err[-3000:]
    assert results(out) == [f"p{i:02d}_x2.png" for i in range(5)]
    report = summary(out)
    assert (report["restored"], report["failed"], report["not_reported"]) == (5, 1, [])
    assert any("broken.png" in (o["error"] or "") for o in report["outcomes"])


@pytest.mark.slow
def test_a_killed_rank_stops_the_batch_and_a_rerun_completes_it(tiny_model_dir, tmp_path):
    folder, out = photos(tmp_path / "in", 16), tmp_path / "out"
    args = [folder, "-o", out, "--model", tiny_model_dir, *FAST]
    run = torchrun(*args, stderr=subprocess.DEVNULL, start_new_session=True)
    rank1 = out / RANKS_FOLDER / "rank-1.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and run.poll() is None:
        record = json.loads(rank1.read_text()) if rank1.is_file() else {}
        if record.get("outcomes"):
            os.kill(record["pid"], signal.SIGKILL)  # rank 1 dies mid-batch
            break
        time.sleep(0.05)
    else:
        pytest.fail("rank 1 never reported an outcome")
    assert run.wait(timeout=60) != 0  # the launcher stops the other rank too
    done_before = results(out)
    assert 1 <= len(done_before) < 16
    rerun = torchrun(*args, "--skip-existing", stderr=subprocess.PIPE)
    _, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err[-3000:]
    restored = 16 - len(done_before)
    assert f"{restored} restored, 0 failed, {len(done_before)} skipped" in err
    assert results(out) == [f"p{i:02d}_x2.png" for i in range(16)]  # each exactly once


def test_several_processes_do_not_each_send_the_batch_to_one_engine(monkeypatch, capsys):
    code, text = run_rank(monkeypatch, capsys, 1, ["x.png", "--engine", "127.0.0.1:1"])
    assert code == 2 and "several processes would each send them all" in text
