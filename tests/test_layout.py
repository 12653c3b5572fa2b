"""The window at 1024×700: it fits, nothing is clipped, and messages never move buttons
(the real window, every panel)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

pytestmark = pytest.mark.gui
LONG = ("A rather long error message that explains in plain words what went wrong with the "
        "file you chose and what to do about it next time. ") * 2


def _buttons(window, panel):
    return {b.text(): (b.mapTo(window, b.rect().topLeft()).toTuple(), b.size().toTuple())
            for b in panel.findChildren(QPushButton) if b.isVisible()}


def test_the_window_fits_1024_by_700_and_its_labels_are_whole(make_window):
    window = make_window()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 700, hint
    window.resize(1024, 700)
    QApplication.processEvents()
    assert window.size().toTuple() == (1024, 700)
    for panel in window.panels.values():
        window.tabs.setCurrentWidget(panel)
        QApplication.processEvents()
        for label in panel.side_scroll.widget().findChildren(QLabel):
            if label.isVisible() and label.text() and not label.wordWrap():
                assert label.width() >= label.minimumSizeHint().width(), label.text()


def test_messages_and_status_lines_never_move_the_buttons(make_window):
    window = make_window()
    window.resize(1024, 700)
    for plugin_id, panel in window.panels.items():
        window.tabs.setCurrentWidget(panel)
        QApplication.processEvents()
        before, size = _buttons(window, panel), window.size()
        panel.show_message(LONG, error=True)
        for line in (getattr(panel, "status", None), panel.status_label):
            if isinstance(line, QLabel):
                line.setText("Upscaled 3 pictures in 12.3 s with DAT-light ×4 — 240×160 → "
                             "960×640, and a few more words to wrap " * 3)
        QApplication.processEvents()
        after = _buttons(window, panel)
        moved = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
        assert not moved, (plugin_id, moved)
        assert window.size() == size
