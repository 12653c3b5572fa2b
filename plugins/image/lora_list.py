"""The Image panel's LoRA stack: the LoRA files of the next job, each with its weight (0 = not
applied), its trigger words one click away, added from files or dropped in. Its value is the
declared ``loras`` parameter ("FILE:WEIGHT" entries), so recipes, Use all and the project's
kept settings carry it like any parameter."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .loras import MAX_WEIGHT, parse_entry, trigger_words


class _Row(QWidget):
    def __init__(self, path: Path, weight: float, stack: LoraStack) -> None:
        super().__init__()
        from .checkpoints import metadata

        self.path = path
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        exists = path.is_file()
        self.name = QLabel(("" if exists else "⚠ ") + path.stem)
        self.name.setToolTip(str(path) if exists else f"{path} is not there (moved?)")
        self.triggers = trigger_words(metadata(path)) if exists else ()
        self.weight = QDoubleSpinBox()
        self.weight.setRange(-MAX_WEIGHT, MAX_WEIGHT)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(2)
        self.weight.setValue(weight)
        self.weight.setToolTip("How strongly the LoRA acts (0 = not applied)")
        self.weight.valueChanged.connect(stack.changed)
        words = QToolButton()
        words.setText("+ words")
        words.setEnabled(bool(self.triggers))
        words.setToolTip("Add its trigger words to the prompt: " + ", ".join(self.triggers)
                         if self.triggers else "The file names no trigger words")
        words.clicked.connect(lambda: stack.trigger_words.emit(", ".join(self.triggers)))
        remove = QToolButton()
        remove.setText("×")
        remove.setToolTip("Take this LoRA off")
        remove.clicked.connect(lambda: stack.remove(self))
        row.addWidget(self.name, 1)
        row.addWidget(self.weight)
        row.addWidget(words)
        row.addWidget(remove)

    def entry(self) -> str:
        return f"{self.path}:{self.weight.value():g}"


class LoraStack(QWidget):
    changed = Signal()
    trigger_words = Signal(str)  # the words a row offers, to go into the prompt

    def __init__(self, choose=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[_Row] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.list = QVBoxLayout()
        layout.addLayout(self.list)
        self.add_button = QPushButton("Add LoRA…")
        self.add_button.setToolTip("LoRA files (.safetensors) for SD 1.x, 2.x or SDXL "
                                   "checkpoints; <lora:name:0.8> in the prompt works too")
        if choose is not None:
            self.add_button.clicked.connect(choose)
        layout.addWidget(self.add_button)

    def add(self, path: Path, weight: float = 1.0) -> None:
        if any(row.path == path for row in self.rows):
            return
        row = _Row(path, weight, self)
        self.rows.append(row)
        self.list.addWidget(row)
        self.changed.emit()

    def remove(self, row: _Row) -> None:
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()
        self.changed.emit()

    def list_value(self) -> list[str]:
        return [row.entry() for row in self.rows]

    def set_list_value(self, values: list[str]) -> None:
        for row in list(self.rows):
            self.remove(row)
        for entry in values:
            try:
                path, weight = parse_entry(entry)
            except Exception:  # noqa: BLE001 - a damaged recipe's entry: left out
                continue
            self.add(path, weight)
