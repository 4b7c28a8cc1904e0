"""`dreamclear bench estimator` on a randomly initialised starter saved in the export layout."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from dreamclear.cli import main
from engine.models.starter import DegradationEstimator, build_starter_restorer
from engine.weights import starter_io

PHOTOS = Path(__file__).resolve().parents[2] / "resources" / "photos"


def make_starter(folder: Path) -> Path:
    torch.manual_seed(0)
    folder.mkdir()
    restorer = build_starter_restorer(num_feat=8, num_block=1)
    state = {k: v.contiguous() for k, v in restorer.state_dict().items()}
    save_file(state, folder / starter_io.RESTORER_FILE)
    DegradationEstimator(channels=8, num_layers=1).save_pretrained(
        folder / starter_io.ESTIMATOR_FOLDER
    )
    return folder


def test_estimator_bench_reports_every_channel(tmp_path, capsys):
    starter = make_starter(tmp_path / "starter")
    photos = [str(PHOTOS / "wood.jpg"), str(PHOTOS / "storm.jpg")]
    code = main(
        ["bench", "estimator", "--photos", *photos, "--model", str(starter), "--crop", "64"]
    )
    assert code == 0
    table = capsys.readouterr().out
    for channel in ("blur", "noise", "jpeg", "scale"):
        assert f"| {channel} |" in table
    # 2 photos x (64/16)^2 tokens.
    assert "32 tokens" in table


def test_a_model_without_estimator_is_refused(tiny_model_dir, capsys):
    code = main(
        ["bench", "estimator", "--photos", str(PHOTOS / "wood.jpg"), "--model", str(tiny_model_dir)]
    )
    assert code == 2
    assert "no degradation estimator" in capsys.readouterr().err
