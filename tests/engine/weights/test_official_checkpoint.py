"""Official-checkpoint loading and conversion, checked against an independent forward pass.

`official_state_dict` lays out random tiny tensors under the published key names, and
`reference_forward` computes DreamClear from those tensors in plain torch, following the maths
in shared/reference/dreamclear.md (no diffusers, no engine code).
"""

from __future__ import annotations

import math
import zipfile

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.bench.official_layout import OfficialLayout, dreamclear_shapes, pixart_shapes, randomize
from engine.errors import CheckpointError
from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.presets import TINY
from engine.weights.official_checkpoint import (
    convert_checkpoint_to_folder,
    convert_dreamclear_state_dict,
    convert_pixart_state_dict,
    infer_config,
    load_official_state_dict,
)

D = TINY["num_attention_heads"] * TINY["attention_head_dim"]  # 48
HEADS = TINY["num_attention_heads"]
PATCH = TINY["patch_size"]
CAPTION_C, CAPTION_L = TINY["caption_channels"], TINY["caption_max_length"]
LAYERS, EXPERTS = TINY["num_layers"], TINY["num_experts"]
BASE_SIZE = TINY["sample_size"] // PATCH
POS_SCALE = TINY["interpolation_scale"]


LAYOUT = OfficialLayout(
    hidden=D,
    layers=LAYERS,
    experts=EXPERTS,
    patch=PATCH,
    caption_channels=CAPTION_C,
    caption_length=CAPTION_L,
    base_size=BASE_SIZE,
)


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    return randomize(dreamclear_shapes(LAYOUT), seed)


def pixart_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    return randomize(pixart_shapes(LAYOUT), seed)


# ---------------------------------------------------------------------------------------------
# Independent reference forward on the official tensors
# ---------------------------------------------------------------------------------------------


