"""Take the README's screenshot: the real window on an X server, after a real generation.

    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/screenshot.png [--dark]
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/upscale.png --upscale

--upscale: the Upscale panel after DAT-light ×4 on a small photo (skimage's "chelsea", needs
scikit-image; a drawn picture otherwise), the split in the middle, zoomed in.
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
    def shoot() -> None:
        screen = app.primaryScreen()
        image = screen.grabWindow(0, 0, 0, 1280, 820) if os.environ.get("DISPLAY") \
            else window.grab()
        image.save(str(out))
        print(f"saved {out} ({image.width()}x{image.height()})")
        window.close()
        app.quit()

    if "--upscale" in sys.argv:
        upscale_scene(window, shoot)
    else:
        text_scene(window, shoot)
    app.exec()


def upscale_scene(window, shoot) -> None:
    from PIL import Image
    from PySide6.QtCore import QPointF, QTimer

    picture = Path(tempfile.mkdtemp()) / "chelsea.png"
    try:
        from skimage import data

        Image.fromarray(data.chelsea()).resize((150, 100), Image.Resampling.BICUBIC).save(
            picture)
    except ImportError:
        from PIL import ImageDraw

        image = Image.new("RGB", (150, 100), "skyblue")
        ImageDraw.Draw(image).ellipse((40, 20, 110, 90), fill="orange", outline="black")
        image.save(picture)
    panel = window.panels["upscale"]
    window.tabs.setCurrentWidget(panel)
    panel.open_files([picture])
    (job,) = panel.upscale()

    def wait() -> None:
        if job.state.finished and not panel.jobs:
            window.history.select(job.item_id)
            view = panel.view
            view.zoom_at(1.6, QPointF(view.width() * 0.45, view.height() * 0.4))
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, wait)


def text_scene(window, shoot) -> None:
    from PySide6.QtCore import QTimer

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

    QTimer.singleShot(300, panel.generate)
    QTimer.singleShot(500, wait)


if __name__ == "__main__":
    main()
