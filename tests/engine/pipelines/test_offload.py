"""Offload levels (engine/pipelines/offload.py) with the tiny DreamClear model on the CPU.

Here the execution device is the CPU, so "model" moves nothing and "sequential" swaps each
submodule's weights in from their CPU copy: the output must be identical to "none". The moves
to a GPU are accelerate's; what is ours (one component resident at a time) is tested with
stand-ins whose weights sit on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.errors import BadSettingError
from engine.pipelines.offload import OFFLOAD_LEVELS, _OneResident, module_tensor
from engine.restorers import load_restorer


def _restore(model_dir, offload: str) -> tuple[torch.Tensor, object]:
    restorer = load_restorer(str(model_dir), device="cpu", dtype="fp32", offload=offload)
    image = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    output = restorer.pipeline(
        image,
        upscale=2,
        min_short_side=0,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    return output.image, restorer.pipeline


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    return _restore(tiny_model_dir, "none")[0]


@pytest.mark.parametrize("level", ["model", "sequential"])
def test_each_level_gives_the_output_of_none(tiny_model_dir, reference, level):
    image, pipeline = _restore(tiny_model_dir, level)
    assert torch.equal(image, reference)
    assert pipeline.device == torch.device("cpu")
    for module in (pipeline.transformer, pipeline.vae, pipeline.text_encoder.model):
        assert hasattr(module, "_hf_hook"), f"{type(module).__name__} is not hooked"
    weights_device = next(pipeline.transformer.parameters()).device.type
    # sequential keeps the weights in the hooks' CPU copy, the modules hold meta tensors
    assert weights_device == ("meta" if level == "sequential" else "cpu")


def test_a_self_owned_tensor_reads_through_sequential_offload(tiny_model_dir):
    _, plain = _restore(tiny_model_dir, "none")
    _, pipeline = _restore(tiny_model_dir, "sequential")
    assert pipeline.transformer.null_caption_embedding.device.type == "meta"
    value = module_tensor(pipeline.transformer, "null_caption_embedding")
    assert torch.equal(value, plain.transformer.null_caption_embedding)


def test_an_unknown_level_is_a_setting_error(tiny_model_dir):
    with pytest.raises(BadSettingError, match="offload"):
        load_restorer(str(tiny_model_dir), device="cpu", offload="layers")
    assert OFFLOAD_LEVELS == ("none", "model", "sequential")


class _FakeUserHook:
    """Stands in for accelerate's UserCpuOffloadHook: records offloads."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.offloaded = 0

    def offload(self) -> None:
        self.offloaded += 1


def test_model_level_keeps_one_component_resident():
    """Before a component runs, every other component on a device goes back to the CPU
    (the VAE runs before and after the transformer, so a chain of two would not do)."""
    on_device = [nn.Linear(2, 2, device="meta") for _ in range(2)]  # "resident"
    on_cpu = nn.Linear(2, 2)
    running = nn.Linear(2, 2, device="meta")
    group = [_FakeUserHook(m) for m in (*on_device, on_cpu, running)]
    _OneResident(group).pre_forward(running)
    assert [hook.offloaded for hook in group] == [1, 1, 0, 0]


def test_pending_weights_count_only_for_model_offload_to_another_device():
    """Free memory is measured before the transformer moves in; its bytes are taken off."""
    from accelerate import cpu_offload_with_hook

    from engine.pipelines.offload import pending_weight_bytes

    plain = nn.Linear(4, 4)
    assert pending_weight_bytes(plain) == 0
    on_cpu, _ = cpu_offload_with_hook(nn.Linear(4, 4), execution_device="cpu")
    assert pending_weight_bytes(on_cpu) == 0  # already where it runs
    elsewhere, _ = cpu_offload_with_hook(nn.Linear(4, 4), execution_device="meta")
    assert pending_weight_bytes(elsewhere) == (16 + 4) * 4
