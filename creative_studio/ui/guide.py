"""What teaches the studio: the welcome page, the manual and the keyboard shortcuts (Help).

- **Welcome** (the first launch, and Help → Welcome): what each embedded model is good for
  and its limits in one line (the manifests' ``summary``/``limits``), the sample project,
  and the ways in — a model you already have, a server, or start in a panel.
- **Manual** (Help → Manual, F1): the README and docs/*.md, offline, rendered as Markdown.
- **Keyboard shortcuts** (Help → Keyboard shortcuts): every action of the window and the
  panels that has one, read from the widgets themselves, so the list is never stale.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMenu,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
)

from ..core import paths
from .icons import icon
from .theme import SPACING, set_type

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample" / "sample.csproj"


class WelcomeDialog(QDialog):
    """The welcome page: what the embedded models do, the sample, and the ways in."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Welcome to Creative Studio")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING + 4)
        layout.addWidget(set_type(QLabel("Welcome to Creative Studio"), "title"))
        intro = QLabel("Write, draw, compose and upscale with models on this computer. "
                       "Everything you make is kept in one project file with its recipe: "
                       "the prompt, settings, seed and model, so any result can be made "
                       "again.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        layout.addWidget(set_type(QLabel("The models that come with the studio"), "section"))
        models = QGridLayout()
        models.setHorizontalSpacing(10)
        models.setColumnStretch(1, 1)
        self.start_buttons: dict[str, QPushButton] = {}
        for row, (plugin_id, panel) in enumerate(window.panels.items()):
            manifest = panel.manifest
            offer = manifest.default_model
            glyph = QLabel()
            glyph.setPixmap(icon(manifest.icon).pixmap(28, 28))
            models.addWidget(glyph, row, 0, Qt.AlignmentFlag.AlignTop)
            text = f"<b>{manifest.name}</b>"
            if offer is not None:
                text += f" — {offer.name}"
                if offer.summary:
                    text += f"<br>{offer.summary}."
                if offer.limits:
                    text += f"<br><i>Limits:</i> {offer.limits}."
            else:
                text += f"<br>{manifest.description}"
            line = QLabel(text)
            line.setWordWrap(True)
            line.setTextFormat(Qt.TextFormat.RichText)
            models.addWidget(line, row, 1)
            start = QPushButton(manifest.start or f"Open {manifest.name}")
            start.setIcon(icon(manifest.icon))
            start.clicked.connect(lambda _=False, p=panel: self.start(p))
            models.addWidget(start, row, 2, Qt.AlignmentFlag.AlignTop)
            self.start_buttons[plugin_id] = start
        layout.addLayout(models)

        layout.addWidget(set_type(QLabel("Bring your own"), "section"))
        ways = QHBoxLayout()
        self.own_model = QToolButton()
        self.own_model.setText("Use a model you already have…")
        self.own_model.setIcon(icon("model"))
        self.own_model.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.own_model.setToolTip("A GGUF file for Text, a diffusers folder for Image, a "
                                  "super-resolution model file for Upscale, a model folder "
                                  "for Music")
        self.own_model.setMenu(self._own_model_menu())
        self.own_model.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.server = QPushButton(icon("server"), "Connect a server…")
        self.server.setToolTip("An OpenAI-compatible text server (llama.cpp, Ollama, LM Studio, "
                               "vLLM) or a ComfyUI server for images and upscaling")
        self.server.clicked.connect(self.connect_server)
        self.sample = QPushButton(icon("open"), "Open the sample project")
        self.sample.setToolTip("A copy of a small project with one result from each panel, "
                               "made by the models above")
        self.sample.setEnabled(SAMPLE.is_file())
        self.sample.clicked.connect(self.open_sample)
        for button in (self.own_model, self.server, self.sample):
            ways.addWidget(button)
        ways.addStretch(1)
        layout.addLayout(ways)

        footer = QHBoxLayout()
        self.at_start = QCheckBox("Show this page at start")
        self.at_start.setChecked(not window.settings.welcomed)
        self.at_start.toggled.connect(self._at_start)
        footer.addWidget(self.at_start)
        footer.addStretch(1)
        footer.addWidget(QLabel("Help → Welcome brings this page back · F1: the manual"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        footer.addWidget(buttons)
        layout.addLayout(footer)
        # the wrapped lines get the height they need at this width
        width = 820
        self.resize(width, max(self.sizeHint().height(), layout.totalHeightForWidth(width)))

    def _own_model_menu(self) -> QMenu:
        """Each panel's own "use another model" choices, a submenu per panel."""
        menu = QMenu(self)
        for panel in self.window_.panels.values():
            choices = panel.model_menu_actions()
            if not choices:
                continue
            sub = menu.addMenu(icon(panel.manifest.icon), panel.manifest.name)
            for text, slot in choices:
                sub.addAction(text, lambda s=slot, p=panel: self._in_panel(p, s))
        return menu

    def _in_panel(self, panel, slot) -> None:
        self.accept()
        self.window_.tabs.setCurrentWidget(panel)
        slot()

    def start(self, panel) -> None:
        self.accept()
        self.window_.tabs.setCurrentWidget(panel)
        panel.start_here()

    def connect_server(self) -> None:
        self.accept()
        self.window_.preferences(tab="Servers")

    def open_sample(self) -> None:
        """Open a copy of the sample project (the shipped file is never written)."""
        copy = paths.autosave_dir() / f"sample-{uuid.uuid4().hex[:6]}.csproj"
        try:
            shutil.copyfile(SAMPLE, copy)
        except OSError as exc:
            self.window_.show_error("Sample project", f"The sample could not be copied: {exc}")
            return
        self.accept()
        self.window_.open_project(copy)

    def _at_start(self, shown: bool) -> None:
        self.window_.settings.welcomed = not shown
        self.window_._save_settings()


def manual_pages() -> list[tuple[str, Path]]:
    """The manual's pages: the README first, then docs/*.md by name."""
    pages = []
    readme = ROOT / "README.md"
    if readme.is_file():
        pages.append(("Creative Studio (README)", readme))
    docs = ROOT / "docs"
    if docs.is_dir():
        for path in sorted(docs.glob("*.md")):
            pages.append((path.stem.replace("-", " ").replace("_", " ").capitalize(), path))
    return pages


class ManualDialog(QDialog):
    """Help → Manual: the README and docs/*.md, offline."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Creative Studio manual")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.pages = manual_pages()
        self.index = QListWidget()
        for title, _path in self.pages:
            self.index.addItem(title)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setSearchPaths([str(ROOT), str(ROOT / "docs")])
        splitter = QSplitter()
        splitter.addWidget(self.index)
        splitter.addWidget(self.browser)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([200, 700])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.index.currentRowChanged.connect(self.show_page)
        if self.pages:
            self.index.setCurrentRow(0)
        else:
            self.browser.setPlainText("The manual's files (README.md, docs/) are not next to "
                                      "this installation.")
        self.resize(960, 640)

    def show_page(self, row: int) -> None:
        if not 0 <= row < len(self.pages):
            return
        path = self.pages[row][1]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            self.browser.setPlainText(f"{path.name} could not be read: {exc}")
            return
        self.browser.setMarkdown(text)
        self._fit_images(path.parent)

    def _fit_images(self, folder: Path, width: int = 620) -> None:
        """Screenshots shown at most ``width`` pixels wide (no sideways scrolling)."""
        from PySide6.QtGui import QImageReader, QTextCursor

        document = self.browser.document()
        block = document.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                fmt = fragment.charFormat()
                if fragment.isValid() and fmt.isImageFormat():
                    image = fmt.toImageFormat()
                    size = QImageReader(str(folder / image.name())).size()
                    if size.isValid() and size.width() > width:
                        image.setWidth(width)
                        image.setHeight(size.height() * width / size.width())
                        cursor = QTextCursor(document)
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(fragment.position() + fragment.length(),
                                           QTextCursor.MoveMode.KeepAnchor)
                        cursor.setCharFormat(image)
                it += 1
            block = block.next()


def shortcuts_of(window) -> list[tuple[str, str, str]]:
    """(where, what, keys) for every action and shortcut of the window and its panels."""
    rows: list[tuple[str, str, str]] = []
    seen = set()
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        text = action.text().replace("&", "").rstrip("…")
        if keys and text and (text, keys) not in seen:
            seen.add((text, keys))
            rows.append(("Window", text, keys))
    for plugin_id, panel in window.panels.items():
        for shortcut in panel.findChildren(QShortcut):
            keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
            what = shortcut.whatsThis() or _SHORTCUT_NAMES.get(keys, "")
            if keys and (plugin_id, keys) not in seen:
                seen.add((plugin_id, keys))
                rows.append((panel.manifest.name, what or keys, keys))
    return rows


# what the panels' common shortcuts do, where a panel gave no whatsThis
_SHORTCUT_NAMES = {"Ctrl+Return": "Generate (the panel's run button)",
                   "Esc": "Stop the panel's jobs"}


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        rows = shortcuts_of(window)
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Where", "Action", "Keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                table.setItem(row, column, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(560, 560)

