"""DreamClearTransformer2DModel on tiny seeded configs (CPU, a few seconds)."""

from __future__ import annotations

import pytest
import torch
from diffusers import PixArtTransformer2DModel

from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.presets import TINY

LATENT_H, LATENT_W = 8, 12  # not the configured sample size: exercises position recomputation
TOKENS = (LATENT_H // 2) * (LATENT_W // 2)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialised ones too) a non-zero value, so all paths count."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            fan_in = param.shape[-1] if param.ndim > 1 else 10
            param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
    return model


def tiny_model(seed: int = 0, **overrides: object) -> DreamClearTransformer2DModel:
    torch.manual_seed(seed)
    return DreamClearTransformer2DModel(**{**TINY, **overrides}).eval()


def get_dummy_inputs(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    latent = (batch, TINY["in_channels"], LATENT_H, LATENT_W)
    mask = torch.ones(batch, 6)
    mask[:, 4:] = 0
    return {
        "hidden_states": torch.randn(latent, generator=generator),
        "timestep": torch.tensor([999, 10][:batch]),
        "encoder_hidden_states": torch.randn(
            batch, 6, TINY["caption_channels"], generator=generator
        ),
        "lq_latent": torch.randn(latent, generator=generator),
        "ref_latent": torch.randn(latent, generator=generator),
        "encoder_attention_mask": mask,
    }


def test_forward_shapes_and_maps() -> None:
    model = tiny_model()
    with torch.no_grad():
        out = model(**get_dummy_inputs(), return_maps=True)
    assert out.sample.shape == (2, TINY["out_channels"], LATENT_H, LATENT_W)
    layers, experts = TINY["num_control_layers"], TINY["num_experts"]
    assert out.router_weights.shape == (layers, 2, TOKENS, experts)
    assert out.degradation_magnitude.shape == (layers, 2, TOKENS)
    torch.testing.assert_close(out.router_weights.sum(-1), torch.ones(layers, 2, TOKENS))
    # Fresh model: zero-initialised router last layer routes uniformly.
    torch.testing.assert_close(out.router_weights, torch.full_like(out.router_weights, 1 / 3))
    assert (out.degradation_magnitude >= 0).all()

    plain = model(**get_dummy_inputs(), return_dict=False)
    assert plain[1] is None and plain[2] is None


def test_conditions_of_batch_one_broadcast_over_cfg_pair() -> None:
    model = randomize(tiny_model())
    inputs = get_dummy_inputs()
    inputs["lq_latent"] = inputs["lq_latent"][:1]
    inputs["ref_latent"] = inputs["ref_latent"][:1]
    repeated = dict(inputs, lq_latent=inputs["lq_latent"].repeat(2, 1, 1, 1))
    repeated["ref_latent"] = inputs["ref_latent"].repeat(2, 1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).sample, model(**repeated).sample)


def test_from_pixart_equals_base_output() -> None:
    torch.manual_seed(0)
    base = PixArtTransformer2DModel(
        num_attention_heads=TINY["num_attention_heads"],
        attention_head_dim=TINY["attention_head_dim"],
        in_channels=TINY["in_channels"],
        out_channels=TINY["out_channels"],
        num_layers=TINY["num_layers"],
        cross_attention_dim=TINY["num_attention_heads"] * TINY["attention_head_dim"],
        sample_size=TINY["sample_size"],
        patch_size=TINY["patch_size"],
        caption_channels=TINY["caption_channels"],
        interpolation_scale=TINY["interpolation_scale"],
        use_additional_conditions=True,
    ).eval()
    randomize(base)
    null_caption = torch.randn(TINY["caption_max_length"], TINY["caption_channels"])
    model = DreamClearTransformer2DModel.from_pixart(
        base, null_caption_embedding=null_caption, degradation_attention_heads=2
    ).eval()
    assert dict(model.config) | {"_use_default_values": None} == dict(
        DreamClearTransformer2DModel(**TINY).config
    ) | {"_use_default_values": None}
    torch.testing.assert_close(model.null_caption_embedding.data, null_caption)

    inputs = get_dummy_inputs()
    batch = inputs["hidden_states"].shape[0]
    with torch.no_grad():
        expected = base(
            inputs["hidden_states"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            timestep=inputs["timestep"],
            added_cond_kwargs={
                "resolution": torch.tensor([[1024.0, 1024.0]]).repeat(batch, 1),
                "aspect_ratio": torch.ones(batch, 1),
            },
            encoder_attention_mask=inputs["encoder_attention_mask"],
        ).sample
        actual = model(**inputs).sample
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_save_and_load_round_trip(tmp_path) -> None:
    model = randomize(tiny_model())
    model.save_pretrained(tmp_path / "model")
    loaded = DreamClearTransformer2DModel.from_pretrained(tmp_path / "model").eval()
    assert {k: v for k, v in loaded.config.items() if k != "_name_or_path"} == dict(model.config)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(**get_dummy_inputs()).sample, model(**get_dummy_inputs()).sample
        )


def test_padded_caption_positions_never_matter() -> None:
    model = randomize(tiny_model())
    inputs = get_dummy_inputs()
    changed = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"].clone())
    changed["encoder_hidden_states"][:, 4:] = torch.randn(2, 2, TINY["caption_channels"]) * 100
    changed["encoder_hidden_states"][0, 5] = float("nan")
    with torch.no_grad():
        torch.testing.assert_close(model(**changed).sample, model(**inputs).sample)
        # And the kept positions do matter.
        kept = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"] + 1)
        assert not torch.allclose(model(**kept).sample, model(**inputs).sample)


def test_attention_is_per_sample() -> None:
    model = randomize(tiny_model())
    inputs = get_dummy_inputs()
    with torch.no_grad():
        both = model(**inputs, return_maps=True)
        for i in range(2):
            single = model(**{k: v[i : i + 1] for k, v in inputs.items()}, return_maps=True)
            torch.testing.assert_close(single.sample[0], both.sample[i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(single.router_weights[:, 0], both.router_weights[:, i])


def test_gradient_checkpointing_gives_same_gradients() -> None:
    model = randomize(tiny_model()).train()
    inputs = get_dummy_inputs()

    def grads() -> list[torch.Tensor]:
        model.zero_grad()
        model(**inputs).sample.square().mean().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    checkpointed = grads()
    assert len(plain) == len(checkpointed)
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)


def test_fewer_control_layers_than_blocks() -> None:
    model = tiny_model(num_control_layers=1)
    with torch.no_grad():
        out = model(**get_dummy_inputs(), return_maps=True)
    assert out.router_weights.shape[0] == 1
    assert len(model.lq_branch_blocks) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_states": torch.randn(2, 3, 8, 12)}, "hidden_states must be"),
        ({"hidden_states": torch.randn(2, 4, 7, 12)}, "not divisible by the patch size"),
        ({"lq_latent": torch.randn(2, 4, 8, 10)}, "lq_latent must be"),
        ({"ref_latent": torch.randn(3, 4, 8, 12)}, "ref_latent has batch 3"),
        ({"encoder_hidden_states": torch.randn(2, 6, 31)}, "encoder_hidden_states must be"),
        ({"encoder_attention_mask": torch.ones(2, 5)}, "encoder_attention_mask must be"),
        ({"timestep": torch.tensor([1, 2, 3])}, "timestep must be"),
    ],
)
def test_bad_inputs_raise_plain_errors(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_model()(**{**get_dummy_inputs(), **change})


def test_scalar_timestep_broadcasts() -> None:
    model = tiny_model()
    inputs = get_dummy_inputs()
    with torch.no_grad():
        scalar = model(**dict(inputs, timestep=500)).sample
        vector = model(**dict(inputs, timestep=torch.tensor([500, 500]))).sample
    torch.testing.assert_close(scalar, vector)
