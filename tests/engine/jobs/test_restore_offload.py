"""The engine's restore jobs take the offload level: checked with the request, part of the
warm model's key (another level loads the model again, hooked for it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine import protocol as p
from engine.errors import BadSettingError
from engine.jobs.restore import RestoreJobs, check_options
from engine.model_cache import WarmModels


def test_an_unknown_offload_level_is_refused_with_the_request():
    with pytest.raises(BadSettingError, match="offload='layers'"):
        check_options(p.RestoreOptionsMessage(offload="layers"))  # type: ignore[arg-type]
    check_options(p.RestoreOptionsMessage(offload="sequential"))


def test_a_changed_level_loads_the_model_again_hooked_for_it(tiny_model_dir):
    jobs = RestoreJobs()
    context = SimpleNamespace(models=WarmModels(max_warm=1))

    def restorer(level: str):
        options = p.RestoreOptionsMessage(model=str(tiny_model_dir), device="cpu", offload=level)
        return jobs._restorer(options, context)

    plain = restorer("none")
    assert restorer("none") is plain  # warm
    hooked = restorer("model")
    assert hooked is not plain and hasattr(hooked.pipeline.transformer, "_hf_hook")
    assert not hasattr(plain.pipeline.transformer, "_hf_hook")
    assert restorer("none") is not plain  # one warm model: "model" pushed it out
