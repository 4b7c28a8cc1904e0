"""The random choices of the Real-ESRGAN second-order degradation, and the published ones.

`SEESR_SETTINGS` are the settings DreamClear trained with (reference/dreamclear.md "Published
training setup"); `dataclasses.replace` them to switch stages on or off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from engine.errors import BadSettingError

KernelType = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
KERNEL_TYPES: tuple[KernelType, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)


def _check_probs(name: str, probs: tuple[float, ...], count: int) -> None:
    if len(probs) != count or min(probs) < 0 or not math.isclose(sum(probs), 1.0):
        raise BadSettingError(
            f"{name} must be {count} probabilities summing to 1, got {probs}",
            "fix the degradation settings",
        )


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if not low <= bounds[0] <= bounds[1] <= high:
        raise BadSettingError(
            f"{name} must be an ordered pair within [{low}, {high}], got {bounds}",
            "fix the degradation settings",
        )


@dataclass(frozen=True)
class StageSettings:
    """Random choices of one degradation stage (Real-ESRGAN option names in brackets)."""

    blur_prob: float
    """Chance of blurring at all (1 in the first stage, [second_blur_prob] in the second)."""
    kernel_probs: tuple[float, ...]
    """Chances of each of `KERNEL_TYPES` [kernel_prob]."""
    blur_sigma: tuple[float, float]
    """Kernel std range in pixels of the image blurred [blur_sigma]."""
    betag_range: tuple[float, float]
    """Shape range of generalized gaussian kernels [betag_range]."""
    betap_range: tuple[float, float]
    """Shape range of plateau kernels [betap_range]."""
    sinc_prob: float
    """Chance that the blur is a sinc kernel instead [sinc_prob]."""
    resize_probs: tuple[float, float, float]
    """Chances of resizing up, down, or keeping the size [resize_prob]."""
    resize_range: tuple[float, float]
    """Smallest and largest resize factor [resize_range]."""
    noise_prob: float
    """Chance of adding noise at all (1 in the published model)."""
    gaussian_noise_prob: float
    """Chance that noise is gaussian rather than poisson [gaussian_noise_prob]."""
    noise_range: tuple[float, float]
    """Gaussian noise std range in 8-bit units [noise_range]."""
    poisson_scale_range: tuple[float, float]
    """Poisson noise scale range [poisson_scale_range]."""
    gray_noise_prob: float
    """Chance that noise is the same in all channels [gray_noise_prob]."""
    jpeg_prob: float
    """Chance of JPEG compression at all (1 in the published model)."""
    jpeg_range: tuple[int, int]
    """JPEG quality range [jpeg_range]."""

    def __post_init__(self) -> None:
        for name in (
            "blur_prob",
            "sinc_prob",
            "noise_prob",
            "gaussian_noise_prob",
            "gray_noise_prob",
            "jpeg_prob",
        ):
            _check_range(name, (getattr(self, name),) * 2, 0.0, 1.0)
        _check_probs("kernel_probs", self.kernel_probs, len(KERNEL_TYPES))
        _check_probs("resize_probs", self.resize_probs, 3)
        _check_range("blur_sigma", self.blur_sigma, 1e-3, 100.0)
        _check_range("betag_range", self.betag_range, 1e-3, 100.0)
        _check_range("betap_range", self.betap_range, 1e-3, 100.0)
        _check_range("resize_range", self.resize_range, 1e-2, 1.0e2)
        if not self.resize_range[0] <= 1.0 <= self.resize_range[1]:
            raise BadSettingError(
                f"resize_range must contain 1, got {self.resize_range}",
                "use (smallest down factor, largest up factor)",
            )
        _check_range("noise_range", self.noise_range, 0.0, 255.0)
        _check_range("poisson_scale_range", self.poisson_scale_range, 0.0, 100.0)
        _check_range("jpeg_range", self.jpeg_range, 1, 95)


@dataclass(frozen=True)
class DegradationSettings:
    """The whole second-order model; `dataclasses.replace` it to switch stages on or off."""

    first: StageSettings
    second: StageSettings
    final_sinc_prob: float
    """Chance of the sinc filter applied with the final resize [final_sinc_prob]."""
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    """Odd kernel sizes to draw from (Real-ESRGAN's hard-coded 7..21)."""

    def __post_init__(self) -> None:
        _check_range("final_sinc_prob", (self.final_sinc_prob,) * 2, 0.0, 1.0)
        if not self.kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise BadSettingError(
                f"kernel_sizes must be odd and positive, got {self.kernel_sizes}",
                "use sizes such as 7, 9, ..., 21",
            )


SEESR_SETTINGS = DegradationSettings(
    first=StageSettings(
        blur_prob=1.0,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        blur_sigma=(0.2, 3.0),
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
        sinc_prob=0.1,
        resize_probs=(0.2, 0.7, 0.1),
        resize_range=(0.15, 1.5),
        noise_prob=1.0,
        gaussian_noise_prob=0.5,
        noise_range=(1.0, 30.0),
        poisson_scale_range=(0.05, 3.0),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_range=(30, 95),
    ),
    second=StageSettings(
        blur_prob=0.8,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        blur_sigma=(0.2, 1.5),
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
        sinc_prob=0.1,
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_prob=1.0,
        gaussian_noise_prob=0.5,
        noise_range=(1.0, 25.0),
        poisson_scale_range=(0.05, 2.5),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_range=(30, 95),
    ),
    final_sinc_prob=0.8,
)
"""Real-ESRGAN second-order settings as used by SeeSR and DreamClear (scale 4)."""
