"""The Speech panel: a prompt, the declared parameters as widgets, the results."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem

from creative_studio.core.jobs import Job
from creative_studio.ui.panel import PluginPanel
from creative_studio.ui.widgets import SeedField


class SpeechPanel(PluginPanel):
    def __init__(self, context, manifest, parent=None) -> None:
        super().__init__(context, manifest, parent)
        self.model_choices()
        self.prompt = self.prompt_box = QLineEdit()
        self.seed_field = SeedField()
        self.say_button, _stop = self.run_buttons("Say", self.say)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Text", self.prompt)
        self.param_rows(form, "pitch", "rate", "voice", "whisper")
        form.addRow("Seed", self.seed_field)
        side = self.side_panel(form, self.say_button, self.stop_button)
        self.results = QListWidget()
        self.info = QLabel()
        self.set_sides(side, self.results)

    def say(self) -> list[Job]:
        return self.submit_variations("say", self.param_values("say"), "speech",
                                      self.prompt.text())

    def on_progress(self, job, fraction, eta, preview) -> None:
        self.info.setText(f"Speaking… {fraction * 100:.0f}%")

    def on_result(self, job: Job) -> None:
        entry = QListWidgetItem(job.result.title)
        entry.setData(Qt.ItemDataRole.UserRole, job.item_id)
        self.results.addItem(entry)
