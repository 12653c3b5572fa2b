"""User preferences, kept as JSON in the config folder (written atomically)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import paths

MAX_RECENT = 10


@dataclass
class Settings:
    theme: str = "light"  # "light" | "dark"
    device: str = "auto"  # see core.devices.CHOICES
    allow_downloads: bool = False  # let Hugging Face ids be fetched from the Hub
    recent_files: list[str] = field(default_factory=list)
    models_dir: str = ""

    @classmethod
    def path(cls) -> Path:
        return paths.config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            settings = cls(**values)
        except TypeError:
            return cls()
        settings.recent_files = [str(p) for p in settings.recent_files if isinstance(p, str)]
        return settings

    def save(self) -> None:
        target = self.path()
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, target)

    def add_recent(self, path: str | os.PathLike) -> None:
        value = str(Path(path).resolve())
        self.recent_files = [value] + [p for p in self.recent_files if p != value]
        del self.recent_files[MAX_RECENT:]
