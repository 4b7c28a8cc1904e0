"""The DreamClear transformer: a PixArt-alpha base steered by two ControlFormer branches and MoAM.

One file, one model. The base is built from diffusers' PixArt building blocks under the module
names diffusers' `PixArtTransformer2DModel` uses, so a diffusers-format PixArt state dict loads
into it as is. Around each of the first `num_control_layers` base blocks run:

- an LQ branch block and a reference branch block (copies of the base block, own weights),
- a degradation-aware cross-attention: queries from the LQ branch, keys/values from the
  reference branch; one output is added to the base hidden state, the other is the
  degradation map that feeds the router,
- an adaptive modulator (AM) driven by the reference branch and a mixture of AMs (MoAM) driven
  by the LQ branch and routed per token by the degradation map; both modulate the base state.

Facts about the published model (key names, order of operations) are in
shared/reference/dreamclear.md; conversion of the official checkpoint lives in
engine/weights/official_checkpoint.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.embeddings import PatchEmbed, PixArtAlphaTextProjection
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormSingle
from diffusers.utils import BaseOutput
from torch import nn

__all__ = [
    "AdaptiveModulator",
    "DegradationCrossAttention",
    "DreamClearTransformer2DModel",
    "DreamClearTransformerOutput",
    "MixtureOfAdaptiveModulators",
]


@dataclass
class DreamClearTransformerOutput(BaseOutput):
    """Output of `DreamClearTransformer2DModel.forward`.

    Attributes:
        sample: (B, out_channels, H, W); for the published model 8 channels, the epsilon
            prediction (4) followed by the learned-range variance values (4).
        router_weights: (num_control_layers, B, N, num_experts) softmax weights of the MoAM
            router per token, or None unless `return_maps=True`. N = (H/p)*(W/p), row-major.
        degradation_magnitude: (num_control_layers, B, N) root-mean-square over channels of the
            degradation map per token (float32), or None unless `return_maps=True`.
    """

    sample: torch.Tensor
    router_weights: torch.Tensor | None = None
    degradation_magnitude: torch.Tensor | None = None


class DegradationCrossAttention(nn.Module):
    """Cross-attention from LQ-branch tokens (queries) to reference-branch tokens (keys, values).

    Returns `(ref, degradation_map)`, both (B, N, D): `ref` goes through a zero-initialised
    projection so an untrained model leaves the base untouched; the degradation map is a plain
    projection of the same attention output and drives the MoAM router.

    Unlike the published code, which flattens the batch into one sequence, attention is per
    sample: a batch of two gives the same result as two batches of one.
    """

    def __init__(self, dim: int, num_heads: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm_lq = nn.LayerNorm(dim, eps=norm_eps)
        self.norm_ref = nn.LayerNorm(dim, eps=norm_eps)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.to_degradation_map = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(
        self, lq_tokens: torch.Tensor, ref_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """lq_tokens (B, N, D), ref_tokens (B, M, D) -> (ref (B, N, D), degradation_map (B, N, D))."""
        batch, length, dim = lq_tokens.shape
        head_dim = dim // self.num_heads

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, self.num_heads, head_dim).transpose(1, 2)

        query = split_heads(self.to_q(self.norm_lq(lq_tokens)))
        ref_normed = self.norm_ref(ref_tokens)
        key = split_heads(self.to_k(ref_normed))
        value = split_heads(self.to_v(ref_normed))
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        return self.to_out(attended), self.to_degradation_map(attended)


class AdaptiveModulator(nn.Module):
    """AM: per-token scale and shift for the base state, computed from branch tokens.

    Both output projections start at zero, so a fresh modulator is the identity.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate="tanh")
        self.to_scale = nn.Linear(hidden_dim, dim)
        self.to_shift = nn.Linear(hidden_dim, dim)
        for layer in (self.to_scale, self.to_shift):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, N, D) -> (scale (B, N, D), shift (B, N, D))."""
        hidden = self.act(self.proj_in(tokens))
        return self.to_scale(hidden), self.to_shift(hidden)


class MixtureOfAdaptiveModulators(nn.Module):
    """MoAM: expert AMs on the LQ-branch tokens, mixed per token by a soft router.

    The router reads the degradation map; its last layer starts at zero, so routing starts
    uniform. Softmax over all experts (no top-k), as published.
    """

    def __init__(self, dim: int, hidden_dim: int, num_experts: int, router_hidden_dim: int) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            [AdaptiveModulator(dim, hidden_dim) for _ in range(num_experts)]
        )
        self.router = nn.Sequential(
            nn.Linear(dim, router_hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(router_hidden_dim, num_experts),
        )
        nn.init.zeros_(self.router[2].weight)
        nn.init.zeros_(self.router[2].bias)

    def forward(
        self, tokens: torch.Tensor, degradation_map: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens, degradation_map (B, N, D) -> (scale (B, N, D), shift (B, N, D), weights (B, N, E))."""
        weights = self.router(degradation_map).softmax(dim=-1)
        scales, shifts = zip(*(expert(tokens) for expert in self.experts), strict=True)
        # (B, N, D, E) @ (B, N, E, 1): the router-weighted sum over experts.
        scale = (torch.stack(scales, dim=-1) @ weights.unsqueeze(-1)).squeeze(-1)
        shift = (torch.stack(shifts, dim=-1) @ weights.unsqueeze(-1)).squeeze(-1)
        return scale, shift, weights


