"""Tiny, randomly initialised stand-ins for GenIR's local models, built offline, for tests.

Each function writes a folder that the real loaders (engine.genir.local_models) read with
`local_files_only=True`, in the architecture of a real choice, at toy sizes:

- `save_tiny_llm`: a LlamaForCausalLM (width 16, 2 layers) with a byte-level BPE tokenizer
  (the 256 byte symbols, no merges) and a plain chat template: a stand-in for the prompt LLM.
  Its vocabulary also holds `WORDS` as whole tokens, each with a leading space and some with a
  leading newline, so that random text comes out as lines of words, as a list of
  descriptions does (word salad, but it exercises the line parser and the privacy filter).
- `save_tiny_captioner`: a BlipForConditionalGeneration (32 px images) with its processor and a
  WordPiece vocabulary of single characters: a stand-in for BLIP captioning.
- `save_tiny_judge`: a LlavaForConditionalGeneration (CLIP vision tower of 32 px images in
  8 px patches, Llama language model of width 16) with its processor: a stand-in for a chat
  vision-language judge. The processor's image-token count (16 patches) matches the
  features the model takes ("default" strategy: the CLS feature dropped).

Their output is gibberish; the tests check the wiring, determinism and files, not words.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

TEXT_CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
IMAGE_CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>", "<image>")
_WORD_TEXT = (
    "a an the of with and in on under near old stone wooden quiet misty sunny rainy "
    "lake river forest mountain harbour bridge street market garden field beach tower "
    "snow fog light shadow morning evening autumn spring green blue red golden rusty "
    "glass brick moss sand rocks boats leaves clouds sky water path wall roof window"
)
WORDS = tuple(_WORD_TEXT.split())
"""Whole-word tokens of the tiny LLM's vocabulary (see the module docstring)."""


def build_byte_tokenizer(words: tuple[str, ...] | list[str] = ()):
    """A fast byte-level BPE tokenizer (no merges) with `SPECIAL_TOKENS` and a chat template;
    `words` are added as whole tokens (" word" always, "\nword" for every fourth word)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    # In byte-level symbols "\u0120" is a space and "\u010a" a newline.
    extra = [f"\u0120{w}" for w in words] + [f"\u010a{w}" for w in words[::4]]
    tokens = [*symbols, *extra, *SPECIAL_TOKENS]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    core = Tokenizer(models.BPE(vocab=vocabulary, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = TEXT_CHAT_TEMPLATE
    return tokenizer


def _llama_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def save_tiny_llm(folder: Path | str, seed: int = 0) -> Path:
    """A tiny random instruct-style causal LM with its tokenizer, saved to `folder`."""
    from transformers import LlamaForCausalLM

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = build_byte_tokenizer(WORDS)
    model = LlamaForCausalLM(_llama_config(tokenizer)).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_captioner(folder: Path | str, seed: int = 0) -> Path:
    """A tiny random BLIP captioner with its processor, saved to `folder`."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = Path(folder)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *"0123456789"]
    tokenizer = BertTokenizer(vocab={word: index for index, word in enumerate(words)})
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    torch.manual_seed(seed)
    config = BlipConfig(
        text_config={
            "vocab_size": len(words),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "encoder_hidden_size": 16,
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    model = BlipForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_judge(folder: Path | str, seed: int = 0) -> Path:
    """A tiny random LLaVA (vision tower + Llama) with its processor, saved to `folder`."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    tokenizer = build_byte_tokenizer()
    tokenizer.chat_template = IMAGE_CHAT_TEMPLATE
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    torch.manual_seed(seed)
    config = LlavaConfig(
        vision_config=vision,
        text_config=_llama_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=IMAGE_CHAT_TEMPLATE,
        image_token="<image>",
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
