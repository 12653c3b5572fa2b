"""The Text panel: an instruction box, a document editor and the model's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.jobs import Job, JobState
from creative_studio.core.project import Item, ProjectStore
from creative_studio.ui.panel import PluginPanel, narrow
from creative_studio.ui.theme import set_type
from creative_studio.ui.widgets import SeedField, StatusLine, menu_button

from .generator import PRESETS, rewrite_problem

READING_WPM = 238  # adults' average silent reading speed of prose (Brysbaert 2019)
SCAN_DELAY_MS = 1500  # the models other apps keep are looked for after the window appears
EXAMPLE = "Write an opening paragraph for a mystery set in Lisbon."
MEASURE = 70  # characters per line in focus mode (readable: 60–75)
PROSE = ("It was a bright cold day in April, and the clocks were striking thirteen. The fog "
         "rolled in against the lighthouse as the keeper climbed the stairs.")


class WritingEditor(QPlainTextEdit):
    """The document: in focus mode its lines keep a readable length (``MEASURE``
    characters), centred however wide the window is."""

    def __init__(self) -> None:
        super().__init__()
        self.measure = 0  # characters per line; 0 = the whole width

    def set_measure(self, chars: int) -> None:
        self.measure = chars
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()

    def char_width(self) -> float:
        """The average width of a character of English prose in the editor's font."""
        return self.fontMetrics().horizontalAdvance(PROSE) / len(PROSE)

    def _fit(self) -> None:
        side = 0
        padding = 4.0
        if self.measure:
            padding = 24.0  # a page's margin inside the column
            line = int(self.char_width() * self.measure + 2 * padding)
            side = max(0, (self.width() - line) // 2)
        if self.document().documentMargin() != padding:
            self.document().setDocumentMargin(padding)
        if self.viewportMargins().left() != side:
            self.setViewportMargins(side, 0, side, 0)


def separator(before: str, after: str) -> str:
    """What goes between the text before the cursor and a reply inserted there: a new
    paragraph at the end of a line ("help with!" + reply never glue together), a space in the
    middle of one, nothing at the start or after whitespace."""
    if not before.strip() or before.endswith("\n\n"):
        return ""
    if not after or after.startswith("\n"):
        return "\n" if before.endswith("\n") else "\n\n"
    return "" if before[-1].isspace() else " "


def reading_time(words: int) -> str:
    """"1 min read" (rounded up; under a minute is "under a minute")."""
    if words == 0:
        return ""
    minutes = -(-words // READING_WPM)
    return "under 1 min read" if words < READING_WPM // 2 else f"{minutes} min read"


def status_line(meta: dict[str, Any]) -> str:
    """What the status line says after a job: speed, engine, context and what was left
    out or lowered to fit it, and why a GGUF runs on the slower engine."""
    parts = [f"{meta.get('tokens', 0)} tokens, {meta.get('tokens_per_s') or 0:.1f} tok/s"
             + (" (stopped)" if meta.get("stopped") else "")]
    engine = meta.get("engine")
    if engine == "llama.cpp":
        parts.append(f"llama.cpp {meta.get('engine_version', '')}".strip())
    if meta.get("context_tokens"):
        parts.append(f"context {int(meta['context_tokens']):,} tokens")
    parts += [str(n) for n in meta.get("context_notes") or []]
    if meta.get("engine_note"):
        parts.append(str(meta["engine_note"]))
    if meta.get("banned_avoided"):
        count = int(meta["banned_avoided"])
        parts.append(f"avoided {count} banned phrase{'s' if count != 1 else ''}")
    if meta.get("banned_note"):
        parts.append(str(meta["banned_note"]))
    return " · ".join(parts)


class TextPanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self._stream: dict[str, Any] | None = None  # the job whose tokens go in the editor
        # whether the user placed the cursor in the document since it was opened: replies go
        # there, else at the end as a new paragraph
        self._placed = False

        # -- settings column ---------------------------------------------------------
        self.model_choices()
        narrow(self.model, 14)
        add_model = self.add_model_button(
            "Use another model: a transformers folder, a GGUF file, a Hugging Face id or a "
            "model on a server",
            [("Models on this computer…", self.found_models_dialog),
             ("Model folder…", self._choose_folder), ("GGUF file…", self._choose_gguf),
             ("Hugging Face id…", self._choose_hub),
             ("Model on a server…", self.choose_server_model)])
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(add_model)

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.currentTextChanged.connect(self._apply_preset)
        self.system = self.param_widget("system")
        self.system.setFixedHeight(70)
        self.temperature = self.param_widget("temperature")
        self.top_p = self.param_widget("top_p")
        self.max_tokens = self.param_widget("max_tokens")
        self.seed_field = SeedField()
        self.seed, self.seed_mode = self.seed_field.seed, self.seed_field.mode
        self.alternatives = self.count_box(8, "How many versions to write; the first streams "
                                              "into the editor, the others are kept as "
                                              "branches in the history")
        self.use_context = QCheckBox("Document as context")
        self.use_context.setToolTip("Give the document around the cursor to the model as "
                                    "context (what does not fit is left out, and said)")

        # the embedded model says honestly what it is (the manifest's summary and limits)
        self.model_note = set_type(QLabel(), "small", bold=False)
        self.model_note.setWordWrap(True)
        self.model.currentIndexChanged.connect(self._model_note)
        self._model_note()
        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("", self.model_note)
        form.addRow("Preset", self.preset)
        advanced = QFormLayout()  # what a writer rarely changes folds away
        advanced.addRow("System", self.system)
        self.param_rows(advanced, "temperature", "top_p", "top_k", "min_p", "max_tokens",
                        "repetition_penalty", "items", "banned")
        self.items = self.param_widget("items")
        self.banned = self.param_widget("banned")
        self.banned.setPlaceholderText("Banned phrases, one per line (e.g. a testament to)")
        self.banned.setFixedHeight(60)
        advanced.addRow("Seed", self.seed_field)
        advanced.addRow("Alternatives", self.alternatives)
        advanced.addRow(self.use_context)
        side = self.side_panel(form, advanced=advanced)

        # -- writing area ------------------------------------------------------------
        self.instruction = self.prompt_box = QPlainTextEdit()
        self.instruction.setPlaceholderText("Instruction or prompt, e.g. “Write an opening "
                                            "paragraph for a mystery set in Lisbon.”")
        self.instruction.setFixedHeight(80)
        self.generate_button, self.stop_button = self.run_buttons(
            "Generate", self.generate, "Write from the instruction at the cursor")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Continue the document from the cursor "
                                        "(Ctrl+Shift+Return)")
        self.rewrite_button = QPushButton("Rewrite")
        self.rewrite_button.setToolTip("Rewrite the selected text following the instruction")
        self.stop_button.setToolTip("Stop writing and keep what was written (Esc)")
        self.continue_button.clicked.connect(self.continue_text)
        self.rewrite_button.clicked.connect(self.rewrite)
        buttons = QHBoxLayout()
        for button in (self.generate_button, self.continue_button, self.rewrite_button,
                       self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.document_button = menu_button(
            "Document", "Export the document (.txt, .md, .docx) or copy it",
            [("Export as…", self.export_document_dialog),
             ("Copy as plain text", self.copy_document)])
        buttons.addWidget(self.document_button)
        self.editor = WritingEditor()
        self.editor.setPlaceholderText("Your document. Generated text appears at the cursor.")
        font = self.editor.font()
        font.setPointSize(font.pointSize() + 2)
        self.editor.setFont(font)
        self.editor.textChanged.connect(self._update_count)
        self.editor.cursorPositionChanged.connect(self._cursor_moved)
        self.word_count = QLabel("0 words")
        self.status = StatusLine("")
        self.word_count.setToolTip(f"Words and reading time ({READING_WPM} words a minute)")
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        footer = QHBoxLayout()
        footer.addWidget(self.word_count)
        footer.addWidget(self.status, 1)  # the rest of the row: its messages are seen
        main = QWidget()
        main_layout = QVBoxLayout(main)
        self.tools = QWidget()  # the instruction and its buttons (focus mode hides them)
        tools_layout = QVBoxLayout(self.tools)
        tools_layout.setContentsMargins(0, 0, 0, 0)
        tools_layout.addWidget(self.instruction)
        tools_layout.addLayout(buttons)
        main_layout.addWidget(self.tools)
        main_layout.addWidget(self.editor, 1)
        main_layout.addLayout(footer)

        self.set_sides(side, main, 300)

        QShortcut(QKeySequence("Ctrl+Shift+Return"), self,
                  self.continue_text).setWhatsThis("Continue the document")
        self.set_serif(bool(getattr(context.settings, "serif", False)))
        if getattr(context.settings, "scan_models", False):  # once the window is up
            QTimer.singleShot(SCAN_DELAY_MS, self.scan_models)
        self.settings_changed()  # the servers' models join the list when they answer

    # -- servers ----------------------------------------------------------------------------
    def settings_changed(self) -> None:
        """The servers' models join the model list when they answer."""
        self.list_server_models()

    # -- models -------------------------------------------------------------------------
    # -- models on this computer -----------------------------------------------------------
    def found_models_dialog(self) -> None:
        from .found import FoundModelsDialog

        self.found_dialog = FoundModelsDialog(self)
        self.found_dialog.open()

    def scan_models(self) -> None:
        """At start, off the GUI thread: the GGUFs other apps keep join the model list."""
        from creative_studio.core import discover
        from creative_studio.ui.servers import Background

        from .found import folders_of

        folders = folders_of(self.context.settings)
        self._scanning = Background(self)
        self._scanning.done.connect(self._models_found)
        self._scanning.run(lambda: discover.scan(folders))

    def _models_found(self, found, error: str) -> None:
        current = self.model.currentIndex()
        for model in found or []:
            if not model.error and self.model.findData(model.path) < 0:
                self.model.addItem(f"{model.label} — on this computer", model.path)
                self.model.setItemData(self.model.count() - 1,
                                       f"{model.path} ({model.app})",
                                       Qt.ItemDataRole.ToolTipRole)
        self.model.setCurrentIndex(current)

    def _model_note(self, *_args) -> None:
        ref = str(self.model.currentData() or "")
        offer = next((o for o in self.manifest.models if o.ref == ref), None)
        shown = offer is not None and bool(offer.limits)
        self.model_note.setText("Small and fast, for drafts: add your own GGUF or a server "
                                "(+) for more." if shown else "")
        self.model_note.setToolTip(offer.limits if shown else "")
        self.model_note.setVisible(shown)

    def _choose_folder(self) -> None:
        self.choose_model_path("Choose a transformers model folder")

    def _choose_gguf(self) -> None:
        self.choose_model_path("Choose a GGUF model", "GGUF", "GGUF models (*.gguf)")

    def _choose_hub(self) -> None:
        self.ask_hub_id("HuggingFaceTB/SmolLM2-360M-Instruct")

    def _apply_preset(self, name: str) -> None:
        preset = PRESETS.get(name)
        if preset:
            self.temperature.setValue(preset["temperature"])
            self.top_p.setValue(preset["top_p"])

    # -- building requests -----------------------------------------------------------------
    def _submit(self, task: str, prompt: str, params: dict[str, Any],
                insert_at: int, replace_len: int = 0, prefix: str = "") -> None:
        if self._stream is not None:
            self.show_message("Writing already: press Stop first.", error=True)
            return
        jobs = self.submit_variations(task, {**self.param_values(task), **params},
                                      self._label(task, prompt), prompt)
        if not jobs:
            return
        self._stream = {"job": jobs[0].id, "start": insert_at, "length": replace_len,
                        "original": self.editor.toPlainText()[insert_at:insert_at + replace_len],
                        "prefix": prefix, "edits": 0}
        self._set_running(True)
        self.status.setText("Queued…")

    @staticmethod
    def _label(task: str, prompt: str) -> str:
        return {"generate": prompt[:40], "continue": "continue document",
                "rewrite": "rewrite selection"}[task]

    def _cursor_moved(self) -> None:
        if self._stream is None and self.editor.hasFocus():
            self._placed = True

    def insertion(self, paragraph: bool = True) -> tuple[int, str]:
        """Where new text goes, and what separates it from the text before: at the cursor
        when the user placed one in the document, else at the end — as a new paragraph
        (``paragraph``) or right after the text (a continuation)."""
        text = self.editor.toPlainText()
        at = self.editor.textCursor().position() if self._placed else len(text)
        if not paragraph:  # a continuation: the model's own tokens bring their spacing
            return at, ""
        return at, separator(text[:at], text[at:])

    def generate(self) -> None:
        params = {}
        at, prefix = self.insertion()
        if self.use_context.isChecked():
            params["context"] = self.editor.toPlainText()[:at]
        self._submit("generate", self.instruction.toPlainText(), params, at, prefix=prefix)

    def continue_text(self) -> None:
        at, _ = self.insertion(paragraph=False)
        params = {"context": self.editor.toPlainText()[:at]}
        # the continuation reads the document only: an instruction left in the box from an
        # earlier reply is not its prompt (nor its name in the History)
        self._submit("continue", "", params, at)

    def rewrite(self) -> None:
        cursor = self.editor.textCursor()
        params = {"selection": cursor.selectedText().replace("\u2029", "\n")}
        self._submit("rewrite", self.instruction.toPlainText(), params,
                     cursor.selectionStart(), cursor.selectionEnd() - cursor.selectionStart())

    # -- streaming ---------------------------------------------------------------------------
    def _replace_stream_text(self, text: str, raw: bool = False) -> None:
        """Put the streamed text (after its separator; ``raw``: exactly ``text``) in place
        of what the stream wrote so far. Every change of one job joins one edit block: a
        generation, continuation or rewrite is one undo step. The text being written is
        highlighted, with the cursor after it."""
        stream = self._stream
        assert stream is not None
        full = text if raw else stream["prefix"] + text
        cursor = QTextCursor(self.editor.document())
        if stream["edits"]:
            cursor.joinPreviousEditBlock()
        else:
            cursor.beginEditBlock()
        cursor.setPosition(stream["start"])
        cursor.setPosition(stream["start"] + stream["length"], QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(full)
        cursor.endEditBlock()
        stream["edits"] += 1
        stream["length"] = len(full)
        self.editor.setTextCursor(cursor)
        self.editor.ensureCursorVisible()
        mark = QTextEdit.ExtraSelection()
        mark.cursor = QTextCursor(self.editor.document())
        mark.cursor.setPosition(stream["start"])
        mark.cursor.setPosition(stream["start"] + len(full), QTextCursor.MoveMode.KeepAnchor)
        mark.format.setBackground(QColor(255, 214, 102, 90))
        self.editor.setExtraSelections([mark])

    def _set_running(self, running: bool) -> None:
        self.stop_button.setEnabled(running)
        for button in (self.generate_button, self.continue_button, self.rewrite_button):
            button.setEnabled(not running)
        self.editor.setReadOnly(running)

    def _streaming(self, job: Job) -> bool:
        return self._stream is not None and self._stream["job"] == job.id

    def on_started(self, job: Job) -> None:
        if self._streaming(job):
            self.status.setText("Loading model…")

    def on_progress(self, job: Job, fraction: float, eta: float | None, preview: Any) -> None:
        if not self._streaming(job):
            return
        if job.progress.message:
            self.status.setText(job.progress.message)
        if isinstance(preview, str):
            self._replace_stream_text(preview)
            self.status.setText(f"Writing… {fraction * 100:.0f}%")

    def on_result(self, job: Job) -> None:
        self._finished(job)

    def on_failed(self, job: Job) -> None:
        if not self._streaming(job):  # the streamed job's failure is told by _finish_stream
            super().on_failed(job)
        self._finished(job)

    def on_cancelled(self, job: Job) -> None:
        self._finished(job)

    def _finished(self, job: Job) -> None:
        if self._streaming(job):
            self._finish_stream(job)
        if not self.jobs:
            self._set_running(False)

    def _finish_stream(self, job: Job) -> None:
        stream = self._stream
        assert stream is not None
        if job.state is JobState.DONE and job.result is not None:
            text = job.result.assets[0].data.decode("utf-8")
            self._replace_stream_text(text)
            meta = job.result.metadata
            self.status.setText(status_line(meta))
            told = self.finish_message(job.request, meta, stream["original"], text)
            if told:
                self.show_message(*told)
        else:
            self._replace_stream_text(stream["original"], raw=True)  # give back what was there
            if job.state is JobState.FAILED:
                self.show_message(job.error, error=True)
                self.status.setText("Failed")
            else:
                self.status.setText("Cancelled")
        self._stream = None
        self.editor.setExtraSelections([])
        self.editor.setReadOnly(False)

    @staticmethod
    def finish_message(request, meta: dict[str, Any], original: str,
                       text: str) -> tuple[str, bool] | None:
        """What the panel says of a finished reply, (message, error): a rewrite cut short,
        unchanged or answered with commentary; a reply cut off by Max tokens or by the
        server."""
        finish = meta.get("finish_reason")
        if meta.get("banned_found"):
            return ("Banned phrases are in this reply: " + ", ".join(
                f"“{p}”" for p in meta["banned_found"][:5]) + ". Only llama.cpp (a GGUF "
                "model) can avoid them as it writes; this engine's reply was checked.", True)
        if meta.get("interrupted"):
            return (f"The server's reply was cut off ({meta['interrupted']}): what arrived is "
                    "kept, marked (cut off) in the History. Continue writes on from it.", True)
        if request.task == "rewrite":
            if finish in ("length", "stopped"):
                why = "was stopped" if finish == "stopped" else \
                    f"reached Max tokens ({request.params.get('max_tokens')})"
                return (f"The rewrite {why} before it was finished: the selection is only "
                        "partly rewritten. Edit → Undo (Ctrl+Z) brings the original back; the "
                        "History keeps both.", True)
            problem = rewrite_problem(original, text)
            if problem == "unchanged":
                return ("The rewrite came back unchanged: try again (another seed) or say "
                        "more in the instruction.", True)
            if problem == "commentary":
                return ("The model talked about the text instead of rewriting it: Edit → Undo "
                        "(Ctrl+Z) brings the original back. A larger model (a GGUF of your "
                        "own, or a server) follows rewrite instructions far better.", True)
        elif finish == "length":
            return (f"Stopped at Max tokens ({request.params.get('max_tokens')}): Continue "
                    "(Ctrl+Shift+Return) writes on, or raise Max tokens under Advanced.", False)
        return None

    def _update_count(self) -> None:
        words = len(self.editor.toPlainText().split())
        read = reading_time(words)
        self.word_count.setText(f"{words:,} word{'s' if words != 1 else ''}"
                                + (f" · {read}" if read else ""))

    def start_here(self) -> None:
        """Start writing: an example instruction, selected (typing replaces it)."""
        if not self.instruction.toPlainText().strip() and \
                not self.editor.toPlainText().strip():
            self.instruction.setPlainText(EXAMPLE)
            self.instruction.selectAll()
        self.instruction.setFocus()

    # -- focus mode -------------------------------------------------------------------------
    def set_focus_mode(self, on: bool) -> None:
        """The document alone, its lines a readable length; Ctrl+Return still writes from
        the instruction and Ctrl+Shift+Return continues (F11 leaves)."""
        super().set_focus_mode(on)
        self.tools.setVisible(not on)
        self.editor.set_measure(MEASURE if on else 0)
        self.editor.setFrameShape(self.editor.Shape.NoFrame if on
                                  else self.editor.Shape.StyledPanel)

    def set_serif(self, serif: bool) -> None:
        """The document in a serif (book) face, or the interface's sans."""
        from PySide6.QtGui import QFont

        font = QFont(self.font())
        if serif:
            font.setFamilies(["Noto Serif", "DejaVu Serif", "Liberation Serif", "serif"])
            font.setStyleHint(QFont.StyleHint.Serif)
        font.setPointSize(self.font().pointSize() + 2)
        self.editor.setFont(font)
        self.editor.set_measure(self.editor.measure)

    # -- history ------------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        self.preset.blockSignals(True)  # the recipe's own temperature and top-p win
        super().recall(item, mode)
        self.preset.blockSignals(False)
        if mode == "all":
            self.show_message("Recalled the prompt, settings and seed of "
                              f"“{item.title or item.request.prompt[:40]}”.")

    def use_output(self, item: Item) -> None:
        """History → Insert: the item's text at the cursor (else at the end, as a new
        paragraph), one undo step; nothing already in the document is replaced."""
        text = self.context.store.item_text(item)
        at, prefix = self.insertion()
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(at)
        cursor.beginEditBlock()
        cursor.insertText(prefix + text)
        cursor.endEditBlock()
        self.editor.setTextCursor(cursor)

    def undo(self) -> None:
        self.editor.undo()

    def redo(self) -> None:
        self.editor.redo()

    # -- the document as a file -----------------------------------------------------------
    def export_document_dialog(self) -> None:
        from creative_studio.ui.widgets import ask_path

        from .document import FORMATS

        filters = ";;".join(f"{name} (*{suffix})" for suffix, name in FORMATS.items())
        path, chosen = ask_path(self, self.context.settings, "document", "save",
                                "Export the document", "document.txt", filters)
        if path:
            suffix = next((s for s, n in FORMATS.items() if chosen.startswith(n)), ".txt")
            target = Path(path) if Path(path).suffix.lower() in FORMATS else \
                Path(path + suffix)
            self.export_document(target)

    def export_document(self, path: Path) -> Path | None:
        from .document import write_document

        written = self.attempt(lambda: write_document(self.editor.toPlainText(), path),
                               path.name)
        if written is not None:
            self.show_message(f"Exported the document to {written}.")
        return written

    def copy_document(self) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(self.editor.toPlainText())
        self.show_message("Copied the document as plain text.")

    def describe_item(self, item: Item, store: ProjectStore) -> str:
        return store.item_text(item)

    # -- drafts -----------------------------------------------------------------------------------
    def work_state(self) -> dict[str, Any]:
        return {"document": self.editor.toPlainText(),
                "instruction": self.instruction.toPlainText(),
                "preset": self.preset.currentText(),
                "use_context": self.use_context.isChecked()}

    def restore_work(self, state: dict[str, Any]) -> None:
        self.editor.setPlainText(str(state.get("document", "")))
        self._placed = False  # reopened: replies go at the end until the user places one
        self.instruction.setPlainText(str(state.get("instruction", "")))
        if "system" in state:  # projects saved before the settings were kept
            self.system.setPlainText(str(state["system"]))
        if state.get("preset") in PRESETS:
            self.preset.blockSignals(True)
            self.preset.setCurrentText(state["preset"])
            self.preset.blockSignals(False)
        self.use_context.setChecked(bool(state.get("use_context", False)))
