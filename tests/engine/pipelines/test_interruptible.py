"""A cancel lands inside one forward pass, between two layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.cancel import CancelToken
from engine.errors import JobInterrupted
from engine.pipelines.interruptible import interruptible


def test_a_cancel_stops_the_network_at_its_next_convolution():
    cancel = CancelToken()
    ran = []

    def after_first(*_) -> None:
        ran.append("first")
        cancel.cancel()

    def after_second(*_) -> None:
        ran.append("second")

    first, second = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
    first.register_forward_hook(after_first)
    second.register_forward_hook(after_second)
    network = nn.Sequential(first, nn.ReLU(), second)
    with interruptible(network, cancel), pytest.raises(JobInterrupted):
        network(torch.rand(1, 3, 4, 4))
    assert ran == ["first"]
    network(torch.rand(1, 3, 4, 4))  # outside, the hooks are gone
    assert ran == ["first", "first", "second"]
