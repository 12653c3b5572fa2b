"""The studio's log: a rotating file in the user's data folder (Help → Show log).

Everything a user sees as one plain sentence is logged here with its details (tracebacks,
paths), so a bug report can carry what happened without the window showing internals.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from . import paths

FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3


def log_file(name: str = "studio.log") -> Path:
    """The window's and CLI's log (``studio.log``), or the model process's (``models.log``)."""
    folder = paths.data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def setup(level: int = logging.INFO, name: str = "studio.log") -> Path | None:
    """Send the ``creative_studio`` and ``plugins`` loggers to the rotating file (once).

    Returns the file, or None when it cannot be written (then nothing is logged to disk and
    the studio runs on)."""
    try:
        path = log_file(name)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES,
                                                       backupCount=BACKUPS, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    for name in ("creative_studio", "plugins"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_studio", False)]:
            logger.removeHandler(old)
            old.close()
        handler._studio = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)
    logging.captureWarnings(False)
    return path


def tail(path: Path, limit: int = 200_000) -> str:
    """The end of the log (at most ``limit`` bytes), for Help → Show log."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(max(0, size - limit))
            return stream.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(the log cannot be read: {exc})"
