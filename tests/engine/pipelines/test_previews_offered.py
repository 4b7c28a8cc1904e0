"""What the pipelines offer as previews (the engine's `JobPreviews` picks from these)."""

from __future__ import annotations

import torch

from engine.restorers import load_restorer


def test_dreamclear_offers_the_reference_and_the_decoding_result(pipe):
    stages, offered = [], []

    def on_preview(render, output_size):
        offered.append((stages[-1], tuple(render().shape), output_size))

    pipe(
        torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
        upscale=4,
        min_short_side=64,
        num_inference_steps=2,
        vae_tile_size=32,
        generator=torch.Generator().manual_seed(0),
        on_progress=lambda info: stages.append(info.stage),
        on_preview=on_preview,
    )
    assert offered[0] == ("remove", (1, 3, 64, 64), (64, 64))
    decoding = [o for o in offered if o[0] == "decode"]
    assert len(decoding) >= 2 and all(o[1:] == ((1, 3, 64, 64), (64, 64)) for o in decoding)


def test_the_starter_offers_the_result_so_far_after_every_tile(starter_dir):
    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    image = torch.rand(1, 3, 100, 120, generator=torch.Generator().manual_seed(0))
    lq_pixel = []

    def on_preview(render, output_size):
        lq_pixel.append(render()[0, :, -1, -1].clone())
        assert output_size == (400, 480)

    out = pipe(image, upscale=4, on_preview=on_preview)
    assert len(lq_pixel) == 4  # 2 x 2 tiles
    # Before the last tile its corner is still the plain upscale; after it, restored.
    assert not torch.equal(lq_pixel[-2], lq_pixel[-1])
    assert out.image.shape[-2:] == (400, 480)
