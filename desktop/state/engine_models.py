"""`EngineModels`: the models of the engine's store as it last listed them, and which
restorer a job's `model` setting runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

PARTS = frozenset({"pixart-base", "swinir", "sd-vae", "t5-xxl", "llava"})
"""Models of the manifest (resources/models/manifest.toml) that are parts of DreamClear, not
restorers a job can name."""
OFFERED = {"starter": "Starter restorer", "dreamclear": "DreamClear 1024"}
"""The manifest's restorers and their titles: offered whether installed or not (then to get
them)."""


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the Model list: a `model` setting, its words, and whether it can run."""

    value: str
    title: str
    installed: bool


class EngineModels(QObject):
    """The `models_reply` entries by name; unknown (`known` False) until the engine answers.

    The controller feeds it every `models_reply`: its own after each hello, and the model
    manager's, which lists again after every import, download or removal."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models: dict[str, dict[str, Any]] | None = None

    @property
    def known(self) -> bool:
        return self._models is not None

    def set_models(self, models: list[dict[str, Any]]) -> None:
        listed = {str(model.get("name", "")): dict(model) for model in models}
        if listed != self._models:
            self._models = listed
            self.changed.emit()

    def installed(self, name: str) -> bool | None:
        """Whether the engine lists `name` as installed; None before it has listed any."""
        if self._models is None:
            return None
        return self._models.get(name, {}).get("status") == "installed"

    def installed_folders(self) -> list[tuple[str, str]]:
        """(name, path) of every installed model the engine gave a path for: the GenIR
        wizard offers these as the SDXL base (it checks the folder itself)."""
        return [
            (name, str(entry["path"]))
            for name, entry in (self._models or {}).items()
            if entry.get("status") == "installed" and entry.get("path")
        ]

    def runs_starter(self, model: str) -> bool:
        """Whether a job whose `model` setting is `model` runs the bundled starter: "starter",
        or "auto" while the engine lists DreamClear as not installed (as
        engine/restorers.py resolves it). A folder may hold an exported starter, but
        only the engine can tell, so a path (or an unanswered list) counts as DreamClear."""
        if model == "starter":
            return True
        return model == "auto" and self.installed("dreamclear") is False

    def restorer(self, model: str) -> str:
        """The restorer a `model` setting runs, by name ("auto" resolved as the engine does)."""
        if self.runs_starter(model):
            return "starter"
        return "dreamclear" if model == "auto" else model

    def choices(self) -> list[ModelChoice]:
        """ "auto", then the restorers: installed ones first (the starter, DreamClear, imported
        models), then the manifest's not installed (to get them in the model manager). Before
        the engine answers only "auto" and the manifest's restorers, taken as installed."""
        auto = ModelChoice("auto", "auto (the best installed)", True)
        if self._models is None:
            return [auto, *(ModelChoice(name, title, True) for name, title in OFFERED.items())]
        listed = [
            (name, entry)
            for name, entry in self._models.items()
            if name
            and name not in PARTS
            and (name in OFFERED or entry.get("status") == "installed")
        ]
        for name in OFFERED:
            if name not in self._models:
                listed.append((name, {"title": OFFERED[name], "status": "missing"}))
        entries = [
            ModelChoice(
                name,
                str(entry.get("title") or OFFERED.get(name) or name),
                entry.get("status") == "installed",
            )
            for name, entry in listed
        ]
        order = {name: i for i, name in enumerate(OFFERED)}
        entries.sort(key=lambda c: (not c.installed, order.get(c.value, len(order)), c.value))
        return [auto, *entries]
