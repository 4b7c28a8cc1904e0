"""Tiny seeded components of the real architectures, for tests, benchmarks and smoke runs.

Everything is built in code, offline, in float32 on the CPU: the DreamClear transformer at
`presets.TINY` (its zero-initialised layers given small random values so the branches,
cross-attention and modulators all change the output), SD's VAE layout scaled down (4 down
blocks: 8x downsampling, scaling factor 0.18215), a 2-layer T5 encoder with a word-level
tokenizer, and DiffBIR's SwinIR remover layout scaled down (pixel-unshuffle 8, nearest+conv
upsampler x8, so the output has the input's size).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from spandrel.architectures.SwinIR import SwinIR
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from engine.models.captioners import FixedCaptioner
from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.presets import TINY
from engine.models.published_sizes import diffbir_swinir, sd_vae
from engine.models.text_encoder import T5CaptionEncoder
from engine.pipelines.components import RestoreComponents

TINY_VOCABULARY: tuple[str, ...] = (
    "a",
    "an",
    "the",
    "of",
    "and",
    "with",
    "in",
    "on",
    "at",
    "photo",
    "image",
    "picture",
    "painting",
    "drawing",
    "style",
    "sharp",
    "blurry",
    "noisy",
    "clean",
    "detailed",
    "old",
    "new",
    "red",
    "green",
    "blue",
    "white",
    "black",
    "bright",
    "dark",
    "light",
    "colour",
    "color",
    "house",
    "tree",
    "sky",
    "cloud",
    "water",
    "river",
    "mountain",
    "street",
    "city",
    "car",
    "dog",
    "cat",
    "bird",
    "flower",
    "face",
    "person",
    "people",
    "building",
    "window",
    "door",
    "road",
    "grass",
    "field",
    "sun",
    "night",
    "day",
    "portrait",
    "landscape",
    "close",
    "up",
    "high",
    "quality",
    "realistic",
    "vintage",
    "film",
    "texture",
)
TINY_CAPTION = "a sharp photo of a house with a tree and blue sky"
ZERO_INIT_STD = 0.05
"""Std of the values given to the transformer's zero-initialised layers."""


def build_tiny_tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer with T5's special tokens (<pad> 0, </s> 1, <unk> 2)."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in TINY_VOCABULARY:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def build_tiny_transformer() -> DreamClearTransformer2DModel:
    model = DreamClearTransformer2DModel(**TINY)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, ZERO_INIT_STD)
    return model


def build_tiny_vae() -> AutoencoderKL:
    return sd_vae((8, 8, 16, 16), layers_per_block=1, norm_num_groups=4)


def build_tiny_text_encoder(caption_channels: int, max_length: int) -> T5CaptionEncoder:
    tokenizer = build_tiny_tokenizer(max_length)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=caption_channels,
        d_kv=8,
        d_ff=2 * caption_channels,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5CaptionEncoder(tokenizer, T5EncoderModel(config), max_length=max_length)


def build_tiny_remover() -> SwinIR:
    """DiffBIR's SwinIR (patch 1, unshuffle 8, nearest+conv x8, 1conv), scaled down."""
    return diffbir_swinir(embed_dim=12, depths=[2, 2], num_heads=[2, 2])


def build_tiny_components(seed: int = 0) -> RestoreComponents:
    """Seeded tiny components, in eval mode, float32 on the CPU."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        transformer = build_tiny_transformer()
        vae = build_tiny_vae()
        text_encoder = build_tiny_text_encoder(TINY["caption_channels"], TINY["caption_max_length"])
        remover = build_tiny_remover()
    finally:
        torch.random.set_rng_state(generator_state)
    for module in (transformer, vae, text_encoder.model, remover):
        module.eval().requires_grad_(False)
    return RestoreComponents(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        remover=remover,
        captioner=FixedCaptioner(TINY_CAPTION),
    )
