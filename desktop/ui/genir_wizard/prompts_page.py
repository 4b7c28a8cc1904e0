"""Page 4, Prompts: how many scene descriptions, then a sample of those accepted and every
rejected one with the privacy filter's reasons (from prompts/rejected.jsonl)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QVBoxLayout, QWidget

from desktop.state.genir_run import read_jsonl
from desktop.ui.genir_wizard.page import Page
from desktop.ui.genir_wizard.settings_form import SettingsForm
from desktop.ui.genir_wizard.stage_controls import StageControls

SAMPLE = 50


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
        self.accepted.clear()
        self.accepted.addItems([str(r.get("prompt", "")) for r in accepted])
        self.rejected.clear()
        for record in rejected:
            reasons = "; ".join(str(x.get("text", "")) for x in record.get("reasons", []))
            self.rejected.addItem(f"{record.get('prompt', '')}\n    ✗ {reasons}")
