"""Import the model libraries in the background once the window is up.

``import torch`` holds the GIL while it loads its shared libraries (~0.3 s at a stretch on
a 2-core machine), which would freeze the GUI if it happened when the user presses
Generate. Doing it right after start-up moves that one-off pause to a moment when the
user is not interacting yet, and makes the first job start ~3 s sooner.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

_started = False
# transformers' lazy module is not thread-safe: two threads resolving its attributes at once
# can see a half-initialised module ("cannot import name AutoModelForCausalLM"). Background
# imports and model loading (JobRunner workers) take this lock.
IMPORT_LOCK = threading.RLock()


def preload(modules: list[str], *, force: bool = False) -> threading.Thread | None:
    """Import ``modules`` on a daemon thread, once per process (unless ``force``)."""
    global _started
    if not modules:
        return None
    if not force and (_started or os.environ.get("CREATIVE_STUDIO_NO_PRELOAD") == "1"):
        return None
    _started = True

    def run() -> None:
        for name in modules:
            try:
                with IMPORT_LOCK:
                    importlib.import_module(name)
            except Exception:  # the job that needs it reports the error to the user
                logging.getLogger(__name__).warning("preloading %s failed", name,
                                                    exc_info=True)

    thread = threading.Thread(target=run, name="studio-preload", daemon=True)
    thread.start()
    return thread
