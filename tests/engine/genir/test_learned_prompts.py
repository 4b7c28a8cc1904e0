"""Loading RUN/finetune into a stock pipeline: tokens per encoder, LoRA, full cross-attention,
none; the base check; clear errors for a missing or broken folder."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from learned_fixture import write_learned_prompts
from safetensors.torch import load_file, save_file

from engine.errors import BadInputError, BadSettingError
from engine.genir import learned_prompts as lp


def _fresh(base):
    return StableDiffusionXLPipeline.from_pretrained(base, local_files_only=True)


def _unet_output(pipe):
    unet = pipe.unet
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, unet.config.in_channels, 8, 8, generator=generator)
    context = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator)
    added = {
        "text_embeds": torch.randn(1, 32, generator=generator),
        "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]]),
    }
    with torch.no_grad():
        return unet(sample, 10, context, added_cond_kwargs=added).sample


def test_tokens_load_into_both_encoders_with_the_prompts_around_them(tmp_path, tiny_sdxl_dir):
    folder = tmp_path / "finetune"
    write_learned_prompts(folder, tiny_sdxl_dir)
    pipe = _fresh(tiny_sdxl_dir)
    before = _unet_output(pipe)
    learned = lp.apply_learned_prompts(pipe, folder, base_model=tiny_sdxl_dir)
    assert learned.positive_tokens == ("<genir-pos-0>", "<genir-pos-1>")
    assert learned.positive_prompt("a barn") == "<genir-pos-0> <genir-pos-1>, a barn"
    assert learned.negative_prompt() == "<genir-neg-0> <genir-neg-1>"
    vectors = load_file(folder / lp.TOKENS_FILE)
    tokens = [*learned.positive_tokens, *learned.negative_tokens]
    for key, tokenizer_name, encoder_name in lp.ENCODERS:
        tokenizer, encoder = getattr(pipe, tokenizer_name), getattr(pipe, encoder_name)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        assert ids == list(range(ids[0], ids[0] + 4)) and ids[0] > tokenizer.eos_token_id
        assert torch.equal(encoder.get_input_embeddings().weight[ids], vectors[key])
        assert encoder.config.eos_token_id == tokenizer.eos_token_id
        # One token each, not split into bytes.
        assert len(tokenizer(learned.negative_prompt()).input_ids) == 2 + 2
    assert torch.equal(_unet_output(pipe), before), "cross_attention none changed the UNet"
    assert learned.cross_attention == "none" and len(learned.sha256) == 64


def test_a_lora_loads_as_the_fine_tuned_unet_computes(tmp_path, tiny_sdxl_dir):
    folder = tmp_path / "finetune"
    trained = write_learned_prompts(folder, tiny_sdxl_dir, cross_attention="lora")
    pipe = _fresh(tiny_sdxl_dir)
    base_output = _unet_output(pipe)
    lp.apply_learned_prompts(pipe, folder, base_model=tiny_sdxl_dir)
    output = _unet_output(pipe)
    assert not torch.allclose(output, base_output)
    torch.testing.assert_close(output, _unet_output(trained))


def test_full_cross_attention_loads_every_attn2_parameter(tmp_path, tiny_sdxl_dir):
    folder = tmp_path / "finetune"
    write_learned_prompts(folder, tiny_sdxl_dir, cross_attention="full")
    pipe = _fresh(tiny_sdxl_dir)
    lp.apply_learned_prompts(pipe, folder, base_model=tiny_sdxl_dir)
    own = pipe.unet.state_dict()
    for key, value in load_file(folder / lp.FULL_FILE).items():
        assert torch.equal(own[key], value), key

    weights = load_file(folder / lp.FULL_FILE)
    weights["conv_in.weight"] = own["conv_in.weight"]
    save_file(weights, folder / lp.FULL_FILE)
    with pytest.raises(BadInputError, match=r"no attn2 parameter.*conv_in\.weight"):
        lp.apply_learned_prompts(_fresh(tiny_sdxl_dir), folder, base_model=tiny_sdxl_dir)


def test_a_missing_finetune_folder_names_the_command(tmp_path, tiny_sdxl_dir):
    with pytest.raises(BadInputError, match="holds no learned prompts") as error:
        lp.apply_learned_prompts(None, tmp_path / "run" / "finetune", base_model=tiny_sdxl_dir)
    assert f"dreamclear genir finetune {tmp_path / 'run'}" in error.value.hint


def test_learned_prompts_of_another_base_are_refused(tmp_path, tiny_sdxl_dir):
    from engine.genir.tiny_base import save_tiny_sdxl

    other = save_tiny_sdxl(tmp_path / "other", seed=1)
    folder = tmp_path / "finetune"
    write_learned_prompts(folder, other)
    with pytest.raises(BadSettingError, match="trained on another base model") as error:
        lp.apply_learned_prompts(_fresh(tiny_sdxl_dir), folder, base_model=tiny_sdxl_dir)
    assert str(other.resolve()) in str(error.value) and "genir finetune" in error.value.hint


def test_broken_learned_prompts_are_refused_with_the_reason(tmp_path, tiny_sdxl_dir):
    folder = tmp_path / "finetune"
    write_learned_prompts(folder, tiny_sdxl_dir, cross_attention="lora")
    description = json.loads((folder / lp.PROMPTS_FILE).read_text())

    (folder / lp.LORA_FILE).unlink()
    with pytest.raises(BadInputError, match=r"pytorch_lora_weights\.safetensors is missing"):
        lp.read_learned_prompts(folder)

    for change, reason in (
        ({"format": 2}, "format 2"),
        ({"positive_tokens": ["<Genir-Pos>"]}, "lowercase"),
        ({"cross_attention": "dora"}, "cross_attention 'dora'"),
    ):
        (folder / lp.PROMPTS_FILE).write_text(json.dumps({**description, **change}))
        with pytest.raises(BadInputError, match=reason):
            lp.read_learned_prompts(folder)

    (folder / lp.PROMPTS_FILE).write_text(
        json.dumps({**description, "cross_attention": "none", "positive_tokens": ["<a>"]})
    )
    with pytest.raises(BadInputError, match=r"'clip_l' has shape \[4, 32\], expected \[3, 32\]"):
        lp.apply_learned_prompts(_fresh(tiny_sdxl_dir), folder, base_model=tiny_sdxl_dir)
