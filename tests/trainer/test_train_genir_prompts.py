"""`dreamclear train RUN/genir.toml` and `dreamclear genir finetune RUN`: the genir-prompts
task on the shared loop, writing RUN/finetune/ per the contract, resuming exactly."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from dreamclear.cli import main
from engine.genir.finetune_output import LORA_FILE, PROMPTS_FILE, TOKENS_FILE, base_sha256
from engine.genir.run_folder import run_status
from trainer import checkpoints
from trainer.config import ConfigError
from trainer.genir_run import is_genir_run_config, train_config_for_run


def _losses(run) -> list[float]:
    rows = checkpoints.read_csv(run / "finetune" / "train" / "losses.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    return [float(row["loss"]) for row in rows]


def test_train_on_a_genir_run_writes_the_contract_files_and_resumes(
    tiny_sdxl_dir, tmp_path, capsys, make_finetune_run
):
    run = make_finetune_run(tmp_path / "a", tiny_sdxl_dir)
    assert main(["train", str(run / "genir.toml")]) == 0
    folder = run / "finetune"
    assert (folder / "train" / "checkpoints").is_dir()
    record = json.loads((folder / PROMPTS_FILE).read_text())
    assert record["format"] == 1
    assert record["base_model"] == str(tiny_sdxl_dir.resolve())
    assert record["base_sha256"] == base_sha256(tiny_sdxl_dir)
    assert record["positive_tokens"] == ["<genir-pos-0>", "<genir-pos-1>"]
    assert record["negative_tokens"] == ["<genir-neg-0>", "<genir-neg-1>"]
    assert (record["cross_attention"], record["lora_rank"]) == ("lora", 4)
    assert record["settings"]["resolution"] == 64
    rows = load_file(folder / TOKENS_FILE)
    assert {k: (tuple(v.shape), v.dtype) for k, v in rows.items()} == {
        "clip_l": ((4, 32), rows["clip_l"].dtype),
        "clip_g": ((4, 32), rows["clip_g"].dtype),
    }
    assert str(rows["clip_l"].dtype) == "torch.float32"
    assert all(".attn2." in key for key in load_file(folder / LORA_FILE))
    assert len(_losses(run)) == 2
    samples = sorted((folder / "train" / "validation" / "step_000002").glob("*.png"))
    assert [path.name for path in samples] == ["000.png", "001.png", "base-000.png", "base-001.png"]
    # Same seed, with and without the learned prompts (and the LoRA): not the same picture.
    assert samples[0].read_bytes() != samples[2].read_bytes()
    status = run_status(run)
    assert status.stage == "finetune"
    assert status.counts["finetune steps done"] == 2

    # A second plain `train` never starts over silently; `genir finetune` resumes.
    assert main(["train", str(run / "genir.toml")]) == 1
    assert "--resume latest" in capsys.readouterr().err
    assert main(["genir", "finetune", str(run), "--max-steps", "3"]) == 0
    resumed = _losses(run)
    assert run_status(run).counts["finetune steps done"] == 3

    straight = make_finetune_run(tmp_path / "b", tiny_sdxl_dir, steps=3)
    assert main(["genir", "finetune", str(straight)]) == 0
    assert resumed == _losses(straight)

    # A resume under other settings is refused, naming the setting; more steps are fine.
    config = run / "genir.toml"
    config.write_text(config.read_text().replace("lora_rank = 4", "lora_rank = 8"))
    capsys.readouterr()
    assert main(["genir", "finetune", str(run), "--max-steps", "4"]) == 1
    assert "finetune.lora_rank is 8" in capsys.readouterr().err


def test_a_genir_config_is_recognised_by_its_fields(tiny_sdxl_dir, tmp_path, make_finetune_run):
    run = make_finetune_run(tmp_path, tiny_sdxl_dir, cross_attention="full")
    renamed = run / "mine.toml"
    renamed.write_text((run / "genir.toml").read_text())
    assert is_genir_run_config(run / "genir.toml") and is_genir_run_config(renamed)
    config = train_config_for_run(renamed, max_steps=7)
    assert config.task == "genir-prompts" and config.max_steps == 7
    assert config.checkpointing.output_dir == run.resolve() / "finetune" / "train"
    assert config.checkpointing.export_dir == run.resolve() / "finetune"
    assert config.genir_prompts.cross_attention == "full"
    assert config.data.batch_size == 2 and config.seed == 1


def test_too_few_pairs_for_a_batch_is_refused(tiny_sdxl_dir, tmp_path, capsys, make_finetune_run):
    run = make_finetune_run(tmp_path, tiny_sdxl_dir, pairs=1, batch_size=4)
    assert main(["genir", "finetune", str(run)]) == 1
    assert "cannot fill a batch" in capsys.readouterr().err


def test_the_task_needs_a_run_folder(tmp_path):
    from trainer.config import load_config

    path = tmp_path / "train.toml"
    path.write_text('task = "genir-prompts"\n')
    with pytest.raises(ConfigError, match=r"genir_prompts\.run"):
        load_config(path)
