"""`model_action` and `export` through a real engine subprocess over stdio."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from engine_harness import EngineProcess, hello
from PIL import Image, ImageCms

ARTIST = 0x013B


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A greeted engine with an empty store of its own; (client, store folder)."""
    folder = tmp_path_factory.mktemp("engine")
    store = folder / "store"
    process = EngineProcess(["--stdio", "--store", str(store)], folder / "engine.log")
    client = process.stdio_client()
    assert hello(client)["type"] == "hello_reply"
    yield client, store
    process.stop()


def action(client, request_id: str, **fields) -> dict:
    return client.request({"type": "model_action", "id": request_id, **fields})


def export(client, request_id: str, **fields) -> dict:
    return client.request({"type": "export", "id": request_id, **fields})


def test_list_reports_models_and_devices(engine):
    client, _ = engine
    reply = action(client, "list", action="list")
    assert reply["type"] == "models_reply"
    dreamclear = next(m for m in reply["models"] if m["name"] == "dreamclear")
    assert dreamclear["status"] == "missing" and dreamclear["licence"]
    assert reply["devices"][0]["kind"] == "cpu" and reply["devices"][0]["total_memory_bytes"] > 0


def test_import_verify_remove_a_model_folder(engine, tiny_model_dir):
    client, store = engine
    done = action(client, "imp", action="import", name="tiny", path=str(tiny_model_dir))
    assert done["type"] == "model_done", done
    assert done["name"] == "tiny" and done["model"]["status"] == "installed"
    assert (store / "local" / "tiny").is_dir() and tiny_model_dir.is_dir()
    listed = action(client, "list2", action="list")["models"]
    assert any(m["name"] == "tiny" and m["status"] == "installed" for m in listed)

    verified = action(client, "ver", action="verify", name="tiny")
    assert verified["type"] == "model_done" and verified["problems"] == []
    assert verified["checked"]

    again = action(client, "imp2", action="import", name="tiny", path=str(tiny_model_dir))
    assert again["type"] == "error" and again["kind"] == "output"

    removed = action(client, "rm", action="remove", name="tiny")
    assert removed["type"] == "model_done" and removed["freed_bytes"] > 0
    assert removed["model"] is None and not (store / "local" / "tiny").exists()
    assert tiny_model_dir.is_dir()  # the source of a copy is never touched


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"action": "import", "path": "/no/such/model.safetensors"}, "bad_setting"),
        ({"action": "import"}, "bad_setting"),
        ({"action": "verify"}, "bad_setting"),
        ({"action": "remove", "name": "no-such-model"}, "bad_setting"),
        ({"action": "teleport", "name": "dreamclear"}, "bad_request"),
        ({"action": "download", "name": "dreamclear"}, "model_missing"),  # tests run offline
    ],
)
def test_model_action_errors(engine, fields, kind):
    client, _ = engine
    reply = action(client, "bad", **fields)
    assert reply["type"] == "error" and reply["kind"] == kind, reply
    assert reply["hint"]


def test_import_refuses_a_file_that_is_no_checkpoint(engine, tmp_path):
    client, _ = engine
    junk = tmp_path / "notes.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ")
    reply = action(client, "junk", action="import", path=str(junk))
    assert reply["type"] == "error" and reply["kind"] == "bad_checkpoint", reply


def test_offline_download_says_how_to_get_the_model(engine):
    client, _ = engine
    reply = action(client, "dl", action="download", name="dreamclear")
    assert reply["kind"] == "model_missing" and "offline" in reply["message"]
    assert "import" in reply["hint"]
    cancelled = action(client, "cancel", action="cancel", name="dreamclear")
    assert cancelled["type"] == "model_done" and cancelled["cancelled"] is False


@pytest.fixture
def photo(tmp_path):
    """A JPEG with EXIF (Artist) and an ICC profile, as a restore result would have."""
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[ARTIST] = "Ada"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "holiday_x4.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes(), icc_profile=icc)
    return path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_keeps_metadata_and_never_touches_the_source(engine, photo, tmp_path):
    client, _ = engine
    out = tmp_path / "out"
    out.mkdir()
    before = digest(photo)
    fields = {"source": str(photo), "destination": str(out), "format": "tiff", "bit_depth": 16}
    reply = export(client, "x1", name_pattern="{stem}_{width}x{height}_s{scale}", scale=4, **fields)
    assert reply["type"] == "exported" and reply["written"], reply
    written = out / "holiday_x4_32x24_s4.tif"
    assert reply["path"] == str(written)
    with Image.open(written) as image:
        assert image.getexif()[ARTIST] == "Ada"
        assert image.info.get("icc_profile")
        assert image.size == (32, 24)
    assert digest(photo) == before

    # Taken: a dry run says so, a plain export refuses, keep_both picks a free name.
    plan = export(client, "x2", dry_run=True, name_pattern="{stem}_{width}x{height}_s4", **fields)
    assert plan["exists"] and not plan["written"] and plan["path"] == str(written)
    taken = export(client, "x3", name_pattern="{stem}_{width}x{height}_s4", **fields)
    assert taken["type"] == "error" and taken["kind"] == "output"
    both = export(client, "x4", name_pattern="{stem}_32x24_s4", keep_both=True, **fields)
    assert both["path"] == str(out / "holiday_x4_32x24_s4 (1).tif")
    assert digest(photo) == before


def test_export_to_webp_with_quality(engine, photo, tmp_path):
    client, _ = engine
    reply = export(
        client, "w", source=str(photo), destination=str(tmp_path), format="webp", quality=60
    )
    assert reply["type"] == "exported", reply
    with Image.open(reply["path"]) as image:
        assert image.format == "WEBP"
        assert image.getexif()[ARTIST] == "Ada"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"source": "/no/such.png"}, "bad_input"),
        ({"destination": "/no/such/folder"}, "output"),
        ({"format": "gif"}, "bad_request"),  # not one of the format's values
        ({"format": "jpg", "bit_depth": 16}, "bad_setting"),
        ({"quality": 0, "format": "jpg"}, "bad_setting"),
        ({"name_pattern": "{stem}_x{scale}"}, "bad_setting"),  # no scale given
        ({"name_pattern": "{nope}"}, "bad_setting"),
        ({"name_pattern": "../{stem}"}, "bad_setting"),
    ],
)
def test_export_errors(engine, photo, tmp_path, fields, kind):
    client, _ = engine
    request = {"source": str(photo), "destination": str(tmp_path), **fields}
    reply = export(client, "bad", **request)
    assert reply["type"] == "error" and reply["kind"] == kind, reply
    assert reply["hint"]


def test_export_refuses_the_source_as_its_target(engine, photo):
    client, _ = engine
    before = digest(photo)
    request = {"source": str(photo), "destination": str(photo.parent), "format": "jpg"}
    reply = export(client, "self", overwrite=True, **request)
    assert reply["type"] == "error" and reply["kind"] == "output", reply
    assert digest(photo) == before


def test_export_destination_must_be_a_folder(engine, photo):
    client, _ = engine
    reply = export(client, "file", source=str(photo), destination=str(photo))
    assert reply["type"] == "error" and reply["kind"] == "output"
