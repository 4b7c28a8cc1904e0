"""GenIR's filter stage end to end on fabricated generated images: verdicts with reasons, a
planted face caught, overrides that win and survive re-filtering, thresholds that re-decide
without re-scoring, resume after an interruption, the judge seam."""

from __future__ import annotations

import json

import pytest
import torch
from genir_runs import add_generated, astronaut, blurred, make_run, set_fields, sharp_texture

from engine.errors import BadSettingError, EngineError, JobInterrupted
from engine.genir.filter_stage import run_filter_stage
from engine.genir.quality_classifier import ClassifierShape, QualityClassifier, save_classifier
from engine.genir.run_folder import load_run
from engine.genir.verdicts import final_decisions, read_overrides, read_verdicts, set_override

FACE = 3


def _classifier(run, seed=0):
    torch.manual_seed(seed)
    save_classifier(
        run / "classifier",
        QualityClassifier(8),
        ClassifierShape(width=8, crop=32, grid=2),
        validation={"accuracy": 1.0},
        settings={},
    )


@pytest.fixture
def filtered(tmp_path):
    run = make_run(tmp_path, pairs=2)
    images = {key: sharp_texture(key, 128) for key in range(6)}
    images[1] = blurred(images[1], 4)
    images[FACE] = astronaut(256)
    add_generated(run, images)
    _classifier(run)
    return run


def _lines(run):
    return [
        json.loads(line) for line in (run / "filter" / "verdicts.jsonl").read_text().splitlines()
    ]


def test_verdicts_for_every_image_the_face_rejected_nothing_deleted(filtered):
    run = filtered
    set_fields(run, quality_threshold="0.0")
    outcome = run_filter_stage(run, load_run(run))
    assert (outcome.images, outcome.scored) == (6, 6)
    lines = _lines(run)
    assert [line["key"] for line in lines] == list(range(6))
    first = lines[0]
    assert first["image"] == "generate/images/000000.png" and first["prompt"] == "scene 0"
    assert first["judge"] is None and 0.0 <= first["quality"] <= 1.0
    face = lines[FACE]
    assert face["accepted"] is False and face["faces"] >= 1
    assert face["reasons"][0]["kind"] == "faces"
    assert all(line["accepted"] for line in lines if line["key"] != FACE)
    assert outcome.accepted == 5
    assert len(list((run / "generate" / "images").glob("*.png"))) == 6


def test_overrides_win_and_survive_refiltering(filtered):
    run = filtered
    set_fields(run, quality_threshold="0.0")
    run_filter_stage(run, load_run(run))
    set_override(run, FACE, True, "a statue, not a person")
    set_override(run, 0, False)
    assert final_decisions(run)[FACE] is True and final_decisions(run)[0] is False
    line = _lines(run)[FACE]
    assert line["accepted"] is False and line["reasons"][0]["kind"] == "faces"
    assert line["override"] == {"accepted": True, "note": "a statue, not a person"}
    outcome = run_filter_stage(run, load_run(run))
    assert outcome.scored == 0
    assert read_overrides(run)[FACE].note == "a statue, not a person"
    assert _lines(run)[FACE]["override"]["accepted"] is True
    assert _lines(run)[0]["override"] == {"accepted": False, "note": ""}
    assert outcome.accepted == 5  # 6 images, the face kept, image 0 dropped by the user
    with pytest.raises(BadSettingError):
        set_override(run, 99, True)


def test_another_threshold_only_decides_again(filtered):
    run = filtered
    set_fields(run, quality_threshold="0.0")
    run_filter_stage(run, load_run(run))
    scores = sorted(line["quality"] for line in _lines(run))
    journal = (run / "filter" / "scores" / "quality.jsonl").read_bytes()
    middle = (scores[2] + scores[3]) / 2
    set_fields(run, quality_threshold=repr(middle), max_faces="5")
    outcome = run_filter_stage(run, load_run(run))
    assert outcome.scored == 0
    assert (run / "filter" / "scores" / "quality.jsonl").read_bytes() == journal
    lines = _lines(run)
    for line in lines:
        assert line["accepted"] == (line["quality"] >= middle)
        if line["quality"] < middle:
            assert line["reasons"][0]["kind"] == "quality"


