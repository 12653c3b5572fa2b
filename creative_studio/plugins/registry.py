"""Find plugins (built-in ``plugins/`` folder, the folders of ``CREATIVE_STUDIO_PLUGIN_PATH``,
then entry points) and load them lazily.

A plugin that fails to be found, parsed or imported is recorded with its error and never
stops the others: the window shows the error in place of its panel.

A plugin folder outside the studio (``<folder>/<plugin>/plugin.toml``) names its code from
that folder: ``generator = "<plugin>.generator:Generator"``; the folder is put on
``sys.path`` only when its code is first imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import tomllib
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .manifest import ManifestError, PluginManifest

ENTRY_POINT_GROUP = "creative_studio.plugins"
PATH_VARIABLE = "CREATIVE_STUDIO_PLUGIN_PATH"
log = logging.getLogger(__name__)


def load_attr(spec: str) -> Any:
    """Import ``module:attr`` (attr may be dotted)."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class PluginRecord:
    """One plugin as discovered: its manifest (or the error that prevented reading it)."""

    origin: str
    manifest: PluginManifest | None = None
    error: str = ""
    duplicate: bool = False  # another plugin already has this id: this one is ignored
    root: Path | None = None  # a plugin folder's parent, put on sys.path when loading
    traceback: str = ""
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.manifest.id if self.manifest else self.origin

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.error

    def load(self, what: str) -> Any:
        """Import the plugin's ``generator`` or ``panel`` on first use; errors are recorded."""
        if what in self._loaded:
            return self._loaded[what]
        assert self.manifest is not None
        spec = getattr(self.manifest, what)
        if self.root is not None and str(self.root) not in sys.path:
            sys.path.append(str(self.root))
        try:
            obj = load_attr(spec)
        except Exception as exc:
            self.error = (f"Plugin '{self.id}' could not load {what} '{spec}': "
                          f"{type(exc).__name__}: {exc}")
            self.traceback = traceback.format_exc()
            log.error("%s\n%s", self.error, self.traceback)
            raise
        self._loaded[what] = obj
        return obj


class PluginRegistry:
    def __init__(self) -> None:
        self.records: list[PluginRecord] = []

    @classmethod
    def discover(cls, builtin_dirs: list[Path] | None = None,
                 entry_points: bool = True) -> PluginRegistry:
        registry = cls()
        if builtin_dirs is None:
            builtin_dirs = [_builtin_root(), *extra_dirs()]
        builtin = _builtin_root().resolve()
        for root in builtin_dirs:
            for manifest_path in sorted(Path(root).glob("*/plugin.toml")):
                registry._add_file(manifest_path,
                                   None if Path(root).resolve() == builtin else Path(root))
        if entry_points:
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                registry._add_entry_point(ep)
        registry.records.sort(key=lambda r: (r.manifest.order if r.manifest else 1000, r.id))
        return registry

    def _add(self, record: PluginRecord) -> None:
        if record.manifest and any(r.manifest and r.manifest.id == record.manifest.id
                                   for r in self.records):
            record.duplicate = True
            record.error = (f"Plugin id '{record.manifest.id}' from {record.origin} is already "
                            "used by another plugin; this one is ignored.")
        if record.error:
            log.warning("%s", record.error)
        self.records.append(record)

    def _add_file(self, path: Path, root: Path | None = None) -> None:
        origin = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            self._add(PluginRecord(origin, PluginManifest.from_dict(data, origin), root=root))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ManifestError) as exc:
            self._add(PluginRecord(origin, error=f"Plugin manifest {origin}: {exc}"))

    def _add_entry_point(self, ep: metadata.EntryPoint) -> None:
        origin = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
            data = obj() if callable(obj) else obj
            if isinstance(data, PluginManifest):
                manifest = data
            else:
                manifest = PluginManifest.from_dict(data, origin)
            self._add(PluginRecord(origin, manifest))
        except Exception as exc:  # a third-party plugin must never stop start-up
            self._add(PluginRecord(origin, error=f"Plugin {origin}: {type(exc).__name__}: {exc}"))

    # -- queries ----------------------------------------------------------------
    @property
    def plugins(self) -> list[PluginRecord]:
        return [r for r in self.records if r.manifest is not None]

    @property
    def errors(self) -> list[PluginRecord]:
        return [r for r in self.records if r.error]

    def preload_modules(self) -> list[str]:
        """The modules every working plugin asks to import before its first job."""
        modules = [m for r in self.plugins if r.ok for m in r.manifest.preload]
        return list(dict.fromkeys(modules))

    def resolve_model(self, plugin_id: str, ref: str = "", *, settings: Any = None):
        """The ModelSource of a plugin's model reference (its default model when empty);
        ``settings`` (the user's): whether downloads are allowed, which servers exist."""
        from ..core import models
        from ..core.servers import servers_of

        manifest = self.get(plugin_id).manifest
        assert manifest is not None
        if not ref and manifest.default_model is not None:
            ref = manifest.default_model.ref
        return models.resolve(manifest, ref,
                              allow_downloads=bool(getattr(settings, "allow_downloads", False)),
                              servers=servers_of(settings))

    def get(self, plugin_id: str) -> PluginRecord:
        for record in self.records:
            if record.manifest and record.manifest.id == plugin_id and not record.duplicate:
                return record
        known = ", ".join(r.manifest.id for r in self.plugins) or "none"
        raise KeyError(f"No plugin '{plugin_id}' (available: {known})")


def extra_dirs() -> list[Path]:
    """The plugin folders named by ``CREATIVE_STUDIO_PLUGIN_PATH`` (os.pathsep-separated)."""
    value = os.environ.get(PATH_VARIABLE, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def _builtin_root() -> Path:
    spec = importlib.util.find_spec("plugins")
    if spec is None or not spec.submodule_search_locations:
        return Path(__file__).resolve().parents[2] / "plugins"
    return Path(list(spec.submodule_search_locations)[0])
