"""The Text panel's story dialogs: the project's **story notes** (plugins/text/story.py), kept
as they are typed, and **What the model saw** for a job, part by part with token counts."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.errors import StudioError

from .story import KINDS, STATE_KEY, Note, Story

log = logging.getLogger(__name__)

SAVE_DELAY_MS = 400  # typing is kept this long after the last key


class NotesDialog(QDialog):
    """The story notes of the open project: a list, the chosen entry's fields, the author's
    note. Every change is written to the project (state ``story``) as it is made."""

    def __init__(self, panel, store) -> None:
        super().__init__(panel)
        self.setWindowTitle("Story notes")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.store = store
        self.story = Story.from_value(store.get_state(STATE_KEY, None))
        self._loading = False
        self._dirty = False
        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)

        intro = QLabel("Characters, places, facts and style the model should keep to. An entry "
                       "joins the prompt when one of its keywords (its title if none) is in "
                       "the instruction or the last 2,000 characters before the cursor; a "
                       "pinned one always. Each job's “What the model saw” shows which joined "
                       "and why.")
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.currentRowChanged.connect(self._show)
        add = QPushButton("Add")
        add.setToolTip("A new entry")
        add.clicked.connect(self.add)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(self.remove_button)
        left_layout.addLayout(row)

        self.title = QLineEdit()
        self.title.setPlaceholderText("Mara")
        self.kind = QComboBox()
        self.kind.addItems(list(KINDS))
        self.keys = QLineEdit()
        self.keys.setPlaceholderText("words that make it join, separated by commas "
                                     "(default: the title)")
        self.pinned = QCheckBox("Pinned: always in the prompt")
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Mara has green eyes and a scar on her chin. She "
                                     "never lies, but rarely tells the whole truth.")
        self.entry = QWidget()
        form = QFormLayout(self.entry)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Title", self.title)
        form.addRow("Kind", self.kind)
        form.addRow("Keywords", self.keys)
        form.addRow("", self.pinned)
        form.addRow("Text", self.text)
        for signal in (self.title.textEdited, self.keys.textEdited, self.text.textChanged,
                       self.kind.currentIndexChanged, self.pinned.toggled):
            signal.connect(self._edited)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.entry)
        splitter.setSizes([180, 420])

        self.author = QPlainTextEdit(self.story.author_note)
        self.author.setPlaceholderText("Author's note, e.g. “Write in short, tense sentences; "
                                       "it is night and raining.”")
        self.author.setFixedHeight(60)
        self.depth = QSpinBox()
        self.depth.setRange(1, 50)
        self.depth.setValue(self.story.depth)
        self.depth.setSuffix(" paragraph(s) before the end")
        self.depth.setToolTip("Where the author's note goes in the document the model reads: "
                              "nearer the end, it steers the next words more")
        self.author.textChanged.connect(self._edited)
        self.depth.valueChanged.connect(self._edited)
        author_form = QFormLayout()
        author_form.addRow("Author's note", self.author)
        author_form.addRow("Inserted", self.depth)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(splitter, 1)
        layout.addLayout(author_form)
        layout.addWidget(buttons)
        self.resize(720, 520)
        self._fill()
        if self.story.notes:
            self.list.setCurrentRow(0)
        self._show(self.list.currentRow())

    # -- the list ---------------------------------------------------------------------------
    def _label(self, note: Note) -> str:
        return (note.title or "(untitled)") + (" (pinned)" if note.pinned else "")

    def _fill(self) -> None:
        self.list.clear()
        for note in self.story.notes:
            QListWidgetItem(self._label(note), self.list)

    def _show(self, row: int) -> None:
        self._loading = True
        note = self.story.notes[row] if 0 <= row < len(self.story.notes) else None
        self.entry.setEnabled(note is not None)
        self.remove_button.setEnabled(note is not None)
        self.title.setText(note.title if note else "")
        self.kind.setCurrentText(note.kind if note else "other")
        self.keys.setText(", ".join(note.keys) if note else "")
        self.pinned.setChecked(bool(note and note.pinned))
        self.text.setPlainText(note.text if note else "")
        self._loading = False

    def add(self) -> None:
        base, n = "New note", 1
        titles = {note.title.lower() for note in self.story.notes}
        title = base
        while title.lower() in titles:
            n += 1
            title = f"{base} {n}"
        self.story.notes.append(Note(title, ""))
        self._fill()
        self.list.setCurrentRow(len(self.story.notes) - 1)
        self.title.selectAll()
        self.title.setFocus()

    def remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.story.notes):
            del self.story.notes[row]
            self._dirty = True
            self._fill()
            self.list.setCurrentRow(min(row, len(self.story.notes) - 1))
            self.save()

    def _edited(self, *_args) -> None:
        if self._loading:
            return
        row = self.list.currentRow()
        if 0 <= row < len(self.story.notes):
            note = self.story.notes[row]
            note.title = self.title.text().strip()
            note.kind = self.kind.currentText()
            note.keys = [k.strip() for k in self.keys.text().split(",") if k.strip()]
            note.pinned = self.pinned.isChecked()
            note.text = self.text.toPlainText().strip()
            self.list.item(row).setText(self._label(note))
        self.story.author_note = self.author.toPlainText()
        self.story.depth = self.depth.value()
        self._dirty = True
        self._save_timer.start()

    def save(self) -> None:
        """Into the project now, if anything changed (an entry without a title or text is
        kept in the dialog until it has both)."""
        self._save_timer.stop()
        if not self._dirty:
            return
        try:
            self.store.set_state(STATE_KEY, Story.from_value(self.story.to_dict()).to_dict())
            self._dirty = False
        except StudioError as exc:  # the project was closed or cannot be written: said
            log.warning("story notes not saved: %s", exc)
            self.setWindowTitle(f"Story notes — NOT SAVED: {exc}")

    def done(self, result: int) -> None:
        self.save()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.save()
        super().closeEvent(event)


def parts_text(parts: list[dict[str, Any]]) -> str:
    """The parts as plain text (the History's detail shows it under the output)."""
    lines = []
    for part in parts:
        tokens = f"{'≈' if part.get('estimated') else ''}{int(part.get('tokens', 0)):,} tokens"
        why = f" — {part['why']}" if part.get("why") else ""
        lines.append(f"[{part['part']}] {tokens}{why}")
        text = str(part.get("text", ""))
        if text:
            lines.append("    " + (text if len(text) <= 600 else "…" + text[-600:])
                         .replace("\n", "\n    "))
    return "\n".join(lines)


class SawDialog(QDialog):
    """What the model saw for one job: each part (system prompt, each note and why it
    joined, the document excerpt, the author's note, the instruction), its tokens, and the
    part's text below."""

    def __init__(self, parent, title: str, parts: list[dict[str, Any]], total: int) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"What the model saw — {title}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.parts = parts
        self.table = QTableWidget(len(parts), 3)
        self.table.setHorizontalHeaderLabels(["Part", "Tokens", "Why"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, part in enumerate(parts):
            tokens = f"{'≈' if part.get('estimated') else ''}{int(part.get('tokens', 0)):,}"
            for column, value in enumerate((part["part"], tokens, part.get("why", ""))):
                self.table.setItem(row, column, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.table.currentCellChanged.connect(lambda row, *_: self.text.setPlainText(
            str(self.parts[row].get("text", "")) if 0 <= row < len(self.parts) else ""))
        summary = QLabel(f"{total:,} prompt tokens in all." if total else
                         "Token counts estimated (the server does not say).")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.text)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.resize(680, 520)
        if parts:
            self.table.setCurrentCell(0, 0)
