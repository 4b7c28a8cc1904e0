"""The prompt privacy/NSFW filter: planted personal data is rejected with the right reason;
generated prompts and the documented tricky benign prompts pass."""

from __future__ import annotations

import pytest

from engine.genir.privacy import Finding, check_prompt, screen
from engine.genir.prompts import scene_prompts

BASE = "a harbour with wooden boats, golden hour sunlight"


@pytest.mark.parametrize(
    ("planted", "kind", "text"),
    [
        ("contact john.doe@example.com", "email", "john.doe@example.com"),
        ("see https://example.org/photos", "url", "https://example.org/photos"),
        ("see www.example.org", "url", "www.example.org"),
        ("as on harbourviews.co.uk", "url", "harbourviews.co.uk"),
        ("by @sunny_days", "handle", "@sunny_days"),
        ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("call 555-123-4567", "phone", "555-123-4567"),
        ("call (555) 123 4567", "phone", "(555) 123 4567"),
        ("at 221B Baker Street", "address", "221B Baker Street"),
        ("at 12 Elm Rd", "address", "12 Elm Rd"),
        ("at 1600 Pennsylvania Avenue", "address", "1600 Pennsylvania Avenue"),
        ("with Dr Smith", "name", "Dr Smith"),
        ("with Mrs. Jones", "name", "Mrs. Jones"),
        ("a portrait of Sarah", "name", "Sarah"),
        ("emma's kitchen", "name", "emma's"),
        ("Grace Kelly on a balcony", "name", "Grace Kelly"),
        ("Paris Hilton", "name", "Paris Hilton"),
        ("a nude beach", "nsfw", "nude"),
        ("NSFW", "nsfw", "NSFW"),
        ("gory scene", "nsfw", "gory"),
    ],
)
def test_planted_personal_data_is_rejected_with_its_reason(planted, kind, text):
    prompt = f"{BASE}, {planted}"
    assert check_prompt(prompt) == [Finding(kind, text)]
    result = screen([BASE, prompt])
    assert result.accepted == [BASE]
    assert result.rejected == [(prompt, [Finding(kind, text)])]


def test_every_kind_in_one_prompt_is_reported():
    prompt = "John Smith at 12 Elm Rd, john@x.org, @johnny, https://x.org/a, 555 123 4567, nude"
    assert [f.kind for f in check_prompt(prompt)] == [
        "email",
        "url",
        "handle",
        "phone",
        "address",
        "name",
        "nsfw",
    ]


def test_generated_prompts_all_pass():
    prompts = scene_prompts(500, seed=3) + scene_prompts(200, seed=4, people=True)
    result = screen(prompts)
    assert result.rejected == []
    assert result.accepted == prompts


# Documented in engine/genir/privacy.py and docs/genir.md.
BENIGN = [
    "a street at dusk",
    "a quiet lane after rain",
    "Bishop Rock lighthouse in a storm",
    "Victoria Falls in the rain",
    "view of Victoria Falls",
    "Sydney Opera House at night",
    "Florence cathedral at sunrise",
    "Jordan river valley",
    "a rose garden at dawn",
    "a martin on a wire, Ivy on old walls",
    "the St. Ives harbour",
    "Sussex countryside with a sextant on a desk",
    "shot on a 24-70mm lens, f/1.8, 1/250 s, ISO 100, 4k",
    "a 1920s street, 35mm film",
    "a market from 1920-1930",
    "a 3 storey house on a hill",
]
OVER_REJECTED = [
    ("naked trees in winter", "nsfw"),  # a word list cannot tell; a lost prompt costs nothing
    ("Ben Nevis at dawn", "name"),  # a given name before a capitalised word
]


@pytest.mark.parametrize("prompt", BENIGN)
def test_tricky_benign_prompts_pass(prompt):
    assert check_prompt(prompt) == []


@pytest.mark.parametrize(("prompt", "kind"), OVER_REJECTED)
def test_documented_over_rejections(prompt, kind):
    assert [f.kind for f in check_prompt(prompt)] == [kind]
