"""Training photos: decoded from the config's folders, less the held-out and skipped ones,
some taken at half their size; `trainer.data` crops and degrades them."""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadSettingError
from trainer.config import TrainConfig

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class Photo:
    name: str
    pixels: np.ndarray
    """(H, W, 3) uint8 RGB."""


def load_photos(
    folder: Path,
    *,
    names: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    min_side: int = 0,
    halve: tuple[str, ...] = (),
    also_halve: tuple[str, ...] = (),
) -> list[Photo]:
    """Decode the photos in `folder` (sorted by name; only `names` if given) except those
    matching a name or fnmatch pattern of `exclude`, those matching one of `halve` at half
    their size (a 2x2 box filter), those matching one of `also_halve` twice: as they are and,
    named "<name> (half)", at half their size;
    unreadable photos and photos with a side below `min_side` (after halving) are skipped with
    a warning and counted."""
    paths = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in PHOTO_SUFFIXES
        and not any(fnmatch.fnmatchcase(p.name, pattern) for pattern in exclude)
        and (names is None or p.name in names)
    )
    photos, skipped, considered = [], 0, 0
    for path in paths:
        try:
            versions = _decoded_versions(path, halve, also_halve)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            logger.warning("Skipping %s: cannot read it (%s).", path.name, error)
            skipped, considered = skipped + 1, considered + 1
            continue
        considered += len(versions)  # a photo also taken at half counts twice
        for name, pixels in versions:
            if min(pixels.shape[:2]) < min_side:
                logger.warning(
                    "Skipping %s: %dx%d is smaller than the %d px crops.",
                    name,
                    pixels.shape[1],
                    pixels.shape[0],
                    min_side,
                )
                skipped += 1
                continue
            photos.append(Photo(name, pixels))
    if skipped:
        logger.warning("Skipped %d of %d photos in %s.", skipped, considered, folder)
    if not photos:
        raise BadSettingError(
            f"No usable photos in {folder}.",
            hint=f"add photos of at least {min_side}x{min_side} pixels",
        )
    return photos


def _decoded_versions(
    path: Path, halve: tuple[str, ...], also_halve: tuple[str, ...]
) -> list[tuple[str, np.ndarray]]:
    """The (name, pixels) a photo file is trained as: itself, its half, or both."""

    def matches(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(path.name, pattern) for pattern in patterns)

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        if matches(halve):
            return [(path.name, np.asarray(image.reduce(2)))]
        versions = [(path.name, np.asarray(image))]
        if matches(also_halve):
            versions.append((f"{path.name} (half)", np.asarray(image.reduce(2))))
        return versions


def training_photos(config: TrainConfig) -> list[Photo]:
    """The photos a starter run trains on: `data.photos` and every `data.more_photos` folder,
    less the held-out (`validation_photos`) and skipped (`skip_photos`) ones."""
    data = config.data
    return [
        photo
        for folder in (data.photos, *data.more_photos)
        for photo in load_photos(
            folder,
            exclude=(*data.validation_photos, *data.skip_photos),
            min_side=data.min_photo_side or data.crop_max,
            halve=data.halved_photos,
            also_halve=data.also_halved_photos,
        )
    ]
