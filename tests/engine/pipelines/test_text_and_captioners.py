"""T5 caption encoder, captioners (LLaVA with fakes: no weights offline), tile budget."""

from __future__ import annotations

import torch
from PIL import Image

from engine.models.captioners import (
    LLAVA_PROMPT,
    Captioner,
    FixedCaptioner,
    LlavaCaptioner,
    NoCaptioner,
)
from engine.pipelines.tile_budget import auto_latent_tile, estimate_denoise_bytes


def test_t5_caption_encoder_pads_to_max_length(components):
    encoder = components.text_encoder
    embeddings, mask = encoder(["a sharp photo", "a house with a red door and a tree " * 5])
    assert embeddings.shape == (2, 16, 32) and mask.shape == (2, 16)
    assert mask[0].tolist() == [1] * 4 + [0] * 12  # 3 words + </s>
    assert mask[1].all()  # truncated to 16
    assert torch.isfinite(embeddings).all()


def test_fixed_and_no_captioner():
    image = Image.new("RGB", (8, 8))
    assert FixedCaptioner("a cat").caption(image) == "a cat"
    assert NoCaptioner().caption(image) == ""
    assert isinstance(NoCaptioner(), Captioner)


class _FakeProcessor:
    def apply_chat_template(self, conversation, add_generation_prompt):
        assert add_generation_prompt
        text = conversation[0]["content"][1]["text"]
        return f"USER: <image>\n{text} ASSISTANT:"

    def __call__(self, images, text, return_tensors):
        assert images.mode == "RGB" and text.endswith("ASSISTANT:")
        return {"input_ids": torch.tensor([[5, 6, 7]]), "pixel_values": torch.zeros(1, 3, 4, 4)}

    def batch_decode(self, ids, skip_special_tokens):
        return [" ".join(f"w{int(i)}" for i in row) + " " for row in ids]


class _FakeLlava(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.float16))
        self.calls = []

    def generate(self, **kwargs):
        self.calls.append(kwargs)
        return torch.cat([kwargs["input_ids"], torch.tensor([[8, 9]])], dim=1)


def test_llava_captioner_uses_published_settings_and_returns_new_text():
    model = _FakeLlava()
    captioner = LlavaCaptioner(_FakeProcessor(), model)
    assert captioner.caption(Image.new("L", (8, 8))) == "w8 w9"
    call = model.calls[0]
    assert call["temperature"] == 0.2 and call["top_p"] == 0.7 and call["max_new_tokens"] == 512
    assert call["do_sample"] and call["pixel_values"].dtype == torch.float16
    assert captioner.prompt == LLAVA_PROMPT == "Describe this image and its style."


def test_auto_tile_from_memory():
    full = {"patch_size": 2, "hidden_size": 1152, "num_heads": 16, "bytes_per_element": 2}
    assert 2e9 < estimate_denoise_bytes(128, **full) < 3e9
    assert auto_latent_tile(80 * 2**30, **full) == 128
    small = auto_latent_tile(1 * 2**30, **full)
    assert 32 <= small < 128
    assert auto_latent_tile(1, **full) == 32
