"""The identity of an SDXL base model folder, as stage 2 records it in learned_prompts.json.

Generation refuses learned prompts trained on another base, since their tokens and attention
weights mean nothing there. The identity is a fingerprint, not a hash of the weights (hashing
7 GB at every start would cost a minute): sha256 over model_index.json, then for every file
(sorted by path) its relative path, and its bytes for a JSON file or its size for any other.
Re-saved or swapped weights change sizes or configs in practice; a copy elsewhere, or the folder
moved, is the same base. Stage 2's writer (engine.genir.finetune_output) and the loader
(engine.genir.learned_prompts) both use this one definition.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def base_model_sha256(folder: Path | str) -> str:
    """The fingerprint of the base folder `folder` (see the module docstring)."""
    base = Path(folder)
    digest = hashlib.sha256()
    digest.update((base / "model_index.json").read_bytes())
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(
            path.read_bytes() if path.suffix == ".json" else str(path.stat().st_size).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()
