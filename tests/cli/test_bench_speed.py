"""`dreamclear bench speed`: output MP/s of several models in one run, with ratios."""

from __future__ import annotations

from dreamclear.cli import main
from engine.models.reference_upscalers import save_upscaler, tiny_upscaler


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
