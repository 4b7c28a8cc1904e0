"""What the per-file bar of `dreamclear restore` prints, locally and against an engine."""

from __future__ import annotations

import io

from engine import protocol as p
from engine.cli.restore_progress import StepProgress
from engine.pipelines.stage_plan import starter_plan


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def last_line(stream: io.StringIO) -> str:
    return stream.getvalue().split("\r")[-1].strip()


def test_the_local_bar_shows_the_whole_job_with_its_label_and_eta():
    stream, clock = io.StringIO(), Clock()
    bar = StepProgress("bridge.jpg", stream, clock=clock)
    plan = starter_plan(estimate=False)
    bar(plan.info("remove", tile=1, tiles=10))
    assert "bridge.jpg Removing degradations (tile 1/10):   9%|" in last_line(stream)
    assert last_line(stream).endswith("<?")  # no rate yet
    clock.now = 10.0
    bar(plan.info("remove", tile=3, tiles=10))
    line = last_line(stream)
    # 28% of the job after 3 of 10 tiles; 18.5% more in 10 s: 39.1 s for the remaining 72%.
    assert line.startswith("bridge.jpg Removing degradations (tile 3/10):  28%|")
    assert line.endswith("<00:39")
    bar.close()


def test_the_remote_bar_draws_the_engines_fraction_label_and_eta():
    stream = io.StringIO()
    bar = StepProgress("bridge.jpg", stream)
    bar.enter("load")
    assert last_line(stream).startswith("bridge.jpg Loading the model:   0%|")
    event = p.Progress(
        job_id="j", stage="denoise", step=12, steps=50, fraction=0.35, label="Denoising 12/50",
        eta_s=75.0,
    )  # fmt: skip
    bar.show_event(event)
    line = last_line(stream)
    assert line.startswith("bridge.jpg Denoising 12/50:  35%|")
    assert line.endswith("<01:15")
    bar.close()
