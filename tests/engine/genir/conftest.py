"""GenIR runs tiny models; one torch thread keeps them fast on a shared CPU."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two threads' OpenMP spin-waits make a tiny SDXL step about ten times slower on a busy
    machine (measured: 0.05 s against 0.1 to 1.1 s for a 2-step 64 px generation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
