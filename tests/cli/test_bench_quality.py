"""`dreamclear bench quality`: bicubic vs a model on degraded crops, as a markdown table.

The degradations module is another issue's; a stand-in with its API (`degrade(hq, *, scale,
seed) -> .lq`) keeps this test about the bench.
"""

from __future__ import annotations

import shutil
import types

import pytest
import torch
from torch.nn import functional as F

from dreamclear.cli import main
from dreamclear_studio_resources import resource_path
from engine.bench import quality

PHOTOS = resource_path("photos")


def _stand_in_degrade(hq: torch.Tensor, *, scale: int = 4, seed: int) -> types.SimpleNamespace:
    lq = F.avg_pool2d(hq[None], scale)[0]
    noise = torch.randn(lq.shape, generator=torch.Generator().manual_seed(seed))
    return types.SimpleNamespace(lq=(lq + 0.02 * noise).clamp(0, 1), params=None)


@pytest.fixture
def stand_in_degradations(monkeypatch):
    calls = []

    def degrade(hq, *, scale=4, seed):
        calls.append((tuple(hq.shape), scale, seed))
        return _stand_in_degrade(hq, scale=scale, seed=seed)

    from engine.degradation import second_order

    # A cheap, predictable stand-in for the real degradations (tested on their own).
    monkeypatch.setattr(second_order, "degrade", degrade)
    return calls


@pytest.fixture
def two_photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("aqua.jpg", "wood.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    return folder


def test_quality_bench_prints_a_row_per_photo_and_method(
    tiny_model_dir, two_photos, stand_in_degradations, tmp_path, capsys
):
    code = main(
        [
            "bench", "quality", "--photos", str(two_photos), "--scale", "4",
            "--model", str(tiny_model_dir), "--steps", "1", "--crop", "64",
            "--device", "cpu", "--store", str(tmp_path / "store"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert stand_in_degradations == [((3, 64, 64), 4, 0), ((3, 64, 64), 4, 1)]
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert [cell.strip() for cell in header] == ["photo", "method", "PSNR-Y ↑", "SSIM-Y ↑"]
    assert [(r[0].strip(), r[1].strip()) for r in body][:4] == [
        ("aqua.jpg", "bicubic"),
        ("aqua.jpg", "tiny-dreamclear"),
        ("wood.jpg", "bicubic"),
        ("wood.jpg", "tiny-dreamclear"),
    ]
    assert [r[0].strip() for r in body[4:]] == ["**mean**", "**mean**", "**gain**"]
    psnr = [float(r[2]) for r in body[:4]]
    # The tiny model is random: its scores are low, but numbers.
    assert all(0 < value < 60 for value in psnr), out
    assert psnr[0] > psnr[1]
    mean_gain = float(body[6][2])
    assert mean_gain == pytest.approx((psnr[1] + psnr[3] - psnr[0] - psnr[2]) / 2, abs=0.02)
    # Missing metrics are explained, not silently dropped.
    assert "NIQE left out" in out and "LPIPS left out" in out


def test_bicubic_of_a_bicubic_friendly_image_beats_noise():
    gt = torch.linspace(0, 1, 32).repeat(3, 32, 1)  # a smooth ramp
    lq = F.interpolate(gt[None], scale_factor=0.25, mode="area")[0]
    upscaled = quality.quantise(quality.bicubic_upscale(lq, 4))
    assert upscaled.shape == gt.shape
    from engine.metrics import psnr_y

    assert psnr_y(upscaled, quality.quantise(gt), crop_border=4) > 35


def test_scores_include_niqe_and_lpips_when_available(monkeypatch):
    """With both present, every photo gets all four scores (crop large enough for NIQE)."""
    import numpy as np

    from engine.metrics.niqe import NiqeModel

    model = NiqeModel(mu=np.zeros(36), cov=np.eye(36))
    image = torch.rand(3, 208, 208, generator=torch.Generator().manual_seed(0))

    class FakeLPIPS(torch.nn.Module):
        lins = torch.nn.ModuleList([torch.nn.Conv2d(1, 1, 1)])

        def forward(self, a, b):
            return (a - b).abs().mean(dim=(1, 2, 3))

    scores = quality._score(image, image.flip(-1), 4, model, FakeLPIPS())
    assert set(scores) == {"psnr", "ssim", "niqe", "lpips"}
    report = quality.QualityReport("m", 4, 208, 1, [quality.PhotoScores("p", scores, scores)])
    table = quality.format_table(report)
    assert "NIQE ↓ | LPIPS ↓" in table
    assert "| **gain** | model − bicubic | +0.00 | +0.0000 | +0.000 | +0.0000 |" in table


def test_bad_crop_and_empty_folder_are_user_errors(tiny_model_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["bench", "quality", "--model", str(tiny_model_dir), "--device", "cpu"]
    assert main([*args, "--photos", str(empty)]) == 2
    assert "no photos" in capsys.readouterr().err
    assert main([*args, "--photos", str(PHOTOS), "--crop", "66", "--limit", "1"]) == 2
    assert "multiple of --scale 4" in capsys.readouterr().err


def test_strength_zero_scores_the_model_as_the_bicubic_upscale(
    tiny_model_dir, two_photos, stand_in_degradations, tmp_path, capsys
):
    def psnr_rows(extra: list[str]) -> list[float]:
        code = main(
            [
                "bench", "quality", "--photos", str(two_photos), "--model", str(tiny_model_dir),
                "--steps", "1", "--crop", "64", "--device", "cpu",
                "--store", str(tmp_path / "store"), *extra,
            ]
        )  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        body = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")][1:]
        return [float(row[2]) for row in body[:4]], out

    (bicubic, model, _, _), _ = psnr_rows([])
    assert bicubic - model > 3  # the random tiny model is far from bicubic
    (bicubic0, model0, _, _), out = psnr_rows(["--strength", "0"])
    assert "strength 0" in out.splitlines()[0]
    # The blend's upscale (bicubic with antialias, as restore uses) against torch's plain one.
    assert model0 == pytest.approx(bicubic0, abs=0.3)


def test_clean_degradation_is_a_box_downscale_in_8_bits(
    tiny_model_dir, two_photos, stand_in_degradations, tmp_path, capsys
):
    gt = torch.rand(3, 64, 64)
    lq = quality.clean_downscale(gt, scale=4, seed=0).lq
    torch.testing.assert_close(lq, quality.quantise(F.avg_pool2d(gt[None], 4)[0]))
    code = main(
        [
            "bench", "quality", "--photos", str(two_photos), "--model", str(tiny_model_dir),
            "--steps", "1", "--crop", "64", "--device", "cpu", "--store", str(tmp_path / "store"),
            "--degradation", "clean",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "clean photos (box downscale only)" in out.splitlines()[0]
    assert stand_in_degradations == []  # the training degradation was not used


def test_strength_out_of_range_is_refused(two_photos, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "quality", "--photos", str(two_photos), "--strength", "1.5"])
    assert exit_.value.code == 2
    assert "--strength" in capsys.readouterr().err


def test_a_model_without_denoising_steps_reports_none(two_photos, tmp_path, capsys):
    from engine.weights.starter_io import starter_available

    if not starter_available():
        pytest.skip("no bundled starter weights")
    code = main(
        [
            "bench", "quality", "--photos", str(two_photos / "wood.jpg"), "--model", "starter",
            "--crop", "64", "--device", "cpu", "--store", str(tmp_path / "store"),
        ]
    )  # fmt: skip
    header = capsys.readouterr().out.splitlines()[0]
    assert code == 0 and "model starter;" in header and "steps" not in header
