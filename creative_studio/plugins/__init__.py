"""The plugin engine: manifests, discovery, lazy loading. No Qt import here."""

from .manifest import ManifestError, ModelOffer, PluginManifest
from .registry import PluginRecord, PluginRegistry, load_attr

__all__ = ["ManifestError", "ModelOffer", "PluginManifest", "PluginRecord", "PluginRegistry",
           "load_attr"]
