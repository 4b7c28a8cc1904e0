"""Which NVIDIA GPUs the machine has: driver version and compute capability.

Asked first through NVML (the driver's own library, through ctypes: nothing to install),
then through `nvidia-smi`; a machine with neither has no usable NVIDIA GPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,driver_version,compute_cap",
    "--format=csv,noheader",
]


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: tuple[int, ...]
    """The driver's version, e.g. (570, 133, 20)."""
    compute_capability: tuple[int, int]
    """e.g. (8, 6) for an RTX 30x0."""


def parse_version(text: str) -> tuple[int, ...]:
    """`570.133.20` -> (570, 133, 20); raises ValueError on anything else."""
    return tuple(int(part) for part in text.strip().split("."))


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """GPUs from the output of NVIDIA_SMI_QUERY; lines it cannot read are skipped (logged).

    Old drivers answer `compute_cap` with "[Not Supported]" or an error line; such a GPU is
    left out, which makes the choice fall back to the CPU build rather than guess."""
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.rsplit(",", 2)]
        if len(fields) != 3:
            continue
        name, driver, capability = fields
        try:
            major, minor = parse_version(capability)
            gpus.append(Gpu(name, parse_version(driver), (major, minor)))
        except ValueError:
            log.info("nvidia-smi: cannot read %r", line)
    return gpus


def query_nvidia_smi() -> list[Gpu]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("nvidia-smi failed: %s", error)
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def _load_nvml() -> ctypes.CDLL | None:
    names = ["nvml.dll"] if sys.platform == "win32" else ["libnvidia-ml.so.1"]
    found = ctypes.util.find_library("nvidia-ml")
    if found:
        names.append(found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def query_nvml() -> list[Gpu]:
    """GPUs through NVML; [] when the library is absent or any call fails."""
    nvml = _load_nvml()
    if nvml is None:
        return []
    if nvml.nvmlInit_v2() != 0:
        return []
    try:
        buffer = ctypes.create_string_buffer(96)
        if nvml.nvmlSystemGetDriverVersion(buffer, 96) != 0:
            return []
        driver = parse_version(buffer.value.decode())
        count = ctypes.c_uint()
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return []
        gpus = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            major, minor = ctypes.c_int(), ctypes.c_int()
            if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                continue
            if nvml.nvmlDeviceGetCudaComputeCapability(
                handle, ctypes.byref(major), ctypes.byref(minor)
            ):
                continue
            name = ctypes.create_string_buffer(96)
            nvml.nvmlDeviceGetName(handle, name, 96)
            gpus.append(
                Gpu(name.value.decode(errors="replace"), driver, (major.value, minor.value))
            )
        return gpus
    except (AttributeError, ValueError) as error:  # an old NVML without a _v2 call
        log.info("NVML: %s", error)
        return []
    finally:
        nvml.nvmlShutdown()


def detect_gpus() -> list[Gpu]:
    """The machine's NVIDIA GPUs (NVML, else nvidia-smi); [] when there are none."""
    return query_nvml() or query_nvidia_smi()
