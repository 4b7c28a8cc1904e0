"""Page 6, Filter: the filter stage, then the kept and rejected images with their reasons. The
threshold slider recounts at once from the verdicts' stored quality scores (no engine work);
"Apply" writes it to genir.toml and filters again. A verdict can be overridden: the decision
goes to filter/overrides.json, which wins over the verdicts and outlives a new filtering."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from desktop.state.genir_run import decided
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.stage_controls import StageControls
from desktop.ui.genir_wizard.thumbnails import PATH_ROLE, ThumbnailGrid

KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class FilterPage(Page):
    title = "6. Filter"
    explanation = (
        "Each image is scored by a quality classifier (trained on your pairs) and checked for "
        "faces. Nothing is deleted: rejected images stay, with their reasons."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.verdicts: list[dict[str, Any]] = []
        self.overrides: dict[str, dict[str, Any]] = {}
        self.controls = StageControls(wizard, "filter", "Filter the images")
        self.layout_.addWidget(self.controls)
        row = QHBoxLayout()
        row.addWidget(QLabel("Quality threshold"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.valueChanged.connect(self.recount)
        self.slider.sliderReleased.connect(self.regroup)
        row.addWidget(self.slider, 1)
        self.counts = QLabel()
        row.addWidget(self.counts)
        self.apply_button = QPushButton("Apply and filter again")
        self.apply_button.clicked.connect(self.apply_threshold)
        row.addWidget(self.apply_button)
        self.layout_.addLayout(row)
        grids = QHBoxLayout()
        self.kept, self.rejected = ThumbnailGrid(72), ThumbnailGrid(72)
        self.kept_title, self.rejected_title = QLabel("Kept"), QLabel("Rejected")
        for title, grid in ((self.kept_title, self.kept), (self.rejected_title, self.rejected)):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(grid)
            grids.addLayout(column)
            grid.itemSelectionChanged.connect(lambda g=grid: self._selected(g))
        self.layout_.addLayout(grids, 1)
        override = QHBoxLayout()
        self.selection = QLabel("Select an image to override its verdict.")
        self.selection.setWordWrap(True)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Why (kept with your decision)")
        self.keep_button = QPushButton("Keep it")
        self.reject_button = QPushButton("Reject it")
        self.clear_button = QPushButton("Use the verdict")
        self.keep_button.clicked.connect(lambda: self.override(True))
        self.reject_button.clicked.connect(lambda: self.override(False))
        self.clear_button.clicked.connect(lambda: self.override(None))
        override.addWidget(self.selection, 2)
        override.addWidget(self.note, 1)
        for button in (self.keep_button, self.reject_button, self.clear_button):
            override.addWidget(button)
        self.layout_.addLayout(override)
        self._key: str | None = None
        self._grouped: tuple | None = None
        """What the grids show: (verdicts, overrides, threshold)."""
        self._enable_override()

    @property
    def threshold(self) -> float:
        return self.slider.value() / 100

    def load(self) -> None:
        """The slider starts at the threshold the verdicts were made with."""
        configured = self.wizard.setting("filter", "quality_threshold")
        if configured is not None:
            self.slider.blockSignals(True)
            self.slider.setValue(round(float(configured) * 100))
            self.slider.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        self.verdicts = self.wizard.verdicts()
        self.overrides = self.wizard.overrides()
        self.recount()
        shown = (len(self.verdicts), json.dumps(self.overrides, sort_keys=True), self.threshold)
        if shown != self._grouped:
            self.regroup()

    def kept_at(self, threshold: float) -> list[bool]:
        return [decided(v, self.overrides.get(str(v.get("key"))), threshold) for v in self.verdicts]

    def recount(self) -> None:
        kept = sum(self.kept_at(self.threshold))
        self.counts.setText(
            f"{self.threshold:.2f}: {kept} kept, {len(self.verdicts) - kept} rejected"
        )

    def regroup(self) -> None:
        """Sort the images into the two grids at the slider's threshold."""
        run = self.wizard.run
        if run is None:
            return
        self._grouped = (
            len(self.verdicts),
            json.dumps(self.overrides, sort_keys=True),
            self.threshold,
        )
        for grid in (self.kept, self.rejected):
            grid.clear_all()
        groups: dict[bool, tuple[list, list[str]]] = {True: ([], []), False: ([], [])}
        for verdict, kept in zip(self.verdicts, self.kept_at(self.threshold), strict=True):
            key = str(verdict.get("key"))
            override = self.overrides.get(key)
            if override is not None:
                label = f"{key}: yours" + (
                    f" ({override.get('note')})" if override.get("note") else ""
                )
            elif kept:
                label = f"{key}: q {float(verdict.get('quality', 0)):.2f}"
            else:
                reasons = [r.get("text", "") for r in verdict.get("reasons", [])]
                label = f"{key}: " + ("; ".join(reasons) or f"q {verdict.get('quality')}")
            groups[kept][0].append(run / str(verdict.get("image", "")))
            groups[kept][1].append(label)
        for kept, grid in ((True, self.kept), (False, self.rejected)):
            paths, labels = groups[kept]
            grid.add_paths(paths, labels)
            for index, path in enumerate(paths):
                item = grid.item_for(path)
                if item is not None:
                    item.setData(KEY_ROLE, labels[index].split(":")[0])
                    item.setToolTip(labels[index])
        self.kept_title.setText(f"Kept ({len(groups[True][0])})")
        self.rejected_title.setText(f"Rejected ({len(groups[False][0])})")

    def _selected(self, grid: ThumbnailGrid) -> None:
        items = grid.selectedItems()
        if not items:
            return
        other = self.rejected if grid is self.kept else self.kept
        other.blockSignals(True)
        other.clearSelection()
        other.blockSignals(False)
        self._key = str(items[0].data(KEY_ROLE))
        self.selection.setText(f"Image {items[0].toolTip()}\n{items[0].data(PATH_ROLE)}")
        self._enable_override()

    def _enable_override(self) -> None:
        for button in (self.keep_button, self.reject_button, self.clear_button):
            button.setEnabled(self._key is not None)

    def override(self, accepted: bool | None) -> None:
        if self._key is None:
            return
        self.wizard.set_override(self._key, accepted, self.note.text().strip())
        self.note.clear()

    def apply_threshold(self) -> None:
        why = self.wizard.save_settings({("filter", "quality_threshold"): self.threshold})
        if why:
            self.counts.setText(why)
            return
        self.wizard.start("filter")
