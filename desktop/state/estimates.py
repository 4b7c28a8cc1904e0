"""What a job will make and take before it starts: its output size in pixels and megabytes,
and its time, from the speed the engine showed on earlier jobs of this session.

The time of a restore grows with the output's pixels (tiles x steps), so speed is kept as
seconds per output megapixel, per restorer. Until a restorer has finished a job in this
session a default stands in (`DEFAULT_S_PER_MP`); docs/decisions.md says where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

LARGE_OUTPUT_MP = 32.0
"""Above this many output megapixels a job is flagged: slow, and a file several apps choke on.
A 2048 px photo at x4 (8192 x 4608, 37.7 MP) is over it: that is the case users met unwarned."""
PNG_BYTES_PER_PIXEL = 1.5
"""A restored photo as 8-bit RGB PNG: about half of its raw 3 bytes a pixel."""
MEASURED_FROM_MP = 1.0
"""Jobs with a smaller output teach no speed: their time is mostly what every job costs
(loading the photo, the estimator, saving), and would make a large photo look hours long."""
DEFAULT_S_PER_MP: dict[str, float] = {"starter": 4.0, "dreamclear": 60.0}
"""Seconds per output megapixel before this session has measured a restorer: the starter on
a CPU, DreamClear on a mid-range GPU (50 steps, tiled). A restorer not named here (an
imported model) counts as DreamClear."""


@dataclass(frozen=True)
class Estimate:
    width: int
    height: int
    seconds: float
    measured: bool
    """From this session's jobs (else a default)."""

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def megabytes(self) -> float:
        return self.width * self.height * PNG_BYTES_PER_PIXEL / 1e6

    @property
    def large(self) -> bool:
        return self.megapixels > LARGE_OUTPUT_MP


def output_size(input_size: tuple[int, int], upscale: int) -> tuple[int, int]:
    """The result's size: exactly `upscale` x the photo (as the engine writes it)."""
    return input_size[0] * upscale, input_size[1] * upscale


class SpeedBook(QObject):
    """Seconds per output megapixel of each restorer, as measured by the jobs of this session
    (the latest job counts most: it runs on the machine and settings in use now)."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._s_per_mp: dict[str, float] = {}

    def record(self, restorer: str, output: tuple[int, int], seconds: float) -> None:
        megapixels = output[0] * output[1] / 1e6
        if megapixels < MEASURED_FROM_MP or seconds <= 0:
            return
        speed = seconds / megapixels
        old = self._s_per_mp.get(restorer)
        self._s_per_mp[restorer] = speed if old is None else (old + 2 * speed) / 3
        self.changed.emit()

    def estimate(self, restorer: str, input_size: tuple[int, int], upscale: int) -> Estimate:
        width, height = output_size(input_size, upscale)
        measured = self._s_per_mp.get(restorer)
        speed = measured or DEFAULT_S_PER_MP.get(restorer, DEFAULT_S_PER_MP["dreamclear"])
        return Estimate(width, height, speed * width * height / 1e6, measured is not None)
