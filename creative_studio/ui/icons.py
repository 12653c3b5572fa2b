"""Icons for actions and panels, drawn from an icon font (qtawesome's Material Design Icons,
Apache-2.0) in the theme's text colour, so they are sharp at any scale (100–200 %) and
readable in light and dark themes.

``icon(name)`` gives a QIcon; ``refresh()`` redraws every icon handed out through
:func:`set_icon` after the theme changes. A missing icon font or an unknown name gives an
empty icon: the text of the action still says what it does.
"""

from __future__ import annotations

import logging
import os
import weakref

from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)
_given: list[tuple[weakref.ref, str]] = []  # (QAction or button, icon name) to redraw

# the studio's actions → icon names (one place, so one action has one icon everywhere)
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


def icon(name: str) -> QIcon:
    """The icon ``name`` (an ACTIONS key or a qtawesome name) in the palette's text colour."""
    name = ACTIONS.get(name, name)
    if not name:
        return QIcon()
    os.environ.setdefault("QT_API", "pyside6")  # qtpy: the binding the studio runs on
    try:
        import qtawesome

        app = QApplication.instance()
        palette = app.palette() if app is not None else QPalette()
        text = palette.color(QPalette.ColorRole.WindowText)
        disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        return qtawesome.icon(name, color=text, color_disabled=disabled)
    except Exception as exc:  # no icon font: the action's text says what it does
        log.info("icon %s not drawn: %s", name, exc)
        return QIcon()


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
