"""`dreamclear bench speed`: output MP/s of several models in one run, with ratios."""

from __future__ import annotations

import pytest
import torch

from dreamclear.cli import main
from engine.bench import speed
from engine.models.expert_gate import SURE_WEIGHT
from engine.models.reference_upscalers import save_upscaler, tiny_upscaler
from engine.weights.starter_io import starter_available


def test_speed_table_has_a_row_per_model_and_ratios_to_the_first(tmp_path, capsys):
    model = save_upscaler(tiny_upscaler("rrdbnet-x2"), tmp_path / "mine.safetensors")
    code = main(
        ["bench", "speed", "--model", str(model), "--model", "compact-reference",
         "--size", "32", "--repeats", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")][1:]
    assert [row[0].strip() for row in rows] == [str(model), "compact-reference"]
    assert rows[0][3].strip() == "1.00" and "fastest of 2" in out
    assert float(rows[1][2]) > 0 and "128 px out" in out


def test_speed_can_be_timed_on_damaged_input_and_says_so(tmp_path, capsys):
    model = save_upscaler(tiny_upscaler("rrdbnet-x2"), tmp_path / "mine.safetensors")
    code = main(
        ["bench", "speed", "--model", str(model), "--size", "32", "--repeats", "1",
         "--damage", "heavy"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "32 px in (heavy damage)" in out


def test_an_unknown_damage_level_is_refused_with_the_levels_to_use(capsys):
    code = main(["bench", "speed", "--model", "compact-reference", "--damage", "awful"])
    err = capsys.readouterr().err
    assert code == 2
    assert "awful" in err and "heavy" in err


def test_the_damaged_crop_keeps_its_size_and_is_damaged():
    clean = speed.input_crop(64)
    heavy = speed.damaged(clean, "heavy")
    assert heavy.shape == clean.shape == (1, 3, 64, 64)
    assert float(heavy.min()) >= 0 and float(heavy.max()) <= 1
    assert float((heavy - clean).abs().mean()) > 0.02


@pytest.mark.skipif(not starter_available(), reason="no bundled starter weights")
def test_heavy_damage_makes_the_bundled_starter_time_its_all_round_restorer():
    """What `--damage heavy` is for: the gate sends that crop to the all-round restorer and the
    clean one to the gentle restorer, so each expert's speed can be measured."""
    gate = speed.load_pipeline("starter").restorer.gate
    clean = speed.input_crop(256)
    with torch.no_grad():
        assert float(gate(clean, (1, 1))) < SURE_WEIGHT
        assert float(gate(speed.damaged(clean, "heavy"), (1, 1))) > 1 - SURE_WEIGHT
