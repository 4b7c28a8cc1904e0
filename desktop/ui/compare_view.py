"""Before/after comparison of one result: split, side by side or toggle, with shared zoom and
pan, the job's tile grid and the degradation heatmap on top.

`CompareView` is the widget the main window embeds: the controls, the map legend and the hover
read-out around a `CompareCanvas` (compare_canvas.py, which paints and takes the mouse and
keys), both bound to one `CompareState`. `set_images` hands the files to a `CompareLoader`
(compare_loader.py), which decodes them in a worker thread; until they arrive the previous
images stay on screen.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.compare_canvas import CompareCanvas, TileBox
from desktop.ui.compare_loader import CompareLoader
from desktop.ui.compare_state import MODES, CompareState
from desktop.ui.degradation_overlay import AVERAGE, DegradationMap
from desktop.ui.image_pyramid import ImagePyramid
from desktop.ui.map_legend import MapLegend

log = logging.getLogger(__name__)

LAYER_NAMES = {"mix": "All channels", "router": "Router", "magnitude": "Magnitude"}
"""The layer box's names for the map's layers; a starter channel is shown by its own name."""


class CompareView(QWidget):
    """The compare widget the main window embeds (API: docs/contracts.md, "Desktop issue")."""

    viewChanged = Signal(float, QPointF)
    hoverToken = Signal(dict)
    imagesShown = Signal()
    """The images of the latest `set_images` are on screen (with the overlays set since)."""
    loadFailed = Signal(str)
    """The latest `set_images` could not be shown: what went wrong and what to check."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = CompareState(self)
        self.canvas = CompareCanvas(self.state, self)
        self.loader = CompareLoader(self)
        self.loader.loaded.connect(self._images_loaded)
        self.loader.failed.connect(self._load_failed)
        self.legend_widget = MapLegend(self)
        self._after_label = "After"
        self.hover_label = QLabel(self)
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_controls()
        self._build_layout()
        self.state.viewChanged.connect(self.viewChanged)
        self.state.changed.connect(self._sync_controls)
        self.canvas.hoverToken.connect(self._show_hover)
        self.canvas.hoverToken.connect(self.hoverToken)
        self.setFocusProxy(self.canvas)
        self._sync_controls()

    # the contract's API --------------------------------------------------------------------
    def set_images(self, before: str, after: str, *, after_label: str = "After") -> None:
        """Show `before` (the input, drawn at the after's size) against `after` (the result,
        or what stands in for it: a preview, the photo itself), named `after_label` on screen.

        Returns at once: a worker thread decodes the files. The previous images stay on screen
        (without overlays) until `imagesShown`; a file that cannot be read ends in `loadFailed`
        and a message in the view. The tile grid and map set after this call are the new
        images'; a newer call supersedes this one, whose images are then never shown.
        """
        self._after_label = after_label
        self.canvas.start_loading()
        self._fill_map_choices()
        self._sync_controls()
        self.loader.load(before, after, self.canvas.panes()[0].rect.size())

    @property
    def loading(self) -> bool:
        """Whether the images of the latest `set_images` are still being decoded."""
        return self.canvas.loading

    def clear(self) -> None:
        self.loader.cancel()
        self.canvas.clear()
        self._fill_map_choices()
        self._sync_controls()

    def set_mode(self, mode: str) -> None:
        """ "split", "side_by_side" or "toggle"."""
        self.state.mode = mode
        if self.state.fitted:
            self.canvas.fit()  # the panes' size changed

    def set_split(self, fraction: float) -> None:
        self.state.split = fraction

    def zoom_to(self, factor: float) -> None:
        """Screen pixels per output pixel (1 = 100 %), keeping the middle of the view still."""
        self.canvas.zoom_to(factor)

    def fit(self) -> None:
        self.canvas.fit()

    def zoom(self) -> float:
        return self.state.zoom

    def set_tile_grid(self, boxes: list[TileBox]) -> None:
        """The job's tiles, (top, left, height, width) in output pixels."""
        self.canvas.tile_grid = [tuple(int(v) for v in box) for box in boxes]
        self.canvas.update()

    def set_degradation_map(self, npz_path: str) -> None:
        """Load `<result>.map.npz`; raises ValueError (with what to do) when it cannot."""
        degradation_map = DegradationMap.load(npz_path)
        self.canvas.set_map(None)  # the old map cannot show the new map's layer
        self.state.map_block = AVERAGE
        self.state.map_layer = degradation_map.default_layer
        self.canvas.set_map(degradation_map)
        self._fill_map_choices()
        self._sync_controls()

    def set_overlay_visible(self, tiles: bool, map: bool) -> None:
        self.state.show_tiles = tiles
        self.state.show_map = map

    def set_map_opacity(self, opacity: float) -> None:
        self.state.map_opacity = opacity

    def set_map_view(self, block: str | int) -> None:
        """ "average" or a block index (DreamClear maps)."""
        degradation_map = self.canvas.map
        if degradation_map is not None:
            degradation_map.legend(block, self.state.map_layer)  # raises on a bad block
        self.state.map_block = block
        self.canvas.refresh_map()

    def legend(self) -> list[tuple[QColor, str]]:
        """[(colour, meaning)] of the heatmap as shown now; empty without a map."""
        legend = self._current_legend()
        return list(legend.entries) if legend else []

    # additions -----------------------------------------------------------------------------
    def set_map_layer(self, layer: str) -> None:
        """ "router" or "magnitude" (DreamClear maps); "mix" or a channel name (starter maps)."""
        degradation_map = self.canvas.map
        if degradation_map is not None:
            degradation_map.legend(self.state.map_block, layer)  # raises on a bad layer
        self.state.map_layer = layer
        self.canvas.refresh_map()

    def _current_legend(self):
        degradation_map = self.canvas.map
        if degradation_map is None:
            return None
        return degradation_map.legend(self.state.map_block, self.state.map_layer or None)

    # controls ------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.mode_box = QComboBox(self)
        for mode, label in zip(MODES, ("Split", "Side by side", "Toggle (Space)"), strict=True):
            self.mode_box.addItem(label, mode)
        self.mode_box.currentIndexChanged.connect(
            lambda: self.set_mode(self.mode_box.currentData())
        )
        # Back to the view once chosen: else Space (toggle) would open the box again.
        self.mode_box.activated.connect(lambda: self.canvas.setFocus())
        self.zoom_buttons = []
        for text, tip, action in (
            ("Fit", "Fit the window (F)", self.fit),
            ("100%", "One screen pixel per image pixel (1)", lambda: self.zoom_to(1.0)),
            ("200%", "Two screen pixels per image pixel (2)", lambda: self.zoom_to(2.0)),
        ):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(action)
            self.zoom_buttons.append(button)
        self.zoom_label = QLabel(self)
        self.zoom_label.setMinimumWidth(48)
        self.tiles_box = QCheckBox("Tiles", self)
        self.tiles_box.toggled.connect(lambda on: setattr(self.state, "show_tiles", on))
        self.map_box = QCheckBox("Map", self)
        self.map_box.toggled.connect(lambda on: setattr(self.state, "show_map", on))
        self.layer_box = QComboBox(self)
        self.layer_box.setToolTip("Which values the heatmap shows")
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.currentIndexChanged.connect(self._layer_chosen)
        self.block_box = QComboBox(self)
        self.block_box.setToolTip("The MoAM block whose map is shown, or their average")
        self.block_box.currentIndexChanged.connect(self._block_chosen)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setMaximumWidth(120)
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.opacity_slider.valueChanged.connect(lambda v: self.set_map_opacity(v / 100))

    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(self.mode_box)
        for button in self.zoom_buttons:
            bar.addWidget(button)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        bar.addWidget(self.tiles_box)
        bar.addWidget(self.map_box)
        bar.addWidget(self.layer_box)
        bar.addWidget(self.block_box)
        bar.addWidget(QLabel("Opacity", self))
        bar.addWidget(self.opacity_slider)
        footer = QHBoxLayout()
        footer.setContentsMargins(4, 2, 4, 2)
        footer.addWidget(self.legend_widget, 1)
        footer.addWidget(
            self.hover_label, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
        )
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(bar)
        column.addWidget(self.canvas, 1)
        column.addLayout(footer)

    def _fill_map_choices(self) -> None:
        degradation_map = self.canvas.map
        with _Blocked(self.layer_box, self.block_box):
            self.layer_box.clear()
            self.block_box.clear()
            if degradation_map is None:
                return
            for layer in degradation_map.layers:
                self.layer_box.addItem(LAYER_NAMES.get(layer, layer.capitalize()), layer)
            if degradation_map.kind == "dreamclear":
                self.block_box.addItem("All blocks (average)", AVERAGE)
                for index in range(degradation_map.num_blocks):
                    self.block_box.addItem(f"Block {index}", index)

    def _layer_chosen(self) -> None:
        if self.layer_box.currentData() is not None:
            self.set_map_layer(self.layer_box.currentData())

    def _block_chosen(self) -> None:
        if self.block_box.currentData() is not None:
            self.set_map_view(self.block_box.currentData())

    def _sync_controls(self) -> None:
        state, has_map = self.state, self.canvas.map is not None
        with _Blocked(
            self.mode_box, self.tiles_box, self.map_box, self.layer_box, self.block_box,
            self.opacity_slider,
        ):  # fmt: skip
            self.mode_box.setCurrentIndex(MODES.index(state.mode))
            self.tiles_box.setChecked(state.show_tiles)
            self.map_box.setChecked(state.show_map)
            self.opacity_slider.setValue(round(state.map_opacity * 100))
            if has_map:
                self.layer_box.setCurrentIndex(max(0, self.layer_box.findData(state.map_layer)))
                self.block_box.setCurrentIndex(max(0, self.block_box.findData(state.map_block)))
        self.zoom_label.setText(f"{state.zoom * 100:.0f}%")
        self.tiles_box.setEnabled(bool(self.canvas.tile_grid))
        for widget in (self.map_box, self.layer_box, self.opacity_slider):
            widget.setEnabled(has_map)
        self.block_box.setVisible(has_map and self.canvas.map.kind == "dreamclear")
        legend = self._current_legend()
        self.legend_widget.set_legend(legend if state.show_map else None)
        self.legend_widget.setVisible(legend is not None and state.show_map)

    @Slot(object, object)
    def _images_loaded(self, before: ImagePyramid, after: ImagePyramid) -> None:
        self.canvas.after_label = self._after_label
        self.canvas.show_pyramids(before, after)
        self._sync_controls()
        self.imagesShown.emit()

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        log.warning("The compare view cannot show this result: %s", message)
        self.canvas.show_failure(message)
        self._sync_controls()
        self.loadFailed.emit(message)

    def _show_hover(self, values: dict) -> None:
        degradation_map = self.canvas.map
        self.hover_label.setText(
            degradation_map.describe(values) if values and degradation_map else ""
        )


class _Blocked:
    """Silence widgets' signals while the state is copied into them."""

    def __init__(self, *widgets: QWidget):
        self.widgets = widgets

    def __enter__(self) -> None:
        self.previous = [widget.blockSignals(True) for widget in self.widgets]

    def __exit__(self, *exc) -> None:
        for widget, previous in zip(self.widgets, self.previous, strict=True):
            widget.blockSignals(previous)
