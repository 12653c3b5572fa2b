"""Start the studio: `python main.py` or the `creative-studio` script.

With a sub-command (`generate`, `list`, `export`, `plugins`) it runs headless (cli.py).
"""

from __future__ import annotations

import os
import sys
import time

_STARTED = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .cli import COMMANDS

    if argv and argv[0] in COMMANDS:
        from .cli import main as cli_main

        return cli_main(argv)
    return run_gui(argv)


def _project_word(word: str) -> bool:
    """Whether the window's one argument names a project: an existing file, or a new one
    whose name says it is a project (a mistyped command must not become a project and a
    window that never returns when headless)."""
    from pathlib import Path

    path = Path(word)
    return path.is_file() or (not path.exists() and path.suffix.lower() == ".csproj")


def run_gui(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="creative-studio", description="Creative Studio desktop application",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="headless commands (the same jobs, no window):\n"
               "  creative-studio generate PLUGIN …  run a plugin's job into a project "
               "(generate --help lists the plugins)\n"
               "  creative-studio list …             list a project's items\n"
               "  creative-studio export …           write an item's output to a file\n"
               "  creative-studio plugins            list plugins and their load errors\n"
               "each has --help")
    parser.add_argument("project", nargs="?", help="a .csproj project file to open")
    parser.add_argument("--exit-after-paint", action="store_true",
                        help="print the time to the first painted window and quit (benchmark)")
    args, qt_args = parser.parse_known_args(argv)
    if args.project and not _project_word(args.project):
        from .cli import COMMANDS

        print(f"creative-studio: {args.project!r} is neither a command nor a project file. "
              f"Commands: {', '.join(COMMANDS)} (each has --help); a new project is made "
              f"by a name that ends in .csproj.", file=sys.stderr)
        return 2

    from .core import logs
    from .core.settings import Settings

    logs.setup()
    settings = Settings.load()
    # the Hub is reached only for ids the user typed, and only when Preferences allow it:
    # core/hub.py asks with local_files_only at each model load (no restart needed)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .plugins import PluginRegistry
    from .ui.main_window import MainWindow
    from .ui.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Creative Studio")
    app.setOrganizationName("creative-studio")
    apply_theme(app, settings.theme)
    registry = PluginRegistry.discover()
    window = MainWindow(registry, settings)
    if args.exit_after_paint:
        def painted() -> None:
            print(f"FIRST_PAINT {time.perf_counter() - _STARTED:.4f} "
                  f"torch_loaded={'torch' in sys.modules}", flush=True)
            QTimer.singleShot(0, window.close)
        window.first_painted.connect(painted)
    window.show()
    if args.project:
        from pathlib import Path

        if Path(args.project).exists():
            window.open_project(args.project)
        else:  # a new project there, as editors make a new file
            window.create_project(args.project)
    elif not args.exit_after_paint:
        QTimer.singleShot(200, window.offer_recovery)
    return app.exec()
