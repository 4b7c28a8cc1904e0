"""Loading every supported kind of image and writing it back with its metadata."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import make_rgb_icc
from PIL import Image

from engine.errors import BadSettingError, OutputError
from engine.imaging import save as save_module
from engine.imaging.io import (
    ImageMetadata,
    load_image,
    save_image,
    unique_output_path,
    upscale_alpha,
)

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><tiff:Orientation>6</tiff:Orientation></x:xmpmeta>'


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x9003] = "2020:01:02 03:04:05"
    return exif


def test_exif_orientation_applied_once(tmp_path: Path, gradient: np.ndarray) -> None:
    source = tmp_path / "rotated.jpg"
    Image.fromarray(gradient).save(source, exif=_exif(6), xmp=XMP, quality=100)
    loaded = load_image(source)
    assert loaded.size == (24, 40)  # orientation 6: stored 40x24, shown 24x40
    upright = np.rot90(gradient.astype(np.float32) / 255, -1)
    assert np.abs(loaded.rgb - upright).mean() < 0.02

    out = save_image(loaded.rgb, tmp_path / "out.jpg", metadata=loaded.metadata, quality=100)
    with Image.open(out) as saved:
        exif = saved.getexif()
        assert exif[0x0112] == 1
        assert exif[0x010F] == "TestCam"
        assert exif.get_ifd(0x8769)[0x9003] == "2020:01:02 03:04:05"
        assert b"<tiff:Orientation>1<" in saved.info["xmp"]
    again = load_image(out)
    assert again.size == (24, 40)
    assert np.abs(again.rgb - loaded.rgb).mean() < 0.02


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_icc_exif_xmp_round_trip(tmp_path: Path, gradient: np.ndarray, suffix: str) -> None:
    icc = make_rgb_icc()
    source = tmp_path / f"wide{suffix}"
    in_gamut = gradient // 2 + 64  # saturated wide-gamut colours clip in sRGB
    Image.fromarray(in_gamut).save(source, icc_profile=icc, exif=_exif(1), quality=100)
    loaded = load_image(source)
    assert loaded.metadata.icc_profile == icc
    assert loaded.metadata.icc_applied
    # wide-gamut pixels are not the same numbers in sRGB
    assert np.abs(loaded.rgb - in_gamut / 255).max() > 0.02

    out = save_image(loaded.rgb, tmp_path / f"out{suffix}", metadata=loaded.metadata, quality=100)
    with Image.open(out) as saved:
        assert saved.info["icc_profile"] == icc
        assert saved.getexif()[0x010F] == "TestCam"
        back = np.asarray(saved.convert("RGB"), dtype=np.float32)
    # converted back to the original profile: close to the original numbers
    assert np.abs(back - in_gamut).mean() < 1.5


def test_xmp_kept_in_png(tmp_path: Path, gradient: np.ndarray) -> None:
    source = tmp_path / "x.jpg"
    Image.fromarray(gradient).save(source, xmp=XMP)
    loaded = load_image(source)
    out = save_image(loaded.rgb, tmp_path / "x.png", metadata=loaded.metadata)
    assert load_image(out).metadata.xmp == loaded.metadata.xmp


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_16bit_round_trip(
    tmp_path: Path, rng: np.random.Generator, suffix: str, with_alpha: bool
) -> None:
    values = rng.integers(0, 65536, (12, 20, 3)).astype(np.float32) / 65535
    alpha = rng.random((12, 20), dtype=np.float32) if with_alpha else None
    icc = make_rgb_icc()
    meta = ImageMetadata(exif=_exif(1).tobytes(), icc_profile=icc, xmp=XMP)
    out = save_image(values, tmp_path / f"deep{suffix}", alpha=alpha, bit_depth=16, metadata=meta)
    loaded = load_image(out)
    assert loaded.bit_depth == 16
    assert np.abs(loaded.rgb - values).max() <= 0.5 / 65535 + 1e-7  # beyond 8-bit precision
    if with_alpha:
        assert loaded.alpha is not None
        assert np.abs(loaded.alpha - alpha).max() <= 0.5 / 65535 + 1e-7
    assert loaded.metadata.icc_profile == icc
    assert loaded.metadata.xmp == XMP.replace(b">6<", b">1<")
    with Image.open(out) as saved:
        assert saved.getexif()[0x010F] == "TestCam"


def test_16bit_grey_png(tmp_path: Path) -> None:
    grey = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    assert np.allclose(loaded.rgb[:, :, 1], grey / 65535, atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("L", 128, (128, 128, 128)),
        ("LA", (200, 100), (200, 200, 200)),
        ("RGBA", (10, 20, 30, 64), (10, 20, 30)),
    ],
)
def test_modes(tmp_path: Path, mode: str, color: object, expected: tuple[int, ...]) -> None:
    path = tmp_path / "m.png"
    Image.new(mode, (16, 16), color).save(path)  # type: ignore[arg-type]
    loaded = load_image(path)
    assert loaded.rgb.shape == (16, 16, 3) and loaded.rgb.dtype == np.float32
    assert np.allclose(loaded.rgb[0, 0] * 255, expected, atol=0.5)
    assert (loaded.alpha is None) == (mode == "L")


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=100)  # red
    loaded = load_image(path)
    assert loaded.mode == "CMYK"
    red = loaded.rgb[8, 8]
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (0, 0, 8, 16))
    path = tmp_path / "p.png"
    image.save(path, transparency=1)
    loaded = load_image(path)
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0] == 0 and loaded.alpha[0, 15] == 1
    assert np.allclose(loaded.rgb[0, 15], (1, 0, 0))


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = load_image(path)
    assert np.allclose(loaded.rgb[0, 0], (1, 0, 0), atol=0.01)


@pytest.mark.parametrize("suffix", [".bmp", ".webp", ".tif"])
def test_other_formats(tmp_path: Path, gradient: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"g{suffix}"
    Image.fromarray(gradient).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    assert np.allclose(load_image(path).rgb * 255, gradient, atol=0.5)


def test_upscale_alpha() -> None:
    alpha = np.zeros((8, 8), np.float32)
    alpha[:, 4:] = 1
    big = upscale_alpha(alpha, (32, 16))
    assert big.shape == (16, 32) and big.dtype == np.float32
    assert big.min() >= 0 and big.max() <= 1


def test_save_refuses_to_overwrite(tmp_path: Path, gradient: np.ndarray) -> None:
    rgb = gradient / 255.0
    path = save_image(rgb, tmp_path / "a.png")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        save_image(rgb * 0, path)
    assert path.read_bytes() == before
    save_image(rgb * 0, path, overwrite=True)
    assert path.read_bytes() != before


def test_save_refuses_the_input_file(tmp_path: Path, gradient: np.ndarray) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(gradient).save(source)
    before = source.read_bytes()
    with pytest.raises(OutputError, match="input file"):
        save_image(gradient / 255.0, source, overwrite=True, input_path=source)
    assert source.read_bytes() == before


def test_save_failure_leaves_nothing(
    tmp_path: Path, gradient: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: Image.Image, fp: io.BufferedWriter, *args: object, **kwargs: object) -> None:
        fp.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(OutputError, match="No space left"):
        save_image(gradient / 255.0, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_save_failure_in_16bit_encoder_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> bytes:
        raise MemoryError

    monkeypatch.setattr(save_module.sixteen_bit, "encode_png16", explode)
    with pytest.raises(MemoryError):
        save_image(np.zeros((8, 8, 3)), tmp_path / "out.png", bit_depth=16)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist") as info:
        save_image(np.zeros((8, 8, 3)), tmp_path / "nope" / "out.png")
    assert info.value.hint


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_16bit_only_for_png_and_tiff(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(BadSettingError, match="16 bits"):
        save_image(np.zeros((8, 8, 3)), tmp_path / f"out{suffix}", bit_depth=16)


def test_unknown_output_extension(tmp_path: Path) -> None:
    with pytest.raises(BadSettingError):
        save_image(np.zeros((8, 8, 3)), tmp_path / "out.gif")


def test_unique_output_path(tmp_path: Path) -> None:
    assert unique_output_path(tmp_path, "photo", "png") == tmp_path / "photo.png"
    (tmp_path / "photo.png").touch()
    (tmp_path / "photo (1).png").touch()
    assert unique_output_path(tmp_path, "photo", ".png") == tmp_path / "photo (2).png"


def test_saved_files_get_the_usual_permissions(tmp_path):
    """A result must be readable like any other new file, not private to its writer."""
    import os

    from engine.imaging.io import save_image

    previous = os.umask(0o022)
    try:
        path = save_image(np.zeros((8, 8, 3), np.float32), tmp_path / "out.png")
    finally:
        os.umask(previous)
    assert (path.stat().st_mode & 0o777) == 0o644
