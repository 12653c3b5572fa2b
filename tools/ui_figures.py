"""Issue 38's figures, from the real window (offscreen, 1024×700, first launch):

- controls and labels visible in each panel before the work (its settings column and the
  rows around the work), counted from the widgets themselves;
- the contrast of both themes' text pairs (computed from the palettes);
- with ``--clicks``: first results through the welcome page with the embedded models,
  clicked for real (QTest), counting the clicks.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/ui_figures.py [--clicks]

Run it in a checkout of an older commit too (``git worktree add /tmp/before <rev>``) for the
"before" column: the counting needs only ``window.panels``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("STUDIO_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="figures-home-"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["CREATIVE_STUDIO_NO_PRELOAD"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"


def count(panel) -> tuple[int, int]:
    """(controls, labels) visible in ``panel``, the work itself left out."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
        QSlider,
        QTextEdit,
    )

    work = {id(getattr(panel, name)) for name in ("editor", "view", "roll")
            if getattr(panel, name, None) is not None}
    controls = labels = 0
    for widget in panel.findChildren(object):
        if not hasattr(widget, "isVisible") or not widget.isVisible() or id(widget) in work:
            continue
        if isinstance(widget, QAbstractButton | QComboBox | QAbstractSpinBox | QLineEdit |
                      QPlainTextEdit | QTextEdit | QSlider):
            if not isinstance(widget.parent(), QAbstractSpinBox | QComboBox):  # their parts
                controls += 1
        elif isinstance(widget, QLabel) and widget.text().strip():
            labels += 1
    return controls, labels


def clicks(window, app) -> None:
    """First results through the welcome page, clicked for real."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from creative_studio.ui.guide import WelcomeDialog

    def click(button) -> int:
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
        app.processEvents()
        return 1

    for plugin_id in ("text", "image", "music"):
        panel = window.panels[plugin_id]
        welcome = WelcomeDialog(window)
        welcome.show()
        app.processEvents()
        made = window.store.count()
        n = click(welcome.start_buttons[plugin_id])
        n += click(panel.run_button)
        start = time.monotonic()
        while window.store.count() == made and time.monotonic() - start < 300:
            app.processEvents()
            time.sleep(0.02)
        done = window.store.count() > made
        print(f"| {plugin_id} | {n} | no | {'yes' if done else 'NO RESULT'} in "
              f"{time.monotonic() - start:.1f} s |")


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(PluginRegistry.discover(), Settings())
    window.show()
    window.resize(1024, 700)
    print(f"studio at {ROOT}\n\n| panel | controls | labels |\n|---|---|---|")
    for plugin_id, panel in window.panels.items():
        window.tabs.setCurrentWidget(panel)
        app.processEvents()
        controls, labels = count(panel)
        print(f"| {plugin_id} | {controls} | {labels} |")
    try:
        from creative_studio.ui.theme import contrast_report
    except ImportError:
        contrast_report = None
    if contrast_report is not None:
        print("\n| pair | light | dark | AA asks |\n|---|---|---|---|")
        light, dark = contrast_report("light"), contrast_report("dark")
        for (what, ratio, need), (_, ratio_dark, _) in zip(light, dark, strict=True):
            print(f"| {what} | {ratio:.2f} | {ratio_dark:.2f} | "
                  f"{f'{need:g}:1' if need else 'exempt'} |")
    if "--clicks" in sys.argv:
        print("\n| panel | clicks | typing | result |\n|---|---|---|---|")
        clicks(window, app)
    window.runner.shutdown(cancel=True)


if __name__ == "__main__":
    main()
