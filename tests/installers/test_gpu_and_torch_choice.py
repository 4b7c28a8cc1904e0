"""GPU detection from nvidia-smi's output and the torch build chosen for it."""

from __future__ import annotations

import os

import pytest

from setup_env.gpu import Gpu, parse_nvidia_smi, query_nvidia_smi
from setup_env.torch_build import choose

SMI = """NVIDIA GeForce RTX 3090, 570.133.20, 8.6
Tesla K80, 470.256.02, [Not Supported]
NVIDIA RTX A6000, 570.133.20, 8.6
"""


def test_nvidia_smi_output_is_read_and_unreadable_lines_are_skipped():
    gpus = parse_nvidia_smi(SMI)
    assert gpus[0] == Gpu("NVIDIA GeForce RTX 3090", (570, 133, 20), (8, 6))
    assert [gpu.name for gpu in gpus] == ["NVIDIA GeForce RTX 3090", "NVIDIA RTX A6000"]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate") == []


def test_a_name_with_commas_keeps_its_commas():
    assert parse_nvidia_smi("Odd, Name, 580.65.06, 12.0")[0].name == "Odd, Name"


def test_nvidia_smi_is_run_with_the_query(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\nprintf 'NVIDIA L4, 580.82.07, 8.9\\n'\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert query_nvidia_smi() == [Gpu("NVIDIA L4", (580, 82, 7), (8, 9))]
    assert "--query-gpu=name,driver_version,compute_cap" in (tmp_path / "args").read_text()


def test_no_nvidia_smi_means_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert query_nvidia_smi() == []


@pytest.mark.parametrize(
    ("driver", "capability", "platform", "build"),
    [
        ((580, 82, 7), (8, 9), "linux", "cu130"),  # a current driver: the newest build
        ((570, 133, 20), (8, 6), "linux", "cu128"),
        ((570, 133, 20), (12, 0), "linux", "cu128"),  # Blackwell needs 12.8 or newer
        ((565, 57, 1), (12, 0), "linux", "cpu"),  # ... and its driver; 12.6 has no sm_120
        ((560, 35, 3), (8, 6), "linux", "cu126"),
        ((535, 183, 1), (7, 5), "linux", "cu126"),  # CUDA 12's minor version compatibility
        ((580, 82, 7), (6, 1), "linux", "cu126"),  # Pascal: only the 12.6 build has kernels
        ((470, 256, 2), (7, 5), "linux", "cpu"),  # too old a driver for any build
        ((570, 40), (8, 6), "win32", "cu126"),  # Windows' thresholds are its own
        ((570, 65), (8, 6), "win32", "cu128"),
    ],
)
def test_the_newest_build_the_driver_and_gpu_allow_is_chosen(driver, capability, platform, build):
    choice = choose([Gpu("GPU", driver, capability)], platform=platform)
    assert choice.build == build
    if build != "cpu":
        assert choice.extra_index == f"https://download.pytorch.org/whl/{build}"


def test_without_a_gpu_the_cpu_build_comes_from_pytorchs_cpu_index():
    choice = choose([], platform="linux")
    assert choice.build == "cpu"
    assert "no NVIDIA GPU" in choice.reason
    assert choice.extra_index == "https://download.pytorch.org/whl/cpu"


def test_an_old_driver_is_told_to_update():
    assert (
        "update the NVIDIA driver" in choose([Gpu("K", (470, 1), (7, 5))], platform="linux").reason
    )


def test_the_user_overrides_the_choice_and_a_wrong_name_is_refused():
    gpu = Gpu("GPU", (580, 82, 7), (8, 9))
    assert choose([gpu], "cpu").build == "cpu"
    assert choose([], "cu126").build == "cu126"
    with pytest.raises(ValueError, match="choose one of auto, cpu, cu130, cu128, cu126"):
        choose([gpu], "cu999")


def test_macos_takes_pypis_torch():
    choice = choose([Gpu("GPU", (580, 82, 7), (8, 9))], platform="darwin")
    assert (choice.build, choice.extra_index) == ("cpu", None)
    assert "macOS" in choice.reason
