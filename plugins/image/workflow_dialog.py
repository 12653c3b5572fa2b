"""The Image panel's Workflow dialog (Qt): open an API-format ComfyUI workflow and choose
which of its inputs take the panel's prompt, negative prompt, seed, steps, guidance, size and
checkpoint (guessed from the graph first)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from creative_studio.core.errors import StudioError
from creative_studio.ui.widgets import ask_path, dialog_layout

from . import workflows

NOT_USED = "(not used)"


class WorkflowDialog(QDialog):
    """``text`` is the ``workflow`` parameter after OK ("" = the standard workflow)."""

    def __init__(self, settings, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("ComfyUI workflow")
        self.settings = settings
        self.text = text
        self.name, self.graph = "", {}
        self.status = QLabel("")
        self.status.setWordWrap(True)
        open_button = QPushButton("Open workflow (API format)…")
        open_button.clicked.connect(self.open_file)
        standard = QPushButton("Use the standard text-to-image workflow")
        standard.clicked.connect(self.use_standard)
        self.roles: dict[str, QComboBox] = {}
        form_widget = QWidget()
        form = QFormLayout(form_widget)
        for role in workflows.ROLES:
            combo = QComboBox()
            combo.setMinimumContentsLength(24)
            self.roles[role] = combo
            form.addRow(workflows.ROLE_LABELS[role], combo)
        dialog_layout(self, open_button, standard, self.status, form_widget)
        if text:
            try:
                name, graph, inputs = workflows.load_document(text)
                self._show(name, graph, inputs)
            except StudioError as exc:
                self.status.setText(str(exc))
        else:
            self.use_standard()

    def open_file(self) -> None:
        path = ask_path(self, self.settings, "workflow", "open", "Open a ComfyUI workflow",
                        file_filter="ComfyUI API workflows (*.json)")
        if path:
            self.load(Path(path))

    def load(self, path: Path) -> bool:
        try:
            if path.stat().st_size > workflows.MAX_WORKFLOW * 4:
                raise StudioError(f"{path.name} is too large for a workflow.")
            graph = workflows.parse_workflow(path.read_text(encoding="utf-8",
                                                            errors="replace"), path.name)
        except (StudioError, OSError) as exc:
            from creative_studio.core.errors import describe

            self.status.setText(f"✗ {describe(exc)}")
            return False
        self._show(path.name, graph, workflows.guess_inputs(graph))
        return True

    def use_standard(self) -> None:
        self.name, self.graph = "", {}
        for combo in self.roles.values():
            combo.clear()
            combo.setEnabled(False)
        self.status.setText("The standard text-to-image workflow: the panel's settings map "
                            "onto it.")

    def _show(self, name: str, graph: dict, inputs: dict[str, list[str]]) -> None:
        self.name, self.graph = name, graph
        choices = [(f"{node_id} · {node['class_type']} · {key}", [node_id, key])
                   for node_id, node in graph.items() for key, value in node["inputs"].items()
                   if workflows._is_value(value)]
        for role, combo in self.roles.items():
            combo.clear()
            combo.setEnabled(True)
            combo.addItem(NOT_USED, None)
            for label, target in choices:
                combo.addItem(label, target)
            if role in inputs:
                index = next((i for i in range(combo.count())
                              if combo.itemData(i) == inputs[role]), 0)
                combo.setCurrentIndex(index)
        found = ", ".join(workflows.ROLE_LABELS[r].lower() for r in inputs) or "nothing"
        self.status.setText(f"{name}: {len(graph)} nodes. Found inputs for {found}; check "
                            "them below.")

    def inputs(self) -> dict[str, list[str]]:
        return {role: combo.currentData() for role, combo in self.roles.items()
                if combo.currentData()}

    def accept(self) -> None:
        self.text = workflows.document(self.name, self.graph, self.inputs()) \
            if self.graph else ""
        super().accept()
