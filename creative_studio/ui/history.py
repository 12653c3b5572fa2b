"""The project's history: items as a tree (alternatives and continuations nest)."""

from __future__ import annotations

import json
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import StudioError
from ..core.project import Item, ProjectStore
from .widgets import RECORDED_TASKS, SEEDLESS_TASKS

PAGE = 500  # items shown at once; "Show older" adds as many (a project can hold 200,000)
MAX_TITLE = 120  # characters of a title shown in the list
MAX_SHOWN = 4000  # characters of a prompt or parameter list shown in the recipe
MAX_DETAIL = 20_000  # characters of an output shown under the list (export shows it all)


def shorten(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def recipe_text(item: Item) -> str:
    lines = [
        f"DAMAGED: {item.damaged}" if item.damaged else "",
        f"Prompt: {shorten(item.request.prompt, MAX_SHOWN)}" if item.request.prompt else "",
        f"Task: {item.request.task}   Seed: {item.request.seed}   Device: {item.device}",
        f"Model: {item.model.get('name', '')} ({item.model.get('source', '')})",
        f"SHA-256: {item.model.get('sha256', '') or 'n/a'}",
        "Parameters: " + shorten(json.dumps({k: v for k, v in item.request.params.items()
                                             if k not in ("context", "selection")}),
                                 MAX_SHOWN),
        "Result: " + shorten(json.dumps(item.metadata), MAX_SHOWN),
    ]
    return "\n".join(line for line in lines if line)


class HistoryView(QWidget):
    """Lists items; emits what the user asks for with the selected one."""

    recall_requested = Signal(object, str)  # item, mode ("all" | "prompt" | "seed")
    rerun_requested = Signal(object)
    use_requested = Signal(object)
    delete_requested = Signal(object)
    selected = Signal(object)
    send_requested = Signal(object, str)  # item, plugin id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: ProjectStore | None = None
        self.describe = None  # callable(item) -> str, set by the window
        self.targets = None  # callable(item) -> [(plugin id, name)] that take it, by the window
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Item", "Plugin", "Seed", "Time"])
        # the item's title takes the room; its panel shows as its icon (the Plugin column is
        # kept for sorting and tools, hidden): no sideways scrolling in a narrow dock
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setColumnHidden(1, True)
        self.icons: dict[str, object] = {}  # plugin id → its icon (set by the window)
        self.tree.itemSelectionChanged.connect(self._on_select)
        self.tree.itemDoubleClicked.connect(lambda *_: self._emit(self.recall_requested, "all"))
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select an item to see its output and recipe.")
        self.buttons: dict[str, QPushButton] = {}
        # three buttons a row: the dock stays narrow enough for a 1024-pixel-wide window
        row1, row2, row3 = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        for key, label, tip, row in (
                ("all", "Use all", "Restore prompt, parameters and seed", row1),
                ("prompt", "Use prompt", "Restore the prompt only", row1),
                ("seed", "Use seed", "Restore the seed only", row1),
                ("use", "Insert", "Put this output where you work", row2),
                ("rerun", "Re-run", "Run the same recipe again (same seed)", row2),
                ("delete", "Delete", "Delete this item from the project", row3)):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setEnabled(False)
            self.buttons[key] = button
            row.addWidget(button)
        for mode in ("all", "prompt", "seed"):
            self.buttons[mode].clicked.connect(
                lambda _=False, m=mode: self._emit(self.recall_requested, m))
        self.buttons["use"].clicked.connect(lambda: self._emit(self.use_requested))
        self.buttons["rerun"].clicked.connect(lambda: self._emit(self.rerun_requested))
        self.buttons["delete"].clicked.connect(lambda: self._emit(self.delete_requested))
        self.send_button = QToolButton()
        self.send_button.setText("Send to")
        self.send_button.setToolTip("Use this output as the input of another panel")
        self.send_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.send_button.setMenu(QMenu(self.send_button))
        self.send_button.setEnabled(False)
        row3.addWidget(self.send_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.detail)
        splitter.setSizes([300, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.older = QPushButton("Show older items")
        self.older.setVisible(False)
        self.older.clicked.connect(self._show_older)
        layout.addWidget(self.older)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        self._items: dict[str, Item] = {}
        self.limit = PAGE

    def _show_older(self) -> None:
        self.limit += PAGE
        self.refresh()

    def set_store(self, store: ProjectStore | None) -> None:
        self.store = store
        self.limit = PAGE
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        current = select or (self.current_item().id if self.current_item() else None)
        self.tree.clear()
        self._items = {}
        if self.store is None:
            return
        items = self.store.items(limit=self.limit)
        total = self.store.count()
        self.older.setVisible(total > len(items))
        self.older.setText(f"Show older items ({total - len(items):,} more)")
        self._items = {item.id: item for item in items}
        nodes: dict[str, QTreeWidgetItem] = {}
        group_heads: dict[str, str] = {}
        for item in items:
            title = shorten(item.title or item.request.prompt[:50] or "(untitled)",
                            MAX_TITLE)
            if item.metadata.get("stopped"):
                title += "  [stopped]"
            damaged = item.damaged or self.store.damaged.get(item.id, "")
            if damaged:
                item.damaged = damaged
                title = "⚠ damaged · " + title
            seed = "—" if item.request.task in SEEDLESS_TASKS else str(item.request.seed)
            node = QTreeWidgetItem([title, item.plugin, seed,
                                    time.strftime("%H:%M:%S", time.localtime(item.created))])
            node.setData(0, Qt.ItemDataRole.UserRole, item.id)
            if item.plugin in self.icons:
                node.setIcon(0, self.icons[item.plugin])
            node.setToolTip(0, recipe_text(item))
            group = str(item.request.params.get("group", ""))
            parent_id = next((p for p in item.parents if p in nodes), None)
            if parent_id is None and group and group in group_heads:
                parent_id = group_heads[group]
                node.setText(0, "alt · " + title)
            if group and group not in group_heads:
                group_heads[group] = item.id
            if parent_id is not None:
                nodes[parent_id].addChild(node)
                nodes[parent_id].setExpanded(True)
            else:
                self.tree.addTopLevelItem(node)
            nodes[item.id] = node
        if current and current in nodes:
            self.tree.setCurrentItem(nodes[current])
        self._on_select()

    def current_item(self) -> Item | None:
        node = self.tree.currentItem()
        if node is None:
            return None
        return self._items.get(node.data(0, Qt.ItemDataRole.UserRole))

    def select(self, item_id: str) -> None:
        for node in self.tree.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive):
            if node.data(0, Qt.ItemDataRole.UserRole) == item_id:
                self.tree.setCurrentItem(node)
                return

    def _emit(self, signal, *args) -> None:
        item = self.current_item()
        if item is not None:
            signal.emit(item, *args)

    def _on_select(self) -> None:
        item = self.current_item()
        for button in self.buttons.values():
            button.setEnabled(item is not None)
        if item is not None and item.request.task in RECORDED_TASKS:
            self.buttons["rerun"].setEnabled(False)  # a file read or a hand edit: no recipe
        menu = self.send_button.menu()
        menu.clear()
        for plugin_id, name in (self.targets(item) if self.targets and item else []):
            action = menu.addAction(name)
            action.triggered.connect(
                lambda _=False, p=plugin_id: self._emit(self.send_requested, p))
        self.send_button.setEnabled(not menu.isEmpty())
        if item is None:
            self.detail.setPlainText("")
            return
        try:
            body = self.describe(item) if self.describe else ""
        except StudioError as exc:  # a damaged output: said, and marked at the next refresh
            body = str(exc)
        body = shorten(body, MAX_DETAIL)
        self.detail.setPlainText((body + "\n\n" if body else "") + recipe_text(item))
        self.selected.emit(item)
