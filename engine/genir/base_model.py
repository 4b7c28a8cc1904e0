"""The identity of an SDXL base model folder: a sha256 of its files.

Stage 2 (fine-tuning) records it in RUN/finetune/learned_prompts.json; generation refuses
learned prompts trained on another base, since their tokens and attention weights mean
nothing there. The folder's path is not its identity: a base moved or copied elsewhere is
the same base, and a folder overwritten in place with other weights is not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_files(folder: Path) -> list[Path]:
    """The regular files under `folder`, sorted, skipping hidden ones (".cache", ".git")."""
    folder = Path(folder)
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def base_model_sha256(folder: Path) -> str:
    """sha256 of the lines "relative/path<TAB>size<TAB>sha256 of the file" of every file of
    `model_files(folder)`, in that order. Reads every byte (seconds for a full SDXL)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in model_files(folder):
        with open(path, "rb") as file:
            content = hashlib.file_digest(file, "sha256").hexdigest()
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\t{path.stat().st_size}\t{content}\n".encode())
    return digest.hexdigest()
