"""`dreamclear genir ...` through the real entry point: exit codes and what people read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dreamclear.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_genir_help_imports_no_torch():
    code = (
        "import sys\n"
        "from dreamclear.cli import main\n"
        "try:\n    main(['genir', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "tiny-base" in result.stdout and "status" in result.stdout
    assert result.stdout.strip().endswith("False")


def test_tiny_base_writes_a_loadable_folder_and_refuses_a_full_one(tmp_path, capsys):
    folder = tmp_path / "tiny"
    assert main(["genir", "tiny-base", str(folder), "--seed", "3"]) == 0
    assert "seed 3" in capsys.readouterr().out
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == (
        "StableDiffusionXLPipeline"
    )
    assert json.loads((folder / "tiny-base.json").read_text())["seed"] == 3
    assert main(["genir", "tiny-base", str(folder)]) == 1
    assert "is not an empty folder" in capsys.readouterr().err


def test_init_then_status(tmp_path, tiny_sdxl_dir, capsys):
    run = tmp_path / "run"
    photos = ROOT / "resources" / "photos"
    args = ["genir", "init", str(run), "--images", str(photos), "--base", str(tiny_sdxl_dir)]
    assert main([*args, "--seed", "9"]) == 0
    assert "genir.toml" in capsys.readouterr().out
    assert "seed = 9" in (run / "genir.toml").read_text()
    assert main(["genir", "status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "stage reached: initialised" in out
    assert "positive images: " in out


def test_errors_are_one_line_and_a_hint(tmp_path, tiny_sdxl_dir, capsys):
    assert main(["genir", "status", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a GenIR run folder" in err and "hint:" in err
    run = tmp_path / "run"
    missing = tmp_path / "no-images"
    assert main(["genir", "init", str(run), "--images", str(missing), "--base", "x"]) == 1
    assert "'images' is not a folder" in capsys.readouterr().err
    assert not run.exists()


def test_prompts_stage_from_the_command_line(tmp_path, tiny_sdxl_dir, capsys):
    run = tmp_path / "run"
    photos = ROOT / "resources" / "photos"
    assert (
        main(["genir", "init", str(run), "--images", str(photos), "--base", str(tiny_sdxl_dir)])
        == 0
    )
    assert main(["genir", "prompts", str(run)]) == 0
    out = capsys.readouterr().out
    assert "1000 prompts in" in out and "0 rejected" in out
    assert main(["genir", "prompts", str(run)]) == 0
    assert "(0 chunks screened now)" in capsys.readouterr().out
    assert main(["genir", "status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "stage reached: prompts" in out and "prompts accepted: 1000" in out

    # The user drops a prompt the filter kept: the stage shows as not done, and its re-run
    # moves it to rejected.jsonl and draws one more chunk to keep the count.
    args = ["genir", "override-prompt", str(run), "0", "drop", "--note", "my street"]
    assert main(args) == 0
    assert "prompt 0 is dropped" in capsys.readouterr().out
    overrides = json.loads((run / "prompts" / "overrides.json").read_text())
    assert overrides == {"0": {"accepted": False, "note": "my street"}}
    assert main(["genir", "status", str(run)]) == 0
    assert "prompts (partial)" in capsys.readouterr().out
    assert main(["genir", "prompts", str(run)]) == 0
    out = capsys.readouterr().out
    assert "1000 prompts in" in out and "1 rejected" in out and "(1 chunks screened now)" in out
    rejected = json.loads((run / "prompts" / "rejected.jsonl").read_text())
    assert rejected["reasons"] == [{"kind": "override", "text": "my street"}]
    assert main(["genir", "override-prompt", str(run), "99999", "keep"]) == 1
    assert "no screened prompt with index 99999" in capsys.readouterr().err


def _pairs_run(tmp_path, base) -> Path:
    from PIL import Image

    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.new("RGB", (80, 64), (200, 90, 30)).save(images / name)
        (images / name).with_suffix(".txt").write_text("a red wall\n")
    Image.new("RGB", (32, 32)).save(images / "tiny.png")
    run = tmp_path / "run"
    assert main(["genir", "init", str(run), "--images", str(images), "--base", str(base)]) == 0
    config = run / "genir.toml"
    text = config.read_text()
    for old, new in (("steps = 30", "steps = 2"), ("size = 1024", "size = 64")):
        text = text.replace(old, new, 1)  # the pairs section comes first
    config.write_text(text.replace("min_side = 512", "min_side = 64"))
    return run


def test_pairs_stage_from_the_command_line(tmp_path, tiny_sdxl_dir, capsys):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = _pairs_run(tmp_path, tiny_sdxl_dir)
        assert main(["genir", "pairs", str(run), "--limit", "1"]) == 0
        out = capsys.readouterr().out
        assert "1 pairs" in out and "1 made now" in out
        assert "skipped tiny.png: 32x32 px, shorter side below pairs.min_side 64" in out
        assert main(["genir", "pairs", str(run)]) == 0
        assert "2 pairs" in capsys.readouterr().out
        assert main(["genir", "status", str(run)]) == 0
        assert "pairs: 2" in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)


def test_pairs_stage_without_captions_says_how_to_add_them(tmp_path, tiny_sdxl_dir, capsys):
    run = _pairs_run(tmp_path, tiny_sdxl_dir)
    (tmp_path / "images" / "a.txt").unlink()
    assert main(["genir", "pairs", str(run)]) == 1
    err = capsys.readouterr().err
    assert "have no caption: a.png" in err and "sidecar" in err


def test_pairs_stage_interrupted_says_how_to_resume(tmp_path, tiny_sdxl_dir, capsys, monkeypatch):
    from engine.genir import pairs_stage

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pairs_stage, "run_pairs_stage", interrupted)
    assert main(["genir", "pairs", str(_pairs_run(tmp_path, tiny_sdxl_dir))]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_filter_then_override_from_the_command_line(tmp_path, capsys):
    from genir_runs import add_generated, astronaut, make_run, set_fields, sharp_texture

    run = make_run(tmp_path, pairs=3)
    set_fields(run, classifier_crop="32", classifier_width="8", classifier_batch_size="2")
    add_generated(run, {0: sharp_texture(0, 96), 1: astronaut(256)})
    assert main(["genir", "filter", str(run)]) == 1
    assert "--task quality-classifier" in capsys.readouterr().err
    toml = str(run / "genir.toml")
    assert main(["train", toml, "--task", "quality-classifier", "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["genir", "filter", str(run)]) == 0
    assert "of 2 images kept" in capsys.readouterr().out
    assert main(["genir", "override", str(run), "1", "accept", "--note", "a painting"]) == 0
    assert "image 1 is kept" in capsys.readouterr().out
    lines = (run / "filter" / "verdicts.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["override"] == {"accepted": True, "note": "a painting"}
    overrides = json.loads((run / "filter" / "overrides.json").read_text())
    assert overrides == {"1": {"accepted": True, "note": "a painting"}}
    assert main(["genir", "override", str(run), "7", "reject"]) == 1
    assert "no generated image 7" in capsys.readouterr().err
