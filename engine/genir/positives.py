"""GenIR's positives: the run's high-quality images (searched recursively) and their captions.

A positive is kept when its shorter side reaches `pairs.min_side`; the others are reported with
the reason. Its caption comes, first found first, from a sidecar `NAME.txt` next to the image,
the config's captions file (`relative/path.png<TAB>caption` lines), or a `Captioner` (a local
image-to-text model: engine.genir.captioner, set by `pairs.captioner`). An image with no caption and no
captioner stops the stage before any work, naming the images and the ways to caption them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from engine.errors import BadInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})

Captioner = Callable[[Path], str]
"""Writes the caption of the image at a path (e.g. a local multimodal model)."""


@dataclass(frozen=True)
class Positive:
    key: str
    """The image's path from the images folder, POSIX style: its identity in the journal."""
    path: Path
    caption: str | None
    """None until a captioner writes one."""


@dataclass(frozen=True)
class Skipped:
    key: str
    reason: str


def find_images(folder: Path) -> list[Path]:
    """The image files under `folder`, recursively, in a stable order."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def find_positives(
    folder: Path, *, min_side: int, captions_file: Path | None = None
) -> tuple[list[Positive], list[Skipped]]:
    """The usable positives under `folder` with their captions (None where none is written),
    and the images skipped, each with why."""
    listed = read_captions_file(captions_file) if captions_file else {}
    positives, skipped = [], []
    for path in find_images(folder):
        key = path.relative_to(folder).as_posix()
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError) as error:
            skipped.append(Skipped(key, f"not a readable image ({error})"))
            continue
        if min(width, height) < min_side:
            skipped.append(
                Skipped(key, f"{width}x{height} px, shorter side below pairs.min_side {min_side}")
            )
            continue
        positives.append(Positive(key, path, _sidecar(path) or listed.get(key)))
    return positives, skipped


def _sidecar(path: Path) -> str | None:
    sidecar = path.with_suffix(".txt")
    if not sidecar.is_file():
        return None
    return sidecar.read_text(encoding="utf-8").strip() or None


def read_captions_file(path: Path) -> dict[str, str]:
    """`relative/path<TAB>caption` lines, by path; blank lines are ignored."""
    captions = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, tab, caption = line.partition("\t")
        if not tab or not caption.strip():
            raise BadInputError(
                f"{path} line {number} is not `relative/path.png<TAB>caption`",
                hint="separate each image's path and caption with one tab",
            )
        captions[name.strip()] = caption.strip()
    return captions


def require_captions(positives: list[Positive], captioner: Captioner | None) -> None:
    """Raise when a positive has no caption and nothing can write one."""
    missing = [p.key for p in positives if p.caption is None]
    if not missing or captioner is not None:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise BadInputError(
        f"{len(missing)} positive images have no caption: {shown}",
        hint="add a sidecar NAME.txt next to each image, or name a captions file in the "
        "config (pairs.captions, `relative/path.png<TAB>caption` lines), or set "
        "pairs.captioner to a local captioning model (`dreamclear models download "
        'genir-captioner`, then pairs.captioner = "genir-captioner")',
    )