def test_an_interrupted_run_resumes_at_the_first_unscored_image(filtered):
    run = filtered
    seen = []

    def stop_after_two():
        if len(seen) == 2:
            raise JobInterrupted("stop")
        seen.append(1)

    with pytest.raises(JobInterrupted):
        run_filter_stage(run, load_run(run), check_cancelled=stop_after_two)
    assert not (run / "filter" / "verdicts.jsonl").exists()
    outcome = run_filter_stage(run, load_run(run))
    assert outcome.scored == 4 and outcome.images == 6


def test_a_retrained_classifier_scores_again(filtered):
    run = filtered
    run_filter_stage(run, load_run(run))
    _classifier(run, seed=1)
    assert run_filter_stage(run, load_run(run)).scored == 6
    assert (run / "filter" / "scores" / "quality.previous.jsonl").is_file()


def test_the_judge_seam(filtered):
    run = filtered
    set_fields(run, quality_threshold="0.0")
    run_filter_stage(run, load_run(run))
    quality = (run / "filter" / "scores" / "quality.jsonl").read_bytes()
    set_fields(run, judge="true")
    with pytest.raises(EngineError) as error:  # no judge model installed here
        run_filter_stage(run, load_run(run))
    assert "genir-judge" in str(error.value)

    class Strict:
        identity = "test judge 1"

        def __call__(self, image):
            return image.size != (256, 256), "looks odd"

    # Turning the judge on asks only the judge; the other scores are kept.
    assert run_filter_stage(run, load_run(run), judge=Strict()).scored == 6
    assert (run / "filter" / "scores" / "quality.jsonl").read_bytes() == quality
    line = _lines(run)[FACE]
    assert line["judge"] == {"ok": False, "reason": "looks odd"}
    assert {r["kind"] for r in line["reasons"]} == {"faces", "judge"}
    assert _lines(run)[0]["judge"]["ok"] is True
    set_fields(run, judge="false")
    assert run_filter_stage(run, load_run(run)).scored == 0
    assert _lines(run)[0]["judge"] is None


def test_the_judges_instruction_is_the_papers_as_the_judge_model_has_it():
    from engine.genir.config import PAPER_JUDGE_INSTRUCTION
    from engine.genir.judges import PAPER_IMAGE_INSTRUCTION

    assert PAPER_JUDGE_INSTRUCTION == PAPER_IMAGE_INSTRUCTION


def test_no_classifier_and_no_images_are_clear_errors(tmp_path):
    run = make_run(tmp_path, pairs=2)
    with pytest.raises(BadSettingError) as error:
        run_filter_stage(run, load_run(run))
    assert "no generated images" in error.value.message
    add_generated(run, {0: sharp_texture(0)})
    with pytest.raises(BadSettingError) as error:
        run_filter_stage(run, load_run(run))
    assert (
        "dreamclear train" in error.value.hint and "--task quality-classifier" in error.value.hint
    )
    assert read_verdicts(run) == []


def test_status_counts_the_filters_decisions(filtered):
    from engine.genir.stage_checks import filter_state

    set_fields(filtered, quality_threshold="0.0")
    run_filter_stage(filtered, load_run(filtered))
    set_override(filtered, 0, False)
    state = filter_state(filtered, load_run(filtered))
    assert state.counts == {"accepted": 4, "rejected": 2, "overridden": 1}


def test_the_export_stage_reads_the_same_decisions(filtered):
    from engine.genir.export_stage import read_decisions

    set_fields(filtered, quality_threshold="0.0")
    run_filter_stage(filtered, load_run(filtered))
    set_override(filtered, FACE, True, "a statue")
    set_override(filtered, 0, False)
    exported = {d["key"]: d["accepted"] for d in read_decisions(filtered)}
    assert exported == final_decisions(filtered)
    assert exported[FACE] is True and exported[0] is False


def test_the_classifier_stage_trains_in_a_child_process(tmp_path):
    from engine.genir.stage_checks import classifier_state
    from engine.genir.training_stages import run_classifier_stage

    run = make_run(tmp_path, pairs=3)
    set_fields(
        run,
        classifier_crop="32",
        classifier_width="8",
        classifier_batch_size="2",
        classifier_steps="2",
    )
    steps = []
    outcome = run_classifier_stage(run, load_run(run), report=lambda d, t: steps.append((d, t)))
    assert outcome.path == run / "classifier"
    assert classifier_state(run, load_run(run)).state == "done"
    assert steps[-1] == (2, 2)
