"""The "Models on this computer" dialog the panels share: what a scan of other apps' folders
and the user's own found (run off the GUI thread), a table of it, Use for the chosen one,
and Add a folder… (kept in the preferences' ``model_folders``). Each panel says what to scan,
which columns a model fills, and what Use does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from .servers import Background
from .widgets import ask_path

SCAN_DELAY_MS = 1500  # the start-up scan waits for the window to appear


def list_at_start(panel, scan: Callable[[], Callable[[], list]],
                  label: Callable[[Any], str | None]) -> None:
    """When the preferences say so, once the window is up and off the GUI thread: the
    models ``scan()`` finds (``scan`` as FoundModelsDialog takes it) join ``panel.model``
    as "<label> — on this computer" (``label`` None: left out), the panel's choice kept."""
    if not getattr(panel.context.settings, "scan_models", False):
        return

    def joined(found, error: str) -> None:
        combo = panel.model
        current = combo.currentIndex()
        for model in found or []:
            text = None if model.error else label(model)
            if text and combo.findData(model.path) < 0:
                combo.addItem(f"{text} — on this computer", model.path)
                combo.setItemData(combo.count() - 1, f"{model.path} ({model.app})",
                                  Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(current)

    def start() -> None:
        panel._scanning = Background(panel)
        panel._scanning.done.connect(joined)
        panel._scanning.run(scan())

    QTimer.singleShot(SCAN_DELAY_MS, panel, start)  # not after the panel is gone


def size_text(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


class FoundModelsDialog(QDialog):
    """``scan()`` (on the GUI thread: it reads the preferences) → the work to run off it,
    which returns models (each with ``path``, ``error`` and ``copies``); ``columns`` and
    ``values(model)`` fill a row, ``use(model)`` takes the chosen one; ``looking`` and
    ``empty`` are the texts before a scan and when it found nothing."""

    def __init__(self, panel, *, columns: Sequence[str],
                 scan: Callable[[], Callable[[], list]],
                 values: Callable[[Any], tuple], use: Callable[[Any], None], looking: str,
                 empty: str, folder_title: str) -> None:
        super().__init__(panel)
        self.panel = panel
        self._scan, self._values, self._use = scan, values, use
        self.empty, self.folder_title = empty, folder_title
        self.setWindowTitle("Models on this computer")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.found: list = []
        self.note = QLabel(looking)
        self.note.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: a part of a name, a kind, a folder…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter)
        self.table = QTableWidget(0, len(columns))
        self.table.setHorizontalHeaderLabels(list(columns))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemDoubleClicked.connect(lambda *_: self.use())
        add_folder = QPushButton("Add a folder…")
        add_folder.setToolTip("Scan a folder of your own too (kept in the preferences)")
        add_folder.clicked.connect(self.add_folder)
        again = QPushButton("Scan again")
        again.clicked.connect(self.scan)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.use_button = buttons.addButton("Use", QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.clicked.connect(self.use)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(add_folder)
        row.addWidget(again)
        row.addStretch(1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.worker = Background(self)
        self.worker.done.connect(self._listed)
        self.resize(900, 420)
        self.scan()

    def scan(self) -> None:
        self.note.setText("Looking…")
        self.worker.run(self._scan())

    def _listed(self, found, error: str) -> None:
        if error:
            self.note.setText(f"The scan failed: {error}")
            return
        self.found = list(found or [])
        readable = [m for m in self.found if not m.error]
        self.table.setRowCount(len(self.found))
        for row, model in enumerate(self.found):
            values = self._values(model)
            if model.error:
                values = (Path(model.path).name, *([""] * (len(values) - 2)),
                          f"{model.path} — {model.error}")
            for column, value in enumerate(values):
                cell = QTableWidgetItem(value)
                tip = model.path + (f"\n{model.error}" if model.error else "") + \
                    "".join(f"\nalso: {c}" for c in model.copies)
                cell.setToolTip(tip)
                if model.error:
                    cell.setFlags(cell.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(row, column, cell)
        self.table.resizeColumnsToContents()
        unreadable = len(self.found) - len(readable)
        self.note.setText(f"{len(readable)} model(s) found" + (
            f", {unreadable} file(s) that could not be read (greyed)" if unreadable else "")
            + ". Double-click one, or choose it and Use." if self.found else self.empty)
        if readable:
            self.table.selectRow(self.found.index(readable[0]))
        self._filter(self.filter.text())

    def _filter(self, text: str) -> None:
        """Rows with every word typed somewhere in them (a hundred LoRAs stay findable)."""
        words = text.lower().split()
        for row in range(self.table.rowCount()):
            cells = " ".join(self.table.item(row, c).text().lower()
                             for c in range(self.table.columnCount())
                             if self.table.item(row, c) is not None)
            self.table.setRowHidden(row, not all(w in cells for w in words))

    def add_folder(self) -> None:
        folder = ask_path(self, self.panel.context.settings, "model", "folder",
                          self.folder_title)
        if not folder:
            return
        settings = self.panel.context.settings
        folders = list(getattr(settings, "model_folders", []) or [])
        if folder not in folders:
            folders.append(folder)
            settings.model_folders = folders
            self.panel._save_preferences()
        self.scan()

    def use(self) -> None:
        row = self.table.currentRow()
        if not 0 <= row < len(self.found) or self.found[row].error:
            return
        self._use(self.found[row])
        self.accept()
