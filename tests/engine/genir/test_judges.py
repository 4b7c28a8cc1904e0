"""The multimodal judge on a tiny random LLaVA built offline: the paper's instruction in the
rendered prompt, a deterministic (ok, reason) verdict, and yes/no parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.genir import judges
from engine.genir.judges import PAPER_IMAGE_INSTRUCTION, MultimodalJudge, parse_verdict
from engine.genir.tiny_local_models import save_tiny_judge


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    return save_tiny_judge(tmp_path_factory.mktemp("models") / "tiny-llava", seed=0)


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (
            "Yes. The harbour looks natural and nothing is out of place.",
            (True, "The harbour looks natural and nothing is out of place"),
        ),
        ("no - the bridge has three ends", (False, "the bridge has three ends")),
        (
            "The image has passed the inspection: yes.",
            (True, "The image has passed the inspection: yes."),
        ),
        ("Nobody knows; I cannot tell", (False, "no yes/no answer: Nobody knows; I cannot tell")),
        ("", (False, "no answer")),
    ],
)
def test_parse_verdict(answer, verdict):
    assert parse_verdict(answer) == verdict


def test_the_judge_asks_the_paper_instruction_and_answers_deterministically(judge_dir, monkeypatch):
    judge = MultimodalJudge.from_folder(judge_dir)
    assert judge.instruction == PAPER_IMAGE_INSTRUCTION
    asked = []
    describe = judges.describe_image

    def recorded(processor, model, image, text, **kwargs):
        asked.append(text)
        return describe(processor, model, image, text, **kwargs)

    monkeypatch.setattr(judges, "describe_image", recorded)
    image = Image.new("RGB", (48, 40), (30, 140, 90))
    ok, reason = judge(image)
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    assert judge(image) == (ok, reason)
    assert asked == [PAPER_IMAGE_INSTRUCTION] * 2
    prompt = judge.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": asked[0]}]}],
        add_generation_prompt=True,
    )
    assert "<image>" in prompt and "answer yes/no" in prompt


def test_a_scripted_yes_passes(judge_dir, monkeypatch):
    judge = MultimodalJudge.from_folder(judge_dir)
    monkeypatch.setattr(judges, "describe_image", lambda *a, **k: "Yes, a plain field.")
    assert judge(Image.new("RGB", (8, 8))) == (True, "a plain field")


def test_the_judge_a_config_names_by_folder_or_store_name(judge_dir, tmp_path, monkeypatch):
    from engine.errors import ModelNotInstalledError

    relative = judge_dir.relative_to(judge_dir.parent)
    assert isinstance(MultimodalJudge.from_model(relative, judge_dir.parent), MultimodalJudge)
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path / "store"))
    with pytest.raises(ModelNotInstalledError, match="genir-judge"):
        MultimodalJudge.from_model()
