"""Where the studio keeps settings, caches and unsaved work.

``CREATIVE_STUDIO_HOME`` puts all of them under one folder (used by the tests and by
portable installs); otherwise the platform's usual folders are used (platformdirs).
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "creative-studio"


def _home() -> Path | None:
    value = os.environ.get("CREATIVE_STUDIO_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    if home:
        path = home / "config"
    else:
        import platformdirs

        path = Path(platformdirs.user_config_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    home = _home()
    if home:
        path = home / "data"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Model caches (converted weights). ``CREATIVE_STUDIO_CACHE`` overrides it alone."""
    value = os.environ.get("CREATIVE_STUDIO_CACHE")
    if value:
        path = Path(value).expanduser()
    elif _home():
        path = _home() / "cache"
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def autosave_dir() -> Path:
    """Untitled projects live here until the user saves them somewhere."""
    path = data_dir() / "unsaved"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """Files that ship with the studio (embedded model weights, model cards)."""
    return Path(__file__).resolve().parents[2] / "resources"
