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


def _user_dir(kind: str) -> Path:
    """``<home>/<kind>`` under CREATIVE_STUDIO_HOME, else the platform's folder of that kind
    (platformdirs' ``user_<kind>_dir``); made if missing."""
    home = _home()
    if home:
        path = home / kind
    else:
        import platformdirs

        path = Path(getattr(platformdirs, f"user_{kind}_dir")(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return _user_dir("config")


def data_dir() -> Path:
    return _user_dir("data")


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
