"""Make a trained Compact (SRVGGNetCompact) deeper without changing what it computes.

A Compact's body is a plain chain: conv, PReLU, then `num_conv` times (conv, PReLU), then the
last conv before the pixel shuffle (state-dict keys `body.<i>.weight` / `.bias`). A 3x3 conv
whose kernel is the identity (a 1 at the centre, from each channel to itself, no bias)
followed by a PReLU whose slopes are all 1 passes its input through unchanged, so such pairs
can be put anywhere in the chain and the network's output stays the same, to the last bit in
float32. Training then starts from the smaller network's quality and uses the new layers as it
learns (Net2Net's "deeper" step, Chen et al. 2016). The result is an ordinary Compact state
dict: spandrel reads the new depth from its keys.
"""

from __future__ import annotations

import re

import torch

_BODY_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def compact_num_conv(state: dict[str, torch.Tensor]) -> int:
    """The body convolutions of a Compact state dict (spandrel's rule: the last index is
    2 * num_conv + 2)."""
    indices = [int(m.group(1)) for key in state if (m := _BODY_KEY.fullmatch(key))]
    if not indices or "body.0.weight" not in state:
        raise ValueError("not a Compact state dict (no body.<i>.weight keys)")
    return (max(indices) - 2) // 2


def deepen_compact(state: dict[str, torch.Tensor], num_conv: int) -> dict[str, torch.Tensor]:
    """The same network with `num_conv` body convolutions: identity (conv, PReLU) pairs spread
    evenly between the existing ones (never after the last, which feeds the upsampler)."""
    old = compact_num_conv(state)
    if num_conv < old:
        raise ValueError(f"cannot make a {old}-conv Compact shallower ({num_conv} asked)")
    pairs = _body_pairs(state, old)  # [(conv, prelu)] * (old + 1): the first conv's pair too
    last_conv = {name: state[f"body.{2 * old + 2}.{name}"] for name in ("weight", "bias")}
    features = pairs[0][0]["weight"].shape[0]
    # New pair j goes after existing pair number `slots[j]`, spread evenly over 1..old+1.
    extra = num_conv - old
    slots = [round((j + 1) * (old + 1) / (extra + 1)) for j in range(extra)]
    grown: list[tuple[dict, dict]] = []
    for position, pair in enumerate(pairs, start=1):
        grown.append(pair)
        grown += [_identity_pair(features, pair[0]["weight"]) for s in slots if s == position]
    out: dict[str, torch.Tensor] = {}
    for index, (conv, prelu) in enumerate(grown):
        for name, tensor in conv.items():
            out[f"body.{2 * index}.{name}"] = tensor.clone()
        out[f"body.{2 * index + 1}.weight"] = prelu["weight"].clone()
    for name, tensor in last_conv.items():
        out[f"body.{2 * num_conv + 2}.{name}"] = tensor.clone()
    return out


def _body_pairs(state: dict[str, torch.Tensor], num_conv: int) -> list[tuple[dict, dict]]:
    return [
        (
            {name: state[f"body.{2 * i}.{name}"] for name in ("weight", "bias")},
            {"weight": state[f"body.{2 * i + 1}.weight"]},
        )
        for i in range(num_conv + 1)
    ]


def _identity_pair(features: int, like: torch.Tensor) -> tuple[dict, dict]:
    weight = torch.zeros(features, features, 3, 3, dtype=like.dtype)
    weight[torch.arange(features), torch.arange(features), 1, 1] = 1.0
    conv = {"weight": weight, "bias": torch.zeros(features, dtype=like.dtype)}
    return conv, {"weight": torch.ones(features, dtype=like.dtype)}
