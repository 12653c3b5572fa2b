"""The Text panel: an instruction box, a document editor and the model's settings."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.jobs import Job, JobState
from creative_studio.core.project import Item, ProjectStore
from creative_studio.ui.panel import PluginPanel
from creative_studio.ui.widgets import SeedField

from .generator import DEFAULTS, PRESETS


class TextPanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self._stream: dict[str, Any] | None = None  # the job whose tokens go in the editor
        self._batch: list[int] = []
        self._last_range: tuple[int, int] | None = None  # last generated text in the editor

        # -- settings column ---------------------------------------------------------
        self.model = self.model_choices()
        self.model.setMinimumContentsLength(18)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        add_model = QToolButton()
        add_model.setText("+")
        add_model.setToolTip("Use another model: a transformers folder, a GGUF file or a "
                             "Hugging Face id")
        menu = QMenu(add_model)
        menu.addAction("Model folder…", self._choose_folder)
        menu.addAction("GGUF file…", self._choose_gguf)
        menu.addAction("Hugging Face id…", self._choose_hub)
        add_model.setMenu(menu)
        add_model.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(add_model)

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(self._apply_preset)
        self.system = QPlainTextEdit()
        self.system.setPlaceholderText("System prompt (optional): who the assistant is, "
                                       "the tone, the audience…")
        self.system.setFixedHeight(70)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(DEFAULTS["temperature"])
        self.temperature.setToolTip("0 = always the most likely word; higher = more surprising")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(DEFAULTS["top_p"])
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 4096)
        self.max_tokens.setValue(DEFAULTS["max_tokens"])
        self.seed_field = SeedField()
        self.seed, self.seed_mode = self.seed_field.seed, self.seed_field.mode
        self.alternatives = QSpinBox()
        self.alternatives.setRange(1, 8)
        self.alternatives.setToolTip("How many versions to write; the first streams into the "
                                     "editor, the others are kept as branches in the history")
        self.use_context = QCheckBox("Give the document to the model as context")

        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("Preset", self.preset)
        form.addRow("System", self.system)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed_field)
        form.addRow("Alternatives", self.alternatives)
        form.addRow(self.use_context)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addLayout(form)
        side_layout.addStretch(1)

        # -- writing area ------------------------------------------------------------
        self.instruction = QPlainTextEdit()
        self.instruction.setPlaceholderText("Instruction or prompt, e.g. “Write an opening "
                                            "paragraph for a mystery set in Lisbon.”")
        self.instruction.setFixedHeight(80)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Write from the instruction at the cursor (Ctrl+Return)")
        self.continue_button = QPushButton("Continue from cursor")
        self.continue_button.setToolTip("Continue the document from the cursor "
                                        "(Ctrl+Shift+Return)")
        self.rewrite_button = QPushButton("Rewrite selection")
        self.rewrite_button.setToolTip("Rewrite the selected text following the instruction")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing and keep what was written (Esc)")
        self.stop_button.setEnabled(False)
        self.generate_button.clicked.connect(self.generate)
        self.continue_button.clicked.connect(self.continue_text)
        self.rewrite_button.clicked.connect(self.rewrite)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        for button in (self.generate_button, self.continue_button, self.rewrite_button,
                       self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Your document. Generated text appears at the cursor.")
        font = self.editor.font()
        font.setPointSize(font.pointSize() + 2)
        self.editor.setFont(font)
        self.editor.textChanged.connect(self._update_count)
        self.word_count = QLabel("0 words")
        self.status = QLabel("")
        footer = QHBoxLayout()
        footer.addWidget(self.word_count)
        footer.addStretch(1)
        footer.addWidget(self.status)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.addWidget(self.instruction)
        main_layout.addLayout(buttons)
        main_layout.addWidget(self.message)
        main_layout.addWidget(self.editor, 1)
        main_layout.addLayout(footer)

        self.set_sides(side, main, 300)

        QShortcut(QKeySequence("Ctrl+Return"), self, self.generate)
        QShortcut(QKeySequence("Ctrl+Shift+Return"), self, self.continue_text)
        QShortcut(QKeySequence("Escape"), self, self.stop)

    # -- models -------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a transformers model folder")
        if path:
            self.add_model_ref(path, f"Folder: {path}")

    def _choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "",
                                              "GGUF models (*.gguf)")
        if path:
            self.add_model_ref(path, f"GGUF: {path}")

    def _choose_hub(self) -> None:
        self.ask_hub_id("HuggingFaceTB/SmolLM2-360M-Instruct")

    def _apply_preset(self, name: str) -> None:
        preset = PRESETS.get(name)
        if preset:
            self.temperature.setValue(preset["temperature"])
            self.top_p.setValue(preset["top_p"])

    # -- building requests -----------------------------------------------------------------
    def _next_seed(self) -> int:
        return self.seed_field.next(bool(self._batch))

    def _params(self) -> dict[str, Any]:
        return {
            "temperature": round(self.temperature.value(), 4),
            "top_p": round(self.top_p.value(), 4),
            "max_tokens": self.max_tokens.value(),
            "system": self.system.toPlainText(),
            "preset": self.preset.currentText(),
        }

    def _submit(self, task: str, prompt: str, params: dict[str, Any],
                insert_at: int, replace_len: int = 0) -> None:
        if self._stream is not None:
            self.show_message("Writing already: press Stop first.", error=True)
            return
        jobs = self.submit_variations(task, params, self.alternatives.value(),
                                      self._next_seed(), self._label(task, prompt), prompt)
        if not jobs:
            return
        self._batch = [job.id for job in jobs]
        self._stream = {"job": jobs[0].id, "start": insert_at, "length": replace_len,
                        "original": self.editor.toPlainText()[insert_at:insert_at + replace_len]}
        self._set_running(True)
        self.status.setText("Queued…")

    @staticmethod
    def _label(task: str, prompt: str) -> str:
        return {"generate": prompt[:40], "continue": "continue document",
                "rewrite": "rewrite selection"}[task]

    def generate(self) -> None:
        params = self._params()
        cursor = self.editor.textCursor()
        if self.use_context.isChecked():
            params["context"] = self.editor.toPlainText()[:cursor.position()]
        self._submit("generate", self.instruction.toPlainText(), params,
                     cursor.position())

    def continue_text(self) -> None:
        params = self._params()
        cursor = self.editor.textCursor()
        params["context"] = self.editor.toPlainText()[:cursor.position()]
        self._submit("continue", self.instruction.toPlainText(), params, cursor.position())

    def rewrite(self) -> None:
        params = self._params()
        cursor = self.editor.textCursor()
        params["selection"] = cursor.selectedText().replace("\u2029", "\n")
        self._submit("rewrite", self.instruction.toPlainText(), params,
                     cursor.selectionStart(), cursor.selectionEnd() - cursor.selectionStart())

    def stop(self) -> None:
        self.cancel_jobs(self._batch)

    # -- streaming ---------------------------------------------------------------------------
    def _replace_stream_text(self, text: str) -> None:
        stream = self._stream
        assert stream is not None
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(stream["start"])
        cursor.setPosition(stream["start"] + stream["length"], QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(text)
        stream["length"] = len(text)
        self.editor.setTextCursor(cursor)
        self.editor.ensureCursorVisible()

    def _set_running(self, running: bool) -> None:
        self.stop_button.setEnabled(running)
        for button in (self.generate_button, self.continue_button, self.rewrite_button):
            button.setEnabled(not running)
        self.editor.setReadOnly(running)

    def on_job_event(self, event: str, job: Job, data: Any) -> None:
        if job.id not in self._batch:
            return
        streaming = self._stream is not None and self._stream["job"] == job.id
        if event == "started" and streaming:
            self.status.setText("Loading model…")
        elif event == "progress" and streaming:
            fraction, eta, preview = data
            if job.progress.message:
                self.status.setText(job.progress.message)
            if isinstance(preview, str):
                self._replace_stream_text(preview)
                self.status.setText(f"Writing… {fraction * 100:.0f}%")
        elif job.state.finished:
            if streaming:
                self._finish_stream(job)
            if all(j is None or j.state.finished for j in
                   (self._job(i) for i in self._batch)):
                self._set_running(False)

    def _job(self, job_id: int) -> Job | None:
        return self.context.get_job(job_id)

    def _finish_stream(self, job: Job) -> None:
        stream = self._stream
        assert stream is not None
        if job.state is JobState.DONE and job.result is not None:
            text = job.result.assets[0].data.decode("utf-8")
            self._replace_stream_text(text)
            self._last_range = (stream["start"], stream["length"])
            meta = job.result.metadata
            note = " (stopped)" if meta.get("stopped") else ""
            self.status.setText(f"{meta.get('tokens', 0)} tokens, "
                                f"{meta.get('tokens_per_s') or 0:.1f} tok/s{note}")
        else:
            self._replace_stream_text(stream["original"])  # give back what was there
            if job.state is JobState.FAILED:
                self.show_message(job.error, error=True)
                self.status.setText("Failed")
            else:
                self.status.setText("Cancelled")
        self._stream = None
        self.editor.setReadOnly(False)

    def _update_count(self) -> None:
        words = len(self.editor.toPlainText().split())
        self.word_count.setText(f"{words} word{'s' if words != 1 else ''}")

    # -- history ------------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        request = item.request
        if mode in ("all", "prompt"):
            self.instruction.setPlainText(request.prompt)
        if mode in ("all", "seed"):
            self.seed_field.restore(request.seed)
        if mode != "all":
            return
        p = {**DEFAULTS, **request.params}
        self.temperature.setValue(float(p["temperature"]))
        self.top_p.setValue(float(p["top_p"]))
        self.max_tokens.setValue(int(p["max_tokens"]))
        self.system.setPlainText(str(p["system"]))
        if p.get("preset") in PRESETS:
            self.preset.blockSignals(True)
            self.preset.setCurrentText(p["preset"])
            self.preset.blockSignals(False)
        self.alternatives.setValue(1)
        if request.model:
            self.add_model_ref(request.model, item.model.get("name") or request.model)
        self.show_message("Recalled the prompt, settings and seed of "
                          f"“{item.title or item.request.prompt[:40]}”.")

    def use_output(self, item: Item) -> None:
        """Insert an item's text: it replaces the last generated text, else goes at the cursor."""
        text = self.context.store.item_text(item)
        cursor = self.editor.textCursor()
        if self._last_range is not None:
            start, length = self._last_range
            if start + length <= len(self.editor.toPlainText()):
                cursor.setPosition(start)
                cursor.setPosition(start + length, QTextCursor.MoveMode.KeepAnchor)
        start = cursor.selectionStart()
        cursor.insertText(text)
        self._last_range = (start, len(text))
        self.editor.setTextCursor(cursor)

    def describe_item(self, item: Item, store: ProjectStore) -> str:
        return store.item_text(item)

    # -- drafts -----------------------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        return {"document": self.editor.toPlainText(),
                "instruction": self.instruction.toPlainText(),
                "system": self.system.toPlainText()}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.editor.setPlainText(str(state.get("document", "")))
        self.instruction.setPlainText(str(state.get("instruction", "")))
        self.system.setPlainText(str(state.get("system", "")))
