"""The face detector of GenIR's filter: OpenCV's Haar cascades, which ship inside
opencv-python-headless below 5 (5.x wheels dropped them), so no weights are downloaded.

A generated image must show no identifiable person, so the detector is tuned by default to
raise false alarms rather than miss a face: three cascades (frontal "default", frontal "alt2",
profile, the profile one also on the mirrored image for faces turned the other way), OpenCV's
default 3 neighbours per detection, a histogram-equalised grey image. An image lost to a false alarm costs
one generation; a face in the dataset costs a lot. Overlapping boxes of the cascades are
merged, so one face counts once.

The cascades' licence is Intel's BSD-style "Intel License Agreement For Open Source Computer
Vision Library" (in each XML file's header); see docs/dependencies.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from engine.errors import BadSettingError

CASCADES = (
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_profileface.xml",
)
"""The default set, chosen for recall (docs/genir.md, "Stage 3: filter", has the measurements)."""
KNOWN_CASCADES = (
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_frontalface_alt_tree.xml",
    "haarcascade_profileface.xml",
)
"""The face cascades in opencv-python-headless's `cv2.data.haarcascades`."""
PROFILE = "haarcascade_profileface.xml"
"""Trained on faces turned one way: it also runs on the mirrored image."""


@dataclass(frozen=True)
class Box:
    """A detected face in the image's pixels."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class FaceDetector:
    """Haar-cascade face detection with conservative settings (see the module docstring).
    Every field changes what is found, so the filter records them all (`settings`)."""

    detection_side: int = 512
    """The image is scaled so its longer side is this many pixels before detection (faces
    smaller than `min_face` of it are not looked for). Our choice: a face under ~2% of a
    1024 px image's side is not identifiable, and 512 px keeps detection near 0.1 s."""
    min_face: float = 1 / 32
    """Smallest face looked for, as a fraction of the scaled image's shorter side (at least
    the cascades' 20-24 px window)."""
    scale_factor: float = 1.1
    """Step between the detection window's scales (smaller: slower, finds more)."""
    min_neighbors: int = 3
    """Overlapping raw detections a face needs (OpenCV's default is 3; lower finds more,
    including more false alarms)."""
    cascades: tuple[str, ...] = CASCADES
    """Which of `KNOWN_CASCADES` run; a face found by any counts."""

    def settings(self) -> dict[str, float | int | str]:
        import cv2

        return {
            "detection_side": self.detection_side,
            "min_face": self.min_face,
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "cascades": ",".join(self.cascades),
            "opencv": cv2.__version__,
        }

    @cached_property
    def _cascades(self) -> dict[str, object]:
        return {name: _load_cascade(name) for name in self.cascades}

    def detect(self, image: Image.Image) -> list[Box]:
        """The faces in `image`, in its pixel coordinates, overlapping detections merged."""
        grey, scale = self._grey(image)
        side = max(20, round(min(grey.shape) * self.min_face))
        mirrored = np.ascontiguousarray(grey[:, ::-1])
        boxes: list[tuple[int, int, int, int]] = []
        for name, cascade in self._cascades.items():
            views = [(grey, False), (mirrored, True)] if name == PROFILE else [(grey, False)]
            for view, flipped in views:
                found = cascade.detectMultiScale(
                    view,
                    scaleFactor=self.scale_factor,
                    minNeighbors=self.min_neighbors,
                    minSize=(side, side),
                )
                for x, y, w, h in found:
                    boxes.append((grey.shape[1] - x - w if flipped else x, y, w, h))
        return [
            Box(*(round(v / scale) for v in box)) for box in merge_overlapping(boxes, share=0.3)
        ]

    def count(self, image: Image.Image) -> int:
        return len(self.detect(image))

    def _grey(self, image: Image.Image) -> tuple[np.ndarray, float]:
        import cv2

        grey = image.convert("L")
        scale = min(1.0, self.detection_side / max(grey.size))
        if scale < 1.0:
            size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
            grey = grey.resize(size, Image.Resampling.BILINEAR)
        return cv2.equalizeHist(np.asarray(grey)), scale


def merge_overlapping(
    boxes: list[tuple[int, int, int, int]], *, share: float
) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) grouped when their intersection covers more than `share` of the
    smaller one; each group becomes the bounding box of its members."""
    groups: list[list[int]] = []
    for x, y, w, h in sorted(boxes, key=lambda b: -b[2] * b[3]):
        for group in groups:
            gx, gy, gw, gh = group
            across = min(x + w, gx + gw) - max(x, gx)
            down = min(y + h, gy + gh) - max(y, gy)
            if across > 0 and down > 0 and across * down > share * min(w * h, gw * gh):
                right, bottom = max(x + w, gx + gw), max(y + h, gy + gh)
                group[0], group[1] = min(x, gx), min(y, gy)
                group[2], group[3] = right - group[0], bottom - group[1]
                break
        else:
            groups.append([x, y, w, h])
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h in groups]


def _load_cascade(name: str):
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    cascade = cv2.CascadeClassifier(f"{folder}{name}") if folder else None
    if cascade is None or cascade.empty():
        raise BadSettingError(
            f"OpenCV's Haar cascade {name} is not installed (opencv {cv2.__version__})",
            hint='install opencv-python-headless below 5 (pip install "opencv-python-headless<5"):'
            " the 5.x wheels no longer ship the cascades",
        )
    return cascade
