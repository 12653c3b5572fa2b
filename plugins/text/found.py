"""Models on this computer: the GGUFs other apps keep (core/discover.py), listed in a dialog
and in the Text panel's model list; one click uses one. Scanned off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from creative_studio.core import discover
from creative_studio.ui.servers import Background
from creative_studio.ui.widgets import ask_path

COLUMNS = ("Name", "Quantization", "Architecture", "Size", "Found in", "File")


def folders_of(settings) -> list[tuple[str, Path]]:
    """The usual apps' folders and the ones the user added (Preferences keeps them)."""
    extra = getattr(settings, "model_folders", None) or []
    return discover.known_folders() + [("folder", Path(f)) for f in extra
                                       if isinstance(f, str) and f]


def size_text(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


class FoundModelsDialog(QDialog):
    """The GGUF models on this computer: Use puts the chosen one in the panel's list."""

    def __init__(self, panel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.setWindowTitle("Models on this computer")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.found: list[discover.FoundModel] = []
        self.note = QLabel("Looking in LM Studio, Ollama, GPT4All, Jan, text-generation-webui, "
                           "~/models and the Hugging Face cache…")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
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
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.worker = Background(self)
        self.worker.done.connect(self._listed)
        self.resize(900, 420)
        self.scan()

    def scan(self) -> None:
        folders = folders_of(self.panel.context.settings)
        self.note.setText("Looking…")
        self.worker.run(lambda: discover.scan(folders))

    def _listed(self, found, error: str) -> None:
        if error:
            self.note.setText(f"The scan failed: {error}")
            return
        self.found = list(found or [])
        readable = [m for m in self.found if not m.error]
        self.table.setRowCount(len(self.found))
        for row, model in enumerate(self.found):
            values = (model.name, model.quantization, model.architecture,
                      size_text(model.size), model.app, model.path)
            if model.error:
                values = (Path(model.path).name, "", "", size_text(model.size), model.app,
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
            + ". Double-click one, or choose it and Use." if self.found else
            "No GGUF models found. Add a folder of your own, or choose a GGUF file (+ → "
            "GGUF file…).")
        if readable:
            self.table.selectRow(self.found.index(readable[0]))

    def add_folder(self) -> None:
        folder = ask_path(self, self.panel.context.settings, "model", "folder",
                          "A folder of GGUF models")
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
        model = self.found[row]
        self.panel.add_model_ref(model.path, f"GGUF: {model.label}")
        self.accept()
