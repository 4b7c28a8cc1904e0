"""Scene descriptions for GenIR generation, from a seeded combinatorial template.

The paper has a language model write its scene descriptions; this built-in generator is the
offline stand-in (and the default): a scene, the materials in it, its light, for outdoor
scenes the weather and the season, and a camera term, e.g.
"a harbour with weathered wooden boats and rusty chains, golden hour sunlight, light fog, late
autumn, shot on a 50mm lens". No people by default (a crowd or a figure in the distance is
allowed with `people=True`, never a named or described person).

`scene_prompts(count, seed)` is deterministic per seed, has no duplicates, and is prefix-stable:
the first k prompts of a longer list are the k prompts of a shorter one, so a run asked for
more prompts later keeps the ones it has. `iter_scene_prompts` gives them one by one.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Scene:
    text: str
    outdoor: bool


def _scenes(outdoor: bool, *texts: str) -> tuple[Scene, ...]:
    return tuple(Scene(text, outdoor) for text in texts)


SCENES: tuple[Scene, ...] = _scenes(
    True,
    "a harbour",
    "a mountain lake",
    "a pine forest",
    "a desert canyon",
    "a rocky coastline",
    "a narrow cobbled alley",
    "a city skyline",
    "a quiet village square",
    "a waterfall in a gorge",
    "a field of wildflowers",
    "a rice terrace",
    "a vineyard on a hillside",
    "an old stone bridge",
    "a lighthouse on a cliff",
    "a railway station platform",
    "a mountain pass",
    "a sandy beach",
    "a river delta",
    "a birch grove",
    "a botanical garden",
    "a farmyard",
    "a ruined castle",
    "a suspension bridge",
    "a market street",
    "a snowy mountain hut",
    "an alpine meadow",
    "a bamboo forest",
    "a lavender field",
    "a fishing village",
    "a volcanic landscape",
    "a tidal pool",
    "a moss-covered ravine",
    "a canal with houseboats",
    "a rooftop garden",
    "a wheat field with a barn",
    "a mangrove swamp",
) + _scenes(
    False,
    "a library reading room",
    "a cosy kitchen",
    "a carpenter's workshop",
    "a greenhouse",
    "a cathedral nave",
    "a museum gallery",
    "a living room",
    "a train carriage interior",
    "a pottery studio",
    "a bakery counter",
    "an old clock shop",
    "a wine cellar",
    "a textile mill",
    "a bookshop",
    "an attic",
    "a laboratory bench",
)

MATERIALS: tuple[str, ...] = (
    "weathered wooden boats",
    "rusty iron chains",
    "moss-covered stones",
    "polished marble floors",
    "rough granite walls",
    "peeling painted shutters",
    "woven wicker baskets",
    "hand-made ceramic tiles",
    "brass fittings",
    "frosted glass panes",
    "cracked terracotta pots",
    "knitted wool blankets",
    "old leather-bound books",
    "copper pans",
    "dry autumn leaves",
    "lichen on bark",
    "wet pebbles",
    "rippled sand",
    "red brick arches",
    "carved oak beams",
    "corrugated metal roofs",
    "linen curtains",
    "glazed pottery",
    "gravel paths",
    "ivy on old walls",
    "velvet upholstery",
    "salt-crusted ropes",
    "smooth river stones",
    "wrought iron railings",
    "stained glass windows",
    "bamboo scaffolding",
    "dewy spider webs",
    "thatched roofs",
    "slate shingles",
    "embroidered cushions",
    "fresh bread loaves",
)

LIGHTS: tuple[str, ...] = (
    "golden hour sunlight",
    "soft overcast light",
    "harsh midday sun",
    "blue hour twilight",
    "warm lamplight",
    "dappled light through leaves",
    "low winter sun",
    "backlight with long shadows",
    "diffuse window light",
    "sunrise glow",
    "moonlight",
    "neon reflections",
    "candlelight",
    "light through high windows",
    "bright morning light",
    "late afternoon light",
)

WEATHERS: tuple[str, ...] = (
    "clear sky",
    "light fog",
    "after rain",
    "light drizzle",
    "scattered clouds",
    "fresh snow",
    "dramatic storm clouds",
    "hazy air",
    "calm and still",
    "windy",
)

SEASONS: tuple[str, ...] = (
    "early spring",
    "midsummer",
    "late autumn",
    "deep winter",
)

CAMERA_TERMS: tuple[str, ...] = (
    "shot on a 50mm lens",
    "wide-angle 24mm",
    "35mm film photograph",
    "85mm lens, shallow depth of field",
    "medium format photograph",
    "macro detail",
    "telephoto 200mm",
    "f/8, everything in focus",
    "long exposure",
    "high resolution photograph",
    "DSLR, sharp focus",
    "tilt-shift lens",
)

PEOPLE: tuple[str, ...] = (
    "a few distant passers-by",
    "a small crowd in the distance",
    "a lone figure far away, seen from behind",
)
"""Added to some outdoor prompts only with `people=True`: never a face, a name or a description."""


def scene_prompts(count: int, seed: int = 0, *, people: bool = False) -> list[str]:
    """`count` different scene descriptions, the same for the same seed (prefix-stable)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    limit = combinations(people=people)
    if count > limit:
        raise ValueError(f"the template gives at most {limit} different prompts, not {count}")
    return list(itertools.islice(iter_scene_prompts(seed, people=people), count))


def iter_scene_prompts(seed: int = 0, *, people: bool = False) -> Iterator[str]:
    """The prompts of `scene_prompts` one by one, without end (stop before `combinations()`:
    the last ones take ever longer to draw)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while True:
        prompt = _draw(rng, people)
        if prompt not in seen:
            seen.add(prompt)
            yield prompt


def _draw(rng: random.Random, people: bool) -> str:
    scene = rng.choice(SCENES)
    first, second = rng.sample(MATERIALS, 2)
    parts = [f"{scene.text} with {first} and {second}", rng.choice(LIGHTS)]
    # Every draw takes the same number of random values, so one prompt never shifts another.
    weather, season, crowd = rng.choice(WEATHERS), rng.choice(SEASONS), rng.choice(PEOPLE)
    with_people = rng.random() < 0.2
    if scene.outdoor:
        parts += [weather, season]
        if people and with_people:
            parts.append(crowd)
    parts.append(rng.choice(CAMERA_TERMS))
    return ", ".join(parts)


def combinations(*, people: bool = False) -> int:
    """How many different prompts the template can give."""
    materials = len(MATERIALS) * (len(MATERIALS) - 1)
    outdoor = sum(scene.outdoor for scene in SCENES)
    indoor = len(SCENES) - outdoor
    per_outdoor = len(WEATHERS) * len(SEASONS) * (1 + len(PEOPLE) if people else 1)
    return (indoor + outdoor * per_outdoor) * materials * len(LIGHTS) * len(CAMERA_TERMS)
