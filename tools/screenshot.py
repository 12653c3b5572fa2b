"""Take the README's screenshot: the real window on an X server, after a real generation.

    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/screenshot.png [--dark]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="shot-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"


def main() -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow
    from creative_studio.ui.theme import apply_theme

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    app = QApplication([])
    settings = Settings(theme="dark" if "--dark" in sys.argv else "light")
    apply_theme(app, settings.theme)
    window = MainWindow(PluginRegistry.discover(), settings)
    window.resize(1280, 820)
    window.move(0, 0)
    window.show()
    panel = window.panels["text"]
    panel.editor.setPlainText("The Keeper of Lisbon Light\n\n")
    cursor = panel.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    panel.editor.setTextCursor(cursor)
    panel.instruction.setPlainText("Write the opening paragraph of a mystery set in a "
                                   "lighthouse near Lisbon.")
    panel.seed_mode.setCurrentText("fixed")
    panel.seed.setValue(2024)
    panel.max_tokens.setValue(90)
    panel.alternatives.setValue(2)

    def wait() -> None:
        if panel.generate_button.isEnabled() and window.store.count() >= 2:
            window.history.select(window.store.items()[0].id)
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    def shoot() -> None:
        screen = app.primaryScreen()
        image = screen.grabWindow(0, 0, 0, 1280, 820) if os.environ.get("DISPLAY") \
            else window.grab()
        image.save(str(out))
        print(f"saved {out} ({image.width()}x{image.height()})")
        window.close()
        app.quit()

    QTimer.singleShot(300, panel.generate)
    QTimer.singleShot(500, wait)
    app.exec()


if __name__ == "__main__":
    main()
