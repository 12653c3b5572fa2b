"""Declared parameters: each plugin states its parameters once (in ``plugin.toml``).

From one declaration the framework fills defaults and checks types and ranges (generators'
``validate`` keeps only the rules that tie several fields together), builds the CLI options,
builds and reads the panel widgets, keeps panel settings with the project and applies a
recipe back to a panel. No Qt here.

A declaration (TOML, one ``[[params]]`` table each)::

    [[params]]
    name = "temperature"      # the key in Request.params
    type = "float"            # int, float, bool, str, text (multi-line), choice or list
    default = 0.7
    min = 0.0
    max = 2.0
    step = 0.05
    label = "Temperature"
    help = "0 = always the most likely word; higher = more surprising"
    tasks = ["generate"]      # which tasks read it (all when left out)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInput

TYPES = ("int", "float", "bool", "str", "text", "choice", "list")
MAX_ITEMS = 64  # a list's items unless ``max`` says otherwise
_FIELDS = {
    "name": "the key in the request's params (letters, digits, '_')",
    "type": "int, float, bool, str, text, choice or list (of texts; the CLI flag repeats)",
    "default": "the value used when none is given",
    "label": "the name shown beside the widget and in help",
    "help": "one sentence for the tooltip and the CLI help",
    "min": "lowest value (int, float)",
    "max": "highest value (int, float); most items (list, default 64)",
    "step": "spin box step (int, float)",
    "choices": "the allowed values (choice)",
    "labels": "the names shown for the choices (choice; same order)",
    "aliases": "other spellings the CLI accepts, mapped to a value (choice)",
    "tasks": "the tasks that read it (all when left out)",
    "no_default_for": "tasks where a missing value stays missing (the generator decides)",
    "special": "text shown for the lowest value, which then means 'automatic' (int)",
    "keep": "kept with the project's panel settings (default true)",
    "max_length": "longest accepted text (str, text; default 1,000,000 characters)",
    "flags": "other command-line flags for it (e.g. [\"--key\"])",
    "project": "filled from the project's kept state under this key when not given (text: "
               "the value as JSON; e.g. the Text panel's story notes)",
}
MAX_TEXT = 1_000_000


class ParamError(ValueError):
    """A declaration that cannot be used (reported as a plugin manifest error)."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    label: str = ""
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    aliases: tuple[tuple[str, Any], ...] = ()
    tasks: tuple[str, ...] = ()
    no_default_for: tuple[str, ...] = ()
    special: str = ""
    keep: bool = True
    max_length: int = MAX_TEXT
    flags: tuple[str, ...] = ()
    project: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def cli_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, task: str) -> bool:
        return not self.tasks or task in self.tasks

    def choice_label(self, value: Any) -> str:
        if self.labels and value in self.choices:
            return self.labels[self.choices.index(value)]
        return str(value)

    # -- checking values ----------------------------------------------------------------
    def coerce(self, value: Any) -> Any:
        """The value in the declared type, or BadInput saying in plain words what is wrong."""
        what = self.title
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise BadInput(f"{what} must be true or false (got {value!r}).")
        if self.type in ("str", "text"):
            if not isinstance(value, str):
                raise BadInput(f"{what} must be text (got {type(value).__name__}).")
            if len(value) > self.max_length:
                raise BadInput(f"{what} is too long ({len(value):,} characters; at most "
                               f"{self.max_length:,}).")
            return value
        if self.type == "choice":
            return self._choice(value)
        if self.type == "list":
            return self._list(value)
        number = self._number(value)
        if self.min is not None and number < self.min or \
                self.max is not None and number > self.max:
            raise BadInput(f"{what} must be between {_fmt(self.min)} and {_fmt(self.max)} "
                           f"(got {_fmt(number)}).")
        return number

    def _number(self, value: Any) -> int | float:
        what = self.title
        if isinstance(value, bool):
            raise BadInput(f"{what} must be a number (got {value!r}).")
        try:
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value) if not isinstance(value, str) else int(value.strip())
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            kind = "a whole number" if self.type == "int" else "a number"
            raise BadInput(f"{what} must be {kind} (got {value!r}).") from None
        if not math.isfinite(number):
            raise BadInput(f"{what} must be a finite number (got {value!r}).")
        return number

    def _list(self, value: Any) -> list[str]:
        what = self.title
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise BadInput(f"{what} must be a list of texts (got {type(value).__name__}).")
        most = int(self.max) if self.max is not None else MAX_ITEMS
        if len(items) > most:
            raise BadInput(f"{what} holds at most {most} entries (got {len(items)}).")
        if any(len(i) > self.max_length for i in items):
            raise BadInput(f"{what}: an entry is longer than {self.max_length:,} characters.")
        return list(items)

    def _choice(self, value: Any) -> Any:
        if value in self.choices and type(value) in (type(c) for c in self.choices
                                                      if c == value):
            return value
        if isinstance(value, str):
            wanted = value.strip().lower()
            for choice, label in zip(self.choices, self.labels or self.choices, strict=False):
                if wanted in (str(choice).lower(), str(label).lower()):
                    return choice
            for alias, target in self.aliases:
                if wanted == alias.lower():
                    return target
        shown = ", ".join(self.choice_label(c) for c in self.choices)
        raise BadInput(f"{self.title} must be one of {shown} (got {value!r}).")

    # -- declarations -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Param:
        if not isinstance(data, dict):
            raise ParamError(f"a parameter{where} is not a table")
        name = data.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ParamError(f"a parameter{where} needs a name (letters, digits, '_')")
        at = f"parameter '{name}'{where}"
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ParamError(f"unknown field(s) of {at}: {', '.join(unknown)}")
        kind = data.get("type")
        if kind not in TYPES:
            raise ParamError(f"{at}: type must be one of {', '.join(TYPES)}")
        if "default" not in data:
            raise ParamError(f"{at} needs a default")
        choices = tuple(data.get("choices", ()))
        labels = tuple(str(label) for label in data.get("labels", ()))
        if kind == "choice" and not choices:
            raise ParamError(f"{at}: a choice needs choices")
        if any(not re.match(r"^--[a-z][a-z0-9-]*\Z", str(f)) for f in data.get("flags", ())):
            raise ParamError(f"{at}: flags look like --name")
        if labels and len(labels) != len(choices):
            raise ParamError(f"{at}: labels must name each choice once")
        aliases = data.get("aliases", {})
        if not isinstance(aliases, dict):
            raise ParamError(f"{at}: aliases must be a table")
        try:
            param = cls(
                name=name, type=kind, default=data["default"], label=str(data.get("label", "")),
                help=str(data.get("help", "")), min=_opt_number(data, "min"),
                max=_opt_number(data, "max"), step=_opt_number(data, "step"),
                choices=choices, labels=labels,
                aliases=tuple((str(k), v) for k, v in aliases.items()),
                tasks=tuple(str(t) for t in data.get("tasks", ())),
                no_default_for=tuple(str(t) for t in data.get("no_default_for", ())),
                special=str(data.get("special", "")), keep=bool(data.get("keep", True)),
                max_length=int(data.get("max_length", MAX_TEXT)),
                flags=tuple(str(f) for f in data.get("flags", ())),
                project=str(data.get("project", "")))
        except (TypeError, ValueError) as exc:
            raise ParamError(f"{at}: {exc}") from exc
        try:
            if param.coerce(param.default) != param.default:
                raise BadInput("its type")
            for _alias, target in param.aliases:
                param._choice(target)
        except BadInput as exc:
            raise ParamError(f"{at}: the default or an alias does not fit ({exc})") from exc
        return param


