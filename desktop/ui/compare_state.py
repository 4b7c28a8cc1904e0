"""What the compare view shows: mode, split, zoom and pan, overlays. Widgets bind to it.

Both panes draw from this one state, so their zoom and pan cannot drift apart.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QSize, Signal

MODES = ("split", "side_by_side", "toggle")
MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0


def fit_zoom(image: QSize, pane: QSize) -> float:
    """The zoom at which `image` just fits in `pane`."""
    if image.isEmpty():
        return 1.0
    return min(pane.width() / image.width(), pane.height() / image.height())


class CompareState(QObject):
    """`changed` fires on anything that needs a repaint; `viewChanged(zoom, centre)` when the
    zoom or pan moves. `centre` is the output-image point (pixels) at the middle of each pane."""

    changed = Signal()
    viewChanged = Signal(float, QPointF)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._mode = "split"
        self._split = 0.5
        self._zoom = 1.0
        self._centre = QPointF(0, 0)
        self.fitted = True
        """Whether the view follows the window size (set by fit, cleared by zooming or panning)."""
        self._showing_after = True
        self._show_tiles = False  # on request: a grid over the photo hides what it shows
        self._show_map = False
        self._map_opacity = 0.5
        self._map_block: str | int = "average"
        self._map_layer = ""

    def _set(self, name: str, value) -> None:
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.changed.emit()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode should be one of {MODES}, not {mode!r}")
        self._set("_mode", mode)

    @property
    def split(self) -> float:
        """Where the before/after line is, as a fraction of the view's width."""
        return self._split

    @split.setter
    def split(self, fraction: float) -> None:
        self._set("_split", min(1.0, max(0.0, float(fraction))))

    @property
    def zoom(self) -> float:
        """Screen pixels per output-image pixel."""
        return self._zoom

    @property
    def centre(self) -> QPointF:
        return QPointF(self._centre)

    def set_view(self, zoom: float, centre: QPointF, *, fitted: bool = False) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, float(zoom)))
        self.fitted = fitted
        if zoom == self._zoom and centre == self._centre:
            return
        self._zoom, self._centre = zoom, QPointF(centre)
        self.viewChanged.emit(zoom, QPointF(centre))
        self.changed.emit()

    @property
    def showing_after(self) -> bool:
        """Which image toggle mode shows."""
        return self._showing_after

    @showing_after.setter
    def showing_after(self, value: bool) -> None:
        self._set("_showing_after", bool(value))

    @property
    def show_tiles(self) -> bool:
        return self._show_tiles

    @show_tiles.setter
    def show_tiles(self, value: bool) -> None:
        self._set("_show_tiles", bool(value))

    @property
    def show_map(self) -> bool:
        return self._show_map

    @show_map.setter
    def show_map(self, value: bool) -> None:
        self._set("_show_map", bool(value))

    @property
    def map_opacity(self) -> float:
        return self._map_opacity

    @map_opacity.setter
    def map_opacity(self, value: float) -> None:
        self._set("_map_opacity", min(1.0, max(0.0, float(value))))

    @property
    def map_block(self) -> str | int:
        """ "average" or a MoAM block index."""
        return self._map_block

    @map_block.setter
    def map_block(self, value: str | int) -> None:
        self._set("_map_block", value)

    @property
    def map_layer(self) -> str:
        """Which values the heatmap shows (see degradation_overlay: router, magnitude, rgb, ...)."""
        return self._map_layer

    @map_layer.setter
    def map_layer(self, value: str) -> None:
        self._set("_map_layer", value)
