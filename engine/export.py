"""`export` requests: write a result again in another format, name or folder.

The source is only read (`load_image`), and written out with `save_image`, so its EXIF, ICC
profile and XMP travel along, the file appears complete or not at all, nothing is replaced
without `overwrite`, and the source itself is never written onto.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import get_args

from PIL import Image

from engine import protocol as p
from engine.errors import BadInputError, BadSettingError, OutputError
from engine.imaging.io import LoadLimits, load_image, save_image, unique_output_path
from engine.path_policy import ANYWHERE, PathPolicy

SUFFIXES = {"png": ".png", "jpg": ".jpg", "tiff": ".tif", "webp": ".webp"}
PATTERN_FIELDS = ("stem", "scale", "width", "height")
EXPORT_LIMITS = LoadLimits(
    max_pixels=2 * Image.MAX_IMAGE_PIXELS, min_side=1, max_aspect=float("inf")
)
"""A result is exported whatever its shape; only Pillow's own bomb guard applies."""
_FORBIDDEN_IN_NAMES = set('/\\:*?"<>|\0')


def export_file(request: p.Export, paths: PathPolicy = ANYWHERE) -> p.Exported:
    """Do what `request` asks (see `engine.protocol.Export`); EngineError when it cannot.
    Its source and destination must pass `paths`."""
    # 1. validate
    _check_options(request)
    if not request.source:
        raise BadInputError("no file to export was named", hint="name the result to export")
    if not request.destination:
        raise OutputError("no export folder was named", hint="choose a folder to export to")
    source = _source(paths.check(request.source, "the file to export"))
    folder = _destination(paths.check(request.destination, "the export folder"))
    # 2. read (the header alone for a dry run without size fields)
    if request.dry_run and not _uses_size(request.name_pattern):
        width = height = 0
        image = None
    else:
        image = load_image(source, EXPORT_LIMITS)
        width, height = image.size
    stem = expand_pattern(
        request.name_pattern, request.stem or source.stem, request.scale, width, height
    )
    target = folder / f"{stem}{SUFFIXES[request.format]}"
    if target.exists() and target.resolve() == source.resolve():
        raise OutputError(
            f"{target}: this is the file being exported; it is never written onto",
            hint="choose another name pattern or folder",
        )
    if request.keep_both and not request.overwrite:
        target = unique_output_path(folder, stem, SUFFIXES[request.format])
    if request.dry_run:
        return p.Exported(request_id=request.id, path=str(target), exists=target.exists())
    # 3. write
    assert image is not None
    save_image(
        image.rgb,
        target,
        alpha=image.alpha,
        format=request.format,
        bit_depth=request.bit_depth,
        quality=request.quality,
        metadata=image.metadata,
        overwrite=request.overwrite,
        input_path=source,
    )
    return p.Exported(request_id=request.id, path=str(target), written=True)


def expand_pattern(pattern: str, stem: str, scale: int | None, width: int, height: int) -> str:
    """The file name (without extension) `pattern` makes; BadSettingError when it cannot."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as error:
        raise _bad_pattern(pattern, str(error)) from None
    unknown = sorted(set(names) - set(PATTERN_FIELDS))
    if unknown:
        raise _bad_pattern(pattern, f"unknown field {{{unknown[0]}}}")
    if "scale" in names and scale is None:
        raise _bad_pattern(pattern, "{scale} is used but the request gives no scale")
    try:
        name = pattern.format(stem=stem, scale=scale, width=width, height=height).strip()
    except (ValueError, IndexError, KeyError) as error:
        raise _bad_pattern(pattern, str(error)) from None
    if not name or name in (".", "..") or _FORBIDDEN_IN_NAMES & set(name):
        raise _bad_pattern(pattern, f"it makes {name!r}, which cannot name a file")
    return name


def _bad_pattern(pattern: str, problem: str) -> BadSettingError:
    return BadSettingError(
        f"name pattern {pattern!r}: {problem}",
        hint=f"use text and the fields {', '.join('{' + f + '}' for f in PATTERN_FIELDS)}",
    )


def _uses_size(pattern: str) -> bool:
    return "{width" in pattern or "{height" in pattern


def _check_options(request: p.Export) -> None:
    """The protocol checks names, not value types: refuse values no export could use."""
    for name in ("source", "destination", "name_pattern"):
        if not isinstance(getattr(request, name), str):
            raise BadSettingError(f"export: {name} must be a string")
    if request.stem is not None and not isinstance(request.stem, str):
        raise BadSettingError("export: stem must be a string or null")
    if request.format not in get_args(p.ExportFormat):
        raise BadSettingError(
            f"export: unknown format {request.format!r}",
            hint=f"use one of {', '.join(get_args(p.ExportFormat))}",
        )
    if isinstance(request.quality, bool) or not isinstance(request.quality, int):
        raise BadSettingError("export: quality must be a whole number from 1 to 100")
    if not 1 <= request.quality <= 100:
        raise BadSettingError(
            f"export: quality {request.quality} is outside 1..100", hint="use 1 to 100 (95 is fine)"
        )
    if request.bit_depth not in (8, 16) or isinstance(request.bit_depth, bool):
        raise BadSettingError(f"export: bit depth must be 8 or 16, not {request.bit_depth!r}")
    if request.bit_depth == 16 and request.format not in ("png", "tiff"):
        raise BadSettingError(
            f"export: {request.format} cannot store 16 bits per channel",
            hint="export as PNG or TIFF, or use 8 bits",
        )
    if request.scale is not None and (
        isinstance(request.scale, bool) or not isinstance(request.scale, int) or request.scale < 1
    ):
        raise BadSettingError("export: scale must be a whole number of at least 1, or null")
    for name in ("overwrite", "keep_both", "dry_run"):
        if not isinstance(getattr(request, name), bool):
            raise BadSettingError(f"export: {name} must be true or false")


def _source(source: Path) -> Path:
    if not source.exists():
        raise BadInputError(f"{source}: file not found", hint="check the path and file name")
    if not source.is_file():
        raise BadInputError(f"{source}: is not a file", hint="export an image file")
    return source


def _destination(folder: Path) -> Path:
    if not folder.is_dir():
        raise OutputError(
            f"{folder}: the destination folder does not exist"
            if not folder.exists()
            else f"{folder}: is not a folder",
            hint="choose an existing folder to export to",
        )
    return folder
