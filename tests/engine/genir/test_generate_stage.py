"""The "generate" stage on the tiny SDXL: learned prompts around each scene, per-key seeds,
batch-size refusal, sharding whose union is the unsharded run byte for byte, limits."""

from __future__ import annotations

import json

import pytest
from diffusers import StableDiffusionXLPipeline
from generate_run import image_sha256s, journalled_keys, make_generate_run, set_generation
from PIL import Image

from engine.errors import BadInputError, BadSettingError
from engine.genir.generate_stage import (
    Shard,
    generated_images,
    image_path,
    read_prompts,
    run_generate_stage,
)
from engine.genir.run_folder import load_run, run_status
from engine.jobs.journal import item_seed


def _pipe(base):
    return StableDiffusionXLPipeline.from_pretrained(base, local_files_only=True)


def _generate(run, base, **options):
    return run_generate_stage(run, load_run(run), pipe=_pipe(base), **options)


def test_each_prompt_becomes_its_image_under_the_learned_prompts(tmp_path, tiny_sdxl_dir):
    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=5)
    pipe = _pipe(tiny_sdxl_dir)
    seen = []
    encode = pipe.encode_prompt

    def recording(*args, **kwargs):
        seen.append((kwargs["prompt"], kwargs["negative_prompt"]))
        return encode(*args, **kwargs)

    pipe.encode_prompt = recording
    reports = []
    outcome = run_generate_stage(
        run, load_run(run), pipe=pipe, report=lambda done, total: reports.append((done, total))
    )
    assert (outcome.generated, outcome.made, outcome.wanted) == (5, 5, 5)
    assert reports[0] == (0, 5) and reports[-1] == (5, 5)
    prompts = read_prompts(run)
    # Three batches of two, the last padded with a copy of its last item.
    assert [len(p) for p, _ in seen] == [2, 2, 2]
    assert seen[0][0] == [f"<genir-pos-0> <genir-pos-1>, {prompts[k]}" for k in (0, 1)]
    assert seen[2][0][0] == seen[2][0][1]
    assert seen[0][1] == ["<genir-neg-0> <genir-neg-1>"] * 2
    images = generated_images(run)
    assert [image.key for image in images] == [0, 1, 2, 3, 4]
    for image in images:
        assert image.path == image_path(run, image.key)
        assert image.prompt == prompts[image.key]
        assert image.seed == item_seed(4, image.key)
        with Image.open(image.path) as png:
            assert png.size == (64, 64)
    status = run_status(run)
    assert status.counts["generated images"] == 5 and status.stage == "generate"

    # Run again: nothing to do, nothing loaded.
    again = run_generate_stage(run, load_run(run), pipe=None)
    assert (again.generated, again.made) == (5, 0)


def test_seeds_depend_only_on_the_run_seed_and_the_key(tmp_path, tiny_sdxl_dir):
    five = make_generate_run(tmp_path, tiny_sdxl_dir, "five", count=5)
    six = make_generate_run(tmp_path, tiny_sdxl_dir, "six", count=6, batch_size=1)
    _generate(five, tiny_sdxl_dir)
    _generate(six, tiny_sdxl_dir)
    seeds = {image.key: image.seed for image in generated_images(six)}
    assert seeds == {image.key: image.seed for image in generated_images(five)} | {
        5: item_seed(4, 5)
    }
    # The padded last batch of the five-prompt run gives key 4 the bytes a six-prompt run does.
    more = make_generate_run(tmp_path, tiny_sdxl_dir, "more", count=6)
    _generate(more, tiny_sdxl_dir)
    assert image_sha256s(more)["000004.png"] == image_sha256s(five)["000004.png"]


def test_a_resume_with_another_batch_size_is_refused_with_the_reason(tmp_path, tiny_sdxl_dir):
    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=4)
    assert _generate(run, tiny_sdxl_dir, limit=1).made == 1
    set_generation(run, batch_size=3)
    with pytest.raises(BadSettingError, match="batch_size = 3") as error:
        _generate(run, tiny_sdxl_dir)
    assert "batch_size = 2" in str(error.value) and "batch_size = 2" in error.value.hint


