"""Every way an input file can be wrong ends in one BadInputError naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from engine.errors import BadInputError
from engine.imaging.io import LoadLimits, load_image


def _png(path: Path, width: int = 16, height: int = 16) -> Path:
    Image.new("RGB", (width, height), (10, 20, 30)).save(path)
    return path


def _expect_bad(path: Path, fragment: str, limits: LoadLimits | None = None) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        load_image(path, limits)
    error = info.value
    assert str(path) in error.message
    assert fragment in error.message
    assert error.hint
    assert "\n" not in str(error)
    return error


def test_missing_file(tmp_path: Path) -> None:
    _expect_bad(tmp_path / "nope.png", "not found")


def test_folder_given_as_file(tmp_path: Path) -> None:
    _expect_bad(tmp_path, "folder")


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    _expect_bad(path, "empty")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, not a picture\n")
    _expect_bad(path, "not an image")


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "image.ppm"
    Image.new("RGB", (16, 16)).save(path)
    _expect_bad(path, "not supported")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, where chmod does not stop reading: fake the refusal.
    path = _png(tmp_path / "locked.png")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refuse)
    _expect_bad(path, "permission denied")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_even_if_pillow_is_told_to_accept_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    full = tmp_path / f"full{suffix}"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(full)
    data = full.read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _expect_bad(path, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for other code


def test_too_many_pixels_checked_before_decoding(tmp_path: Path) -> None:
    path = _png(tmp_path / "big.png", 100, 100)
    error = _expect_bad(path, "100x100", LoadLimits(max_pixels=5_000))
    assert "limit" in error.message


def test_bomb_warning_does_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _png(tmp_path / "wide.png", 64, 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000)  # 4096 px: a warning, not an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).size == (64, 64)


@pytest.mark.parametrize("size", [(1, 1), (4, 20)])
def test_too_small(tmp_path: Path, size: tuple[int, int]) -> None:
    _expect_bad(_png(tmp_path / "tiny.png", *size), "minimum of 8 px")


def test_extreme_aspect_ratio(tmp_path: Path) -> None:
    _expect_bad(_png(tmp_path / "strip.png", 8 * 33, 8), "33:1".replace("33", "32"))
