"""Checkpoint folders: which are complete, which one `--resume latest` means, and CSV logs.

The trainer writes `OUTPUT/checkpoints/checkpoint_<n>`. A process killed while saving leaves a
half-written folder, so the trainer writes `COMPLETE_MARKER` last, atomically, and only a
folder holding it counts as a checkpoint. What else a checkpoint holds: `training_state`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from trainer.config import ConfigError

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "trainer-state.json"
CONFIG_FILE = "train-config.toml"
_CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d+)$")


def checkpoint_folders(output_dir: Path) -> list[Path]:
    """All `checkpoint_<n>` folders, complete or not, by ascending n."""
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def complete_checkpoints(output_dir: Path) -> list[Path]:
    return [folder for folder in checkpoint_folders(output_dir) if is_complete(folder)]


def resolve_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """`latest`: the newest complete checkpoint (None when there is none yet); else a PATH
    that must be a complete checkpoint folder."""
    if resume == "latest":
        found = complete_checkpoints(output_dir)
        return found[-1] if found else None
    folder = Path(resume).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"No checkpoint folder at {folder}.", hint="use --resume latest or a PATH"
        )
    if not is_complete(folder):
        raise ConfigError(
            f"{folder} is an incomplete checkpoint (the run stopped while saving it).",
            hint="resume from an earlier checkpoint, or use --resume latest",
        )
    return folder


def export_source(output_dir: Path, checkpoint: str = "latest") -> Path:
    """The checkpoint an export reads: the newest complete one ("latest") or a complete
    checkpoint folder; a run with none yet is an error that says so."""
    folder = resolve_checkpoint(Path(output_dir), checkpoint)
    if folder is None:
        from engine.errors import CheckpointError

        raise CheckpointError(
            f"No complete checkpoint in {output_dir} to export.", hint="train first"
        )
    return folder


def remove_incomplete(output_dir: Path) -> None:
    """Delete half-written checkpoint folders (what a kill while saving leaves)."""
    for folder in checkpoint_folders(output_dir):
        if not is_complete(folder):
            logger.warning("Removing incomplete checkpoint %s.", folder)
            shutil.rmtree(folder)


def remove_oldest(output_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints."""
    for folder in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(folder)


def next_checkpoint_index(output_dir: Path) -> int:
    folders = checkpoint_folders(output_dir)
    return int(_CHECKPOINT_NAME.match(folders[-1].name)[1]) + 1 if folders else 0


def write_marker(folder: Path, state: dict[str, Any]) -> None:
    """Write the completion marker atomically: a crash leaves it absent, never truncated."""
    temporary = folder / (COMPLETE_MARKER + ".tmp")
    temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, folder / COMPLETE_MARKER)


def read_marker(folder: Path) -> dict[str, Any]:
    return json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))


def saved_config_section(folder: Path, section: str) -> dict[str, Any]:
    """One table of the config a checkpoint was saved with, read as plain data (not validated:
    the folders it names, its experts or photos, may be long gone); {} if it has none."""
    raw = tomllib.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    return raw.get(section, {})


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append a row; the header is written with the first row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def truncate_csv(path: Path, max_step: int) -> None:
    """Drop rows after `max_step` (all of them with -1): what a killed run logged past its last
    checkpoint. The file is replaced in one step, so a kill meanwhile loses no row."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        kept = [row for row in reader if int(row["step"]) <= max_step]
        fields = reader.fieldnames or []
    if not kept:
        path.unlink()
        return
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(temporary, path)


def unwrapped_state(state: dict[str, Any]) -> dict[str, Any]:
    """A saved model state without the prefix of the wrapper it trained in: accelerate saves
    wrapped models (DDP: "module.", torch.compile: "_orig_mod.") as they are."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state
