"""Under `max_minutes`, the training progress bar counts to where the time budget ends."""

from __future__ import annotations

from trainer.loop import time_limited_total


def test_the_total_is_the_step_reached_when_the_budget_is_spent():
    # 10 steps in 20 s (2 s a step) with 60 s left, at step 110 of a resumed run.
    assert time_limited_total(10, 20.0, 60.0, 110, 100_000) == 140


def test_max_steps_still_caps_the_total():
    assert time_limited_total(10, 1.0, 3600.0, 10, 500) == 500


def test_no_pace_yet_keeps_max_steps_and_a_spent_budget_ends_at_this_step():
    assert time_limited_total(0, 0.0, 60.0, 0, 1000) == 1000
    assert time_limited_total(10, 20.0, -5.0, 42, 1000) == 42
