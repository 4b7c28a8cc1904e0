"""The built-in scene-prompt generator: deterministic per seed, no duplicates, no people."""

from __future__ import annotations

import pytest

from engine.genir.prompts import PEOPLE, SCENES, combinations, scene_prompts


def test_the_same_seed_gives_the_same_prompts_and_another_seed_others():
    assert scene_prompts(50, seed=1) == scene_prompts(50, seed=1)
    assert scene_prompts(50, seed=1) != scene_prompts(50, seed=2)


def test_no_duplicates_and_a_longer_list_starts_with_a_shorter_one():
    prompts = scene_prompts(3000, seed=0)
    assert len(set(prompts)) == 3000
    assert scene_prompts(100, seed=0) == prompts[:100]


def test_prompts_are_diverse():
    prompts = scene_prompts(500, seed=0)
    scenes = {
        scene.text for scene in SCENES if any(p.startswith(scene.text + " with") for p in prompts)
    }
    assert len(scenes) >= 0.9 * len(SCENES)
    assert len({p.split(", ")[-1] for p in prompts}) >= 10  # camera terms


def test_no_people_unless_asked():
    assert not any(crowd in p for p in scene_prompts(1000, seed=0) for crowd in PEOPLE)
    with_people = scene_prompts(1000, seed=0, people=True)
    assert any(crowd in p for p in with_people for crowd in PEOPLE)
    assert combinations(people=True) > combinations()


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="at most"):
        scene_prompts(combinations() + 1)
    with pytest.raises(ValueError, match=">= 0"):
        scene_prompts(-1)
    assert scene_prompts(0) == []
