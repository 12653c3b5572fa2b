"""The Text panel: an instruction box, a document editor and the model's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.jobs import Job, JobState
from creative_studio.core.project import Item, ProjectStore
from creative_studio.ui.icons import set_icon
from creative_studio.ui.panel import PluginPanel, narrow
from creative_studio.ui.theme import set_type
from creative_studio.ui.widgets import SeedField, StatusLine, menu_button

from .generator import PRESETS, rewrite_problem

READING_WPM = 238  # adults' average silent reading speed of prose (Brysbaert 2019)
EXAMPLE = "Write an opening paragraph for a mystery set in Lisbon."
MAX_PASSAGES = 200  # generated passages whose alternatives a click can find
MEASURE = 70  # characters per line in focus mode (readable: 60–75)
PROSE = ("It was a bright cold day in April, and the clocks were striking thirteen. The fog "
         "rolled in against the lighthouse as the keeper climbed the stairs.")


class WritingEditor(QPlainTextEdit):
    """The document: in focus mode its lines keep a readable length (``MEASURE``
    characters), centred however wide the window is."""

    def __init__(self) -> None:
        super().__init__()
        self.measure = 0  # characters per line; 0 = the whole width
        self.menu_hook = None  # callable(menu, position in the text): the panel's entries

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt API
        menu = self.createStandardContextMenu(event.pos())
        if self.menu_hook is not None:
            self.menu_hook(menu, self.cursorForPosition(event.pos()).position())
        menu.exec(event.globalPos())
        menu.deleteLater()

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


def shown_token(text: str) -> str:
    """A token as a menu shows it: its spaces and line breaks visible."""
    if not text.strip():
        return {"\n": "⏎ (new line)", " ": "· (space)"}.get(text, repr(text))
    return text.replace("\n", "⏎").strip()


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
        self.notes_button = QPushButton("Story notes…")
        set_icon(self.notes_button, "mdi6.notebook-outline")
        self.notes_button.setToolTip("Characters, places, facts and style the model keeps to, "
                                     "and the author's note (kept in the project)")
        self.notes_button.clicked.connect(self.notes_dialog)
        form.addRow("Story", self.notes_button)
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
        self.saw_button = QToolButton()
        set_icon(self.saw_button, "mdi6.eye-outline")
        self.saw_button.setToolTip("What the model saw for the last reply: the prompt part by "
                                   "part (notes and why each joined), with token counts")
        self.saw_button.setEnabled(False)
        self.saw_button.clicked.connect(self.saw_dialog)
        footer.addWidget(self.saw_button)
        self._saw: tuple[str, list, int] | None = None
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
        # branches: variants of any paragraph, flipped through in place; other words at a
        # generated token
        self.editor.menu_hook = self._editor_menu
        self._passages: list | None = None  # generated passages with alternatives, newest first
        self._variants: dict[str, Any] | None = None
        self.variants_bar = QWidget()
        bar = QHBoxLayout(self.variants_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.variant_label = QLabel("")
        self.previous_variant = QToolButton()
        set_icon(self.previous_variant, "mdi6.chevron-left")
        self.previous_variant.setToolTip("The previous version of the paragraph (Alt+Left)")
        self.next_variant = QToolButton()
        set_icon(self.next_variant, "mdi6.chevron-right")
        self.next_variant.setToolTip("The next version of the paragraph (Alt+Right)")
        self.previous_variant.clicked.connect(lambda: self.flip_variant(-1))
        self.next_variant.clicked.connect(lambda: self.flip_variant(1))
        keep = QPushButton("Keep this one")
        keep.setToolTip("Keep the version shown (the others stay in the History)")
        keep.clicked.connect(self.close_variants)
        bar.addWidget(QLabel("Paragraph:"))
        bar.addWidget(self.previous_variant)
        bar.addWidget(self.variant_label)
        bar.addWidget(self.next_variant)
        bar.addWidget(keep)
        bar.addStretch(1)
        self.variants_bar.setVisible(False)
        main_layout.insertWidget(main_layout.indexOf(self.editor), self.variants_bar)
        QShortcut(QKeySequence("Alt+Left"), self, lambda: self.flip_variant(-1)) \
            .setWhatsThis("The paragraph's previous variant")
        QShortcut(QKeySequence("Alt+Right"), self, lambda: self.flip_variant(1)) \
            .setWhatsThis("The paragraph's next variant")
        QShortcut(QKeySequence("Ctrl+Alt+V"), self, lambda: self.paragraph_variants(
            self.editor.textCursor().position())).setWhatsThis("Variants of this paragraph")
        QShortcut(QKeySequence("Ctrl+Alt+A"), self, self.alternatives_at_cursor) \
            .setWhatsThis("Other words the model could have written here")
        self.set_serif(bool(getattr(context.settings, "serif", False)))
        from creative_studio.ui.found import list_at_start

        from .found import scan_of

        list_at_start(self, lambda: scan_of(self), lambda model: model.label)
        self.settings_changed()  # the servers' models join the list when they answer

    # -- servers ----------------------------------------------------------------------------
    def settings_changed(self) -> None:
        """The servers' models join the model list when they answer."""
        self.list_server_models()

    # -- models -------------------------------------------------------------------------
    # -- models on this computer -----------------------------------------------------------
    def found_models_dialog(self) -> None:
        from .found import found_models_dialog

        self.found_dialog = found_models_dialog(self)
        self.found_dialog.open()

    def _model_note(self, *_args) -> None:
        ref = str(self.model.currentData() or "")
        offer = next((o for o in self.manifest.models if o.ref == ref), None)
        shown = offer is not None and bool(offer.limits)
        larger = next((o for o in self.manifest.models if o.optional and o is not offer), None)
        if not shown:
            text = ""
        elif offer.optional:  # the measured default: what it does well, and its cost
            text = f"{offer.summary}. {offer.limits[:1].upper()}{offer.limits[1:]}."
        else:
            text = ("Small and fast, for drafts: add your own GGUF or a server (+)"
                    + (f", or choose {larger.name}" if larger else "") + " for more.")
        self.model_note.setText(text)
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
                insert_at: int, replace_len: int = 0, prefix: str = "", *,
                parents: list[str] | None = None, count: int | None = None,
                label: str = "") -> list[Job]:
        if self._stream is not None:
            self.show_message("Writing already: press Stop first.", error=True)
            return []
        jobs = self.submit_variations(task, {**self.param_values(task), **params},
                                      label or self._label(task, prompt), prompt,
                                      parents=parents, count=count)
        if not jobs:
            return []
        self._stream = {"job": jobs[0].id, "start": insert_at, "length": replace_len,
                        "original": self.editor.toPlainText()[insert_at:insert_at + replace_len],
                        "prefix": prefix, "edits": 0}
        self._set_running(True)
        self.status.setText("Queued…")
        return jobs

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
        if job.result is not None and job.item_id:
            from .alternatives import Passage, valid

            text = job.result.assets[0].data.decode("utf-8", errors="replace")
            found = valid(job.result.metadata.get("alternatives"))
            if found:
                known = self.passages()
                if not any(p.item_id == job.item_id for p in known):
                    known.insert(0, Passage(job.item_id, text, found))
            if self._variants is not None and job.id in self._variants["jobs"] \
                    and not self._streaming(job):
                self._variants["texts"].append(self._variant_text(job, text))
                self._show_variant_count()
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
        variants = self._variants if self._variants is not None \
            and job.id in self._variants["jobs"] else None
        if job.state is JobState.DONE and job.result is not None:
            text = job.result.assets[0].data.decode("utf-8")
            if variants is not None:  # the paragraph's first variant: shown in its place
                text = self._variant_text(job, text)
                variants["texts"].append(text)
                variants["index"] = len(variants["texts"]) - 1
                variants["length"] = len(text)
                self._show_variant_count()
            self._replace_stream_text(text)
            meta = job.result.metadata
            self.status.setText(status_line(meta))
            if meta.get("prompt_parts"):
                from .story import filled

                self._saw = (job.result.title, filled(meta["prompt_parts"], job.request),
                             int(meta.get("prompt_tokens") or 0))
                self.saw_button.setEnabled(True)
            told = self.finish_message(job.request, meta, stream["original"], text)
            if told:
                self.show_message(*told)
        else:
            self._replace_stream_text(stream["original"], raw=True)  # give back what was there
            if variants is not None and len(variants["texts"]) < 2:
                self.close_variants()
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
        if meta.get("items_note"):
            return (f"List items: {meta['items_note']}.", True)
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

    # -- branches: variants of a paragraph, other words at a token ----------------------------
    def _editor_menu(self, menu, position: int) -> None:
        """The editor's context menu: other words at a generated token, variants of the
        paragraph (before the usual Undo, Cut, Copy…)."""
        first = menu.actions()[0] if menu.actions() else None
        sub = self.alternatives_menu(position, menu)
        if sub is not None:
            menu.insertMenu(first, sub)
        variants = menu.addAction("Variants of this paragraph")
        menu.insertAction(first, variants)
        variants.setShortcut(QKeySequence("Ctrl+Alt+V"))
        variants.setEnabled(self._stream is None and bool(self._paragraph(position)[1].strip()))
        variants.triggered.connect(lambda: self.paragraph_variants(position))
        menu.insertSeparator(first)

    def passages(self) -> list:
        """The generated passages that keep alternatives, newest first: kept with the
        document (their History ids and texts; the alternatives are read from the project
        when a click needs them); a project saved before that is looked through once."""
        from .alternatives import Passage, valid

        if self._passages is None:
            self._passages = []
            store = self.context.store
            for item in reversed(store.items(limit=MAX_PASSAGES) if store is not None else []):
                found = valid(item.metadata.get("alternatives"))
                if item.request.plugin == self.manifest.id and found and not item.damaged:
                    try:
                        text = store.item_text(item)
                    except Exception:  # noqa: BLE001 - a damaged output: no alternatives
                        continue
                    self._passages.append(Passage(item.id, text, found))
        return self._passages

    def _load_alternatives(self, passage) -> list:
        from .alternatives import valid

        store = self.context.store
        try:
            items = store.items(only=passage.item_id) if store is not None else []
        except Exception:  # noqa: BLE001 - a damaged project: no alternatives
            return []
        return valid(items[0].metadata.get("alternatives")) if items else []

    def alternatives_menu(self, position: int, parent=None):
        """A menu of the words the model could have written at the token under
        ``position`` (with their probabilities); None outside a generated passage."""
        from PySide6.QtWidgets import QMenu

        from .alternatives import passage_at

        found = passage_at(self.editor.toPlainText(), position, self.passages(),
                           self._load_alternatives)
        if found is None:
            return None
        written = found.token_text()
        menu = QMenu(f"Other words for “{shown_token(written)}”", parent)
        menu.setToolTipsVisible(True)
        for text, probability in found.entry[2]:
            action = menu.addAction(f"{shown_token(text)}\t{probability * 100:.1f} %")
            action.setCheckable(True)
            action.setChecked(text == written)
            action.setToolTip("Write this word here and continue from it")
            action.triggered.connect(lambda _=False, t=text: self.take_alternative(found, t))
        if found.entry[1] is not None and not any(t == written for t, _ in found.entry[2]):
            menu.addSeparator()
            menu.addAction(f"{shown_token(written)}\t{float(found.entry[1]) * 100:.1f} % "
                           "(written)").setEnabled(False)
        return menu

    def alternatives_at_cursor(self) -> None:
        menu = self.alternatives_menu(self.editor.textCursor().position(), self)
        if menu is None:
            self.show_message("No alternatives here: place the cursor in text the model "
                              "wrote (llama.cpp or a server that sends logprobs).")
            return
        rect = self.editor.cursorRect()
        menu.exec(self.editor.viewport().mapToGlobal(rect.bottomLeft()))

    def take_alternative(self, found, text: str) -> None:
        """Write ``text`` at the found token instead of what the model wrote, drop the rest
        of that passage, and continue from there (one History branch of the passage)."""
        if self._stream is not None:
            self.show_message("Writing already: press Stop first.", error=True)
            return
        document = self.editor.toPlainText()
        start = found.token_start
        end = found.start + len(found.passage.text)
        cursor = QTextCursor(self.editor.document())
        cursor.beginEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(text)
        cursor.endEditBlock()
        self._placed = True
        self._submit("continue", "", {"context": document[:start] + text},
                     start + len(text), parents=[found.passage.item_id], count=1,
                     label="continue from a chosen word")

    def _paragraph(self, position: int) -> tuple[int, str]:
        """The paragraph (text block) at ``position``: its start and its text."""
        block = self.editor.document().findBlock(position)
        return block.position(), block.text()

    def paragraph_variants(self, position: int) -> None:
        """Write other versions of the paragraph at ``position`` (the Alternatives count,
        at least 3): continuations of the text before it, stopped at the paragraph's end;
        the first replaces it as it streams, the others come as they finish; ◀ ▶ flip
        through them in place, the original first. Each is a History branch."""
        start, paragraph = self._paragraph(position)
        if not paragraph.strip():
            self.show_message("Place the cursor in a paragraph to write variants of it.",
                              error=True)
            return
        if self._stream is not None:
            self.show_message("Writing already: press Stop first.", error=True)
            return
        self.close_variants()
        before = self.editor.toPlainText()[:start]
        count = max(3, self.alternatives.value())
        found = self._passage_of(paragraph)
        parents = [found] if found else []
        if before.strip():
            params = {"context": before, "paragraph": True,
                      "max_tokens": min(2048, max(48, 2 * len(paragraph.split()) + 16))}
            jobs = self._submit("continue", "", params, start, len(paragraph),
                                parents=parents, count=count, label="paragraph variant")
        else:  # the first paragraph: nothing before it to continue from
            jobs = self._submit("rewrite", "Write another version of this paragraph, with "
                                "the same events and voice.", {"selection": paragraph},
                                start, len(paragraph), parents=parents, count=count,
                                label="paragraph variant")
        if jobs:
            # the line break before the paragraph marks its place as the text before it
            # changes (a cursor at the paragraph's start would move with what replaces it)
            anchor = QTextCursor(self.editor.document())
            anchor.setPosition(max(0, start - 1))
            self._variants = {"jobs": {job.id for job in jobs}, "texts": [paragraph],
                              "index": 0, "anchor": anchor, "first": start == 0,
                              "length": len(paragraph), "count": count}
            self._show_variant_count()
            self.variants_bar.setVisible(True)

    def _passage_of(self, paragraph: str) -> str:
        """The History item whose text holds this paragraph (its variants' parent)."""
        return next((p.item_id for p in self.passages() if paragraph.strip() in p.text), "")

    @staticmethod
    def _variant_text(job: Job, text: str) -> str:
        """A variant as it goes in the paragraph's place (no line breaks around it)."""
        return text.strip("\n") if job.request.params.get("paragraph") or \
            job.request.task == "rewrite" else text

    def _show_variant_count(self) -> None:
        variants = self._variants
        if variants is None:
            return
        index, total = variants["index"], len(variants["texts"])
        waiting = variants["count"] + 1 - total
        self.variant_label.setText(("original" if index == 0 else f"variant {index}")
                                   + f" of {total - 1}"
                                   + (f" (+{waiting} coming)" if waiting > 0 else ""))
        self.previous_variant.setEnabled(index > 0)
        self.next_variant.setEnabled(index < total - 1)

    def flip_variant(self, step: int) -> None:
        """Show the previous or next version of the paragraph in its place (one undo step);
        a paragraph edited since is left as it is."""
        variants = self._variants
        if variants is None or self._stream is not None:
            return
        index = variants["index"] + step
        if not 0 <= index < len(variants["texts"]):
            return
        start = 0 if variants["first"] else variants["anchor"].position() + 1
        shown = variants["texts"][variants["index"]]
        if self.editor.toPlainText()[start:start + variants["length"]] != shown:
            self.show_message("The paragraph was edited: its variants are kept in the "
                              "History.", error=True)
            self.close_variants()
            return
        cursor = QTextCursor(self.editor.document())
        cursor.beginEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(start + variants["length"], QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(variants["texts"][index])
        cursor.endEditBlock()
        variants["index"], variants["length"] = index, len(variants["texts"][index])
        self._show_variant_count()

    def close_variants(self) -> None:
        self._variants = None
        self.variants_bar.setVisible(False)

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
        from .notes import parts_text
        from .story import filled

        text = store.item_text(item)
        parts = item.metadata.get("prompt_parts")
        if isinstance(parts, list) and parts:
            try:
                text += "\n\n— What the model saw —\n" + parts_text(filled(parts,
                                                                          item.request))
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a hand-edited or foreign project: the output alone
        return text

    # -- story notes ----------------------------------------------------------------------------
    def notes_dialog(self) -> None:
        from .notes import NotesDialog

        store = self.context.store
        if store is None:
            self.show_message("Open or create a project first: the notes are kept in it.",
                              error=True)
            return
        self.notes = NotesDialog(self, store)
        self.notes.open()

    def saw_dialog(self) -> None:
        from .notes import SawDialog

        if self._saw is not None:
            self.saw = SawDialog(self, *self._saw)
            self.saw.open()

    # -- drafts -----------------------------------------------------------------------------------
    def work_state(self) -> dict[str, Any]:
        document = self.editor.toPlainText()
        passages = [[p.item_id, p.text] for p in (self._passages or [])
                    if p.text and p.text in document][:MAX_PASSAGES]
        return {"document": document, "passages": passages,
                "instruction": self.instruction.toPlainText(),
                "preset": self.preset.currentText(),
                "use_context": self.use_context.isChecked()}

    def project_changed(self) -> None:
        super().project_changed()
        self._passages = None
        self.close_variants()
        notes = getattr(self, "notes", None)
        if notes is not None and notes.isVisible():  # it wrote into the previous project
            notes.close()

    def restore_work(self, state: dict[str, Any]) -> None:
        from .alternatives import Passage

        self._passages = None  # another project: its passages are read when first needed
        kept = state.get("passages")
        if isinstance(kept, list):
            self._passages = [Passage(str(p[0]), str(p[1]), None) for p in kept[:MAX_PASSAGES]
                              if isinstance(p, list) and len(p) == 2]
        self.close_variants()
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
