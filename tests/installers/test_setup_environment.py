"""The first-run set-up with a fake uv: commands, swap on success, the old env kept on failure,
the app run inside the env, and the user's own files never touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from setup_env import launch
from setup_env.environment import (
    APP_PTH,
    Plan,
    Stamp,
    build,
    install_commands,
    needs_build,
    recover,
)
from setup_env.errors import SetupError
from setup_env.paths import Runtime, data_dir, env_python
from setup_env.pins import TORCH, TORCHVISION, UV_VERSION
from setup_env.torch_build import TorchChoice
from setup_env.uv_tool import find_uv, is_pinned_uv

ROOT = Path(__file__).resolve().parents[2]
CPU = TorchChoice("cpu", "test", "linux")


def test_a_wheelhouse_installs_everything_offline_in_one_command(tmp_path):
    commands = install_commands(
        Path("uv"), tmp_path / "env.new", "python3", Path("req.txt"), CPU, Path("/wh"), False
    )
    assert commands[0][0] == "Creating the environment"
    assert commands[0][1] == [
        "uv",
        "venv",
        "--relocatable",
        "--python",
        "python3",
        str(tmp_path / "env.new"),
    ]
    install = commands[1][1]
    assert install[:3] == ["uv", "pip", "install"]
    assert install[install.index("--no-index") :] == [
        "--no-index",
        "--find-links",
        "/wh",
        "-r",
        "req.txt",
    ]
    assert len(commands) == 2


def test_online_torch_comes_from_its_index_and_the_rest_from_pypi(tmp_path):
    choice = TorchChoice("cu128", "test", "linux")
    commands = install_commands(Path("uv"), tmp_path, "python3", Path("r.txt"), choice, None, True)
    torch = commands[1][1]
    assert torch[torch.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cu128"
    assert torch[-2:] == [f"torch=={TORCH}", f"torchvision=={TORCHVISION}"]
    assert "--reinstall" in torch  # a repair installs again
    rest = commands[2][1]
    assert rest[-2:] == ["-r", "r.txt"] and "--extra-index-url" not in rest


def plan_for(tmp_path, app_dir, **changes) -> Plan:
    return Plan(Runtime(tmp_path / "runtime"), app_dir, sys.executable, CPU, **changes)


def uv_of(app_dir: Path) -> Path:
    return app_dir.parent / "uv"


def test_a_set_up_builds_beside_and_swaps_in_with_stamp_and_app_path(tmp_path, app_dir):
    plan = plan_for(tmp_path, app_dir, wheelhouse=tmp_path)
    steps = []
    build(plan, uv_of(app_dir), lambda words, fraction: steps.append(fraction), lambda line: None)
    env = plan.runtime.env
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert not plan.runtime.env_new.exists() and not plan.runtime.env_old.exists()
    assert "--find-links" in (env / "fake-installs.txt").read_text()
    assert Stamp.read(env).torch_build == "cpu"
    assert needs_build(plan, Stamp.read(env).python) is None
    (pth,) = env.rglob(APP_PTH)
    assert pth.read_text().strip() == str(app_dir)
    ran = subprocess.run(
        [env_python(env), "-I", "-m", "dreamclear.cli", "x"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # not the checkout, whose dreamclear/ would be found first
    )
    assert ran.stdout.startswith(f"RAN {env_python(env)}")

    (env / "marker").write_text("old")
    build(plan, uv_of(app_dir), lambda *a: None, lambda line: None)
    assert not (plan.runtime.env / "marker").exists()  # a new env replaced the old one
    assert not plan.runtime.env_old.exists()


def test_a_failed_set_up_keeps_the_old_environment(tmp_path, app_dir, monkeypatch):
    plan = plan_for(tmp_path, app_dir)
    build(plan, uv_of(app_dir), lambda *a: None, lambda line: None)
    (plan.runtime.env / "marker").write_text("old")
    monkeypatch.setenv("FAKE_UV_FAIL", "1")
    lines = []
    with pytest.raises(SetupError, match="failed") as raised:
        build(plan, uv_of(app_dir), lambda *a: None, lines.append)
    assert str(plan.runtime.log) in str(raised.value) and "--repair" in str(raised.value)
    assert "no matching distribution" in " ".join(lines)
    assert "no matching distribution" in plan.runtime.log.read_text()
    assert (plan.runtime.env / "marker").read_text() == "old"
    assert not plan.runtime.env_new.exists()


def test_an_interrupted_swap_is_undone(tmp_path):
    runtime = Runtime(tmp_path)
    runtime.env_old.mkdir()
    (runtime.env_old / "marker").write_text("old")
    runtime.env_new.mkdir()  # half built
    recover(runtime)
    assert (runtime.env / "marker").exists()
    assert not runtime.env_new.exists() and not runtime.env_old.exists()


def test_changed_dependencies_or_python_need_a_new_environment(tmp_path, app_dir):
    plan = plan_for(tmp_path, app_dir)
    assert needs_build(plan, "3.11") == "no environment yet"
    build(plan, uv_of(app_dir), lambda *a: None, lambda line: None)
    python = Stamp.read(plan.runtime.env).python
    assert needs_build(plan, "3.99") == f"Python changed from {python} to 3.99"
    (app_dir / "requirements.txt").write_text("torch==2.14.1\nnumpy>=2\n")
    assert needs_build(plan, python) == "the app's dependencies changed"


def fake_uv_wheel(folder: Path, name: str) -> Path:
    wheel = folder / name
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"uv-{UV_VERSION}.data/scripts/uv", f"#!/bin/sh\necho uv {UV_VERSION}\n")
    return wheel


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for uv")
def test_uv_is_unpacked_from_the_wheelhouse(tmp_path):
    fake_uv_wheel(tmp_path, f"uv-{UV_VERSION}-py3-none-any.whl")
    uv = find_uv(tmp_path / "uvs", tmp_path / "app", tmp_path)
    assert uv == tmp_path / "uvs" / UV_VERSION / "uv" and is_pinned_uv(uv)
    assert find_uv(tmp_path / "uvs", tmp_path / "app", None) == uv  # fetched once
    with pytest.raises(SetupError, match=r"no uv .* wheel in the wheelhouse"):
        find_uv(tmp_path / "other", tmp_path / "app", tmp_path / "app")


def test_a_download_that_is_not_pypis_uv_is_refused(tmp_path, monkeypatch):
    import io

    from setup_env import uv_tool

    monkeypatch.setattr(uv_tool.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"x"))
    monkeypatch.setattr(uv_tool, "platform_key", lambda: ("linux", "x86_64"))
    with pytest.raises(SetupError, match="not the one PyPI published"):
        find_uv(tmp_path / "uvs", tmp_path / "app", None)
    assert not list((tmp_path / "uvs").rglob("*.whl"))


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "runtime" not in path.relative_to(folder).parts
    }


def test_set_up_repair_and_removal_never_touch_the_users_files(home, app_dir, capsys):
    models = data_dir() / "models" / "local" / "mine"
    models.mkdir(parents=True)
    (models / "weights.safetensors").write_bytes(b"weights")
    (home / ".config" / "DreamClear").mkdir(parents=True)
    (home / ".config" / "DreamClear" / "DreamClear Studio.conf").write_text("[General]\nx=1\n")
    (home / "Pictures" / "DreamClear").mkdir(parents=True)
    (home / "Pictures" / "DreamClear" / "photo_x4.jpg").write_bytes(b"result")
    before = snapshot(home)

    assert launch.main(["dreamclear-studio", "--setup", "--wheelhouse", str(home)], app_dir) == 0
    runtime = Runtime.default()
    assert runtime.root == home / ".local" / "share" / "dreamclear-studio" / "runtime"
    assert (
        json.loads((runtime.env / "dreamclear-env.json").read_text())["torch_build"] == "wheelhouse"
    )
    assert launch.main(["dreamclear-studio", "--setup"], app_dir) == 0
    assert "up to date" in capsys.readouterr().err
    assert launch.main(["dreamclear-studio", "--repair", "--torch", "cpu"], app_dir) == 0
    assert Stamp.read(runtime.env).torch_build == "cpu"
    assert snapshot(home) == before

    assert launch.main(["dreamclear-studio", "--remove-runtime"], app_dir) == 0
    assert not runtime.root.exists()
    assert snapshot(home) == before


def test_the_installed_command_sets_up_then_runs_in_the_environment(home, app_dir, tmp_path):
    launcher = app_dir / "launch.py"
    launcher.write_text((ROOT / "installers" / "common" / "launch.py").read_text())
    (app_dir / "setup_env").symlink_to(ROOT / "setup_env")
    environ = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(
        [sys.executable, "-I", launcher, "dreamclear", "restore", "--help"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert "Setting up DreamClear Studio" in ran.stderr  # the first run sets up on its own
    env = home / "data" / "dreamclear-studio" / "runtime" / "env"
    assert ran.stdout.strip() == f"RAN {env_python(env)} ['restore', '--help']"


def test_the_set_up_needs_only_the_standard_library():
    code = "import setup_env.launch, setup_env.progress; print('ok')"
    done = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "ok", done.stderr
