"""Stage 2's model on the tiny SDXL: what trains (and what stays bit-identical), the loss,
pooling at end-of-text, and the output loaded into a fresh stock pipeline."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from engine.errors import BadSettingError
from engine.genir import dual_prompts
from engine.genir.config import FinetuneConfig
from engine.genir.dual_prompts import (
    diffusion_loss,
    encode_prompt_ids,
    load_base,
    prepare_dual_prompts,
    size_conditioning,
    token_names,
    tokenize,
)
from engine.genir.finetune_data import dual_prompt
from engine.genir.finetune_output import (
    FULL_FILE,
    LORA_FILE,
    LearnedPrompts,
    base_sha256,
    load_finetune,
    save_finetune,
)

SETTINGS = FinetuneConfig(resolution=64, vectors_per_token=2, lora_rank=4)
POSITIVE = token_names("pos", 2)
NEGATIVE = token_names("neg", 2)


def _batch(parts, seed: int = 0) -> dict[str, torch.Tensor]:
    """A positive and a negative sample of random 64 px images."""
    prompts = [dual_prompt(POSITIVE, "a red barn"), dual_prompt(NEGATIVE, "a red barn")]
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return {
        "pixels": pixels,
        "input_ids": tokenize(parts.tokenizer, prompts),
        "input_ids_2": tokenize(parts.tokenizer_2, prompts),
        "time_ids": size_conditioning((64, 64), (0, 0), (64, 64)).expand(2, 6),
    }


def _train(model, parts, steps: int, lr: float = 1e-2, same_noise: bool = False) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batch, losses = _batch(parts), []
    for step in range(steps):
        generator = torch.Generator().manual_seed(0 if same_noise else step)
        loss = diffusion_loss(model, parts, batch, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def _prepared(base, mode: str):
    parts = load_base(base)
    model = prepare_dual_prompts(parts, dataclasses.replace(SETTINGS, cross_attention=mode))
    return parts, model


@pytest.mark.parametrize("mode", ["lora", "full", "none"])
def test_only_new_token_rows_and_cross_attention_change(tiny_sdxl_dir, mode):
    original = load_base(tiny_sdxl_dir)
    parts, model = _prepared(tiny_sdxl_dir, mode)
    trained = set(model.cross_attention_state())
    unet_before = {k: v.clone() for k, v in parts.unet.state_dict().items()}
    rows_before = model.clip_l.detach().clone(), model.clip_g.detach().clone()
    _train(model, parts, steps=2)

    for name in ("text_encoder", "text_encoder_2"):
        old, new = getattr(original, name), getattr(parts, name)
        embedding = new.get_input_embeddings()
        # The old rows, read through the spliced embedding, are the base's bit for bit.
        old_ids = torch.arange(embedding.first_id)
        assert torch.equal(embedding(old_ids), old.get_input_embeddings().weight)
        new_state = new.state_dict()
        for key, value in old.state_dict().items():
            if key.endswith("token_embedding.weight"):
                key = key.replace("token_embedding.weight", "token_embedding.base.weight")
            assert torch.equal(new_state[key], value), f"{name}.{key} changed"
    assert not torch.equal(model.clip_l, rows_before[0])
    assert not torch.equal(model.clip_g, rows_before[1])

    for key, value in parts.unet.state_dict().items():
        changed = not torch.equal(value, unet_before[key])
        assert changed == (key in trained), f"{key}: changed={changed}"
    if mode == "none":
        assert not trained
    else:
        assert trained and all(".attn2." in key for key in trained)
    if mode == "full":
        attn2 = {k for k, _ in parts.unet.named_parameters() if ".attn2." in k}
        assert trained == attn2
    # The model's state (what checkpoints hold) is exactly the trained parameters.
    assert set(model.state_dict()) == {"clip_l", "clip_g"} | {
        "cross_attention." + key.replace(".", "/") for key in trained
    }


def test_new_rows_start_from_the_init_words(tiny_sdxl_dir):
    _, model = _prepared(tiny_sdxl_dir, "none")
    base = load_base(tiny_sdxl_dir)
    ids = base.tokenizer("4k", add_special_tokens=False).input_ids  # "4", "k</w>"
    weight = base.text_encoder.get_input_embeddings().weight
    assert torch.equal(model.clip_l[0], weight[ids[0]])
    assert torch.equal(model.clip_l[1], weight[ids[1]])
    ids = base.tokenizer("deformation", add_special_tokens=False).input_ids
    assert torch.equal(model.clip_l[2], weight[ids[0]])


def test_the_loss_falls_when_fitting_a_fixed_batch(tiny_sdxl_dir):
    parts, model = _prepared(tiny_sdxl_dir, "lora")
    losses = _train(model, parts, steps=12, lr=3e-2, same_noise=True)
    assert losses[-1] < 0.85 * losses[0] and losses[-1] < min(losses[:-1]), losses


def test_v_prediction_targets_the_velocity(tiny_sdxl_dir, monkeypatch):
    parts, model = _prepared(tiny_sdxl_dir, "none")
    parts.noise_scheduler.register_to_config(prediction_type="v_prediction")
    seen = {}
    velocity = parts.noise_scheduler.get_velocity

    def spy(*args):
        seen["called"] = True
        return velocity(*args)

    monkeypatch.setattr(parts.noise_scheduler, "get_velocity", spy)
    diffusion_loss(model, parts, _batch(parts), torch.Generator().manual_seed(0))
    assert seen
    parts.noise_scheduler.register_to_config(prediction_type="sample")
    with pytest.raises(BadSettingError, match="sample"):
        diffusion_loss(model, parts, _batch(parts), torch.Generator().manual_seed(0))


def test_the_pooled_embedding_is_taken_at_end_of_text(tiny_sdxl_dir):
    parts, _ = _prepared(tiny_sdxl_dir, "none")
    tokenizer, encoder = parts.tokenizer_2, parts.text_encoder_2
    ids = tokenize(tokenizer, [dual_prompt(POSITIVE, "a barn")])
    eos = tokenizer.eos_token_id
    new_ids = tokenizer.convert_tokens_to_ids(POSITIVE + NEGATIVE)
    assert min(new_ids) > eos  # the pitfall: argmax(ids) would land on a new token
    at_eos = int((ids[0] == eos).nonzero()[0])
    assert int(ids[0].argmax()) != at_eos
    with torch.no_grad():
        _, pooled = encode_prompt_ids(parts, tokenize(parts.tokenizer, ["a barn"]), ids)
        hidden = encoder(ids, output_hidden_states=True).last_hidden_state
        expected = encoder.text_projection(hidden[0, at_eos])
    torch.testing.assert_close(pooled[0], expected)


def test_tokens_cannot_be_added_twice(tiny_sdxl_dir):
    parts, _ = _prepared(tiny_sdxl_dir, "none")
    with pytest.raises(BadSettingError, match="cannot be added twice"):
        dual_prompts.add_learned_tokens(parts, POSITIVE, [("4k",)])


def _training_pipeline(parts, base) -> StableDiffusionXLPipeline:
    """A stock pipeline around the training-time modules (spliced embeddings, adapter)."""
    scheduler = StableDiffusionXLPipeline.from_pretrained(base, local_files_only=True).scheduler
    return StableDiffusionXLPipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        text_encoder_2=parts.text_encoder_2,
        tokenizer=parts.tokenizer,
        tokenizer_2=parts.tokenizer_2,
        unet=parts.unet,
        scheduler=scheduler,
    )


def _generate(pipe, prompt: str, negative: str):
    with torch.no_grad():
        embeds = pipe.encode_prompt(
            prompt, device="cpu", do_classifier_free_guidance=True, negative_prompt=negative
        )
        image = pipe(
            prompt,
            negative_prompt=negative,
            height=64,
            width=64,
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(7),
            output_type="pt",
        ).images
    return embeds, image


@pytest.mark.parametrize("mode", ["lora", "full", "none"])
def test_the_output_loads_into_a_fresh_pipeline_and_reproduces_training(
    tiny_sdxl_dir, tmp_path, mode
):
    parts, model = _prepared(tiny_sdxl_dir, mode)
    _train(model, parts, steps=3)
    prompts = LearnedPrompts(
        base_model=str(tiny_sdxl_dir),
        base_sha256=base_sha256(tiny_sdxl_dir),
        positive_tokens=POSITIVE,
        negative_tokens=NEGATIVE,
        cross_attention=mode,
        lora_rank=4 if mode == "lora" else None,
        settings={},
    )
    folder = save_finetune(tmp_path / "finetune", model, prompts)
    assert (folder / LORA_FILE).is_file() == (mode == "lora")
    assert (folder / FULL_FILE).is_file() == (mode == "full")

    fresh = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, local_files_only=True)
    loaded = load_finetune(fresh, folder, check_base=tiny_sdxl_dir)
    prompt, negative = loaded.positive_prompt("a red barn"), loaded.negative_prompt()
    assert prompt == dual_prompt(POSITIVE, "a red barn")

    model.eval()
    expected_embeds, expected_image = _generate(
        _training_pipeline(parts, tiny_sdxl_dir), prompt, negative
    )
    embeds, image = _generate(fresh, prompt, negative)
    for got, want in zip(embeds, expected_embeds, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(image, expected_image, rtol=0, atol=1e-5)
    # The learned prompts matter: without them the embedding differs.
    plain, _ = _generate(fresh, "a red barn", "")
    assert not torch.allclose(plain[0], embeds[0])


def test_another_base_is_refused(tiny_sdxl_dir, tmp_path):
    from engine.genir.tiny_base import save_tiny_sdxl

    _, model = _prepared(tiny_sdxl_dir, "none")
    prompts = LearnedPrompts(
        str(tiny_sdxl_dir), base_sha256(tiny_sdxl_dir), POSITIVE, NEGATIVE, "none", None, {}
    )
    folder = save_finetune(tmp_path / "finetune", model, prompts)
    other = save_tiny_sdxl(tmp_path / "other", seed=1)
    assert base_sha256(other) != base_sha256(tiny_sdxl_dir)
    fresh = StableDiffusionXLPipeline.from_pretrained(other, local_files_only=True)
    with pytest.raises(BadSettingError, match="another base"):
        load_finetune(fresh, folder, check_base=other)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("resolution", 100, "multiple of 8"),
        ("vectors_per_token", 0, "at least 1"),
        ("token_learning_rate", 0.0, "> 0"),
        ("positive_init_words", ("4k", " "), "no blank"),
        ("lora_rank", 0, "at least 1"),
    ],
)
def test_bad_finetune_settings_are_named(field, value, message):
    from engine.genir.config import validate_finetune
    from engine.typed_config import ConfigError

    with pytest.raises(ConfigError, match=message) as raised:
        validate_finetune(dataclasses.replace(FinetuneConfig(), **{field: value}))
    assert f"'finetune.{field}'" in str(raised.value)
