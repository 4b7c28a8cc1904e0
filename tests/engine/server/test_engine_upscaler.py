"""A user's upscaler file as a restore job's model, over the engine's protocol."""

from __future__ import annotations

from engine_harness import options, write_photo
from PIL import Image

from engine.models.reference_upscalers import save_upscaler, tiny_upscaler


def test_an_upscaler_file_restores_and_says_it_was_resampled(stdio_engine, tmp_path):
    _, client = stdio_engine
    model = save_upscaler(tiny_upscaler("compact-x4"), tmp_path / "mine-x4.safetensors")
    photo = write_photo(tmp_path / "photo.png")
    client.send(
        {
            "type": "restore",
            "id": "byo",
            "inputs": [str(photo)],
            "output_dir": str(tmp_path / "out"),
            "options": options(model, save_map=True),  # x2 asked of a x4 model
        }
    )
    events = client.until(lambda e: e["type"] in ("result", "error"))
    assert events[-1]["type"] == "result", events[-1]
    assert Image.open(events[-1]["output"]).size == (32, 32)
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("upscales x4" in w and "resampled" in w for w in warnings), warnings
    assert not [e for e in events if e["type"] == "degradation_map"]
