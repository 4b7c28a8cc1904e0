"""`dreamclear train`: fails before any work with the bad field named; `-m` entry point works."""

from __future__ import annotations

import subprocess
import sys

from dreamclear.cli import main


def test_bad_config_fails_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('task = "starter"\n[optimisation]\nlearning_rat = 1e-4\n', encoding="utf-8")
    assert main(["train", str(path)]) == 1
    assert "optimisation.learning_rat" in capsys.readouterr().err


def test_module_entry_point_for_accelerate_launch():
    # `accelerate launch -m dreamclear.cli train CONFIG` runs this module as __main__.
    result = subprocess.run(
        [sys.executable, "-m", "dreamclear.cli", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--resume" in result.stdout and "--max-steps" in result.stdout
