"""`dreamclear restore --offload`: every level writes the same file on a CPU (tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dreamclear.cli import build_parser, main


def test_every_offload_level_writes_the_same_result(tiny_model_dir, tmp_path, capsys):
    pixels = np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    written = {}
    for level in ("none", "model", "sequential"):
        out = tmp_path / level
        args = ["restore", str(tmp_path / "photo.png"), "-o", str(out), "--upscale", "2"]
        args += ["--model", str(tiny_model_dir), "--steps", "2", "--seed", "0"]
        assert main([*args, "--offload", level]) == 0, capsys.readouterr().err
        written[level] = (out / "photo_x2.png").read_bytes()
    assert written["model"] == written["none"] and written["sequential"] == written["none"]


def test_an_unknown_level_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["restore", "x.png", "--offload", "layers"])
    assert "invalid choice: 'layers'" in capsys.readouterr().err


def test_the_overhead_script_prints_a_row_per_level_with_no_difference(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "offload_overhead.py"
    spec = importlib.util.spec_from_file_location("offload_overhead", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--size", "16", "--steps", "1", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| none", "| model", "| sequential"]
    assert all(row.endswith("| 0 |") for row in rows[1:])  # identical output at every level
