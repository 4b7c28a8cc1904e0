"""`dreamclear models ...` through the real entry point: exit codes and what people read."""

from __future__ import annotations

import pytest
import torch

from dreamclear.cli import main
from dreamclear_studio_resources import resource_path


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(root))
    return root


def _dreamclear_pth(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "base_model.x_embedder.proj.weight": torch.zeros(2),
        "controlnet_lq.0.copied_block.attn.qkv.weight": torch.zeros(2),
    }
    torch.save({"state_dict": state}, path)
    return path


def test_list_on_an_empty_store(store, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATUS", "SIZE", "LICENCE", "LOCATION"]
    assert any(r.startswith("dreamclear") and "missing" in r and "~8.9 GB" in r for r in rows)
    assert any(r.startswith("llava") and "missing (optional)" in r for r in rows)
    assert f"store: {store}" in out


def test_list_shows_the_bundled_starter_installed_where_it_ships(store, capsys):
    assert main(["models", "list"]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("starter "))
    assert "installed (bundled)" in row and " MB " in row
    assert row.endswith(str(resource_path("models", "starter")))


def test_path_and_store_option(store, tmp_path, capsys):
    assert main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(store)
    other = tmp_path / "other"
    assert main(["models", "--store", str(other), "path"]) == 0
    assert main(["models", "path", "--store", str(other), "swinir"]) == 0
    assert capsys.readouterr().out.split() == [
        str(other),
        str(other / "swinir/general_swinir_v1.ckpt"),
    ]


def test_download_offline_is_one_error_and_a_hint(store, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "download", "dreamclear"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot download dreamclear: offline mode is on")
    assert "hint:" in err and "Traceback" not in err


def test_download_without_a_network_is_one_error_at_once(store, no_network, capsys):
    assert main(["models", "download", "dreamclear"]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "WARNING" not in err and "Retrying" not in err
    assert "the model hub cannot be reached" in err and "hint:" in err


def test_download_unknown_model(store, capsys):
    assert main(["models", "download", "nope"]) == 1
    assert "Unknown model 'nope'" in capsys.readouterr().err


def test_import_verify_remove(store, tmp_path, capsys):
    source = _dreamclear_pth(tmp_path / "downloads" / "weights.pth")
    assert main(["models", "import", str(source)]) == 0
    assert "dreamclear: copied to" in capsys.readouterr().out
    assert (store / "dreamclear" / "DreamClear-1024.pth").is_file()

    assert main(["models", "verify", "dreamclear"]) == 1  # a few bytes, not 8.87 GB
    captured = capsys.readouterr()
    assert "expected about 8.9 GB (truncated?)" in captured.out
    assert captured.err.startswith("error: some models failed verification")

    assert main(["models", "remove", "dreamclear"]) == 0
    assert "dreamclear: removed" in capsys.readouterr().out
    assert not (store / "dreamclear").exists()


def test_import_of_a_missing_path(store, tmp_path, capsys):
    assert main(["models", "import", str(tmp_path / "nothing.pth")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_verify_with_only_the_bundled_starter(store, capsys):
    assert main(["models", "verify"]) == 0
    assert capsys.readouterr().out.startswith("starter: ok")


def test_convert_without_the_checkpoint_names_the_command(store, capsys):
    assert main(["models", "convert", "--dtype", "fp16"]) == 1
    err = capsys.readouterr().err
    assert "`dreamclear models download dreamclear`" in err


def test_create_tiny_makes_a_loadable_folder(store, tmp_path, capsys):
    folder = tmp_path / "tiny"
    assert main(["models", "create-tiny", str(folder)]) == 0
    assert f"tiny model saved to {folder}" in capsys.readouterr().out
    assert (folder / "dreamclear-model.json").is_file()
    assert main(["models", "create-tiny", str(folder)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["models", "import", str(folder), "--name", "tiny", "--link"]) == 0
    assert main(["models", "list"]) == 0
    row = [r for r in capsys.readouterr().out.splitlines() if r.startswith("tiny ")]
    assert row and "installed" in row[0] and "(local)" in row[0]


def test_create_tiny_is_left_out_of_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    out = capsys.readouterr().out
    assert "download" in out and "create-tiny" not in out


@pytest.mark.parametrize(
    "header",
    [{"a": 1}, {"w": {"dtype": "F32", "shape": [2], "data_offsets": "x"}}, {"w": None}, []],
)
def test_import_of_a_crafted_safetensors_header_is_one_error(store, tmp_path, capsys, header):
    import json
    import struct

    raw = json.dumps(header).encode()
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)
    assert main(["models", "import", str(crafted)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


class _RunsCode:
    """Unpickling this would run code (it writes the marker file); weights_only refuses it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_verify_proves_a_legacy_pickle_loads_without_running_code(store, tmp_path, capsys):
    marker = tmp_path / "ran"
    for name, payload in (("safe", {"w": torch.zeros(2)}), ("evil", {"w": _RunsCode(marker)})):
        source = tmp_path / f"{name}.pth"
        torch.save(payload, source, _use_new_zipfile_serialization=False)  # pre-1.6 pickle
        folder = tmp_path / name
        folder.mkdir()
        (folder / "weights.pth").write_bytes(source.read_bytes())
    from engine.weights.checkpoint_inspection import check_file_header

    assert check_file_header(tmp_path / "safe" / "weights.pth") is None
    problem = check_file_header(tmp_path / "evil" / "weights.pth")
    assert problem and "cannot be loaded safely" in problem
    assert not marker.exists()
