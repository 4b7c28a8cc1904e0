"""Page 4, Prompts: how many scene descriptions, then a sample of those accepted and every
rejected one with the privacy filter's reasons (from prompts/rejected.jsonl)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QListWidget, QVBoxLayout, QWidget

from desktop.state.genir_run import read_jsonl
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls

SAMPLE = 50


class PromptsPage(Page):
    title = "4. Prompts"
    explanation = (
        "Scene descriptions for the images to generate, drawn from a built-in vocabulary of "
        "scenes, light, weather and lenses. A privacy filter rejects personal data."
    )

    def __init__(self, wizard, parent: QWidget | None = None) -> None:
        super().__init__(wizard, parent)
        self.form = SettingsForm(wizard)
        self.count = self.form.spin("How many", "prompts", "count", 1, 10_000_000)
        self.form.flag("Distant people allowed", "prompts", "people")
        source = QComboBox()
        source.addItems(["Built-in templates", "A local language model (none is installed)"])
        source.model().item(1).setEnabled(False)  # type: ignore[attr-defined]
        self.form.form.addRow("Written by", source)
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

    def load(self) -> None:
        self.form.load()
        self.refresh()

    def refresh(self) -> None:
        run, state = self.wizard.run, self.wizard.state
        if run is None or state is None:
            return
        accepted = read_jsonl(run / "prompts" / "prompts.jsonl", limit=SAMPLE)
        rejected = read_jsonl(run / "prompts" / "rejected.jsonl", limit=1000)
        self.accepted_title.setText(f"Accepted: {state.prompts} (the first {len(accepted)})")
        self.rejected_title.setText(f"Rejected by the privacy filter: {state.rejected_prompts}")
        self.accepted.clear()
        self.accepted.addItems([str(r.get("prompt", "")) for r in accepted])
        self.rejected.clear()
        for record in rejected:
            reasons = "; ".join(str(x.get("text", "")) for x in record.get("reasons", []))
            self.rejected.addItem(f"{record.get('prompt', '')}\n    ✗ {reasons}")
