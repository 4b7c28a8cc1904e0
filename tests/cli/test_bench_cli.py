"""`dreamclear bench tiling` measures real runs in subprocesses and prints a ratio table."""

from __future__ import annotations

import pytest

from dreamclear.cli import main


def test_tiling_bench_prints_one_row_per_mode_and_size(capsys):
    code = main(
        ["bench", "tiling", "--megapixels", "0.02,0.05", "--steps", "1", "--compare-untiled"]
    )
    assert code == 0
    table = capsys.readouterr().out.strip().splitlines()
    rows = [line for line in table if line.startswith("| tiled") or line.startswith("| published")]
    assert len(rows) == 4
    first = rows[0].split("|")
    # Ratios are against the smallest size of the same mode, so the first row reads 1.0.
    assert first[3].strip() == "1.0"
    assert "(1.0)" in first[4]
    assert float(first[5]) > 0  # output megapixels per second
    assert first[6].strip().endswith(("(1.0)", "(n/a)"))


def test_bad_size_list_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "tiling", "--megapixels", "1,big"])
    assert exit_info.value.code == 2
    assert "comma-separated" in capsys.readouterr().err
