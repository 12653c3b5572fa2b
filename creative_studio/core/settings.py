"""User preferences, kept as JSON in the config folder (written atomically, versioned).

The file carries ``version``; older files are migrated when read (``MIGRATIONS``), newer
ones are read for the fields this version knows; a field that is missing or of the wrong
type takes its default. Settings reach the code that needs them
through the objects that hold them (the window, the runner), never through environment
variables, so a change in Preferences takes effect at once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import files, paths

MAX_RECENT = 10
VERSION = 5
log = logging.getLogger(__name__)


# version N → N + 1, for changes the fields' defaults cannot express (a renamed field, a value
# whose meaning changed). Versions 2–5 only added fields with defaults (servers; model_process
# and cpu_threads; folders and default_folder) and dropped one nothing read (models_dir):
# unknown fields are ignored and missing ones take their defaults, so they need no step.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass
class Settings:
    theme: str = "light"  # "light" | "dark"
    device: str = "auto"  # see core.devices.CHOICES
    allow_downloads: bool = False  # let Hugging Face ids be fetched from the Hub
    recent_files: list[str] = field(default_factory=list)
    # engines elsewhere: [{"name", "url", "kind"}] (core/servers.py); keys in the OS keyring
    servers: list[dict] = field(default_factory=list)
    # models run in a child process, so a native crash there never takes the window down
    model_process: bool = True
    cpu_threads: int = 0  # threads of the local text engine; 0 = chosen from the machine
    folders: dict = field(default_factory=dict)  # kind of file → the folder last used
    default_folder: str = ""  # where file dialogs start before a kind has its own folder
    version: int = VERSION

    @classmethod
    def path(cls) -> Path:
        return paths.config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings unreadable, using defaults: %s", exc)
            return cls()
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        if not isinstance(data, dict):
            return cls()
        version = data.get("version", 1)
        if not isinstance(version, int) or version < 1:
            version = 1
        while version < VERSION:
            step = MIGRATIONS.get(version)
            if step is not None:
                data = step(dict(data))
            version += 1
        defaults = cls()
        values = {}
        for f in fields(cls):
            if f.name == "version" or f.name not in data:
                continue
            value = data[f.name]
            if type(value) is not type(getattr(defaults, f.name)):
                log.warning("setting %s has the wrong type; default used", f.name)
                continue
            values[f.name] = value
        settings = cls(**values)
        settings.recent_files = [str(p) for p in settings.recent_files if isinstance(p, str)]
        settings.folders = {k: v for k, v in settings.folders.items()
                            if isinstance(k, str) and isinstance(v, str)}
        return settings

    def save(self) -> None:
        files.atomic_write(self.path(), json.dumps(asdict(self), indent=2))  # version: VERSION

    def add_recent(self, path: str | os.PathLike) -> None:
        value = str(Path(path).resolve())
        self.recent_files = [value] + [p for p in self.recent_files if p != value]
        del self.recent_files[MAX_RECENT:]
