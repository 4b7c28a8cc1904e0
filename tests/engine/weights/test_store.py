"""The model store: status, require, download (hub faked), import, verify, remove."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import constants

from dreamclear_studio_resources import resource_path
from engine.errors import BadSettingError, CheckpointError, ModelNotInstalledError, OutputError
from engine.weights import hub
from engine.weights import store as store_module
from engine.weights.checkpoint_inspection import recognise
from engine.weights.store import ModelStore, default_root


def test_default_root_from_env_then_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path / "mine"))
    assert default_root() == tmp_path / "mine"
    assert ModelStore().root == tmp_path / "mine"
    monkeypatch.delenv("DREAMCLEAR_MODEL_STORE")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setattr(store_module.sys, "platform", "linux")
    assert default_root() == Path.home() / ".local/share/dreamclear-studio/models"
    monkeypatch.setattr(store_module.sys, "platform", "darwin")
    assert default_root() == Path.home() / "Library/Application Support/dreamclear-studio/models"
    monkeypatch.setattr(store_module.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData"))
    assert default_root() == tmp_path / "AppData" / "dreamclear-studio" / "models"


def test_empty_store_reports_everything_missing(store):
    statuses = {s.name: s for s in store.installed() if not s.entry.bundled}
    assert set(statuses) == set(store.manifest.models) - {"starter"}
    assert all(s.status == "missing" and s.size_on_disk == 0 for s in statuses.values())
    assert statuses["dreamclear"].path == store.root / "dreamclear" / "DreamClear-1024.pth"
    assert statuses["sd-vae"].missing == (
        "sd-vae-ft-ema/config.json",
        "sd-vae-ft-ema/diffusion_pytorch_model.*",
    )
    assert not store.is_installed("dreamclear")


def test_the_bundled_starter_is_installed_where_it_ships(store):
    status = store.status("starter")
    assert status.installed and status.missing == ()
    assert status.path == resource_path("models", "starter")
    assert status.size_on_disk > (status.path / "restorer.safetensors").stat().st_size
    assert store.require("starter") == status.path
    report = store.verify("starter")
    assert report.ok and "restorer.safetensors" in report.checked


def test_installed_and_partial_with_fake_files(store, fakes):
    fakes.dreamclear_pth(store.root / "dreamclear" / "DreamClear-1024.pth")
    fakes.vae_folder(store.root / "sd-vae" / "sd-vae-ft-ema")
    t5 = store.root / "t5-xxl" / "t5-v1_1-xxl"
    t5.mkdir(parents=True)
    (t5 / "config.json").write_text("{}")
    statuses = {s.name: s for s in store.installed()}
    assert statuses["dreamclear"].installed
    assert statuses["dreamclear"].size_on_disk > 0
    assert statuses["sd-vae"].installed
    assert statuses["sd-vae"].path == store.root / "sd-vae" / "sd-vae-ft-ema"
    assert statuses["t5-xxl"].status == "partial"
    assert statuses["t5-xxl"].missing == (
        "t5-v1_1-xxl/spiece.model",
        "t5-v1_1-xxl/*.bin|*.safetensors",
    )
    assert store.path_of("dreamclear") == store.root / "dreamclear" / "DreamClear-1024.pth"


def test_require_names_the_exact_commands(store, monkeypatch):
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(store.root))
    with pytest.raises(ModelNotInstalledError) as caught:
        store.require("dreamclear")
    error = caught.value
    assert "DreamClear-1024.pth" in error.message
    assert "`dreamclear models download dreamclear`" in error.hint
    assert "`dreamclear models import PATH`" in error.hint
    assert error.kind == "model_missing"


def test_require_in_a_non_default_store_adds_store_option(store):
    with pytest.raises(ModelNotInstalledError) as caught:
        store.require("swinir")
    assert f"dreamclear models --store {store.root} download swinir" in caught.value.hint


def test_unknown_model_is_a_setting_error(store):
    with pytest.raises(BadSettingError, match="Unknown model 'nope'"):
        store.require("nope")


# ------------------------------------------------------------------ download


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "check_hub_reachable", lambda: None)  # the hub itself is faked


def test_download_refused_offline_with_a_clear_error(store, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: calls.append(kw))
    with pytest.raises(ModelNotInstalledError) as caught:
        store.download("swinir")
    assert "offline" in caught.value.message
    assert "HF_HUB_OFFLINE" in caught.value.hint
    assert calls == []


def test_download_without_a_network_fails_at_once_with_one_error(store, monkeypatch, no_network):
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: calls.append(kw))
    started = time.monotonic()
    with pytest.raises(ModelNotInstalledError) as caught:
        store.download("swinir")
    assert time.monotonic() - started < 1.0 and calls == []
    assert "the model hub cannot be reached" in caught.value.message
    assert "cannot be resolved" in caught.value.message
    assert "check the network connection" in caught.value.hint


def test_download_asks_the_hub_for_the_right_files(store, monkeypatch, online, fakes):
    asked = []

    def fake_file(*, repo_id, filename, local_dir, tqdm_class=None):
        asked.append(("file", repo_id, filename, Path(local_dir)))
        return str(fakes.swinir_ckpt(Path(local_dir) / filename))

    def fake_snapshot(*, repo_id, allow_patterns, local_dir, tqdm_class=None):
        asked.append(("snapshot", repo_id, tuple(allow_patterns), Path(local_dir)))
        fakes.vae_folder(Path(local_dir) / "sd-vae-ft-ema")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert store.download("swinir").installed
    assert store.download("sd-vae").installed
    assert asked == [
        ("file", "shallowdream204/DreamClear", "general_swinir_v1.ckpt", store.root / "swinir"),
        ("snapshot", "shallowdream204/DreamClear", ("sd-vae-ft-ema/*",), store.root / "sd-vae"),
    ]


def test_download_reports_progress_through_the_callback(store, monkeypatch, online):
    def fake_file(*, repo_id, filename, local_dir, tqdm_class=None):
        bar = tqdm_class(total=10, desc=filename)
        bar.update(4)
        bar.update(6)
        bar.close()
        path = Path(local_dir) / filename
        path.write_bytes(b"x")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    updates = []
    store.download("swinir", progress=updates.append)
    assert [(u.done, u.total) for u in updates] == [(4, 10), (10, 10)]
    assert updates[0].name == "swinir" and updates[0].description == "general_swinir_v1.ckpt"


def _connect_error():
    import httpx2

    return httpx2.ConnectError("Name or service not known")


def _hub_unreachable():
    from huggingface_hub.errors import LocalEntryNotFoundError

    return LocalEntryNotFoundError("Name or service not known; not in the local cache either")


@pytest.mark.parametrize("make_error", [_connect_error, _hub_unreachable])
def test_network_error_becomes_an_engine_error(store, monkeypatch, online, make_error):
    def fail(**kwargs):
        raise make_error()

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(ModelNotInstalledError) as caught:
        store.download("swinir")
    assert "Name or service not known" in caught.value.message
    assert "again (it resumes)" in caught.value.hint


def test_download_checks_free_space(store, monkeypatch, online):
    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
    with pytest.raises(OutputError, match="Not enough disk space"):
        store.download("dreamclear")


def test_bundled_model_is_not_downloaded(store):
    with pytest.raises(BadSettingError, match="ships with the app"):
        store.download("starter")


# -------------------------------------------------------------------- import


def test_import_recognises_files_and_folders_by_contents(store, fakes, tmp_path):
    source = tmp_path / "src"
    status = store.import_path(None, fakes.dreamclear_pth(source / "renamed.bin.pth"))
    assert status.installed and status.path.name == "DreamClear-1024.pth"
    assert store.import_path("auto", fakes.swinir_ckpt(source / "x.ckpt")).installed
    assert store.import_path(None, fakes.vae_folder(source / "some-vae")).installed
    assert store.import_path(None, fakes.t5_folder(source / "t5")).installed
    assert (source / "renamed.bin.pth").exists()  # copied, not moved


def test_import_link_makes_a_symlink(store, fakes, tmp_path):
    source = fakes.swinir_ckpt(tmp_path / "a.ckpt")
    status = store.import_path("swinir", source, link=True)
    assert status.path.is_symlink() and status.path.resolve() == source
    store.remove("swinir")
    assert source.exists()  # removing a linked model keeps the user's file


def test_import_refuses_bad_paths(store, fakes, tmp_path):
    with pytest.raises(BadSettingError, match="does not exist"):
        store.import_path(None, tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"junk\.pth"):
        store.import_path(None, junk)
    swinir = fakes.swinir_ckpt(tmp_path / "s.ckpt")
    with pytest.raises(BadSettingError, match="not 'dreamclear'"):
        store.import_path("dreamclear", swinir)
    store.import_path(None, swinir)
    with pytest.raises(BadSettingError, match="already inside the model store"):
        store.import_path(None, store.path_of("swinir"))
    with pytest.raises(OutputError, match="already has"):
        store.import_path(None, swinir)


def test_import_of_our_model_folder_and_bad_names(store, tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "dreamclear-model.json").write_text("{}")
    status = store.import_path(None, folder)
    assert status.name == "my-model" and status.path == store.root / "local" / "my-model"
    assert "my-model" in [s.name for s in store.installed()]
    with pytest.raises(BadSettingError, match="cannot name a model"):
        store.import_path("../../etc", folder)
    with pytest.raises(BadSettingError, match="reserved"):
        store.import_path("dreamclear", folder)


def test_recognise_swinir_without_prefixes(fakes, tmp_path):
    assert recognise(fakes.swinir_ckpt(tmp_path / "s.pth")).name == "swinir"


# -------------------------------------------------------------------- verify


def test_verify_detects_a_truncated_file(store, fakes):
    path = fakes.dreamclear_pth(store.root / "dreamclear" / "DreamClear-1024.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = store.verify("dreamclear")
    assert not report.ok
    assert any("truncated" in p for p in report.problems)


def test_verify_checks_safetensors_headers(store, fakes):
    folder = fakes.vae_folder(store.root / "sd-vae" / "sd-vae-ft-ema")
    assert store.verify("sd-vae").problems == []
    weights = folder / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3])
    problems = store.verify("sd-vae").problems
    assert len(problems) == 1 and "truncated" in problems[0]


def test_verify_lists_missing_parts(store):
    assert "missing: general_swinir_v1.ckpt" in store.verify("swinir").problems


def test_remove_frees_the_folder(store, fakes):
    fakes.swinir_ckpt(store.root / "swinir" / "general_swinir_v1.ckpt")
    assert store.remove("swinir") > 0
    assert not (store.root / "swinir").exists()
    with pytest.raises(ModelNotInstalledError):
        store.remove("swinir")
    with pytest.raises(BadSettingError):
        store.remove("starter")