def _lin(w: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _ln(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def _sinusoid(values: torch.Tensor) -> torch.Tensor:
    """256-dim [cos, sin] embedding, frequencies exp(-ln(1e4) k / 128)."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(128, dtype=torch.float64) / 128)
    args = values.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).float()


def _pos_embed(h: int, w: int) -> torch.Tensor:
    """2-D sin-cos: first D/2 channels the column, last D/2 the row; tokens row-major."""
    rows = torch.arange(h, dtype=torch.float64) / (h / BASE_SIZE) / POS_SCALE
    cols = torch.arange(w, dtype=torch.float64) / (w / BASE_SIZE) / POS_SCALE
    row_grid, col_grid = torch.meshgrid(rows, cols, indexing="ij")
    omega = 10000.0 ** (-torch.arange(D // 4, dtype=torch.float64) / (D / 4))

    def encode(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([encode(col_grid), encode(row_grid)], dim=1).float()


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (N, D), k/v (M, D), split into HEADS -> (N, D)."""
    hd = D // HEADS
    q, k, v = (t.reshape(t.shape[0], HEADS, hd).transpose(0, 1) for t in (q, k, v))
    weights = (q @ k.transpose(1, 2) / math.sqrt(hd)).softmax(-1)
    return (weights @ v).transpose(0, 1).reshape(-1, D)


def _block(w: dict, p: str, x: torch.Tensor, captions: list, t0: torch.Tensor) -> torch.Tensor:
    batch, tokens, _ = x.shape
    table = w[f"{p}scale_shift_table"][None] + t0.reshape(batch, 6, D)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = table.chunk(6, dim=1)
    h = _ln(x) * (1 + scale_msa) + shift_msa
    qkv = _lin(w, f"{p}attn.qkv", h).reshape(batch, tokens, 3, D)
    attn = torch.stack([_attend(qkv[b, :, 0], qkv[b, :, 1], qkv[b, :, 2]) for b in range(batch)])
    x = x + gate_msa * _lin(w, f"{p}attn.proj", attn)
    cross = []
    for b in range(batch):
        q = _lin(w, f"{p}cross_attn.q_linear", x[b])
        kv = _lin(w, f"{p}cross_attn.kv_linear", captions[b]).reshape(-1, 2, D)
        cross.append(_attend(q, kv[:, 0], kv[:, 1]))
    x = x + _lin(w, f"{p}cross_attn.proj", torch.stack(cross))
    h = _ln(x) * (1 + scale_mlp) + shift_mlp
    return x + gate_mlp * _lin(w, f"{p}mlp.fc2", _gelu(_lin(w, f"{p}mlp.fc1", h)))


def _patch_embed(w: dict, name: str, latent: torch.Tensor) -> torch.Tensor:
    out = F.conv2d(latent, w[f"{name}.proj.weight"], w[f"{name}.proj.bias"], stride=PATCH)
    return out.flatten(2).transpose(1, 2)


def _modulator(w: dict, p: str, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = _gelu(_lin(w, f"{p}shared_proj", tokens))
    return _lin(w, f"{p}proj_mul", a), _lin(w, f"{p}proj_add", a)


def reference_forward(w, noisy, t, caption, mask, lq, ref):
    """DreamClear from official tensors; returns (sample, router weights per layer)."""
    batch, _, height, width = noisy.shape
    gh, gw = height // PATCH, width // PATCH
    pos = _pos_embed(gh, gw)[None]
    x = _patch_embed(w, "base_model.x_embedder", noisy) + pos
    c_lq = _patch_embed(w, "x_embedder_lq", noisy) + pos + _patch_embed(w, "c_embedder_lq", lq)
    c_ref = _patch_embed(w, "x_embedder_pre", noisy) + pos + _patch_embed(w, "c_embedder_pre", ref)

    def mlp(name: str, v: torch.Tensor) -> torch.Tensor:
        return _lin(w, f"base_model.{name}.mlp.2", F.silu(_lin(w, f"base_model.{name}.mlp.0", v)))

    temb = mlp("t_embedder", _sinusoid(t))
    size = torch.tensor([1024.0] * batch)
    csize = torch.cat([mlp("csize_embedder", _sinusoid(size))] * 2, dim=1)  # [h, w]
    ar = mlp("ar_embedder", _sinusoid(torch.ones(batch)))
    temb = temb + torch.cat([csize, ar], dim=1)
    t0 = _lin(w, "base_model.t_block.1", F.silu(temb))

    y = _lin(
        w,
        "base_model.y_embedder.y_proj.fc2",
        _gelu(_lin(w, "base_model.y_embedder.y_proj.fc1", caption)),
    )
    captions = [y[b][mask[b] != 0] for b in range(batch)]

    routers = []
    for i in range(LAYERS):
        c_lq = _block(w, f"controlnet_lq.{i}.copied_block.", c_lq, captions, t0)
        c_ref = _block(w, f"controlnet_pre.{i}.copied_block.", c_ref, captions, t0)
        x = _block(w, f"base_model.blocks.{i}.", x, captions, t0)
        p = f"cross_de.{i}."
        outs = []
        for b in range(batch):
            q = _lin(
                w,
                f"{p}q_linear",
                F.layer_norm(c_lq[b], (D,), w[f"{p}norm1.weight"], w[f"{p}norm1.bias"], 1e-5),
            )
            kv_in = F.layer_norm(c_ref[b], (D,), w[f"{p}norm2.weight"], w[f"{p}norm2.bias"], 1e-5)
            kv = _lin(w, f"{p}kv_linear", kv_in).reshape(-1, 2, D)
            outs.append(_attend(q, kv[:, 0], kv[:, 1]))
        o = torch.stack(outs)
        de_map = _lin(w, f"{p}de_proj", o)
        x = x + _lin(w, f"{p}proj", o)
        g1, b1 = _modulator(w, f"am_pre.{i}.", c_ref)
        gate = _lin(w, f"am_lq.{i}.gate.2", _gelu(_lin(w, f"am_lq.{i}.gate.0", de_map))).softmax(-1)
        experts = [_modulator(w, f"am_lq.{i}.experts.{e}.", c_lq) for e in range(EXPERTS)]
        g2 = sum(gate[..., e : e + 1] * experts[e][0] for e in range(EXPERTS))
        b2 = sum(gate[..., e : e + 1] * experts[e][1] for e in range(EXPERTS))
        x = (1 + g1) * x + b1
        x = (1 + g2) * x + b2
        routers.append(gate)

    shift, scale = (w["base_model.final_layer.scale_shift_table"][None] + temb[:, None]).chunk(
        2, dim=1
    )
    x = _lin(w, "base_model.final_layer.linear", _ln(x) * (1 + scale) + shift)
    x = x.reshape(batch, gh, gw, PATCH, PATCH, 8).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(batch, 8, height, width), torch.stack(routers)


def _inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(2, 7)
    mask[0, 5:] = 0
    mask[1, 3:] = 0
    return {
        "hidden_states": torch.randn(2, 4, 8, 12, generator=g),
        "timestep": torch.tensor([999.0, 321.0]),
        "encoder_hidden_states": torch.randn(2, 7, CAPTION_C, generator=g),
        "encoder_attention_mask": mask,
        "lq_latent": torch.randn(1, 4, 8, 12, generator=g),
        "ref_latent": torch.randn(2, 4, 8, 12, generator=g),
    }


def _model_from_official(sd: dict[str, torch.Tensor]) -> DreamClearTransformer2DModel:
    model = DreamClearTransformer2DModel(**infer_config(sd)).eval()
    result = model.load_state_dict(convert_dreamclear_state_dict(sd), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_infer_config_reads_the_tiny_layout() -> None:
    config = infer_config(official_state_dict())
    assert config == dict(TINY)


def test_converted_official_weights_match_reference_forward() -> None:
    sd = official_state_dict()
    model = _model_from_official(sd)
    inputs = _inputs()
    with torch.no_grad():
        out = model(**inputs, return_maps=True)
        expected, routers = reference_forward(
            sd,
            inputs["hidden_states"],
            inputs["timestep"],
            inputs["encoder_hidden_states"],
            inputs["encoder_attention_mask"],
            inputs["lq_latent"],
            inputs["ref_latent"],
        )
    # The whole path is exercised: routing is far from the uniform start.
    assert (routers - 1 / 3).abs().max() > 0.05
    torch.testing.assert_close(out.router_weights, routers, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.sample, expected, atol=1e-4, rtol=1e-4)


def test_pixart_conversion_loads_into_the_base() -> None:
    sd = pixart_state_dict()
    converted = convert_pixart_state_dict(sd)
    model = DreamClearTransformer2DModel(**infer_config(sd))
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys
    base_keys = {
        k
        for k in model.state_dict()
        if k.startswith(
            (
                "pos_embed.",
                "adaln_single.",
                "caption_projection.",
                "transformer_blocks.",
                "proj_out.",
                "scale_shift_table",
                "null_caption_embedding",
            )
        )
    }
    assert set(converted) == base_keys
    torch.testing.assert_close(model.null_caption_embedding.data, sd["y_embedder.y_embedding"])


def test_load_unwraps_state_dict_and_module_prefix(tmp_path) -> None:
    sd = {"module.a.weight": torch.ones(2), "module.b": torch.zeros(1)}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": sd, "step": 3}, path)
    loaded = load_official_state_dict(path)
    assert set(loaded) == {"a.weight", "b"}


def test_legacy_non_zip_file_loads(tmp_path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"x": torch.arange(3)}, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    torch.testing.assert_close(load_official_state_dict(path)["x"], torch.arange(3))


def test_corrupt_truncated_and_foreign_files_raise(tmp_path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    good = tmp_path / "good.pth"
    torch.save({"state_dict": official_state_dict()}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    not_tensors = tmp_path / "objects.pth"
    torch.save({"state_dict": {"a": 1}}, not_tensors)

    for path in (garbage, empty, truncated, not_tensors, tmp_path / "missing.pth"):
        with pytest.raises(CheckpointError) as info:
            load_official_state_dict(path)
        assert info.value.hint and info.value.kind == "bad_checkpoint"


def test_wrong_architecture_is_named() -> None:
    swinir = {
        "conv_first.weight": torch.zeros(180, 3, 3, 3),
        "layers.0.residual_group.blocks.0.norm1.weight": torch.zeros(180),
    }
    with pytest.raises(CheckpointError, match="SwinIR"):
        convert_dreamclear_state_dict(swinir)
    with pytest.raises(CheckpointError, match="SwinIR"):
        infer_config(swinir)
    with pytest.raises(CheckpointError, match="PixArt base"):
        convert_dreamclear_state_dict(pixart_state_dict())


def test_incomplete_or_extra_weights_raise() -> None:
    sd = official_state_dict()
    del sd["cross_de.1.de_proj.bias"]
    with pytest.raises(CheckpointError, match=r"lacks cross_de\.1\.de_proj\.bias"):
        convert_dreamclear_state_dict(sd)
    sd = official_state_dict()
    sd["controlnet_lq.0.after_proj.weight"] = torch.zeros(D, D)
    with pytest.raises(CheckpointError, match="does not know"):
        convert_dreamclear_state_dict(sd)


def test_convert_checkpoint_to_folder_writes_and_reuses(tmp_path, monkeypatch) -> None:
    sd = official_state_dict()
    pth = tmp_path / "DreamClear-tiny.pth"
    torch.save({"state_dict": sd}, pth)
    out = convert_checkpoint_to_folder(pth, tmp_path / "models" / "dreamclear", torch.float32)
    assert out == tmp_path / "models" / "dreamclear"
    assert (out / "diffusion_pytorch_model.safetensors").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["dreamclear"]  # no leftovers

    loaded = DreamClearTransformer2DModel.from_pretrained(out).eval()
    reference = _model_from_official(sd)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**_inputs()).sample, reference(**_inputs()).sample)

    # A complete folder is reused without touching the checkpoint.
    import engine.weights.official_checkpoint as module

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the checkpoint was read again")

    monkeypatch.setattr(module, "load_official_state_dict", fail)
    assert convert_checkpoint_to_folder(pth, out, torch.float32) == out
    monkeypatch.undo()

    # Another dtype replaces it.
    convert_checkpoint_to_folder(pth, out, torch.bfloat16)
    stored = load_file(out / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.bfloat16}
    assert sorted(p.name for p in out.parent.iterdir()) == ["dreamclear"]


def test_convert_checkpoint_to_folder_rejects_foreign_file(tmp_path) -> None:
    pth = tmp_path / "pixart.pth"
    torch.save({"state_dict": pixart_state_dict()}, pth)
    with pytest.raises(CheckpointError, match="not DreamClear"):
        convert_checkpoint_to_folder(pth, tmp_path / "out", torch.float16)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_casting_while_converting_matches_casting_after(dtype) -> None:
    # The old path converted in the checkpoint's dtype, then cast: the results must be equal
    # bit for bit, and no piece of a split may share storage with another tensor.
    sd = official_state_dict(seed=3)
    old = {k: v.to(dtype) for k, v in convert_dreamclear_state_dict(sd).items()}
    new = convert_dreamclear_state_dict(sd, dtype)
    assert new.keys() == old.keys()
    for key, tensor in new.items():
        assert tensor.dtype == dtype, key
        assert torch.equal(tensor.view(torch.uint8), old[key].view(torch.uint8)), key
    storages = [t.untyped_storage().data_ptr() for k, t in new.items() if ".to_k." in k]
    assert len(set(storages)) == len(storages)