def _opt_number(data: dict, key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    return value


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class ParamSet:
    """A plugin's declared parameters, in declaration order."""

    params: tuple[Param, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: str) -> bool:
        return any(p.name == name for p in self.params)

    def get(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def for_task(self, task: str) -> list[Param]:
        return [p for p in self.params if p.applies_to(task)]

    def defaults(self, task: str) -> dict[str, Any]:
        return {p.name: p.default for p in self.for_task(task) if task not in p.no_default_for}

    def from_project(self, task: str, get_state: Any, given: dict[str, Any]) -> dict[str, Any]:
        """The values of the parameters declared ``project = "key"`` that ``given`` lacks,
        read with ``get_state(key)`` (a project's kept state; text parameters get it as
        JSON). The window and the CLI fill a job's project-wide parameters (the Text panel's
        story notes) with this."""
        import json

        out: dict[str, Any] = {}
        for param in self.for_task(task):
            if not param.project or given.get(param.name) not in (None, ""):
                continue
            value = get_state(param.project, None)
            if value in (None, "", {}, []):
                continue
            out[param.name] = value if param.type != "text" or isinstance(value, str) \
                else json.dumps(value, ensure_ascii=False)
        return out

    def resolve(self, task: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` checked and completed with the defaults of ``task``.

        Declared parameters are coerced to their type and range (BadInput says which one is
        wrong); keys nobody declared (the framework's ``group``, ``rerun_of``…) pass as they
        are.
        """
        if not isinstance(values, dict):
            raise BadInput("The parameters must be a table of names and values.")
        out = dict(values)
        for param in self.for_task(task):
            if param.name in out and out[param.name] is not None:
                out[param.name] = param.coerce(out[param.name])
            elif task not in param.no_default_for:
                out[param.name] = param.default
            else:
                out.pop(param.name, None)
        return out

    @classmethod
    def from_list(cls, data: Any, where: str = "") -> ParamSet:
        if not isinstance(data, list):
            raise ParamError(f"params{where} must be a list of tables")
        params = tuple(Param.from_dict(entry, where) for entry in data)
        names = [p.name for p in params]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ParamError(f"parameter(s) declared twice{where}: {', '.join(doubled)}")
        return cls(params)
