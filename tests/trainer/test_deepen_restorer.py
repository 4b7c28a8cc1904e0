"""A trained Compact made deeper by identity layers starts a run from exactly its own output
(`engine.models.compact_growth`, `starter.deepen_restorer`), from any restorer file of a
starter folder (`starter.init_restorer_file`)."""

from __future__ import annotations

import pytest
import spandrel
import torch
from safetensors.torch import load_file, save_file

from engine.models.compact_growth import compact_num_conv, deepen_compact
from engine.models.starter import build_compact_restorer
from trainer.config import ConfigError, apply_overrides
from trainer.loop import train
from trainer.tasks import build_task


def _random_compact(num_conv: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    compact = build_compact_restorer(num_feat=8, num_conv=num_conv, scale=4)
    with torch.no_grad():  # slopes away from PReLU's default, so an identity slope is a choice
        for layer in compact.body:
            if isinstance(layer, torch.nn.PReLU):
                layer.weight.uniform_(0.05, 0.5)
    return compact.eval()


@pytest.mark.parametrize("deeper", [3, 4, 9])
def test_a_deepened_compact_computes_exactly_what_it_did(deeper):
    small = _random_compact(num_conv=3, seed=1)
    grown = deepen_compact(small.state_dict(), deeper)

    descriptor = spandrel.ModelLoader().load_from_state_dict(grown)
    assert descriptor.architecture.id == "Compact" and descriptor.scale == 4
    assert compact_num_conv(grown) == deeper == descriptor.model.num_conv
    image = torch.rand(1, 3, 14, 18)
    with torch.no_grad():
        assert torch.equal(descriptor.model.eval()(image), small(image))
    # The old layers are all there, in order, the last (the upsampler's input) still last.
    last = f"body.{2 * deeper + 2}.weight"
    assert torch.equal(grown[last], small.state_dict()["body.8.weight"])
    assert torch.equal(grown["body.0.weight"], small.state_dict()["body.0.weight"])


def test_deepening_refuses_to_make_a_compact_shallower_or_to_read_other_files():
    state = _random_compact(num_conv=4, seed=2).state_dict()
    with pytest.raises(ValueError, match="shallower"):
        deepen_compact(state, 3)
    with pytest.raises(ValueError, match="not a Compact"):
        compact_num_conv({"conv_first.weight": torch.zeros(1)})


def _gentle_folder(make_starter_config, small: torch.nn.Module, name: str):
    """A starter folder whose restorer-gentle.safetensors is `small` (restorer.safetensors
    is a different net), with an estimator of the test config's sizes."""
    config = make_starter_config(name, max_steps=1)
    config.starter.restorer = "compact"
    config.starter.num_feat, config.starter.num_conv = 8, 3
    folder = train(config)
    save_file(small.state_dict(), folder / "restorer-gentle.safetensors")
    return folder


def test_a_run_starts_from_the_named_restorer_file_made_deeper(make_starter_config):
    small = _random_compact(num_conv=3, seed=3)
    folder = _gentle_folder(make_starter_config, small, "deepen_base")
    config = make_starter_config("deepen", max_steps=1)
    apply_overrides(
        config,
        **{
            "starter.restorer": "compact",
            "starter.num_feat": 8,
            "starter.num_conv": 6,
            "starter.init_from": folder,
            "starter.init_restorer_file": "restorer-gentle.safetensors",
            "starter.train_estimator": False,
        },
    )
    # Without deepening, the sizes differ and the error names the field that starts it.
    with pytest.raises(ConfigError, match=r"starter\.init_from"):
        build_task(config).build(torch.device("cpu"))

    config.starter.deepen_restorer = True
    restorer = build_task(config).build(torch.device("cpu"))[0].eval()
    assert restorer.num_conv == 6
    image = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert torch.equal(restorer(image), small(image))
    assert not torch.equal(
        load_file(folder / "restorer.safetensors")["body.0.weight"], small.body[0].weight
    )


def test_deepening_a_deeper_restorer_names_the_field(make_starter_config):
    folder = _gentle_folder(make_starter_config, _random_compact(num_conv=5, seed=4), "deep_base")
    config = make_starter_config("too_deep", max_steps=1)
    apply_overrides(
        config,
        **{
            "starter.restorer": "compact",
            "starter.num_feat": 8,
            "starter.num_conv": 4,
            "starter.init_from": folder,
            "starter.init_restorer_file": "restorer-gentle.safetensors",
            "starter.deepen_restorer": True,
            "starter.train_estimator": False,
        },
    )
    with pytest.raises(ConfigError, match=r"starter\.deepen_restorer.*5-conv Compact shallower"):
        build_task(config).build(torch.device("cpu"))


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"starter.deepen_restorer": True}, "starter.deepen_restorer"),  # no init_from
        ({"starter.init_restorer_file": "../restorer.safetensors"}, "starter.init_restorer_file"),
        ({"starter.init_restorer_file": "restorer.pth"}, "starter.init_restorer_file"),
    ],
)
def test_bad_start_fields_name_themselves(make_starter_config, settings, field):
    config = make_starter_config("bad_start", max_steps=1)
    config.starter.restorer = "compact"
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        apply_overrides(config, **settings)
