"""The Help menu's pages: getting started, the README and About, shown inside the app (they
work offline and wherever the app was installed from)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

GETTING_STARTED = """
# Getting started

1. **Add photos.** Drop photos or a folder on the window, or use File > Open images (Ctrl+O),
   Open folder (Ctrl+Shift+O) or Paste (Ctrl+V). Each photo becomes a row in the queue and
   shows in the middle at once.
2. **Restore.** Choose the settings on the right (model, upscale, strength…) and press
   Restore; each row shows its progress, and a running photo its preview so far.
3. **Compare.** Choose a row: drag the split line, or pick Side by side or Toggle (Space
   flips before and after). The wheel zooms, dragging pans, F fits, 1 is 100 %. Tiles shows
   the tile grid; Map shows what the model found wrong with each part of the photo.
4. **Export.** File > Export results (Ctrl+E) saves the results again as PNG, JPEG, TIFF or
   WebP, 8 or 16 bit, keeping their EXIF and colour profile; nothing is overwritten without
   asking.

Models: Engine > Models (Ctrl+M) lists what is installed and downloads DreamClear; the bundled
starter model works without it. Problems: View > Log (Ctrl+L), and Help > Copy diagnostic
report for a bug report.
"""

PACKAGES = ("dreamclear-studio", "PySide6-Essentials", "qasync")


def readme_path() -> Path | None:
    """The README of a source checkout (a wheel carries it as its metadata instead)."""
    path = Path(__file__).resolve().parents[2] / "README.md"
    return path if path.is_file() else None


def readme_text() -> str:
    path = readme_path()
    if path is not None:
        return path.read_text(encoding="utf-8")
    try:
        return importlib.metadata.metadata("dreamclear-studio").get_payload() or ""  # type: ignore[attr-defined]
    except importlib.metadata.PackageNotFoundError:
        return "The README was not found: this copy of the app was installed without it."


def about_text() -> str:
    lines = ["# DreamClear Studio", ""]
    for name in PACKAGES:
        try:
            meta = importlib.metadata.metadata(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        licence = meta.get("License-Expression") or meta.get("License") or "see its files"
        lines.append(f"- **{name}** {meta['Version']}: {licence.splitlines()[0]}")
    lines += [
        "",
        "Models carry their own licences: Engine > Models lists each one's.",
        "DreamClear is the work of Ai et al., NeurIPS 2024 "
        "(https://github.com/shallowdream204/DreamClear).",
    ]
    return "\n".join(lines)


class HelpPage(QDialog):
    """A page of Markdown in a window of its own (links open in the browser)."""

    def __init__(self, title: str, markdown: str, parent: QWidget | None = None,
                 base: Path | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(title)
        self.resize(720, 560)
        self.browser = QTextBrowser(self)
        self.browser.setOpenExternalLinks(True)
        if base is not None:
            self.browser.setSearchPaths([str(base)])  # the README's screenshots
        self.browser.setMarkdown(markdown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


def getting_started(parent: QWidget | None = None) -> HelpPage:
    return HelpPage("Getting started", GETTING_STARTED, parent)


def readme(parent: QWidget | None = None) -> HelpPage:
    path = readme_path()
    return HelpPage("README", readme_text(), parent, path.parent if path else None)


def about(parent: QWidget | None = None) -> HelpPage:
    return HelpPage("About DreamClear Studio", about_text(), parent)
