"""`EngineModels`: the models of the engine's store as it last listed them, and which
restorer a job's `model` setting runs."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal


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

    def runs_starter(self, model: str) -> bool:
        """Whether a job whose `model` setting is `model` runs the bundled starter: "starter",
        or "auto" while the engine lists DreamClear as not installed (as
        engine/restorers.py resolves it). A folder may hold an exported starter, but
        only the engine can tell, so a path (or an unanswered list) counts as DreamClear."""
        if model == "starter":
            return True
        return model == "auto" and self.installed("dreamclear") is False