def test_two_shards_make_the_unsharded_run_byte_for_byte(tmp_path, tiny_sdxl_dir):
    whole = make_generate_run(tmp_path, tiny_sdxl_dir, "whole", count=7)
    sharded = make_generate_run(tmp_path, tiny_sdxl_dir, "sharded", count=7)
    _generate(whole, tiny_sdxl_dir)
    first = _generate(sharded, tiny_sdxl_dir, shard=Shard(0, 2))
    second = _generate(sharded, tiny_sdxl_dir, shard=Shard(1, 2))
    # Batches {0,1}, {4,5} and {2,3}, {6}.
    assert (first.wanted, second.wanted) == (4, 3)
    assert image_sha256s(sharded) == image_sha256s(whole)
    assert sorted(journalled_keys(sharded)) == list(range(7))
    assert [i.key for i in generated_images(sharded)] == list(range(7))


def test_a_resume_with_another_process_count_makes_no_image_twice(tmp_path, tiny_sdxl_dir):
    whole = make_generate_run(tmp_path, tiny_sdxl_dir, "whole", count=8, batch_size=1)
    run = make_generate_run(tmp_path, tiny_sdxl_dir, "run", count=8, batch_size=1)
    _generate(whole, tiny_sdxl_dir)
    _generate(run, tiny_sdxl_dir, shard=Shard(1, 2), limit=2)  # keys 1, 3
    _generate(run, tiny_sdxl_dir, shard=Shard(2, 3), limit=1)  # key 2
    resumed = _generate(run, tiny_sdxl_dir)  # one process: the five others
    assert resumed.made == 5 and resumed.generated == 8
    keys = journalled_keys(run)
    assert sorted(keys) == list(range(8)), keys
    assert image_sha256s(run) == image_sha256s(whole)


def test_limit_prompt_changes_and_missing_inputs(tmp_path, tiny_sdxl_dir):
    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=5)
    assert _generate(run, tiny_sdxl_dir, limit=3).made == 3
    assert len(image_sha256s(run)) == 3

    prompts = run / "prompts" / "prompts.jsonl"
    lines = [json.loads(line) for line in prompts.read_text().splitlines()]
    lines[1]["prompt"] = "a different scene"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(BadSettingError, match=r"000001\.png was generated for the prompt") as error:
        _generate(run, tiny_sdxl_dir)
    assert "prompts were edited after generation began" in error.value.hint

    prompts.unlink()
    with pytest.raises(BadInputError, match="no prompts yet") as error:
        _generate(run, tiny_sdxl_dir)
    assert "genir prompts" in error.value.hint


def test_without_learned_prompts_the_error_names_the_finetune_command(tmp_path, tiny_sdxl_dir):
    import shutil

    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=2)
    shutil.rmtree(run / "finetune")
    with pytest.raises(BadInputError) as error:
        _generate(run, tiny_sdxl_dir)
    assert f"dreamclear genir finetune {run}" in error.value.hint


def test_the_cli_verb_shards_limits_and_status_shows_throughput(tmp_path, tiny_sdxl_dir, capsys):
    from dreamclear.cli import main

    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=6, batch_size=1)
    assert main(["genir", "generate", str(run), "--shard", "2/2"]) == 1
    assert "shard 2 of 2 does not exist" in capsys.readouterr().err
    assert main(["genir", "generate", str(run), "--shard", "one"]) == 1
    assert "is not INDEX/COUNT" in capsys.readouterr().err
    assert main(["genir", "generate", str(run), "--shard", "1/2", "--limit", "2"]) == 0
    assert "2 of 3 images (shard 1 of 2)" in capsys.readouterr().out
    assert main(["genir", "status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "generated images: 2" in out and "stage reached: generate (partial)" in out
    row = next(line for line in out.splitlines() if line.startswith("generate "))
    assert "2/6 images" in row
    per_hour = row.split()[4]  # generate, partial, 2/6, images, per hour, ETA
    assert per_hour.replace(",", "").isdigit(), row


def test_a_launch_while_one_of_another_process_count_runs_is_refused(tmp_path, tiny_sdxl_dir):
    from engine.errors import OutputError
    from engine.genir.generate_stage import _header, stage_folder
    from engine.genir.learned_prompts import finetune_folder, read_learned_prompts
    from engine.jobs.journal import Journal

    run = make_generate_run(tmp_path, tiny_sdxl_dir, count=2)
    config = load_run(run)
    learned, _ = read_learned_prompts(finetune_folder(run))
    (stage_folder(run) / "images").mkdir(parents=True)
    running = stage_folder(run) / Shard(0, 2).journal_name
    header = _header(config, learned, "float32")
    with (
        Journal.open(running, header),  # a launch of 2 processes at work
        pytest.raises(OutputError, match="another process count is running"),
    ):
        _generate(run, tiny_sdxl_dir)
    assert _generate(run, tiny_sdxl_dir).made == 2
