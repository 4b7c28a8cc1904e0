"""`dreamclear train RUN/genir.toml --task quality-classifier`: GenIR's quality classifier trains
on a run's pairs (positives 1, negatives 0) and lands in RUN/classifier with its accuracy."""

from __future__ import annotations

import json

from genir_runs import make_run, set_fields

from dreamclear.cli import main
from engine.genir.quality_classifier import load_classifier
from trainer.tasks.quality_classifier import genir_train_config, split_pairs

SMALL = {
    "classifier_crop": "32",
    "classifier_width": "8",
    "classifier_grid": "2",
    "classifier_batch_size": "4",
    "classifier_learning_rate": "0.003",
    "classifier_holdout": "0.25",
}


def test_two_steps_from_the_command_line_write_the_run_classifier(tmp_path, capsys):
    run = make_run(tmp_path, pairs=4)
    set_fields(run, **SMALL)
    config = str(run / "genir.toml")
    assert main(["train", config, "--task", "quality-classifier", "--max-steps", "2"]) == 0
    assert f"exported to {run / 'classifier'}\n" in capsys.readouterr().out
    info = json.loads((run / "classifier" / "quality_classifier.json").read_text())
    assert info["kind"] == "genir.quality_classifier" and info["crop"] == 32
    assert info["settings"]["steps"] == 2 and len(info["settings"]["held_out"]) == 1
    assert 0.0 <= info["validation"]["accuracy"] <= 1.0
    loaded = load_classifier(run)
    assert loaded.shape.width == 8
    # Checkpoints sit beside it, so `--resume latest` continues the run.
    assert (run / "classifier" / "train" / "checkpoints").is_dir()


def test_a_short_fit_separates_sharp_from_blurred(tmp_path):
    run = make_run(tmp_path, pairs=8)
    set_fields(run, **SMALL)
    config = genir_train_config(run / "genir.toml", max_steps=60)
    from trainer.loop import train

    train(config)
    info = json.loads((run / "classifier" / "quality_classifier.json").read_text())
    assert info["validation"]["accuracy"] >= 0.9, info["validation"]


def test_too_few_pairs_and_an_unknown_task_are_refused(tmp_path, capsys):
    run = make_run(tmp_path, pairs=1)
    assert main(["train", str(run / "genir.toml"), "--task", "quality-classifier"]) == 1
    err = capsys.readouterr().err
    assert "at least 2" in err and "dreamclear genir pairs" in err
    assert main(["train", str(run / "genir.toml"), "--task", "no-such-task"]) == 1
    assert "Unknown task" in capsys.readouterr().err


def test_the_held_out_pairs_are_a_fixed_seeded_share():
    names = [f"n{i}" for i in range(10)]
    train, held = split_pairs(names, 0.2, seed=3)
    assert len(held) == 2 and set(train) | set(held) == set(names)
    assert split_pairs(names, 0.2, seed=3) == (train, held)
    assert split_pairs(["a", "b"], 0.9, seed=0)[0]  # one pair is always left to train on


def test_a_resumed_run_gives_the_weights_of_an_uninterrupted_one(tmp_path):
    from safetensors.torch import load_file

    weights = []
    for name, stops in (("straight", ["3"]), ("resumed", ["1", "3"])):
        run = make_run(tmp_path / name, pairs=4)
        set_fields(run, **SMALL)
        for number, steps in enumerate(stops):
            resume = ["--resume", "latest"] if number else []
            args = ["train", str(run / "genir.toml"), "--task", "quality-classifier"]
            assert main([*args, "--max-steps", steps, *resume]) == 0
        weights.append(load_file(run / "classifier" / "quality_classifier.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
