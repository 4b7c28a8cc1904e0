"""DreamClearRestorePipeline end to end with tiny components, 2 steps, CPU."""

from __future__ import annotations

import pytest
import torch

from engine.cancel import CancelToken
from engine.errors import BadInputError, BadSettingError, JobInterrupted, OutOfMemory
from engine.pipelines.restore import DreamClearRestorePipeline

# Tiny runs: short side raised to 64 px only, so latents are a few cells across.
SMALL = {"min_short_side": 64, "num_inference_steps": 2}


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gradient(height: int, width: int) -> torch.Tensor:
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    xs = torch.linspace(0, 1, width)[None, :].expand(height, width)
    return torch.stack([0.2 + 0.6 * xs, 0.3 + 0.4 * ys, 0.25 * (xs + ys) + 0.3])[None]


@pytest.mark.parametrize(("size", "upscale"), [((16, 24), 4), ((10, 13), 2.5)])
def test_restore_two_steps(pipe, size, upscale):
    image = _gradient(*size)
    first = pipe(image, upscale=upscale, generator=_seeded(), **SMALL)
    expected = (round(size[0] * upscale), round(size[1] * upscale))
    assert first.image.shape == (1, 3, *expected)
    assert torch.isfinite(first.image).all()
    assert first.image.min() >= 0 and first.image.max() <= 1
    assert first.caption and set(first.timings) >= {"remove", "denoise", "decode", "total"}
    again = pipe(image, upscale=upscale, generator=_seeded(), **SMALL)
    assert torch.equal(first.image, again.image)
    other = pipe(image, upscale=upscale, generator=_seeded(1), **SMALL)
    assert not torch.equal(first.image, other.image)


def test_dpm_solver_and_options(pipe):
    out = pipe(
        _gradient(16, 16),
        sampler="dpm++",
        guidance_channels="all",
        caption="none",
        color_fix="adain",
        generator=_seeded(),
        **SMALL,
    )
    assert out.image.shape == (1, 3, 64, 64) and out.caption == ""


def _make_local(transformer):
    """Make every token depend only on its own inputs: no self-attention mixing, constant
    degradation attention and no positional embedding. Tiling is then exact."""
    with torch.no_grad():
        for block in [
            *transformer.transformer_blocks,
            *transformer.lq_branch_blocks,
            *transformer.ref_branch_blocks,
        ]:
            block.attn1.to_out[0].weight.zero_()
            block.attn1.to_out[0].bias.zero_()
        for attention in transformer.degradation_attention:
            attention.to_v.weight.zero_()
    for embed in (transformer.pos_embed, transformer.lq_branch_embed, transformer.ref_branch_embed):
        embed.pos_embed = None


def test_tiled_equals_untiled_for_a_token_local_model(components):
    from engine.models.tiny_components import build_tiny_components

    local = build_tiny_components(seed=0)
    _make_local(local.transformer)
    pipe = DreamClearRestorePipeline.from_components(local)
    image = _gradient(32, 32)  # latent 16 x 16
    untiled = pipe(
        image, tile_size=16, min_short_side=128, num_inference_steps=2, generator=_seeded()
    )
    tiled = pipe(
        image,
        tile_size=8,
        tile_overlap=4,
        min_short_side=128,
        num_inference_steps=2,
        generator=_seeded(),
    )
    assert len(untiled.tile_grid) == 1 and len(tiled.tile_grid) == 9
    torch.testing.assert_close(tiled.image, untiled.image, atol=1e-4, rtol=0)
    # ... and per step, where the model's output clearly depends on the conditions.
    x, lq, ref = torch.randn(3, 1, 4, 16, 16, generator=_seeded()).unbind(0)
    text, mask = pipe.text_encoder(["a photo"])
    null = pipe.transformer.null_caption_embedding[None]
    conditions = {
        "text": torch.cat([text, null]),
        "mask": torch.cat([mask, mask]),
        "lq": lq,
        "ref": ref,
    }

    def step(tile, overlap, conditions=conditions):
        tiles = pipe._latent_tiles(16, 16, tile, overlap)
        with torch.no_grad():
            return pipe._denoise_step(
                x, 500, tiles, conditions, 4.5, 3, None, lambda i, n: None, CancelToken()
            )

    whole, tiled_step = step(16, 0), step(8, 4)
    torch.testing.assert_close(tiled_step, whole, atol=1e-5, rtol=1e-5)
    changed = step(16, 0, {**conditions, "ref": ref.flip(-1), "lq": lq.flip(-1)})
    assert (changed - whole).abs().mean() > 1e-2  # 1000x the tolerance above


