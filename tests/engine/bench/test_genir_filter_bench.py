"""The GenIR filter throughput benchmark runs end to end at a tiny size."""

from __future__ import annotations

from engine.bench.genir_filter import measure


def test_measures_the_stage_and_each_scorer():
    numbers = measure(64, 2, repeats=1)
    assert numbers["images"] == 2 and numbers["stage_images_per_s"] > 0
    assert numbers["classifier_s"] > 0 and numbers["faces_s"] > 0
