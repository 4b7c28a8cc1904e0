"""`dreamclear bench estimator` on a randomly initialised starter saved in the export layout."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from dreamclear.cli import main
from dreamclear_studio_resources import resource_path
from engine.models.starter import DegradationEstimator, build_starter_restorer
from engine.weights import starter_io

PHOTOS = resource_path("photos")


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
    assert "32 tokens" in table and "with detail)" in table


def test_several_mask_draws_are_averaged_with_their_spread(tmp_path, capsys):
    starter = make_starter(tmp_path / "starter")
    code = main(
        [
            "bench", "estimator", "--photos", str(PHOTOS / "wood.jpg"), "--model", str(starter),
            "--crop", "64", "--draws", "3",
        ]
    )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "mean of 3 mask draws" in table and "±" in table


def test_token_detail_separates_flat_from_textured_tokens():
    from engine.bench.estimator import DETAIL_LEVELS, token_detail

    image = torch.full((3, 64, 64), 0.5)
    # The right half: 8 px stripes, edges every LQ pixel pair after the x4 downscale.
    image[:, :, 32:] = (torch.arange(32) // 8 % 2).float()
    detail = token_detail(image, scale=4)
    assert detail.shape == (4, 4)
    assert float(detail[:, 0].max()) == 0.0  # (column 1 ends on the edge to the stripes)
    assert float(detail[:, 2:].min()) >= DETAIL_LEVELS


def test_a_model_without_estimator_is_refused(tiny_model_dir, capsys):
    code = main(
        ["bench", "estimator", "--photos", str(PHOTOS / "wood.jpg"), "--model", str(tiny_model_dir)]
    )
    assert code == 2
    assert "no degradation estimator" in capsys.readouterr().err


def test_the_oracle_adds_a_reference_column_for_blur_and_scale(tmp_path, capsys):
    starter = make_starter(tmp_path / "starter")
    code = main(
        [
            "bench", "estimator", "--photos", str(PHOTOS / "wood.jpg"), "--model", str(starter),
            "--crop", "64", "--oracle",
        ]
    )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "oracle, all / with detail |" in table and "knows the ground truth" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.count("|") > 5}
    assert rows["noise"].endswith("(not read) |") and rows["jpeg"].endswith("(not read) |")
    for channel in ("blur", "scale"):
        assert " / " in rows[channel].split("|")[-2]


def test_write_validation_saves_what_the_app_shows_by(tmp_path, capsys):
    """The measured numbers become the model's estimator/validation.json, read back on load:
    a retrained starter turns its channels on (or off) by its own numbers."""
    import json

    starter = make_starter(tmp_path / "starter")
    photos = [str(PHOTOS / "wood.jpg"), str(PHOTOS / "storm.jpg")]
    code = main(
        ["bench", "estimator", "--photos", *photos, "--model", str(starter), "--crop", "64",
         "--write-validation"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    path = starter / starter_io.ESTIMATOR_FOLDER / starter_io.VALIDATION_FILE
    record = json.loads(path.read_text())
    assert set(record["spearman_detail"]) == {"blur", "noise", "jpeg", "scale"}
    assert record["photos"] == ["wood.jpg", "storm.jpg"] and record["tokens"] == 32
    loaded = starter_io.load_starter_networks(starter).channel_spearman
    assert loaded == record["spearman_detail"]
