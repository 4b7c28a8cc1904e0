"""`dreamclear restore` end to end with a tiny model saved to a local folder (--model PATH).

Every bad-input case from the foundation issue: one line naming the file and the problem,
the run goes on with the other files, nothing half-written, non-zero exit.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamclear.cli import main

STEPS = ["--steps", "2", "--seed", "0"]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(["restore", *args])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def write_photo(path: Path, size=(40, 30), mode="RGB", **save_kwargs) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, **save_kwargs)
    return path


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_restores_a_photo_end_to_end(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.jpg", quality=95)
    out = tmp_path / "out"
    code, text = run_cli(
        [str(photo), "-o", str(out), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 0, text
    result = Image.open(out / "photo_x4.jpg")
    assert result.size == (160, 120)
    assert "1 restored, 0 failed" in text


def test_a_map_that_cannot_be_saved_is_a_warning_beside_a_written_result(
    tiny_model_dir, tmp_path, capsys
):
    """The image is on disk, so the run counts it restored; a re-run would only duplicate it."""
    photo = write_photo(tmp_path / "small.png", size=(24, 20))
    out = tmp_path / "out"
    out.mkdir()
    (out / "small_x2.map.npz").write_bytes(b"someone else's")
    args = [str(photo), "-o", str(out), "--model", str(tiny_model_dir), "--upscale", "2"]
    code, text = run_cli([*args, "--save-map", *STEPS], capsys)
    assert code == 0, text
    assert "1 restored, 0 failed" in text
    assert "warning:" in text and "degradation map was not saved" in text
    assert (out / "small_x2.png").is_file()
    assert (out / "small_x2.map.npz").read_bytes() == b"someone else's"


def test_upscale_factor_and_map_are_honoured(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "small.png", size=(24, 20))
    out = tmp_path / "out"
    args = [str(photo), "-o", str(out), "--model", str(tiny_model_dir), "--upscale", "2"]
    code, text = run_cli([*args, "--save-map", *STEPS], capsys)
    assert code == 0, text
    assert Image.open(out / "small_x2.png").size == (48, 40)
    maps = np.load(out / "small_x2.map.npz")
    blocks = maps["router"].shape[0]
    assert maps["router"].shape[-1] == 3 and maps["magnitude"].shape[0] == blocks
    assert np.allclose(maps["router"].sum(-1), 1.0, atol=1e-4)
    assert (out / "small_x2.map.png").exists()


def test_never_overwrites_existing_results(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo_x4.png").write_bytes(b"precious")
    code, text = run_cli(
        [str(photo), "-o", str(out), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 0, text
    assert (out / "photo_x4.png").read_bytes() == b"precious"
    assert Image.open(out / "photo_x4 (1).png").size == (160, 120)


def make_bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    good = write_photo(folder / "good.png")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    truncated = folder / "truncated.jpg"
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buffer, "JPEG")
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    tiny = write_photo(folder / "one.png", size=(1, 1))
    strip = write_photo(folder / "strip.png", size=(2000, 10))
    unknown = folder / "data.png"
    unknown.write_bytes(b"\x00\x01\x02\x03" * 64)
    return {
        "good": good,
        "empty": empty,
        "truncated": truncated,
        "text": text,
        "tiny": tiny,
        "strip": strip,
        "unknown": unknown,
    }


def test_bad_files_fail_alone_with_one_line_each(tiny_model_dir, tmp_path, capsys):
    files = make_bad_inputs(tmp_path / "in")
    out = tmp_path / "out"
    code, text = run_cli(
        [str(tmp_path / "in"), "-o", str(out), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 1
    assert "1 restored, 6 failed" in text
    for name, path in files.items():
        if name != "good":
            failure_lines = [
                line for line in text.splitlines() if str(path) in line and "failed" in line
            ]
            assert failure_lines, f"no failure line for {name}:\n{text}"
    assert "Traceback" not in text
    # Only the good file produced output, and no temporary file was left behind.
    assert outputs(out) == ["good_x4.png"]


def test_missing_input_is_reported_and_others_go_on(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    missing = tmp_path / "nowhere.jpg"
    args = [str(missing), str(photo), "-o", str(out), "--model", str(tiny_model_dir), *STEPS]
    code, text = run_cli(args, capsys)
    assert code == 1
    assert str(missing) in text and "1 restored, 1 failed" in text
    assert outputs(out) == ["photo_x4.png"]


def test_pixel_limit(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "big.png", size=(40, 30))
    out = tmp_path / "out"
    args = [str(photo), "-o", str(out), "--model", str(tiny_model_dir), "--max-megapixels", "0.001"]
    code, text = run_cli([*args, *STEPS], capsys)
    assert code == 1
    assert "big.png" in text and "limit" in text.lower()
    assert outputs(out) == []


def test_output_folder_that_cannot_be_written(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.png")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, text = run_cli(
        [str(photo), "-o", str(blocker / "out"), "--model", str(tiny_model_dir)], capsys
    )
    assert code == 2
    assert "output folder" in text and "hint:" in text


def test_corrupt_checkpoint_is_one_clear_error(tiny_model_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = next((broken / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    photo = write_photo(tmp_path / "photo.png")
    code, text = run_cli([str(photo), "-o", str(tmp_path / "out"), "--model", str(broken)], capsys)
    assert code == 2
    assert "error:" in text and "Traceback" not in text


def test_wrong_architecture_checkpoint(tiny_model_dir, tmp_path, capsys):
    import shutil

    wrong = tmp_path / "wrong-model"
    shutil.copytree(tiny_model_dir, wrong)
    # Put the VAE where the transformer should be: a valid file of another architecture.
    shutil.rmtree(wrong / "transformer")
    shutil.copytree(tiny_model_dir / "vae", wrong / "transformer")
    photo = write_photo(tmp_path / "photo.png")
    code, text = run_cli([str(photo), "-o", str(tmp_path / "out"), "--model", str(wrong)], capsys)
    assert code == 2
    assert "error:" in text and "Traceback" not in text


def test_missing_model_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path / "empty-store"))
    photo = write_photo(tmp_path / "photo.png")
    code, text = run_cli([str(photo), "-o", str(tmp_path / "out"), "--model", "dreamclear"], capsys)
    assert code == 2
    assert "dreamclear models download dreamclear" in text
    assert "Traceback" not in text


def oddity_cmyk(path: Path) -> Path:
    return write_photo(path.with_suffix(".jpg"), mode="CMYK", quality=95)


def oddity_16bit(path: Path) -> Path:
    ramp = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    target = path.with_suffix(".png")
    Image.fromarray(ramp).save(target)
    return target


def oddity_palette_transparency(path: Path) -> Path:
    image = Image.new("P", (40, 30))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    pixels = np.zeros((30, 40), np.uint8)
    pixels[:, 20:] = 1
    pixels[10:20, :] = 2
    image.putdata(pixels.flatten().tolist())
    target = path.with_suffix(".png")
    image.save(target, transparency=0)
    return target


def oddity_grayscale(path: Path) -> Path:
    return write_photo(path.with_suffix(".png"), mode="L")


def oddity_exif_rotated(path: Path) -> Path:
    target = path.with_suffix(".jpg")
    image = Image.fromarray(np.zeros((30, 40, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(target, exif=exif.tobytes())
    return target


def oddity_animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue", "green")]
    target = path.with_suffix(".gif")
    frames[0].save(target, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return target


@pytest.mark.parametrize(
    ("make", "expected_name", "expected_size", "expected_mode"),
    [
        (oddity_cmyk, "odd_x4.jpg", (160, 120), "RGB"),
        (oddity_16bit, "odd_x4.png", (160, 120), None),
        (oddity_palette_transparency, "odd_x4.png", (160, 120), "RGBA"),
        (oddity_grayscale, "odd_x4.png", (160, 120), None),
        (oddity_exif_rotated, "odd_x4.jpg", (120, 160), "RGB"),
        (oddity_animated_gif, "odd_x4.png", (160, 120), "RGB"),
    ],
    ids=["cmyk", "16-bit", "palette-transparency", "grayscale", "exif-rotated", "animated-gif"],
)
def test_valid_oddities_restore(
    tiny_model_dir, tmp_path, capsys, make, expected_name, expected_size, expected_mode
):
    source = make(tmp_path / "odd")
    out = tmp_path / "out"
    code, text = run_cli(
        [str(source), "-o", str(out), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 0, text
    result = Image.open(out / expected_name)
    assert result.size == expected_size
    if expected_mode:
        assert result.mode == expected_mode
    if source.suffix == ".png" and "16" in source.stem:
        pass
    if make is oddity_exif_rotated:
        assert result.getexif().get(0x0112, 1) == 1


def test_sixteen_bit_input_gives_sixteen_bit_output(tiny_model_dir, tmp_path, capsys):
    source = oddity_16bit(tmp_path / "deep")
    out = tmp_path / "out"
    code, text = run_cli(
        [str(source), "-o", str(out), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 0, text
    from engine.imaging import io as image_io

    loaded = image_io.load_image(out / "deep_x4.png")
    assert loaded.bit_depth == 16


def test_original_is_never_modified(tiny_model_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.jpg")
    before = photo.read_bytes()
    stat = os.stat(photo)
    code, text = run_cli(
        [str(photo), "-o", str(tmp_path), "--model", str(tiny_model_dir), *STEPS], capsys
    )
    assert code == 0, text
    assert photo.read_bytes() == before and os.stat(photo).st_mtime_ns == stat.st_mtime_ns


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["restore", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--upscale",
        "--steps",
        "--cfg",
        "--seed",
        "--sampler",
        "--prompt",
        "--caption",
        "--color-fix",
        "--strength",
        "--tile",
        "--device",
        "--dtype",
        "--save-map",
    ):
        assert option in text


def test_strength_blends_with_the_bicubic_upscale(tiny_model_dir, tmp_path, capsys):
    import torch

    from engine.pipelines.strength import upscale_input

    photo = write_photo(tmp_path / "grain.png", size=(24, 20))
    args = [str(photo), "--model", str(tiny_model_dir), "--upscale", "2", *STEPS]
    code, text = run_cli([*args, "-o", str(tmp_path / "zero"), "--strength", "0"], capsys)
    assert code == 0, text
    pixels = np.asarray(Image.open(photo), dtype=np.float32) / 255
    bicubic = upscale_input(torch.from_numpy(pixels).permute(2, 0, 1)[None], (40, 48))
    expected = bicubic[0].permute(1, 2, 0).numpy() * 255
    saved = np.asarray(Image.open(tmp_path / "zero" / "grain_x2.png"), dtype=np.float32)
    assert np.abs(saved - expected).max() <= 0.5 + 1e-3  # 8-bit rounding


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "70%"])
def test_strength_out_of_range_is_refused_before_any_work(tmp_path, capsys, value):
    photo = write_photo(tmp_path / "photo.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["restore", str(photo), "-o", str(tmp_path / "out"), "--strength", value])
    assert exit_info.value.code == 2
    text = capsys.readouterr().err
    assert "--strength" in text and "from 0 to 1" in text
    assert not (tmp_path / "out").exists()


def test_an_unexpected_failure_in_one_file_does_not_stop_the_others(
    tiny_model_dir, tmp_path, capsys, monkeypatch
):
    from engine.imaging import io as image_io

    real_load = image_io.load_image

    def load_with_a_bug(path, *args, **kwargs):
        if Path(path).name == "buggy.png":
            raise RuntimeError("simulated bug")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(image_io, "load_image", load_with_a_bug)
    buggy = write_photo(tmp_path / "buggy.png")
    good = write_photo(tmp_path / "good.png")
    out = tmp_path / "out"
    args = [str(buggy), str(good), "-o", str(out), "--model", str(tiny_model_dir), *STEPS]
    code, text = run_cli(args, capsys)
    assert code == 1
    assert "buggy.png: internal error: RuntimeError: simulated bug" in text
    assert outputs(out) == ["good_x4.png"]


def test_skip_existing_finishes_an_interrupted_batch_and_nothing_else(
    tiny_model_dir, tmp_path, capsys
):
    photos = [write_photo(tmp_path / f"p{i}.png", size=(24, 20)) for i in range(3)]
    out = tmp_path / "out"
    base = ["-o", str(out), "--model", str(tiny_model_dir), "--upscale", "2", *STEPS]
    code, text = run_cli([str(photos[0]), *base], capsys)  # the part that finished
    assert code == 0, text
    first = (out / "p0_x2.png").read_bytes()
    code, text = run_cli([*map(str, photos), *base, "--skip-existing"], capsys)
    assert code == 0, text
    assert "2 restored, 0 failed, 1 skipped" in text and "skipped " in text
    assert outputs(out) == ["p0_x2.png", "p1_x2.png", "p2_x2.png"]  # no "p0_x2 (1).png"
    assert (out / "p0_x2.png").read_bytes() == first
    with pytest.raises(SystemExit):
        main(["restore", str(photos[0]), "--skip-existing", "--overwrite"])
