"""Models named in genir.toml: a folder (relative paths from the run folder) or a store model.

`base_model = "sdxl-base"` (or `pairs.captioner = "genir-captioner"`, ...) names a model of
the store (`dreamclear models list`); anything else is a path. A path that exists wins over a
store name, so a folder called like a model is still found.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import BadSettingError


def resolve_model(value: str | Path, run_folder: Path) -> Path:
    """The folder `value` names: the path from `run_folder` when it exists, else the installed
    store model of that name (ModelNotInstalledError naming the command when it is not
    installed), else the path (for the caller's check to report)."""
    candidate = Path(run_folder) / value
    text = str(value)
    if candidate.exists() or not text or any(sep in text for sep in "/\\"):
        return candidate
    from engine.weights.store import ModelStore

    store = ModelStore()
    try:
        store.status(text)
    except BadSettingError:
        return candidate
    return store.require(text)
