"""Which torch build to install: a CUDA build the driver and the GPU can run, else the CPU one.

Each CUDA build of torch ships its own CUDA runtime, which needs a driver at least as new as
that CUDA release and kernels compiled for the GPU's compute capability. The table below holds
those two limits per build (from NVIDIA's CUDA release notes and PyTorch's build matrix); the
newest build both allow wins. `--torch` overrides the choice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from setup_env.gpu import Gpu

PYPI = "https://pypi.org/simple"
TORCH_INDEX = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class CudaBuild:
    name: str
    """The wheel index's name, e.g. "cu128"."""
    min_driver_linux: tuple[int, ...]
    min_driver_windows: tuple[int, ...]
    capabilities: tuple[tuple[int, int], tuple[int, int]]
    """The lowest and highest compute capability the build has kernels for (major, minor)."""


CUDA_BUILDS = (
    # CUDA 13 dropped Maxwell, Pascal and Volta.
    CudaBuild("cu130", (580, 65, 6), (580, 88), ((7, 5), (12, 1))),
    # The first with Blackwell (sm_100, sm_120); torch's 12.8 builds leave out Maxwell/Pascal.
    CudaBuild("cu128", (570, 26), (570, 65), ((7, 0), (12, 0))),
    # CUDA 12 runs on any 525+ driver (minor version compatibility).
    CudaBuild("cu126", (525, 60, 13), (527, 41), ((5, 0), (9, 0))),
)
CHOICES = ("auto", "cpu", *(build.name for build in CUDA_BUILDS))


@dataclass(frozen=True)
class TorchChoice:
    build: str
    """"cpu" or a CUDA build's name."""
    reason: str
    """Why, in words for the set-up window and log."""
    platform: str = sys.platform

    @property
    def extra_index(self) -> str | None:
        """The index torch comes from, searched before PyPI; None: PyPI's own build.

        PyPI's torch for Linux is a CUDA build (GBs of CUDA libraries), so the CPU build comes
        from PyTorch's cpu index there and on Windows; on macOS PyPI's is the (only) build."""
        if self.build == "cpu" and self.platform == "darwin":
            return None
        return f"{TORCH_INDEX}/{self.build}"


def _fits(build: CudaBuild, gpu: Gpu, platform: str) -> bool:
    minimum = build.min_driver_windows if platform == "win32" else build.min_driver_linux
    low, high = build.capabilities
    return gpu.driver >= minimum and low <= gpu.compute_capability <= high


def choose(gpus: list[Gpu], override: str = "auto", platform: str = sys.platform) -> TorchChoice:
    """The torch build for these GPUs (the first one decides), or the one the user named."""
    if override not in CHOICES:
        raise ValueError(f"--torch {override}: choose one of {', '.join(CHOICES)}")
    if override != "auto":
        return TorchChoice(override, f"chosen with --torch {override}", platform)
    if platform == "darwin":
        return TorchChoice("cpu", "macOS: PyPI's torch (Apple GPUs through MPS)", platform)
    if not gpus:
        return TorchChoice("cpu", "no NVIDIA GPU found (NVML and nvidia-smi)", platform)
    gpu = gpus[0]
    driver = ".".join(map(str, gpu.driver))
    capability = "{}.{}".format(*gpu.compute_capability)
    for build in CUDA_BUILDS:
        if _fits(build, gpu, platform):
            return TorchChoice(
                build.name,
                f"{gpu.name}: driver {driver}, compute capability {capability}",
                platform,
            )
    return TorchChoice(
        "cpu",
        f"{gpu.name} (driver {driver}, compute capability {capability}) fits no CUDA build of "
        "torch: update the NVIDIA driver to 525.60 or newer for a GPU build",
        platform,
    )
