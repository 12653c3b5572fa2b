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
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import files, paths

MAX_RECENT = 10
VERSION = 6
_INT_DIGITS = 30  # a longer integer is damage, not a setting (and slow to parse)
_UNSAVED = ("damage", "kept_as")  # what this session learnt of the file, not preferences
log = logging.getLogger(__name__)


def _bounded_int(text: str) -> Any:
    return int(text) if len(text.lstrip("-")) <= _INT_DIGITS else text  # a str: wrong type


# version N → N + 1, for changes the fields' defaults cannot express (a renamed field, a value
# whose meaning changed). Versions 2–5 only added fields with defaults (servers; model_process
# and cpu_threads; folders and default_folder) and dropped one nothing read (models_dir);
# 6 added folds, welcomed, serif, model_folders and scan_models:
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
    cpu_threads: int = 0  # threads of every local model; 0 = the thread policy (core/cpu.py)
    folders: dict = field(default_factory=dict)  # kind of file → the folder last used
    default_folder: str = ""  # where file dialogs start before a kind has its own folder
    folds: dict = field(default_factory=dict)  # panel id → its Advanced fold is open
    welcomed: bool = False  # the welcome page was seen (it opens at the first launch)
    serif: bool = False  # the Text panel's document in a serif font
    model_folders: list = field(default_factory=list)  # more folders of models to scan
    scan_models: bool = True  # at start, list the GGUFs other apps keep (core/discover.py)
    version: int = VERSION
    # what could not be read from the file (never saved): told once, the file kept aside
    damage: list[str] = field(default_factory=list, repr=False, compare=False)
    kept_as: Path | None = field(default=None, repr=False, compare=False)

    @classmethod
    def path(cls) -> Path:
        return paths.config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        """The preferences; never raises and never writes. A file damaged as a whole (not
        JSON, nested too deeply, unreadable) gives the defaults, one with damaged fields the
        others; either way :attr:`damage` says what was not loaded, and the first
        :meth:`save` keeps the file as it was aside before replacing it."""
        path = cls.path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeError) as exc:
            return cls._damaged(f"the file could not be read: {exc.__class__.__name__}")
        try:
            data = json.loads(text, parse_int=_bounded_int)
        except (ValueError, RecursionError) as exc:
            what = "nested too deeply" if isinstance(exc, RecursionError) else "not valid JSON"
            return cls._damaged(f"the file is {what}", str(exc)[:200])
        if not isinstance(data, dict):
            return cls._damaged("the file does not hold preferences")
        return cls.from_dict(data)

    @classmethod
    def _damaged(cls, why: str, detail: str = "") -> Settings:
        log.warning("settings unreadable, using defaults: %s", detail or why)
        settings = cls()
        settings.damage = [f"all of them: {why}"]
        return settings

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
        damage = []
        for f in fields(cls):
            if f.name in ("version", *_UNSAVED) or f.name not in data:
                continue
            value = data[f.name]
            if type(value) is not type(getattr(defaults, f.name)):
                log.warning("setting %s has the wrong type; default used", f.name)
                damage.append(f.name)
                continue
            values[f.name] = value
        settings = cls(**values)
        settings.recent_files = [str(p) for p in settings.recent_files if isinstance(p, str)]
        settings.folders = {k: v for k, v in settings.folders.items()
                            if isinstance(k, str) and isinstance(v, str)}
        servers = [entry for entry in settings.servers if isinstance(entry, dict)]
        if len(servers) != len(settings.servers):
            damage.append(f"{len(settings.servers) - len(servers)} of {len(settings.servers)} "
                          "servers (not a name and an address)")
            settings.servers = servers
        from .servers import config_of

        unusable = [str(entry.get("name", "?"))[:40] for entry in servers
                    if config_of(entry) is None]
        if unusable:  # kept as they are (nothing dropped), said: a flipped key hides one
            damage.append(f"server entries that do not read as a server: "
                          f"{', '.join(unusable)}")
        settings.damage = damage
        return settings

    def save(self) -> None:
        """Write the preferences; a file that was read damaged is kept aside first."""
        self.keep_damaged()
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _UNSAVED}
        files.atomic_write(self.path(), json.dumps(data, indent=2))  # version: VERSION

    def tell_damage(self) -> str:
        """:meth:`keep_damaged` for the window and the CLI at start: a copy that cannot be
        made is said too (the file then stays as it is: nothing is saved over it)."""
        try:
            return self.keep_damaged()
        except OSError as exc:
            return (f"Some preferences could not be read and are at their defaults: "
                    f"{'; '.join(self.damage)}; {exc}. Preferences changed now are not saved "
                    "until it can be.")

    def keep_damaged(self) -> str:
        """Where the file was read damaged: keep it as it is beside itself, once
        (``settings.json.damaged-<time>``), and say what was not loaded and how to get it
        back; "" when nothing was damaged. Nothing the user had is ever dropped unseen.
        Raises OSError when the copy cannot be made (the file is then not replaced)."""
        if not self.damage:
            return ""
        path = self.path()
        if self.kept_as is None:
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                shutil.copy2(path, aside)
            except FileNotFoundError:  # gone meanwhile: nothing left to keep
                aside = Path()
            except OSError as exc:
                raise OSError(f"the damaged preferences file could not be kept aside "
                              f"({exc.strerror or exc}), so it was not replaced") from exc
            self.kept_as = aside
        told = (f"Some preferences could not be read and are at their defaults: "
                f"{'; '.join(self.damage)}.")
        if self.kept_as != Path():
            told += (f" The file as it was is kept as {self.kept_as}: repair it there and "
                     f"copy it back over {path.name} while the studio is closed.")
        return told

    def add_recent(self, path: str | os.PathLike) -> None:
        value = str(Path(path).resolve())
        self.recent_files = [value] + [p for p in self.recent_files if p != value]
        del self.recent_files[MAX_RECENT:]
