"""`dreamclear genir export / run / status` on fabricated run folders, and `dreamclear train`
on what the export wrote."""

from __future__ import annotations

import json

import pytest
import torch
from genir_fabric import fabricate_run

from dreamclear.cli import main


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    return folder


def test_run_does_only_what_is_left_and_status_says_so(tmp_path, base, capsys):
    run = fabricate_run(tmp_path / "run", base)
    assert main(["genir", "status", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["next"] == "export"
    assert [s["state"] for s in data["stages"]][-2:] == ["done", "todo"]

    assert main(["genir", "run", str(run)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ran: export\n" and "export: todo, running it" in captured.err
    assert main(["genir", "run", str(run)]) == 0
    assert capsys.readouterr().out == "every stage was done already\n"

    assert main(["genir", "status", str(run)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("export"))
    assert "done" in row and "5/5 images" in row and "exported 5" in row


def test_export_verb_then_train_runs_two_steps_on_the_export(tmp_path, base, capsys):
    run = fabricate_run(tmp_path / "run", base, count=5)
    assert main(["genir", "export", str(run)]) == 0
    out = capsys.readouterr().out
    config = run / "export" / "train-starter.toml"
    assert "4 images in" in out and f"dreamclear train {config}" in out
    text = config.read_text()
    assert 'validation_photos = ["000003.png", "000004.png"]' in text
    # The export's part is the data, crops and held-out photos; a tiny model keeps it fast.
    text = text.replace("batch_size = 4", "batch_size = 2")
    config.write_text(text + "\n[starter]\nnum_feat = 8\nnum_block = 1\nestimator_channels = 8\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", str(config), "--max-steps", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    trained = run / "train"
    assert (trained / "export" / "restorer.safetensors").is_file()
    assert (trained / "validation" / "step_000002" / "000004.png").is_file()


def test_export_of_an_unfiltered_run_is_one_error_line_and_a_hint(tmp_path, base, capsys):
    run = fabricate_run(tmp_path / "run", base, upto="generate")
    assert main(["genir", "export", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not been filtered yet" in err and "hint:" in err
