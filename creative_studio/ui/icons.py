"""Icons for actions and panels, drawn from an icon font in the theme's text colour, so they
are sharp at any scale (100–200 %) and readable in light and dark themes.

The font is Material Design Icons 6 (Apache-2.0), the TTF and charmap that ship in the
``qtawesome`` wheel; only those two files are read (qtawesome itself is not imported: it
loads all of its ten fonts, which would cost the window a quarter of a second at start).

``icon(name)`` gives a QIcon ("save" or an "mdi6.<glyph>" name); ``set_icon`` gives one to an
action or button and redraws it when the theme changes (``refresh``). A missing font or an
unknown name gives an empty icon: the action's text still says what it does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import weakref
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QIcon,
    QIconEngine,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)
_given: list[tuple[weakref.ref, str]] = []  # (QAction or button, icon name) to redraw
FONT = "materialdesignicons6-webfont-6.9.96"

# the studio's actions → glyph names (one place, so one action has one icon everywhere)
ACTIONS = {
    "new": "mdi6.file-plus-outline",
    "open": "mdi6.folder-open-outline",
    "save": "mdi6.content-save-outline",
    "generate": "mdi6.creation",
    "stop": "mdi6.stop",
    "focus": "mdi6.fullscreen",
    "theme": "mdi6.theme-light-dark",
    "history": "mdi6.history",
    "jobs": "mdi6.format-list-checks",
    "welcome": "mdi6.hand-wave-outline",
    "manual": "mdi6.book-open-page-variant-outline",
    "shortcuts": "mdi6.keyboard-outline",
    "preferences": "mdi6.tune-variant",
    "model": "mdi6.harddisk",
    "server": "mdi6.server-network",
    "add": "mdi6.plus",
    "export": "mdi6.export-variant",
    "undo": "mdi6.undo",
    "redo": "mdi6.redo",
    "play": "mdi6.play",
}


@cache
def _font() -> tuple[str, dict[str, str]] | None:
    """(font family, glyph name → character), or None without the font."""
    spec = importlib.util.find_spec("qtawesome")  # finds the folder; runs none of its code
    if spec is None or not spec.submodule_search_locations:
        log.info("no icon font: qtawesome is not installed")
        return None
    fonts = Path(list(spec.submodule_search_locations)[0]) / "fonts"
    try:
        charmap = json.loads((fonts / f"{FONT.replace('webfont-', 'webfont-charmap-')}.json")
                             .read_text(encoding="utf-8"))
        font_id = QFontDatabase.addApplicationFont(str(fonts / f"{FONT}.ttf"))
    except (OSError, ValueError) as exc:
        log.info("icon font not read: %s", exc)
        return None
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        log.info("icon font not loaded")
        return None
    glyphs = {name: chr(int(code, 16)) for name, code in charmap.items()
              if isinstance(code, str) and code.startswith("0x")}
    return families[0], glyphs


class GlyphEngine(QIconEngine):
    """Draws one glyph of the icon font at any size, in the palette's colours."""

    def __init__(self, family: str, glyph: str, color: QColor, disabled: QColor) -> None:
        super().__init__()
        self.family, self.glyph = family, glyph
        self.color, self.disabled = QColor(color), QColor(disabled)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode,
              state: QIcon.State) -> None:
        font = QFont(self.family)
        font.setPixelSize(max(1, round(min(rect.width(), rect.height()) * 0.95)))
        painter.save()
        painter.setFont(font)
        painter.setPen(self.disabled if mode == QIcon.Mode.Disabled else self.color)
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), self.glyph)
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        return GlyphEngine(self.family, self.glyph, self.color, self.disabled)


def icon(name: str) -> QIcon:
    """The icon ``name`` (an ACTIONS key or "mdi6.<glyph>") in the palette's text colour."""
    name = ACTIONS.get(name, name)
    font = _font() if name else None
    glyph = font[1].get(name.removeprefix("mdi6.")) if font else None
    if glyph is None:
        return QIcon()
    app = QApplication.instance()
    palette = app.palette() if app is not None else QPalette()
    return QIcon(GlyphEngine(font[0], glyph, palette.color(QPalette.ColorRole.WindowText),
                             palette.color(QPalette.ColorGroup.Disabled,
                                           QPalette.ColorRole.WindowText)))


def set_icon(target, name: str) -> None:
    """Give an action or button its icon, and redraw it when the theme changes."""
    target.setIcon(icon(name))
    _given.append((weakref.ref(target), name))


def refresh() -> None:
    """Redraw the icons in the current palette's colours (after a theme change)."""
    alive = []
    for ref, name in _given:
        target = ref()
        if target is None:
            continue
        try:
            target.setIcon(icon(name))
        except RuntimeError:  # its C++ object is gone
            continue
        alive.append((ref, name))
    _given[:] = alive
