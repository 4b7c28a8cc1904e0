"""The one progress throttle: at most ~20 events a second, latest wins, nothing held back."""

from __future__ import annotations

import threading
import types

import pytest

from engine.progress import JobProgress


def info(step: int, steps: int = 50):
    return types.SimpleNamespace(stage="denoise", step=step, steps=steps, tile=1, tiles=1)


def make_throttle(hz: float = 20.0):
    events: list = []
    arrived = threading.Event()

    def emit(event):
        events.append(event)
        arrived.set()

    return JobProgress("job", "r", emit, hz), events, arrived


def progress(events):
    return [e.step for e in events if e.TYPE == "progress"]


def test_a_burst_sends_the_first_and_then_only_the_latest():
    throttle, events, arrived = make_throttle(hz=5.0)
    for step in range(1, 11):
        throttle(info(step))
    assert progress(events) == [1]
    arrived.clear()
    # No further callback: the timer must deliver the held position by itself.
    assert arrived.wait(timeout=2.0)
    assert progress(events) == [1, 10]


def test_flush_sends_the_held_position_at_once_and_discard_drops_it():
    throttle, events, _ = make_throttle(hz=1.0)
    throttle(info(1))
    throttle(info(2))
    throttle.flush()
    assert progress(events) == [1, 2]
    throttle(info(3))
    throttle.discard()  # the job ended: nothing may follow its final event
    assert throttle.throttle.pending is None and throttle.throttle._timer is None
    assert progress(events) == [1, 2]


def test_a_flood_never_exceeds_the_rate():
    """A tight loop of callbacks (as a fast pipeline makes) gives at most hz events a second."""
    import time

    throttle, events, _ = make_throttle(hz=20.0)
    end = time.monotonic() + 0.5
    step = 0
    while time.monotonic() < end:
        step += 1
        throttle(info(step, steps=10**9))
    throttle.flush()
    sent = progress(events)
    assert len(sent) <= 0.5 * 20 + 2
    assert sent == sorted(sent)  # latest wins, never an older position after a newer one


def test_progress_carries_the_fraction_never_going_back_its_label_and_an_eta():
    from engine.pipelines.stage_plan import starter_plan

    now = [0.0]
    events: list = []
    progress = JobProgress("job", "r", events.append, hz=1000.0, clock=lambda: now[0])
    plan = starter_plan(estimate=False)
    for tile in (1, 2, 3):
        now[0] += 1.0
        progress(plan.info("remove", tile=tile, tiles=4))
    now[0] += 1.0
    progress(plan.info("remove", tile=1, tiles=4))  # an out-of-memory retry starts again
    sent = [e for e in events if e.TYPE == "progress"]
    assert [e.fraction for e in sent] == sorted(e.fraction for e in sent)
    assert sent[-1].fraction == sent[-2].fraction
    assert sent[1].label == "Removing degradations (tile 2/4)"
    assert sent[0].eta_s is None  # no rate from one position
    # 2 more tiles (46% of the job) in 2 s: the remaining 31% takes ~1.3 s.
    assert sent[2].eta_s == pytest.approx(1.33, abs=0.02)
