"""GenIR stage 2's model: learned positive and negative tokens in both SDXL text encoders,
trained with the UNet's cross-attention under the latent diffusion loss.

`prepare_dual_prompts(parts, settings)` adds the tokens (`<genir-pos-0..k-1>`,
`<genir-neg-0..k-1>`) to both tokenizers, splices a trainable row block into each encoder's
token embedding (the old rows stay a frozen tensor, so they cannot change: bit-identical by
construction, and the optimiser holds state for the new rows only), makes the cross-attention
(attn2) layers trainable as LoRA, in full or not at all, and returns a `DualPromptModel`: an
nn.Module whose parameters are exactly the trained ones (checkpoints hold only those) and
whose forward runs the whole prediction through the frozen parts it holds by reference.
`diffusion_loss` is the training loss: SDXL's (epsilon or v) MSE with its size conditioning
and the second encoder's pooled embedding at the end-of-text position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import BadSettingError
from engine.genir.text_encoders import TEXT_ENCODER_PAIRS, align_eos_token_ids

CrossAttention = Literal["lora", "full", "none"]
CROSS_ATTENTION_MODULES = ("attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0")
"""peft targets: the UNet's cross-attention projections (plain "to_k" hits self-attention too)."""
ENCODER_KEYS = ("clip_l", "clip_g")
"""The names of the two encoders' learned rows, in TEXT_ENCODER_PAIRS order (file keys too)."""


def token_names(kind: Literal["pos", "neg"], count: int) -> list[str]:
    """`<genir-pos-0>`, ...: lowercase, since the tokenizers lowercase prompts."""
    return [f"<genir-{kind}-{index}>" for index in range(count)]


@dataclass
class SDXLParts:
    """A loaded SDXL base: what training needs of a pipeline (attribute names as its)."""

    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    noise_scheduler: Any
    """A DDPMScheduler with the base scheduler's settings: the training-time noising."""
    scheduler: Any
    """The base's own sampling scheduler (for sample images)."""


def load_base(base_model: Path | str, dtype: torch.dtype = torch.float32) -> SDXLParts:
    """The base's components from a diffusers-layout folder, local files only, end-of-text
    ids aligned (engine.genir.text_encoders). The UNet and text encoders in `dtype` (the
    weights that stay frozen: `prepare_dual_prompts` makes the trained ones float32), the
    VAE in float32 (SDXL's VAE overflows in fp16)."""
    from diffusers import DDPMScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(
        str(base_model), local_files_only=True, dtype={"default": dtype, "vae": torch.float32}
    )
    parts = SDXLParts(
        unet=pipe.unet,
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        text_encoder_2=pipe.text_encoder_2,
        tokenizer=pipe.tokenizer,
        tokenizer_2=pipe.tokenizer_2,
        noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        scheduler=pipe.scheduler,
    )
    align_eos_token_ids(parts)
    return parts


class LearnedTokenEmbedding(nn.Module):
    """A token embedding whose ids from `first_id` on read a trainable block of rows; the
    other ids read the frozen original embedding, which no optimiser ever sees."""

    def __init__(self, base: nn.Embedding, first_id: int, rows: torch.Tensor) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.first_id = first_id
        self.learned = nn.Parameter(rows.detach().clone().float())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        is_new = (input_ids >= self.first_id).unsqueeze(-1)
        old = self.base(input_ids.clamp(max=self.first_id - 1))
        # Every new row is gathered each call (clamped ids), so all of them take part in the
        # graph: DDP needs each parameter used in each step.
        new = self.learned[(input_ids - self.first_id).clamp(0, len(self.learned) - 1)]
        return torch.where(is_new, new.to(old.dtype), old)


def initial_rows(tokenizer: Any, embedding: torch.Tensor, words: tuple[str, ...], count: int):
    """`count` rows cycling through the embedding rows of the words' tokens, in order."""
    ids = [i for word in words for i in tokenizer(word, add_special_tokens=False).input_ids]
    if not ids:
        raise BadSettingError(f"the initialisation words {words} give no tokens")
    return torch.stack([embedding[ids[index % len(ids)]] for index in range(count)])


def add_learned_tokens(
    parts: SDXLParts,
    tokens: list[str],
    init_words: list[tuple[str, ...]],
) -> list[LearnedTokenEmbedding]:
    """Add `tokens` to both tokenizers and splice their rows into both encoders. The rows of
    `tokens` are initialised group by group: `init_words[g]` for the g-th equal share of the
    tokens (positives, negatives). Returns the two spliced embeddings (clip_l, clip_g)."""
    per_group = len(tokens) // len(init_words)
    spliced = []
    for tokenizer_name, encoder_name in TEXT_ENCODER_PAIRS:
        tokenizer, encoder = getattr(parts, tokenizer_name), getattr(parts, encoder_name)
        first_id = len(tokenizer)
        added = tokenizer.add_tokens(tokens)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        if added != len(tokens) or ids != list(range(first_id, first_id + len(tokens))):
            raise BadSettingError(
                f"{tokenizer_name} already knows some of {tokens}: they cannot be added twice",
                hint="load the base model afresh",
            )
        base = encoder.get_input_embeddings()
        rows = torch.cat(
            [
                initial_rows(tokenizer, base.weight.detach(), words, per_group)
                for words in init_words
            ]
        )
        embedding = LearnedTokenEmbedding(base, first_id, rows)
        encoder.set_input_embeddings(embedding)
        spliced.append(embedding)
    # Added ids lie above end-of-text: pooling must look for end-of-text itself.
    align_eos_token_ids(parts)
    return spliced


