"""Previews of a running job: the result so far, as a PNG on the engine's machine.

A pipeline offers `on_preview(render, output_size)` whenever it has something new to show
(the starter after every tile, DreamClear after the remover and after every decoder tile).
`JobPreviews` takes one at most every `PREVIEW_INTERVAL_S` (the first at once), scales it to
the output's aspect and at most `PREVIEW_MAX_PIXELS`, rewrites `preview.png` in the job's own
folder atomically and sends a `preview` event. The folder is removed when the job ends; a
folder left by an engine that was killed is swept by the next job of any engine. Previews are
sent from the job's thread, so none can follow the job's final event.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine import protocol as p
from engine.errors import EngineError
from engine.imaging.atomic import atomic_write, process_exists

logger = logging.getLogger(__name__)

PREVIEW_INTERVAL_S = 1.0
PREVIEW_MAX_PIXELS = 1_000_000
PREVIEW_NAME = "preview.png"


def previews_root() -> Path:
    """Where every engine of this user keeps its jobs' preview folders."""
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"dreamclear-previews-{user}"


def preview_size(height: int, width: int, max_pixels: int = PREVIEW_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) at the aspect of `height` x `width`, at most `max_pixels`."""
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def sweep_orphans(root: Path) -> None:
    """Remove the preview folders of engines that no longer run (named PID-JOB)."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        pid, _, _ = folder.name.partition("-")
        if pid.isdigit() and not process_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class JobPreviews:
    """A job's `on_preview` (see the module docstring); `close()` when the job ends."""

    def __init__(
        self,
        job_id: str,
        request_id: str | None,
        emit: Callable[[p.Event], None],
        root: Path | None = None,
        interval_s: float = PREVIEW_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.request_id = request_id
        self.emit = emit
        self.root = root or previews_root()
        self.folder = self.root / f"{os.getpid()}-{job_id}"
        self.interval_s = interval_s
        self.clock = clock
        self.last = -math.inf

    def __call__(self, render: Callable[[], object], output_size: tuple[int, int]) -> None:
        now = self.clock()
        if now - self.last < self.interval_s:
            return
        self.last = now
        try:
            self._write(render(), output_size)
        except (OSError, EngineError) as error:  # a preview is a nicety: never fail the job
            logger.warning("preview of job %s not written: %s", self.job_id, error)
            return
        height, width = output_size
        self.emit(
            p.Preview(
                request_id=self.request_id,
                job_id=self.job_id,
                path=str(self.folder / PREVIEW_NAME),
                width=width,
                height=height,
            )
        )

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # only when no other job has a folder there

    def _write(self, image, output_size: tuple[int, int]) -> None:
        import torch.nn.functional as F
        from PIL import Image

        if not self.folder.is_dir():
            sweep_orphans(self.root)
            self.folder.mkdir(parents=True, exist_ok=True)
        size = preview_size(*output_size)
        small = F.interpolate(
            image.detach().float(), size=size, mode="bilinear", antialias=True, align_corners=False
        )
        pixels = (small[0].clamp(0, 1).permute(1, 2, 0) * 255 + 0.5).byte().cpu().numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=1)
        atomic_write(
            self.folder / PREVIEW_NAME, lambda file: file.write(buffer.getvalue()), overwrite=True
        )