class DreamClearTransformer2DModel(ModelMixin, ConfigMixin):
    """DreamClear: PixArt-alpha base + LQ and reference ControlFormer branches + MoAM.

    Defaults are the published 1024 model (about 2.21 B parameters).

    Args:
        sample_size: latent side the positional embedding is built for (128 at 1024 px); with
            `patch_size` it sets the positional embedding's base size.
        patch_size: side of a latent patch.
        in_channels: latent channels of the noisy, LQ and reference latents.
        out_channels: predicted channels (epsilon + learned variance values).
        num_layers: base transformer blocks.
        num_attention_heads, attention_head_dim: attention shape of every transformer block;
            the hidden size D is their product (1152).
        caption_channels: text-encoder feature size (T5-XXL: 4096).
        caption_max_length: caption tokens (120); the size of `null_caption_embedding`.
        interpolation_scale: positional-embedding interpolation scale (2.0 at 1024 px).
        norm_eps: eps of the transformer blocks' LayerNorms.
        attention_bias: whether the transformer blocks' attention projections have biases.
        activation_fn: MLP activation of the transformer blocks.
        num_control_layers: how many leading base blocks get branch blocks, cross-attention and
            modulators (all 28 in the published model).
        num_experts: expert AMs per MoAM.
        router_hidden_per_expert: router hidden width per expert (24 = 3 x 8 published).
        modulator_hidden_dim: hidden width of every AM; None means D // 2.
        degradation_attention_heads: heads of the degradation-aware cross-attention.
        degradation_norm_eps: eps of the cross-attention's two affine LayerNorms.
        size_condition_height, size_condition_width: values fed to the resolution embedder; the
            published model is fed 1024 x 1024 whatever the real size.
        aspect_ratio_condition: value fed to the aspect-ratio embedder (1.0 always published).
    """

    _supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["BasicTransformerBlock", "PatchEmbed"]
    _skip_layerwise_casting_patterns: ClassVar[list[str]] = ["pos_embed", "norm", "adaln_single"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        patch_size: int = 2,
        in_channels: int = 4,
        out_channels: int = 8,
        num_layers: int = 28,
        num_attention_heads: int = 16,
        attention_head_dim: int = 72,
        caption_channels: int = 4096,
        caption_max_length: int = 120,
        interpolation_scale: float = 2.0,
        norm_eps: float = 1e-6,
        attention_bias: bool = True,
        activation_fn: str = "gelu-approximate",
        num_control_layers: int = 28,
        num_experts: int = 3,
        router_hidden_per_expert: int = 8,
        modulator_hidden_dim: int | None = None,
        degradation_attention_heads: int = 16,
        degradation_norm_eps: float = 1e-5,
        size_condition_height: float = 1024.0,
        size_condition_width: float = 1024.0,
        aspect_ratio_condition: float = 1.0,
    ) -> None:
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        if inner_dim % 3:
            raise ValueError(
                f"hidden size {inner_dim} must be divisible by 3: the size conditioning "
                "concatenates three D/3 embeddings"
            )
        if inner_dim % 4:
            raise ValueError(f"hidden size {inner_dim} must be divisible by 4 (2-D sin-cos)")
        if not 0 <= num_control_layers <= num_layers:
            raise ValueError(f"num_control_layers must be in [0, {num_layers}]")
        self.inner_dim = inner_dim
        self.gradient_checkpointing = False
        modulator_hidden = modulator_hidden_dim or inner_dim // 2

        def patch_embed(with_position: bool) -> PatchEmbed:
            return PatchEmbed(
                height=sample_size,
                width=sample_size,
                patch_size=patch_size,
                in_channels=in_channels,
                embed_dim=inner_dim,
                interpolation_scale=interpolation_scale,
                pos_embed_type="sincos" if with_position else None,
            )

        def transformer_block() -> BasicTransformerBlock:
            # Configured exactly as diffusers' PixArtTransformer2DModel configures its blocks.
            return BasicTransformerBlock(
                inner_dim,
                num_attention_heads,
                attention_head_dim,
                cross_attention_dim=inner_dim,
                activation_fn=activation_fn,
                num_embeds_ada_norm=1000,
                attention_bias=attention_bias,
                norm_type="ada_norm_single",
                norm_elementwise_affine=False,
                norm_eps=norm_eps,
            )

        # Base: diffusers PixArt names, so a diffusers PixArt state dict loads directly.
        self.pos_embed = patch_embed(with_position=True)
        self.adaln_single = AdaLayerNormSingle(inner_dim, use_additional_conditions=True)
        self.caption_projection = PixArtAlphaTextProjection(caption_channels, inner_dim)
        self.transformer_blocks = nn.ModuleList(transformer_block() for _ in range(num_layers))
        self.norm_out = nn.LayerNorm(inner_dim, elementwise_affine=False, eps=1e-6)
        self.scale_shift_table = nn.Parameter(torch.randn(2, inner_dim) / inner_dim**0.5)
        self.proj_out = nn.Linear(inner_dim, patch_size * patch_size * out_channels)

        # Learned null caption for the unconditional CFG branch (PixArt's y_embedding).
        self.null_caption_embedding = nn.Parameter(
            torch.randn(caption_max_length, caption_channels) / caption_channels**0.5
        )

        # Branches: each embeds the noisy latent (with position) plus its condition latent
        # through a zero-initialised patch embed without position.
        self.lq_branch_embed = patch_embed(with_position=True)
        self.ref_branch_embed = patch_embed(with_position=True)
        self.lq_condition_embed = patch_embed(with_position=False)
        self.ref_condition_embed = patch_embed(with_position=False)
        for embed in (self.lq_condition_embed, self.ref_condition_embed):
            nn.init.zeros_(embed.proj.weight)
            nn.init.zeros_(embed.proj.bias)
        self.lq_branch_blocks = nn.ModuleList(
            transformer_block() for _ in range(num_control_layers)
        )
        self.ref_branch_blocks = nn.ModuleList(
            transformer_block() for _ in range(num_control_layers)
        )

        # Fusion into the base, one set per control layer.
        self.degradation_attention = nn.ModuleList(
            DegradationCrossAttention(inner_dim, degradation_attention_heads, degradation_norm_eps)
            for _ in range(num_control_layers)
        )
        self.ref_modulators = nn.ModuleList(
            AdaptiveModulator(inner_dim, modulator_hidden) for _ in range(num_control_layers)
        )
        self.lq_modulators = nn.ModuleList(
            MixtureOfAdaptiveModulators(
                inner_dim, modulator_hidden, num_experts, num_experts * router_hidden_per_expert
            )
            for _ in range(num_control_layers)
        )

    @classmethod
    def from_pixart(
        cls,
        base: nn.Module,
        null_caption_embedding: torch.Tensor | None = None,
        **config_overrides: object,
    ) -> DreamClearTransformer2DModel:
        """Build DreamClear around a diffusers `PixArtTransformer2DModel`, as training starts.

        The base weights are copied; the branch blocks and branch patch embeds start as copies
        of the base's; everything else has its published initialisation (condition embeds,
        cross-attention output, AM scale/shift and router output at zero), so the new model
        computes exactly what the base computes. `null_caption_embedding` (L, C) is PixArt's
        y_embedding when you have it; diffusers' PixArt model does not carry one.
        """
        base_config = base.config
        if not getattr(base, "use_additional_conditions", False):
            raise ValueError(
                "the base has no size conditioning; DreamClear builds on PixArt-alpha 1024-MS "
                "(use_additional_conditions=True)"
            )
        config = {
            "sample_size": base_config.sample_size,
            "patch_size": base_config.patch_size,
            "in_channels": base_config.in_channels,
            "out_channels": base.out_channels,
            "num_layers": base_config.num_layers,
            "num_attention_heads": base_config.num_attention_heads,
            "attention_head_dim": base_config.attention_head_dim,
            "caption_channels": base_config.caption_channels,
            "interpolation_scale": float(
                base_config.interpolation_scale or max(base_config.sample_size // 64, 1)
            ),
            "norm_eps": base_config.norm_eps,
            "attention_bias": base_config.attention_bias,
            "activation_fn": base_config.activation_fn,
            "num_control_layers": base_config.num_layers,
        }
        if null_caption_embedding is not None:
            config["caption_max_length"] = null_caption_embedding.shape[0]
        config.update(config_overrides)
        model = cls(**config)
        model = model.to(device=base.device, dtype=base.dtype)

        # Non-strict only because the branches and fusion modules are absent from the base;
        # every base weight must find its place.
        unexpected = model.load_state_dict(base.state_dict(), strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"base weights with no place in DreamClear: {unexpected[:5]}")
        for i in range(model.config.num_control_layers):
            block_state = base.transformer_blocks[i].state_dict()
            model.lq_branch_blocks[i].load_state_dict(block_state)
            model.ref_branch_blocks[i].load_state_dict(block_state)
        model.lq_branch_embed.load_state_dict(base.pos_embed.state_dict())
        model.ref_branch_embed.load_state_dict(base.pos_embed.state_dict())
        if null_caption_embedding is not None:
            with torch.no_grad():
                model.null_caption_embedding.copy_(null_caption_embedding)
        return model

    def _call(self, module: nn.Module, *args: Any) -> Any:
        """Run `module`, through activation checkpointing when it is enabled and grads flow."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(module, *args)
        return module(*args)

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        lq_latent: torch.Tensor,
        ref_latent: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
    ) -> None:
        cfg = self.config
        if hidden_states.ndim != 4 or hidden_states.shape[1] != cfg.in_channels:
            raise ValueError(
                f"hidden_states must be (B, {cfg.in_channels}, H, W), got {tuple(hidden_states.shape)}"
            )
        batch, _, height, width = hidden_states.shape
        if height % cfg.patch_size or width % cfg.patch_size:
            raise ValueError(
                f"latent size {height}x{width} is not divisible by the patch size {cfg.patch_size}; "
                f"pad or crop the latent to a multiple of {cfg.patch_size}"
            )
        steps = torch.as_tensor(timestep).numel()
        if steps not in (1, batch):
            raise ValueError(f"timestep must be a scalar, (1,) or ({batch},); got {steps} values")
        for name, latent in (("lq_latent", lq_latent), ("ref_latent", ref_latent)):
            if latent.ndim != 4 or latent.shape[1:] != hidden_states.shape[1:]:
                raise ValueError(
                    f"{name} must be (B or 1, {cfg.in_channels}, {height}, {width}) like "
                    f"hidden_states, got {tuple(latent.shape)}"
                )
            if latent.shape[0] not in (1, batch):
                raise ValueError(f"{name} has batch {latent.shape[0]}; expected 1 or {batch}")
        if (
            encoder_hidden_states.ndim != 3
            or encoder_hidden_states.shape[-1] != cfg.caption_channels
        ):
            raise ValueError(
                f"encoder_hidden_states must be (B, L, {cfg.caption_channels}), "
                f"got {tuple(encoder_hidden_states.shape)}"
            )
        if encoder_hidden_states.shape[0] not in (1, batch):
            raise ValueError(f"encoder_hidden_states has batch {encoder_hidden_states.shape[0]}")
        if encoder_attention_mask is not None and (
            encoder_attention_mask.ndim != 2
            or encoder_attention_mask.shape[-1] != encoder_hidden_states.shape[1]
            or encoder_attention_mask.shape[0] not in (1, batch)
        ):
            raise ValueError(
                f"encoder_attention_mask must be (B, {encoder_hidden_states.shape[1]}) with 1 = "
                f"keep, got {tuple(encoder_attention_mask.shape)}"
            )

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        lq_latent: torch.Tensor,
        ref_latent: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        return_maps: bool = False,
        return_dict: bool = True,
    ) -> DreamClearTransformerOutput | tuple[torch.Tensor | None, ...]:
        """Predict epsilon and variance values for a noisy latent.

        Args:
            hidden_states: (B, in_channels, H, W) noisy latent; H and W multiples of the patch.
            timestep: (B,), (1,) or a scalar, in [0, 1000).
            encoder_hidden_states: (B or 1, L, caption_channels) caption features.
            lq_latent: (B or 1, in_channels, H, W) latent of the (cleaned) low-quality image;
                batch 1 is shared by every sample (a CFG pair).
            ref_latent: (B or 1, in_channels, H, W) latent of the reference image.
            encoder_attention_mask: (B or 1, L), 1 = keep; None keeps every token. Masked
                caption positions never influence the result. A row with no kept token
                attends evenly to all of them (the published code would have no keys).
            return_maps: also return router weights and degradation magnitudes per layer.
            return_dict: return a `DreamClearTransformerOutput` rather than a tuple.

        Returns:
            `DreamClearTransformerOutput` or `(sample, router_weights, degradation_magnitude)`:
            sample (B, out_channels, H, W); router_weights (num_control_layers, B, N,
            num_experts); degradation_magnitude (num_control_layers, B, N); N = (H/p)*(W/p).
        """
        self._check_inputs(
            hidden_states,
            timestep,
            encoder_hidden_states,
            lq_latent,
            ref_latent,
            encoder_attention_mask,
        )
        cfg = self.config
        batch, _, height, width = hidden_states.shape
        patch = cfg.patch_size
        dtype = self.pos_embed.proj.weight.dtype
        device = hidden_states.device
        hidden_states = hidden_states.to(dtype)

        # 1. Embed the noisy latent three times (base, LQ branch, reference branch): (B, N, D).
        # Condition latents enter the branches without a positional embedding.
        lq_tokens = self.lq_branch_embed(hidden_states) + self.lq_condition_embed(
            lq_latent.to(dtype)
        )
        ref_tokens = self.ref_branch_embed(hidden_states) + self.ref_condition_embed(
            ref_latent.to(dtype)
        )
        hidden_states = self.pos_embed(hidden_states)

        # 2. Timestep and size conditioning: block modulation (B, 6D) and final-layer input (B, D).
        timestep = torch.as_tensor(timestep, device=device).reshape(-1).expand(batch)
        size_conditions = {
            "resolution": torch.tensor(
                [[cfg.size_condition_height, cfg.size_condition_width]], device=device, dtype=dtype
            ).expand(batch, 2),
            "aspect_ratio": torch.full(
                (batch, 1), cfg.aspect_ratio_condition, device=device, dtype=dtype
            ),
        }
        block_timestep, embedded_timestep = self.adaln_single(
            timestep, size_conditions, batch_size=batch, hidden_dtype=dtype
        )

        # 3. Captions: (B, L, D) plus an additive mask bias (B, 1, L). Padded positions are
        # zeroed before projection so that even non-finite padding cannot leak in; the -1e4
        # bias then gives them exactly zero attention weight, as if they were dropped.
        encoder_hidden_states = encoder_hidden_states.to(dtype).expand(batch, -1, -1)
        mask_bias = None
        if encoder_attention_mask is not None:
            keep = (encoder_attention_mask != 0).expand(batch, -1)
            encoder_hidden_states = torch.where(
                keep.unsqueeze(-1), encoder_hidden_states, encoder_hidden_states.new_zeros(())
            )
            mask_bias = ((~keep).to(dtype) * -10000.0).unsqueeze(1)
        encoder_hidden_states = self.caption_projection(encoder_hidden_states)

        # 4. Blocks. Each control layer advances both branches, runs the base block, then
        # fuses: x += ref; x = (1 + g_ref) x + b_ref; x = (1 + g_lq) x + b_lq.
        block_args = (None, encoder_hidden_states, mask_bias, block_timestep)
        router_maps: list[torch.Tensor] = []
        magnitude_maps: list[torch.Tensor] = []
        for index, base_block in enumerate(self.transformer_blocks):
            if index < cfg.num_control_layers:
                lq_tokens = self._call(self.lq_branch_blocks[index], lq_tokens, *block_args)
                ref_tokens = self._call(self.ref_branch_blocks[index], ref_tokens, *block_args)
            hidden_states = self._call(base_block, hidden_states, *block_args)
            if index >= cfg.num_control_layers:
                continue
            ref, degradation_map = self._call(
                self.degradation_attention[index], lq_tokens, ref_tokens
            )
            ref_scale, ref_shift = self._call(self.ref_modulators[index], ref_tokens)
            lq_scale, lq_shift, router_weights = self._call(
                self.lq_modulators[index], lq_tokens, degradation_map
            )
            hidden_states = hidden_states + ref
            hidden_states = (1 + ref_scale) * hidden_states + ref_shift
            hidden_states = (1 + lq_scale) * hidden_states + lq_shift
            if return_maps:
                router_maps.append(router_weights)
                magnitude_maps.append(degradation_map.float().square().mean(dim=-1).sqrt())

        # 5. Final layer, modulated by the embedded timestep (not the 6D block modulation).
        shift, scale = (self.scale_shift_table[None] + embedded_timestep[:, None]).chunk(2, dim=1)
        hidden_states = self.norm_out(hidden_states) * (1 + scale) + shift
        hidden_states = self.proj_out(hidden_states)

        # 6. Unpatchify: (B, N, p*p*C) -> (B, C, H, W).
        grid_h, grid_w = height // patch, width // patch
        hidden_states = hidden_states.reshape(batch, grid_h, grid_w, patch, patch, -1)
        sample = torch.einsum("nhwpqc->nchpwq", hidden_states).reshape(
            batch, -1, grid_h * patch, grid_w * patch
        )

        router = torch.stack(router_maps) if return_maps and router_maps else None
        magnitude = torch.stack(magnitude_maps) if return_maps and magnitude_maps else None
        if return_maps and router is None:
            # No control layers: empty maps keep the documented shapes.
            tokens = grid_h * grid_w
            router = sample.new_zeros(0, batch, tokens, cfg.num_experts)
            magnitude = sample.new_zeros(0, batch, tokens, dtype=torch.float32)
        if not return_dict:
            return sample, router, magnitude
        return DreamClearTransformerOutput(
            sample=sample, router_weights=router, degradation_magnitude=magnitude
        )
