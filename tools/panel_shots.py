"""Screenshots of every panel at 1024×700 and 1920×1080, light and dark (docs/panels/).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/panel_shots.py [docs/panels]
    QT_SCALE_FACTOR=2 QT_QPA_PLATFORM=offscreen .venv/bin/python tools/panel_shots.py /tmp/hidpi

The second: the same window at 200 % (each picture twice the pixels, nothing blurred or
clipped). Look at them before every stop.

The real window (models in the model process), each tab shown in turn, grabbed with
QWidget.grab(); a long message is shown in each panel, so that a clipped label or a
layout that jumps would be seen.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="shot-home-"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["CREATIVE_STUDIO_NO_PRELOAD"] = "1"
SIZES = ((1024, 700), (1920, 1080))


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow
    from creative_studio.ui.theme import apply_theme

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "panels")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window = MainWindow(PluginRegistry.discover(), Settings(theme=theme))
        window.show()
        window.panels["text"].editor.setPlainText(
            "The Keeper of Lisbon Light\n\nThe fog rolled in against the lighthouse as the "
            "keeper climbed the stairs, one lantern in his hand.")
        for width, height in SIZES:
            window.resize(width, height)
            for plugin_id, panel in window.panels.items():
                window.tabs.setCurrentWidget(panel)
                panel.show_message("Messages appear here and move nothing: this one is long "
                                   "enough to wrap onto a second line.")
                app.processEvents()
                size = window.size()
                name = out / f"{plugin_id}-{width}x{height}-{theme}.png"
                window.grab().save(str(name))
                print(f"{name.name}: window {size.width()}×{size.height()}")
        # the writer's focus mode, and the pages of Help
        window.resize(*SIZES[0])
        window.tabs.setCurrentWidget(window.panels["text"])
        window.toggle_focus()
        app.processEvents()
        window.grab().save(str(out / f"text-focus-{theme}.png"))
        window.toggle_focus()
        from creative_studio.ui.guide import ManualDialog, ShortcutsDialog, WelcomeDialog

        for name, dialog in (("welcome", WelcomeDialog(window)),
                             ("manual", ManualDialog(window)),
                             ("shortcuts", ShortcutsDialog(window))):
            dialog.show()
            app.processEvents()
            dialog.grab().save(str(out / f"{name}-{theme}.png"))
            print(f"{name}-{theme}.png: {dialog.width()}×{dialog.height()}")
            dialog.close()
        writers_desk(app, window, out, theme)
        window.runner.shutdown()
        window.close()


def writers_desk(app, window, out: Path, theme: str) -> None:
    """The writer's desk with the real embedded model: story notes, What the model saw,
    the variants of a paragraph, and the alternatives at a generated word."""
    import time

    from plugins.text.notes import NotesDialog, SawDialog
    from plugins.text.story import Story

    panel = window.panels["text"]
    window.resize(*SIZES[0])
    window.tabs.setCurrentWidget(panel)
    window.store.set_state("story", Story.from_value({
        "notes": [{"title": "Mara", "text": "Mara has amber eyes and a thin scar on her chin. "
                   "She keeps the lighthouse since her father drowned.", "kind": "character"},
                  {"title": "Lisbon Light", "text": "A lighthouse on a rock off Cascais.",
                   "keys": ["lighthouse", "light"], "kind": "place"},
                  {"title": "Style", "text": "Quiet, close third person, past tense.",
                   "pinned": True, "kind": "style"}],
        "author_note": "A storm is coming.", "depth": 1}).to_dict())
    panel.restore_work({"document": "The fog rolled in against the lighthouse as the keeper "
                                    "climbed the stairs.\nMara set the lantern down and "
                                    "listened.\nSomething moved on the rocks below."})
    panel.seed_mode.setCurrentText("fixed")
    panel.seed.setValue(3)

    def wait() -> None:
        deadline = time.monotonic() + 180
        while (panel._stream is not None or panel.jobs) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)

    text = panel.editor.toPlainText()
    panel.paragraph_variants(text.index("Mara") + 2)
    wait()
    panel.flip_variant(-1)
    panel.flip_variant(1)
    app.processEvents()
    window.grab().save(str(out / f"text-variants-{theme}.png"))
    saw = SawDialog(panel, *panel._saw) if panel._saw else None
    if saw is not None:
        saw.show()
        app.processEvents()
        saw.grab().save(str(out / f"text-saw-{theme}.png"))
        saw.close()
    notes = NotesDialog(panel, window.store)
    notes.show()
    app.processEvents()
    notes.grab().save(str(out / f"text-notes-{theme}.png"))
    notes.close()
    document = panel.editor.toPlainText()
    passage = next(p for p in panel.passages() if p.text and p.text in document)
    menu = panel.alternatives_menu(document.index(passage.text) + len(passage.text) // 2,
                                   panel)
    if menu is not None:
        menu.popup(panel.editor.mapToGlobal(panel.editor.rect().center()))
        app.processEvents()
        menu.grab().save(str(out / f"text-alternatives-{theme}.png"))
        menu.close()
    print(f"text-variants/saw/notes/alternatives-{theme}.png")


if __name__ == "__main__":
    main()
