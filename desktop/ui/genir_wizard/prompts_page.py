"""Page 4, Prompts: how many scene descriptions, then a sample of those accepted and every
rejected one with the privacy filter's reasons (from prompts/rejected.jsonl).

The user may overrule the filter: keep a rejected prompt anyway, or drop an accepted one,
with a note. The decision goes to prompts/overrides.json (GenirWizard.set_prompt_override);
the stage applies it when it runs again, so the page then asks for that, and the stage's
button does it (the journal has every chunk: only the final files are written again)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.state.genir_run import read_jsonl
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls

SAMPLE = 50
INDEX_ROLE = Qt.ItemDataRole.UserRole
"""Where a list item keeps its prompt's candidate index (the overrides' key)."""
STALE = (
    "You changed the privacy filter's decisions: press the button above to write the "
    "prompts again with them (quick: nothing is screened again)."
)


class PromptsPage(Page):
    title = "4. Prompts"
    explanation = (
        "Scene descriptions for the images to generate, drawn from a built-in vocabulary of "
        "scenes, light, weather and lenses, or written by a local language model. A privacy "
        "filter rejects personal data."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.form = SettingsForm(wizard)
        self.count = self.form.spin("How many", "prompts", "count", 1, 10_000_000)
        self.form.flag("Distant people allowed", "prompts", "people")
        # "template": the built-in vocabulary; "llm": a local instruct model (a folder, or a
        # store name such as genir-llm) asked with the paper's privacy instruction.
        self.source = self.form.choice("Written by", "prompts", "source", ["template", "llm"])
        self.llm_model = self.form.text("Language model (llm)", "prompts", "llm_model")
        self.llm_model.setPlaceholderText("a model folder, or a store name such as genir-llm")
        self.source.currentTextChanged.connect(self._source_changed)
        self.layout_.addWidget(self.form)
        self.controls = StageControls(wizard, "prompts", "Write the prompts", self.form.save)
        self.layout_.addWidget(self.controls)
        lists = QHBoxLayout()
        self.accepted, self.rejected = QListWidget(), QListWidget()
        self.accepted_title, self.rejected_title = QLabel(), QLabel()
        for title, widget in (
            (self.accepted_title, self.accepted),
            (self.rejected_title, self.rejected),
        ):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(widget)
            lists.addLayout(column)
        self.layout_.addLayout(lists, 1)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Why (kept with your decision)")
        self.keep = QPushButton("Keep it anyway")
        self.drop = QPushButton("Drop it")
        self.undo = QPushButton("Take my decision back")
        self.keep.clicked.connect(lambda: self._decide(self.rejected, True))
        self.drop.clicked.connect(lambda: self._decide(self.accepted, False))
        self.undo.clicked.connect(self._take_back)
        decide = QHBoxLayout()
        decide.addWidget(self.note, 1)
        for button in (self.keep, self.drop, self.undo):
            decide.addWidget(button)
        self.layout_.addLayout(decide)
        self.stale = QLabel(STALE)
        self.stale.setWordWrap(True)
        self.stale.setStyleSheet("color: #b9770e")
        self.layout_.addWidget(self.stale)
        for widget in (self.accepted, self.rejected):
            widget.itemSelectionChanged.connect(self._selection_changed)
        self.accepted.itemSelectionChanged.connect(lambda: self._only(self.accepted))
        self.rejected.itemSelectionChanged.connect(lambda: self._only(self.rejected))
        self._selection_changed()

    def load(self) -> None:
        self.form.load()
        self._source_changed()
        self.refresh()

    def _source_changed(self) -> None:
        """The model field matters for the language model only."""
        llm = self.source.currentText() == "llm"
        self.llm_model.setEnabled(llm and self.wizard.has_setting("prompts", "llm_model"))

    def refresh(self) -> None:
        run, state = self.wizard.run, self.wizard.state
        if run is None or state is None:
            return
        accepted = read_jsonl(run / "prompts" / "prompts.jsonl", limit=SAMPLE)
        rejected = read_jsonl(run / "prompts" / "rejected.jsonl", limit=1000)
        self.accepted_title.setText(f"Accepted: {state.prompts} (the first {len(accepted)})")
        self.rejected_title.setText(f"Rejected by the privacy filter: {state.rejected_prompts}")
        overrides = self.wizard.prompt_overrides()
        self.accepted.clear()
        for record in accepted:
            self._add(self.accepted, record, str(record.get("prompt", "")), overrides)
        self.rejected.clear()
        for record in rejected:
            reasons = "; ".join(
                str(x.get("text", ""))
                for x in record.get("reasons", [])
                if x.get("kind") != "override"
            )
            text = f"{record.get('prompt', '')}\n    ✗ {reasons}" if reasons else ""
            self._add(self.rejected, record, text or str(record.get("prompt", "")), overrides)
        self.stale.setVisible(state.prompts_stale)
        self._selection_changed()

    @staticmethod
    def _add(
        widget: QListWidget,
        record: dict[str, Any],
        text: str,
        overrides: dict[str, dict[str, Any]],
    ) -> None:
        """One prompt, marked with the user's decision on it when there is one (as in
        overrides.json now, so a decision not yet applied shows too)."""
        index = record.get("index")
        override = overrides.get(str(index))
        if override is not None:
            word = "kept" if override.get("accepted") else "dropped"
            note = str(override.get("note", ""))
            text += f"\n    ✎ {word} by you" + (f": {note}" if note else "")
        item = QListWidgetItem(text)
        item.setData(INDEX_ROLE, index)
        widget.addItem(item)

    def _only(self, widget: QListWidget) -> None:
        """One selection across both lists: the buttons act on it."""
        if widget.selectedItems():
            other = self.rejected if widget is self.accepted else self.accepted
            other.clearSelection()

    def _selected(self) -> tuple[QListWidget | None, int | None]:
        for widget in (self.accepted, self.rejected):
            items = widget.selectedItems()
            if items and isinstance(items[0].data(INDEX_ROLE), int):
                return widget, items[0].data(INDEX_ROLE)
        return None, None

    def _selection_changed(self) -> None:
        widget, index = self._selected()
        self.keep.setEnabled(widget is self.rejected)
        self.drop.setEnabled(widget is self.accepted)
        self.undo.setEnabled(index is not None and str(index) in self.wizard.prompt_overrides())

    def _decide(self, widget: QListWidget, accepted: bool) -> None:
        chosen, index = self._selected()
        if chosen is widget and index is not None:
            self.wizard.set_prompt_override(index, accepted, self.note.text().strip())
            self.note.clear()

    def _take_back(self) -> None:
        _, index = self._selected()
        if index is not None:
            self.wizard.set_prompt_override(index, None)
