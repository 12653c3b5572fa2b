"""Plugin manifests: what a plugin offers, declared without importing its code.

A manifest is a TOML file (``plugin.toml``) for built-in plugins, or a dict returned by
the object an entry point of the group ``creative_studio.plugins`` names. Unknown fields
are rejected so that a typo never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MANIFEST_SCHEMA = 1
MODALITIES = ("text", "image", "music", "upscale")

_FIELDS = {
    "schema_version": "manifest format version (currently 1)",
    "id": "unique plugin id, lowercase letters, digits, '-' and '_'",
    "name": "name shown in the panel tab",
    "modality": "one of text, image, music, upscale",
    "description": "one line shown in the plugin list",
    "order": "tab position (lower first)",
    "generator": "'module:attr' of the generator class (no Qt)",
    "panel": "'module:attr' of the panel widget class (Qt)",
    "models": "list of model offers (id, name, source, locate, license, description)",
    "preload": "modules to import in the background once the window is shown",
    "accepts": "MIME prefixes of project outputs the panel takes as input ('Send to')",
}
_MODEL_FIELDS = {"id", "name", "source", "locate", "license", "description", "default"}


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class ModelOffer:
    """A model a plugin offers out of the box (``locate`` finds its files, lazily)."""

    id: str
    name: str
    source: str = "embedded"
    locate: str = ""
    license: str = ""
    description: str = ""
    default: bool = False


@dataclass(frozen=True)
class PluginManifest:
    id: str
    name: str
    modality: str
    generator: str
    panel: str
    description: str = ""
    order: int = 100
    models: tuple[ModelOffer, ...] = field(default_factory=tuple)
    preload: tuple[str, ...] = field(default_factory=tuple)
    accepts: tuple[str, ...] = field(default_factory=tuple)

    def takes(self, mime: str) -> bool:
        """Whether the panel takes an output of this MIME type as input (e.g. "image/")."""
        return any(mime.startswith(prefix) for prefix in self.accepts)

    @property
    def default_model(self) -> ModelOffer | None:
        for model in self.models:
            if model.default:
                return model
        return self.models[0] if self.models else None

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "") -> PluginManifest:
        where = f" in {origin}" if origin else ""
        if not isinstance(data, dict):
            raise ManifestError(f"manifest{where} is not a table")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ManifestError(f"unknown manifest field(s){where}: {', '.join(unknown)}")
        version = data.get("schema_version", MANIFEST_SCHEMA)
        if version != MANIFEST_SCHEMA:
            raise ManifestError(f"manifest schema_version {version}{where} is not supported "
                                f"(expected {MANIFEST_SCHEMA})")
        for key in ("id", "name", "modality", "generator", "panel"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ManifestError(f"manifest field '{key}'{where} is missing")
        plugin_id = data["id"]
        if not all(c.islower() or c.isdigit() or c in "-_" for c in plugin_id):
            raise ManifestError(f"plugin id '{plugin_id}'{where} has invalid characters")
        if data["modality"] not in MODALITIES:
            raise ManifestError(f"modality '{data['modality']}'{where} is not one of "
                                f"{', '.join(MODALITIES)}")
        for key in ("generator", "panel"):
            if ":" not in data[key]:
                raise ManifestError(f"'{key}'{where} must be 'module:attr'")
        models = []
        for entry in data.get("models", []):
            if not isinstance(entry, dict) or not entry.get("id") or not entry.get("name"):
                raise ManifestError(f"a model offer{where} needs an id and a name")
            extra = sorted(set(entry) - _MODEL_FIELDS)
            if extra:
                raise ManifestError(f"unknown model field(s){where}: {', '.join(extra)}")
            models.append(ModelOffer(**{k: entry[k] for k in entry}))
        return cls(id=plugin_id, name=data["name"], modality=data["modality"],
                   generator=data["generator"], panel=data["panel"],
                   description=str(data.get("description", "")),
                   order=int(data.get("order", 100)), models=tuple(models),
                   preload=tuple(str(m) for m in data.get("preload", ())),
                   accepts=tuple(str(m) for m in data.get("accepts", ())))
