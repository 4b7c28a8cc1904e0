"""Job previews: throttled, at the output's aspect and at most ~1 MP, gone with the job."""

from __future__ import annotations

import os

import torch
from PIL import Image

from engine.previews import JobPreviews, preview_size, sweep_orphans


def test_a_preview_keeps_the_outputs_aspect_within_a_megapixel():
    height, width = preview_size(4096, 2731)
    assert height * width <= 1_000_000
    assert abs(height / width - 4096 / 2731) < 0.01
    assert preview_size(300, 200) == (300, 200)  # small outputs are not enlarged


def test_previews_are_throttled_written_in_place_and_removed_with_the_job(tmp_path):
    now = [0.0]
    events, renders = [], []
    previews = JobPreviews("job", "r", events.append, root=tmp_path, clock=lambda: now[0])

    def render():
        renders.append(now[0])
        return torch.full((1, 3, 60, 40), 0.5)

    previews(render, (1200, 800))  # the first at once
    now[0] = 0.5
    previews(render, (1200, 800))  # too soon: not even rendered
    now[0] = 1.2
    previews(render, (1200, 800))
    assert renders == [0.0, 1.2]
    assert [(e.TYPE, e.height, e.width) for e in events] == [("preview", 1200, 800)] * 2
    path = events[0].path
    assert path == events[1].path  # rewritten in place
    with Image.open(path) as image:
        assert image.size == preview_size(1200, 800)[::-1] == (800, 1200)
    assert [p.name for p in (tmp_path / path.split("/")[-2]).iterdir()] == ["preview.png"]
    previews.close()
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_folders_of_engines_that_are_gone_are_swept(tmp_path):
    gone = tmp_path / "999999999-job"  # no such process
    gone.mkdir()
    (gone / "preview.png").write_bytes(b"x")
    mine = tmp_path / f"{os.getpid()}-job"
    mine.mkdir()
    sweep_orphans(tmp_path)
    assert not gone.exists() and mine.exists()