def make_cross_attention_trainable(unet: Any, mode: CrossAttention, rank: int) -> dict:
    """Freeze the UNet except its cross-attention as `mode` says; returns the trained
    parameters by their name in the UNet."""
    unet.requires_grad_(False)
    if mode == "lora":
        from peft import LoraConfig

        config = LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=list(CROSS_ATTENTION_MODULES),
        )
        unet.add_adapter(config)
    elif mode == "full":
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                module.requires_grad_(True)
    trained = {name: p for name, p in unet.named_parameters() if p.requires_grad}
    for parameter in trained.values():
        parameter.data = parameter.data.float()  # fp16 trained weights fail at unscaling
    return trained


class DualPromptModel(nn.Module):
    """The trained parameters of a dual-prompt run (the new token rows of both encoders and
    the UNet's trained cross-attention weights, shared with the modules that use them), and
    the prediction through the frozen parts, held by reference (not registered: they are
    not saved in checkpoints and not wrapped by DDP).

    State dict keys: "clip_l", "clip_g" ([T, width]) and "cross_attention.<UNet parameter
    name with "/" for ".">"."""

    def __init__(
        self, parts: SDXLParts, embeddings: list[LearnedTokenEmbedding], trained: dict
    ) -> None:
        super().__init__()
        self.parts = parts
        self.clip_l = embeddings[0].learned
        self.clip_g = embeddings[1].learned
        self.cross_attention = nn.ParameterDict(
            {name.replace(".", "/"): parameter for name, parameter in trained.items()}
        )

    def cross_attention_state(self) -> dict[str, torch.Tensor]:
        """The trained UNet parameters under their UNet names."""
        return {
            name.replace("/", "."): parameter for name, parameter in self.cross_attention.items()
        }

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        input_ids: torch.Tensor,
        input_ids_2: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        """The UNet's prediction (B, 4, h, w) for noisy latents (B, 4, h, w) at `timesteps`
        (B,), prompts as token ids (B, 77) per tokenizer, size conditioning (B, 6)."""
        prompt_embeds, pooled = encode_prompt_ids(self.parts, input_ids, input_ids_2)
        unet = self.parts.unet
        return unet(
            noisy_latents.to(unet.dtype),
            timesteps,
            encoder_hidden_states=prompt_embeds.to(unet.dtype),
            added_cond_kwargs={"text_embeds": pooled.to(unet.dtype), "time_ids": time_ids},
        ).sample


def prepare_dual_prompts(parts: SDXLParts, settings: Any) -> DualPromptModel:
    """Add the tokens, set what trains, and return the model of the trained parameters.
    `settings` is a FinetuneConfig (engine.genir.config)."""
    # Frozen first: the learned rows spliced in next live inside the encoders.
    for module in (parts.vae, parts.text_encoder, parts.text_encoder_2):
        module.requires_grad_(False)
    count = settings.vectors_per_token
    tokens = token_names("pos", count) + token_names("neg", count)
    embeddings = add_learned_tokens(
        parts, tokens, [settings.positive_init_words, settings.negative_init_words]
    )
    trained = make_cross_attention_trainable(
        parts.unet, settings.cross_attention, settings.lora_rank
    )
    if settings.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()
    return DualPromptModel(parts, embeddings, trained)


def tokenize(tokenizer: Any, prompts: list[str]) -> torch.Tensor:
    """(B, 77) ids, padded and truncated as SDXL's pipeline does."""
    return tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def encode_prompt_ids(
    parts: Any, input_ids: torch.Tensor, input_ids_2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL's text conditioning, as its pipeline computes it: both encoders' penultimate
    hidden states concatenated (B, 77, w1 + w2), and the second encoder's projected output
    pooled at end-of-text (B, w2)."""
    first = parts.text_encoder(input_ids.to(parts.text_encoder.device), output_hidden_states=True)
    second = parts.text_encoder_2(
        input_ids_2.to(parts.text_encoder_2.device), output_hidden_states=True
    )
    prompt_embeds = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
    return prompt_embeds, second.text_embeds


def size_conditioning(
    original_size: tuple[int, int], crop_top_left: tuple[int, int], target_size: tuple[int, int]
) -> torch.Tensor:
    """SDXL's `time_ids`: original (height, width), crop top-left (y, x), target (h, w)."""
    return torch.tensor([*original_size, *crop_top_left, *target_size], dtype=torch.float32)


def diffusion_loss(
    model: nn.Module, parts: SDXLParts, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    """The latent diffusion loss of a batch: pixels (B, 3, H, W) in [-1, 1] are encoded,
    noised at uniform timesteps, and the prediction is compared with the scheduler's target
    (the noise for "epsilon", the velocity for "v_prediction"). `model` is the (possibly
    wrapped) DualPromptModel; all randomness comes from `generator`."""
    # 1. latents (the VAE stays float32: SDXL's VAE overflows in fp16)
    vae, scheduler = parts.vae, parts.noise_scheduler
    device = generator.device
    with torch.no_grad():
        pixels = batch["pixels"].to(device, vae.dtype)
        latents = vae.encode(pixels).latent_dist.sample(generator=generator)
        latents = latents * vae.config.scaling_factor
    # 2. noise at uniform timesteps
    noise = torch.randn(latents.shape, generator=generator, device=device)
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (len(latents),), generator=generator, device=device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    # 3. prediction and target
    prediction = model(
        noisy, timesteps, batch["input_ids"], batch["input_ids_2"], batch["time_ids"].to(device)
    )
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise BadSettingError(f"the base's scheduler predicts {kind!r}, which we cannot train")
    return F.mse_loss(prediction.float(), target.float())
