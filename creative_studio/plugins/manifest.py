"""Plugin manifests: what a plugin offers, declared without importing its code.

A manifest is a TOML file (``plugin.toml``) for built-in plugins, or a dict returned by
the object an entry point of the group ``creative_studio.plugins`` names. Unknown fields
are rejected so that a typo never passes silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..core.params import ParamError, ParamSet

MANIFEST_SCHEMA = 1
# The modalities the studio ships; any other lowercase word is a new one (a fifth plugin).
KNOWN_MODALITIES = ("text", "image", "music", "upscale")
_WORD = re.compile(r"^[a-z][a-z0-9_-]*\Z")

_FIELDS = {
    "schema_version": "manifest format version (currently 1)",
    "id": "unique plugin id, lowercase letters, digits, '-' and '_'",
    "name": "name shown in the panel tab",
    "modality": "what it makes: text, image, music, upscale or a new lowercase word",
    "description": "one line shown in the plugin list",
    "version": "the plugin's own version (Help → Plugins); built-in ones are the studio's",
    "order": "tab position (lower first)",
    "icon": "the tab's icon: a qtawesome name (e.g. 'mdi6.fountain-pen-tip')",
    "start": "the welcome page's button for the panel (e.g. 'Start writing')",
    "generator": "'module:attr' of the generator class (no Qt)",
    "panel": "'module:attr' of the panel widget class (Qt)",
    "models": "list of model offers (id, name, source, locate, install, license, "
              "description, default)",
    "tasks": "list of tasks (id, name, prompt, input, inputs, mask, model, help); the first "
             "is the default",
    "params": "list of declared parameters (core/params.py)",
    "preload": "modules to import in the background once the window is shown",
    "accepts": "MIME prefixes of project outputs the panel takes as input ('Send to')",
    "servers": "kinds of server engines the generator drives (core/servers.KINDS: "
               "openai, comfyui)",
}
_MODEL_FIELDS = {"id", "name", "source", "locate", "install", "license", "description",
                 "summary", "limits", "default", "optional"}
_TASK_FIELDS = {"id", "name", "prompt", "input", "inputs", "model", "help", "mask"}
PROMPT_RULES = ("required", "optional", "none")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class ModelOffer:
    """A model a plugin offers out of the box; ``locate`` says where its files are.

    ``locate`` forms (resolved lazily by core/models.py, nothing imported):
    ``resource:<path>`` below the studio's resources folder; ``package:<module>/<path>`` a
    file inside an installed Python package (``install`` is the pip requirement to name when
    it is missing); ``call:<module>:<function>`` a function returning the path (called with
    ``prepare=False`` where only its presence is asked).

    ``optional``: not installed with the studio (``install`` names its packages; ``creative-
    studio models install`` or the panel installs it). ``default``: the model used when none
    is chosen — while its files are there; else the first offer whose files are.
    """

    id: str
    name: str
    source: str = "embedded"
    locate: str = ""
    install: str = ""
    license: str = ""
    description: str = ""
    summary: str = ""  # what it is good for, in one line (the welcome page says it)
    limits: str = ""  # what it cannot do, in one line
    default: bool = False
    optional: bool = False

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.id}"


@dataclass(frozen=True)
class TaskSpec:
    """One thing a plugin does: its prompt rule and the project items it reads."""

    id: str
    name: str = ""
    prompt: str = "optional"  # required | optional | none
    input: str = ""  # MIME prefix of the items each job reads ("" = none)
    inputs: int = 1  # how many such items a job reads (with ``input``)
    model: str = ""  # the offer this task uses when the request names no model
    help: str = ""
    mask: bool = False  # a job also reads a mask picture (its last parent; CLI --mask)

    @property
    def title(self) -> str:
        return self.name or self.id.capitalize()


@dataclass(frozen=True)
class PluginManifest:
    id: str
    name: str
    modality: str
    generator: str
    panel: str
    description: str = ""
    version: str = ""
    order: int = 100
    icon: str = ""
    start: str = ""
    models: tuple[ModelOffer, ...] = field(default_factory=tuple)
    preload: tuple[str, ...] = field(default_factory=tuple)
    accepts: tuple[str, ...] = field(default_factory=tuple)
    servers: tuple[str, ...] = field(default_factory=tuple)
    tasks: tuple[TaskSpec, ...] = field(default_factory=lambda: (TaskSpec("generate"),))
    params: ParamSet = field(default_factory=ParamSet)

    def task(self, task_id: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def offer(self, model_id: str) -> ModelOffer | None:
        return next((m for m in self.models if m.id == model_id), None)

    def takes(self, mime: str) -> bool:
        """Whether the panel takes an output of this MIME type as input (e.g. "image/")."""
        return any(mime.startswith(prefix) for prefix in self.accepts)

    @property
    def default_model(self) -> ModelOffer | None:
        """The offer marked default while its files are there, else the first offer whose
        files are (an optional larger model wins once installed; the embedded one before)."""
        from ..core.models import available

        marked = next((m for m in self.models if m.default), None)
        if marked is None or not (marked.optional or marked.locate.startswith("call:")) \
                or available(marked):
            return marked or (self.models[0] if self.models else None)
        return next((m for m in self.models if available(m)), marked)

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
        if not _WORD.match(data["modality"]):
            raise ManifestError(f"modality '{data['modality']}'{where} must be a lowercase "
                                "word (text, image, music, upscale or a new one)")
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
        tasks = tuple(_task(entry, where) for entry in data.get("tasks", [{"id": "generate"}]))
        if not tasks or len({t.id for t in tasks}) != len(tasks):
            raise ManifestError(f"tasks{where} must list each task once")
        try:
            params = ParamSet.from_list(data.get("params", []), where)
        except ParamError as exc:
            raise ManifestError(str(exc)) from exc
        task_ids = {t.id for t in tasks}
        offers = {m.id for m in models}
        for task in tasks:
            if task.model and task.model not in offers:
                raise ManifestError(f"task '{task.id}'{where} names a model the plugin does "
                                    f"not offer: {task.model}")
        for param in params:
            stray = sorted(set(param.tasks) - task_ids)
            if stray:
                raise ManifestError(f"parameter '{param.name}'{where} names unknown task(s) "
                                    f"{', '.join(stray)}")
        return cls(id=plugin_id, name=data["name"], modality=data["modality"],
                   generator=data["generator"], panel=data["panel"],
                   description=str(data.get("description", "")),
                   version=str(data.get("version", "")),
                   order=int(data.get("order", 100)), models=tuple(models),
                   icon=str(data.get("icon", "")), start=str(data.get("start", "")),
                   preload=tuple(str(m) for m in data.get("preload", ())),
                   accepts=tuple(str(m) for m in data.get("accepts", ())),
                   servers=tuple(str(k) for k in data.get("servers", ())),
                   tasks=tasks, params=params)


def _task(entry: Any, where: str) -> TaskSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) \
            or not _WORD.match(entry["id"]):
        raise ManifestError(f"a task{where} needs an id (a lowercase word)")
    extra = sorted(set(entry) - _TASK_FIELDS)
    if extra:
        raise ManifestError(f"unknown task field(s){where}: {', '.join(extra)}")
    if entry.get("prompt", "optional") not in PROMPT_RULES:
        raise ManifestError(f"task '{entry['id']}'{where}: prompt must be one of "
                            f"{', '.join(PROMPT_RULES)}")
    inputs = entry.get("inputs", 1)
    if not isinstance(inputs, int) or isinstance(inputs, bool) or not 1 <= inputs <= 16:
        raise ManifestError(f"task '{entry['id']}'{where}: inputs must be 1 to 16")
    if not isinstance(entry.get("mask", False), bool) or (entry.get("mask")
                                                          and not entry.get("input")):
        raise ManifestError(f"task '{entry['id']}'{where}: mask (true/false) is for a task "
                            "that reads an input")
    return TaskSpec(**{k: (v if k in ("inputs", "mask") else str(v))
                       for k, v in entry.items()})
