"""`SettingsModel`: the default restore settings, kept across restarts in QSettings.

Every value is observable (`valueChanged(name, value)`); `options()` turns them into the
engine's `RestoreOptionsMessage` for one job (drawing a fresh seed unless the seed is locked).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Signal

from engine.protocol import RestoreOptionsMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """One setting: its default and, for a closed set, the values it may take (for a number,
    the range it may take)."""

    default: Any
    values: tuple[Any, ...] | None = None
    bounds: tuple[float, float] | None = None


def default_output_dir() -> str:
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return str(Path(pictures or Path.home()) / "DreamClear Studio")


FIELDS: dict[str, Choice] = {
    "model": Choice("auto"),
    "upscale": Choice(4, (1, 2, 3, 4)),
    "steps": Choice(50),
    "sampler": Choice("iddpm", ("iddpm", "dpm++")),
    "cfg": Choice(4.5),
    "seed": Choice(0),
    "seed_locked": Choice(False),
    "prompt_mode": Choice("auto", ("auto", "none", "prompt")),
    "prompt": Choice(""),
    "color_fix": Choice("wavelet", ("wavelet", "adain", "none")),
    "strength": Choice(1.0, bounds=(0.0, 1.0)),
    "tile": Choice("auto", ("auto", 64, 96, 128, 192, 256)),
    "device": Choice("auto"),
    "dtype": Choice("auto", ("auto", "bf16", "fp16", "fp32")),
    "output_dir": Choice(None),
    "skip_existing": Choice(False),
    "offload": Choice("none", ("none", "model", "sequential")),
}
"""Every setting; `prompt_mode` "prompt" uses `prompt`, "auto" captions, "none" has none."""

DIFFUSION_ONLY = frozenset(
    {
        "steps",
        "sampler",
        "cfg",
        "seed",
        "seed_locked",
        "prompt_mode",
        "prompt",
        "tile",
        "dtype",
        "offload",
    }
)
"""Settings only DreamClear uses. The starter (engine/pipelines/starter.py) takes upscale,
colour fix, strength and the device; it draws no noise (no seed), has no caption, tiles by a
pixel size of its own rather than `tile` (latent cells) and always runs in fp32 (so no
`dtype`); it is small enough to stay on the device (so no `offload`)."""


class SettingsModel(QObject):
    valueChanged = Signal(str, object)
    autoStartChanged = Signal(bool)
    """"Start automatically" changed: a queue preference, not a restore setting of a job."""

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = settings or QSettings()
        self._values: dict[str, Any] = {}
        for name, choice in FIELDS.items():
            self._values[name] = self._load(name, choice)

    def _load(self, name: str, choice: Choice) -> Any:
        default = self._default(name)
        raw = self._store.value(f"restore/{name}")
        if raw is None:
            return default
        try:
            value = json.loads(str(raw))
        except ValueError:
            log.warning("ignored the saved setting %s=%r", name, raw)
            return default
        if not is_valid(name, value):
            log.warning("ignored the saved setting %s=%r", name, value)
            return default
        return value

    def _default(self, name: str) -> Any:
        return default_output_dir() if name == "output_dir" else FIELDS[name].default

    def value(self, name: str) -> Any:
        return self._values[name]

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def set_value(self, name: str, value: Any) -> None:
        check_setting(name, value)
        if self._values[name] == value:
            return
        self._values[name] = value
        self._store.setValue(f"restore/{name}", json.dumps(value))
        self.valueChanged.emit(name, value)

    def reset(self) -> None:
        """Every setting back to its default (and forgotten in QSettings)."""
        for name in FIELDS:
            self._store.remove(f"restore/{name}")
            default = self._default(name)
            if self._values[name] != default:
                self._values[name] = default
                self.valueChanged.emit(name, default)

    @property
    def auto_start(self) -> bool:
        """Whether added photos start at once; off by default (the user chooses first)."""
        return str(self._store.value("queue/auto_start", "false")).lower() == "true"

    def set_auto_start(self, on: bool) -> None:
        if on != self.auto_start:
            self._store.setValue("queue/auto_start", "true" if on else "false")
            self.autoStartChanged.emit(on)

    def sync(self) -> None:
        self._store.sync()

    def options(self, **overrides: Any) -> RestoreOptionsMessage:
        """The engine options for one new job; a random seed unless the seed is locked."""
        return make_options({**self._values, **overrides})


def is_valid(name: str, value: Any) -> bool:
    """Whether `value` may be setting `name` (a known value of a closed set, else its type)."""
    choice = FIELDS[name]
    if choice.values is not None:
        return value in choice.values
    if name == "output_dir":
        return isinstance(value, str)
    if isinstance(choice.default, bool):
        return isinstance(value, bool)
    if isinstance(choice.default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return choice.bounds is None or choice.bounds[0] <= value <= choice.bounds[1]
    return isinstance(value, str)


def check_setting(name: str, value: Any) -> None:
    """KeyError for an unknown setting, ValueError for a value it cannot take."""
    if name not in FIELDS:
        raise KeyError(f"no setting named {name!r}")
    if not is_valid(name, value):
        raise ValueError(f"{name}: {value!r} is not a valid value")


def make_options(values: dict[str, Any]) -> RestoreOptionsMessage:
    """The engine options for settings `values`; a random seed unless `seed_locked`."""
    v = values
    seed = int(v["seed"]) if v["seed_locked"] else random.randrange(2**31)
    mode = v["prompt_mode"]
    return RestoreOptionsMessage(
        model=v["model"],
        upscale=int(v["upscale"]),
        steps=int(v["steps"]),
        cfg=float(v["cfg"]),
        seed=seed,
        sampler=v["sampler"],
        prompt=v["prompt"] if mode == "prompt" and v["prompt"] else None,
        caption="none" if mode == "none" else "auto",
        color_fix=v["color_fix"],
        strength=float(v["strength"]),
        tile=v["tile"],
        device=v["device"],
        dtype=v["dtype"],
        save_map=True,
        skip_existing=bool(v["skip_existing"]),
        offload=v["offload"],
    )


def options_values(
    options: RestoreOptionsMessage, output_dir: str, prompt: str = ""
) -> dict[str, Any]:
    """The settings values of one job's `options` (the inverse of `make_options`, its seed
    locked); `prompt` is the text kept for when the prompt mode is not "prompt"."""
    if options.prompt:
        mode, prompt = "prompt", options.prompt
    else:
        mode = "none" if options.caption == "none" else "auto"
    return {
        "model": options.model,
        "upscale": options.upscale,
        "steps": options.steps,
        "sampler": options.sampler,
        "cfg": options.cfg,
        "seed": options.seed or 0,
        "seed_locked": True,
        "prompt_mode": mode,
        "prompt": prompt,
        "color_fix": options.color_fix,
        "strength": options.strength,
        "tile": options.tile,
        "device": options.device,
        "dtype": options.dtype,
        "output_dir": output_dir,
        "skip_existing": options.skip_existing,
        "offload": options.offload,
    }
