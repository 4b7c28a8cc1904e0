"""`dreamclear bench convert` at the tiny size: both variants convert the same checkpoint."""

from __future__ import annotations

import sys

import pytest

from engine.bench import convert_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_both_variants_convert_and_are_reported():
    samples = convert_memory.run(hidden=144, layers=1, dtype="bf16")
    assert [s.variant for s in samples] == list(convert_memory.VARIANTS)
    assert samples[0].target_mb == samples[1].target_mb < samples[0].checkpoint_mb
    table = convert_memory.markdown(samples)
    assert all(variant in table for variant in convert_memory.VARIANTS)
