"""`dreamclear genir generate` under a real multi-process launch (torchrun, what `accelerate
launch --multi_gpu` runs; gloo on a CPU): each process takes its batches and its journal, and
together they make the unsharded run's images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from generate_run import image_sha256s, journalled_keys, make_generate_run

from engine.genir.generate_stage import run_generate_stage, stage_folder
from engine.genir.run_folder import load_run

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_launched_processes_share_the_work(tmp_path, tiny_sdxl_dir):
    whole = make_generate_run(tmp_path, tiny_sdxl_dir, "whole", count=5, batch_size=1)
    run = make_generate_run(tmp_path, tiny_sdxl_dir, "run", count=5, batch_size=1)
    run_generate_stage(whole, load_run(whole))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--standalone", "-m", "dreamclear.cli", "genir", "generate", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 of 3 images (shard 0 of 2)" in result.stdout
    assert "2 of 2 images (shard 1 of 2)" in result.stdout
    names = sorted(path.name for path in stage_folder(run).glob("journal-*"))
    assert names == ["journal-0-of-2.jsonl", "journal-1-of-2.jsonl"]
    assert sorted(journalled_keys(run)) == list(range(5))
    assert image_sha256s(run) == image_sha256s(whole)
