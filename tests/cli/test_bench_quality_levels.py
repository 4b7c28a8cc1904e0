"""`dreamclear bench quality` with several models: one row per degradation level and method."""

from __future__ import annotations

import shutil

import torch

from dreamclear.cli import main
from dreamclear_studio_resources import resource_path
from engine.bench.quality_levels import LEVELS
from engine.degradation.ops import gaussian_blur
from engine.metrics.fidelity import gradient_energy_ratio
from engine.models.reference_upscalers import save_upscaler, tiny_upscaler


def test_compares_bicubic_and_an_upscaler_file_per_level(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(resource_path("photos") / "wood.jpg", photos / "wood.jpg")
    model = save_upscaler(tiny_upscaler("compact-x4"), tmp_path / "mine.pth")
    code = main(
        ["bench", "quality", "--photos", str(photos), "--crop", "64", "--device", "cpu",
         "--model", "bicubic", "--model", str(model), "--levels", "clean,moderate"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| clean")]
    rows += [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| moderate")]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        ("clean", "bicubic"),
        ("clean", "mine.pth"),
        ("moderate", "bicubic"),
        ("moderate", "mine.pth"),
    ]
    assert rows[0][-1].strip() == "+0.00"
    assert float(rows[0][2]) > float(rows[2][2])  # bicubic: clean beats moderate damage


def test_the_default_levels_are_the_four_targets_and_the_others_are_asked_for(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(resource_path("photos") / "wood.jpg", photos / "wood.jpg")
    model = save_upscaler(tiny_upscaler("compact-x4"), tmp_path / "mine.pth")
    base = ["bench", "quality", "--photos", str(photos), "--crop", "32", "--device", "cpu",
            "--model", "bicubic", "--model", str(model)]  # fmt: skip

    def levels_shown(args: list[str]) -> list[str]:
        code = main(args)
        out = capsys.readouterr().out
        assert code == 0, out
        rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
        return list(dict.fromkeys(row for row in rows if row in LEVELS))

    assert levels_shown(base) == ["clean", "mild", "moderate", "heavy"]
    assert levels_shown([*base, "--levels", "clean-bicubic"]) == ["clean-bicubic"]
    assert levels_shown([*base, "--levels", "clean-jpeg,clean"]) == ["clean-jpeg", "clean"]


def test_the_levels_grow_harder():
    gt = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    gt = gaussian_blur(gt, 1.0)  # photo-like: correlated pixels
    lq = {name: LEVELS[name](gt, scale=4, seed=0) for name in LEVELS}
    assert all(tuple(image.shape) == (3, 16, 16) for image in lq.values())
    clean = lq["clean"]
    errors = [float((lq[name] - clean).abs().mean()) for name in ("mild", "moderate", "heavy")]
    assert errors == sorted(errors)
    # Undamaged but made small by another filter: closer to the box downscale than mild damage.
    assert 0 < float((lq["clean-bicubic"] - clean).abs().mean()) < errors[0]
    # Saved as a camera saves it: the clean downscale, barely changed.
    assert 0 < float((lq["clean-jpeg"] - clean).abs().mean()) < errors[0]


def test_gradient_energy_ratio_says_how_much_detail_is_kept():
    gt = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(1))
    assert gradient_energy_ratio(gt, gt) == 1.0
    assert gradient_energy_ratio(gaussian_blur(gt, 1.5), gt) < 0.3


def test_strength_and_colour_fix_reach_every_restorer_per_level(tmp_path, capsys):
    """--strength 0 is bicubic itself, whatever the model: the option really reaches it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(resource_path("photos") / "wood.jpg", photos / "wood.jpg")
    model = save_upscaler(tiny_upscaler("compact-x4"), tmp_path / "mine.pth")
    code = main(
        ["bench", "quality", "--photos", str(photos), "--crop", "64", "--device", "cpu",
         "--model", "bicubic", "--model", str(model), "--levels", "mild",
         "--strength", "0", "--color-fix", "none"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "colour fix none, strength 0" in out
    mine = next(line for line in out.splitlines() if line.startswith("| mild | mine.pth"))
    # (restore's plain upscale is torch's bicubic with antialias, the bench's without: the
    # kernels differ by float rounding only)
    assert abs(float(mine.split("|")[-2])) <= 0.02
