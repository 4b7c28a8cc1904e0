"""`Page`: what every wizard page shares: a title, a short explanation, and `refresh`, called
when the page is shown and whenever the run folder was read again."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.state.genir_wizard import GenirWizard


class Page(QWidget):
    title = ""
    explanation = ""

    def __init__(self, wizard: GenirWizard, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.wizard = wizard
        self.layout_ = QVBoxLayout(self)
        heading = QLabel(f"<h2>{self.title}</h2>")
        about = QLabel(self.explanation)
        about.setWordWrap(True)
        self.layout_.addWidget(heading)
        self.layout_.addWidget(about)
        wizard.runChanged.connect(self._run_changed)

    def _run_changed(self) -> None:
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        """Show the run folder as it is now (called often while a stage runs: keep it cheap)."""

    def load(self) -> None:
        """Show the settings of genir.toml, then the run folder (when the page is shown)."""
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.load()
