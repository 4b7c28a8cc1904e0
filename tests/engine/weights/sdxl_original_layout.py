"""Test-only: a diffusers SDXL's weights in the original single-file (Stability) key layout.

diffusers converts that layout to its own (`from_single_file`) but offers no way back, so the
tests that import a single file write one from the tiny base with this. It covers what the
tiny base has (UNet blocks with and without attention, the VAE, both CLIP text encoders) and
is checked by the round trip itself: converted back by diffusers, every tensor must match.
"""

from __future__ import annotations

import re

import torch
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
CLIP_G_PREFIX = "conditioner.embedders.1.model."


def original_layout(pipe) -> dict[str, torch.Tensor]:
    """Every weight of an SDXL pipeline under its original single-file name."""
    state: dict[str, torch.Tensor] = {}
    state |= _unet(pipe.unet.state_dict(), dict(pipe.unet.config))
    state |= _vae(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels))
    for key, value in pipe.text_encoder.state_dict().items():
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        state[CLIP_L_PREFIX + name] = value
    state |= _open_clip(pipe.text_encoder_2.state_dict())
    return {key: value.contiguous() for key, value in state.items()}


def _resnet(rest: str) -> str:
    for new, old in (
        ("norm1", "in_layers.0"),
        ("conv1", "in_layers.2"),
        ("norm2", "out_layers.0"),
        ("conv2", "out_layers.3"),
        ("time_emb_proj", "emb_layers.1"),
        ("conv_shortcut", "skip_connection"),
    ):
        rest = rest.replace(new, old)
    return rest


def _unet(state: dict, config: dict) -> dict:
    fixed = (
        DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
        | (DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"])
    )
    per_block = config["layers_per_block"] + 1
    with_attention = {
        int(k.split(".")[1]) for k in state if k.startswith("up_blocks.") and ".attentions." in k
    }
    out = {}
    for key, value in state.items():
        if key in fixed:
            out[UNET_PREFIX + fixed[key]] = value
            continue
        match = re.match(r"(down_blocks|mid_block|up_blocks)\.(?:(\d+)\.)?(\w+)\.(\d+)\.(.*)", key)
        assert match, key
        where, block, kind, index, rest = match.groups()
        block, index = int(block or 0), int(index)
        if where == "down_blocks":
            slot = 1 + block * per_block + (per_block - 1 if kind == "downsamplers" else index)
            name = {
                "resnets": f"input_blocks.{slot}.0.{_resnet(rest)}",
                "attentions": f"input_blocks.{slot}.1.{rest}",
                "downsamplers": f"input_blocks.{slot}.0.op.{rest.removeprefix('conv.')}",
            }[kind]
        elif where == "mid_block":
            name = (
                f"middle_block.{2 * index}.{_resnet(rest)}"
                if kind == "resnets"
                else f"middle_block.1.{rest}"
            )
        else:
            slot = block * per_block + (per_block - 1 if kind == "upsamplers" else index)
            upsample = 2 if block in with_attention else 1
            name = {
                "resnets": f"output_blocks.{slot}.0.{_resnet(rest)}",
                "attentions": f"output_blocks.{slot}.1.{rest}",
                "upsamplers": f"output_blocks.{slot}.{upsample}.{rest}",
            }[kind]
        out[UNET_PREFIX + name] = value
    return out


def _vae(state: dict, levels: int) -> dict:
    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    attention = {
        "group_norm": "norm",
        "to_q": "q",
        "to_k": "k",
        "to_v": "v",
        "to_out.0": "proj_out",
    }
    out = {}
    for key, value in state.items():
        if key in fixed:
            out[VAE_PREFIX + fixed[key]] = value
            continue
        side, rest = key.split(".", 1)
        rest = rest.replace("conv_shortcut", "nin_shortcut")
        if rest.startswith("mid_block.attentions.0."):
            part = rest.removeprefix("mid_block.attentions.0.")
            module, _, leaf = part.rpartition(".")
            name = f"mid.attn_1.{attention[module]}.{leaf}"
            if value.ndim == 2:
                value = value[:, :, None, None]
        elif rest.startswith("mid_block.resnets."):
            index, _, part = rest.removeprefix("mid_block.resnets.").partition(".")
            name = f"mid.block_{int(index) + 1}.{part}"
        else:
            kind, block, what, part = re.match(
                r"(down|up)_blocks\.(\d+)\.(\w+)\.(.*)", rest
            ).groups()
            level = int(block) if kind == "down" else levels - 1 - int(block)
            if what == "resnets":
                name = f"{kind}.{level}.block.{part}"
            else:
                sampler = "downsample" if kind == "down" else "upsample"
                name = f"{kind}.{level}.{sampler}.{part.removeprefix('0.')}"
        out[f"{VAE_PREFIX}{side}.{name}"] = value
    return out


def _open_clip(state: dict) -> dict:
    out = {}
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        name = key.removeprefix("text_model.")
        if name == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif name == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif name.startswith("final_layer_norm."):
            out["ln_final." + name.rsplit(".", 1)[1]] = value
        elif name == "text_projection.weight":
            out["text_projection"] = value.T
        elif name.startswith("encoder.layers."):
            index, part = re.match(r"encoder\.layers\.(\d+)\.(.*)", name).groups()
            block = f"transformer.resblocks.{index}."
            projection = re.match(r"self_attn\.([qkv])_proj\.(weight|bias)", part)
            if projection:
                layers.setdefault(f"{block}attn.in_proj_{projection[2]}", {})[projection[1]] = value
                continue
            for new, old in (
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ):
                part = part.replace(new, old)
            out[block + part] = value
        else:
            raise AssertionError(f"unexpected text encoder 2 key {key}")
    for name, parts in layers.items():
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {CLIP_G_PREFIX + key: value for key, value in out.items()}


def tiny_sdxl_with_distinct_encoders(folder, seed: int = 0):
    """The tiny base (engine.genir.tiny_base) with a 48-wide second text encoder, saved to
    `folder`. diffusers' single-file loader tells SDXL's two text encoders apart by their
    widths (768 and 1280 in SDXL); the tiny base's are both 32, which it would confuse."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from engine.genir.tiny_base import ADDITION_TIME_EMBED_DIM, TEXT_WIDTH, build_tiny_sdxl

    width = 48
    components = build_tiny_sdxl(seed)
    config = components["text_encoder_2"].config.to_dict()
    config |= {"hidden_size": width, "projection_dim": width}
    components["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(**config)).eval()
    components["unet"] = UNet2DConditionModel.from_config(
        components["unet"].config,
        cross_attention_dim=TEXT_WIDTH + width,
        projection_class_embeddings_input_dim=6 * ADDITION_TIME_EMBED_DIM + width,
    ).eval()
    StableDiffusionXLPipeline(**components).save_pretrained(folder, safe_serialization=True)
    return folder