def test_no_seam_on_a_smooth_gradient(pipe):
    """The stitched model output of one step, on smooth latents, has no jump at tile borders."""
    ys = torch.linspace(-1, 1, 16)[:, None].expand(16, 32)
    xs = torch.linspace(-1, 1, 32)[None, :].expand(16, 32)
    smooth = torch.stack([xs, ys, 0.5 * (xs + ys), xs * ys])[None]
    text, mask = pipe.text_encoder(["a photo"])
    null = pipe.transformer.null_caption_embedding[None]
    conditions = {"text": torch.cat([text, null]), "mask": torch.cat([mask, mask])}
    conditions["lq"], conditions["ref"] = 0.8 * smooth, smooth
    tiles = pipe._latent_tiles(16, 32, 8, 4)
    assert len(tiles) > 1
    with torch.no_grad():
        out = pipe._denoise_step(
            smooth, 500, tiles, conditions, 4.5, 3, None, lambda i, n: None, CancelToken()
        )
    d2 = (out[..., 2:] - 2 * out[..., 1:-1] + out[..., :-2]).abs()  # centred on columns 1..W-2
    borders = {x for box in tiles for x in (box.left, box.right)} - {0, 32}
    near = sorted({c - 1 + dc for c in borders for dc in (-1, 0, 1)} & set(range(d2.shape[-1])))
    far = [c for c in range(d2.shape[-1]) if c not in near]
    assert d2[..., near].max() <= d2[..., far].max()


def test_degradation_maps(pipe):
    out = pipe(
        _gradient(16, 24),
        tile_size=8,
        tile_overlap=4,
        return_maps=True,
        generator=_seeded(),
        **SMALL,
    )
    maps = out.degradation_maps
    blocks = pipe.transformer.config.num_control_layers
    # 64 x 96 rounds to the working size 64 x 128 (multiples of 64) -> latent 8 x 16 ->
    # tokens 4 x 8 (patch 2): one value per token.
    assert maps.router.shape == (blocks, 4, 8, 3) and maps.magnitude.shape == (blocks, 4, 8)
    assert maps.token_size_px == 16
    torch.testing.assert_close(maps.router.sum(-1), torch.ones(blocks, 4, 8))
    assert maps.mean_router.shape == (4, 8, 3) and maps.mean_magnitude.shape == (4, 8)
    assert (maps.magnitude > 0).all() and maps.router.std() > 0
    assert pipe(_gradient(16, 24), generator=_seeded(), **SMALL).degradation_maps is None


def test_interrupt_stops_within_one_step(pipe, monkeypatch):
    calls = []
    forward = pipe.transformer.forward
    monkeypatch.setattr(
        pipe.transformer, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k)
    )

    token = CancelToken()

    def stop(pipeline, step, timestep, tensors):
        token.cancel()
        return tensors

    with pytest.raises(JobInterrupted, match="after 1 of 5 steps"):
        pipe(
            _gradient(16, 16),
            min_short_side=64,
            num_inference_steps=5,
            tile_size=16,
            callback_on_step_end=stop,
            generator=_seeded(),
            cancel=token,
        )
    assert len(calls) == 1


def test_cancel_stops_the_remover_between_tiles(pipe):
    token = CancelToken()
    seen = []

    def cancel_at_first_tile(info):
        seen.append(info.stage)
        token.cancel()

    with pytest.raises(JobInterrupted):
        pipe(
            _gradient(16, 16),
            min_short_side=64,
            num_inference_steps=5,
            tile_size=16,
            on_progress=cancel_at_first_tile,
            generator=_seeded(),
            cancel=token,
        )
    assert seen == ["remove"]


def test_out_of_memory_halves_the_tile(pipe, monkeypatch):
    forward = pipe.transformer.forward

    def limited(hidden_states, *args, **kwargs):
        if hidden_states.shape[-1] > 8:
            raise torch.OutOfMemoryError("simulated")
        return forward(hidden_states, *args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", limited)
    warnings = []
    out = pipe(
        _gradient(32, 32),
        min_short_side=128,
        num_inference_steps=2,
        tile_size=16,
        min_tile_size=4,
        on_warning=warnings.append,
        generator=_seeded(),
    )
    assert out.image.shape == (1, 3, 128, 128)
    assert len(warnings) == 1 and "8" in warnings[0]
    assert {(box.height, box.width) for box in out.tile_grid} == {(8, 8)}


def test_out_of_memory_at_the_floor_is_a_clear_error(pipe, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(pipe.transformer, "forward", oom)
    with pytest.raises(OutOfMemory) as error:
        pipe(_gradient(16, 16), tile_size=8, min_tile_size=8, generator=_seeded(), **SMALL)
    assert error.value.kind == "out_of_memory" and "--device cpu" in error.value.hint


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"sampler": "euler"}, BadSettingError),
        ({"color_fix": "hist"}, BadSettingError),
        ({"guidance_channels": "some"}, BadSettingError),
        ({"tile_size": 7}, BadSettingError),
        ({"tile_overlap": 3}, BadSettingError),
        ({"size_multiple": 24}, BadSettingError),
        ({"upscale": 0}, BadSettingError),
        ({"caption": "maybe"}, BadSettingError),
        ({"vae_tile_size": 100}, BadSettingError),
    ],
)
def test_bad_settings(pipe, options, error):
    with pytest.raises(error):
        pipe(_gradient(8, 8), **{**SMALL, **options})


def test_bad_images(pipe):
    with pytest.raises(BadInputError):
        pipe(torch.rand(3, 8, 8), **SMALL)
    with pytest.raises(BadInputError):
        pipe(torch.rand(1, 3, 8, 8) * 2, **SMALL)
    with pytest.raises(BadInputError):
        pipe((torch.rand(1, 3, 8, 8) * 255).byte(), **SMALL)
