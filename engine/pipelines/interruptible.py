"""Stopping inside one forward pass: a cancel check before every convolution of a network.

A tile of the starter takes well under a second on an idle 2-core CPU, but several on a busy
one; checking the token before each of the network's layers (a flag read, ~70 per tile for
the starter) stops it within one layer instead of one tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from engine.cancel import CancelToken


@contextmanager
def interruptible(network: nn.Module, cancel: CancelToken) -> Iterator[None]:
    """While inside, every convolution of `network` first raises `JobInterrupted` when
    `cancel` is cancelled; the hooks are removed on the way out."""

    def check(_module: nn.Module, _inputs: object) -> None:
        cancel.raise_if_cancelled()

    handles = [
        module.register_forward_pre_hook(check)
        for module in network.modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
