"""Requests, results and jobs: plain data shared by the GUI, the CLI and the runner."""

from __future__ import annotations

import enum
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .progress import Progress

if TYPE_CHECKING:
    from .models import ModelSource

MAX_SEED = 2**31 - 1  # fits a Qt spin box; recorded with every item


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


@dataclass
class Request:
    """Everything one generation needs, and everything the project records about it.

    ``params`` holds the plugin's parameters (JSON-able); ``inputs`` holds asset/item ids
    this request reads (continuations, upscales...), recorded as the result's parents.
    """

    plugin: str
    task: str
    prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    model: str = ""
    parents: list[str] = field(default_factory=list)
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "task": self.task,
            "prompt": self.prompt,
            "params": dict(self.params),
            "seed": int(self.seed),
            "model": self.model,
            "parents": list(self.parents),
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Request:
        """A request from stored JSON. Total: values of the wrong type (a damaged or hostile
        file) become their defaults instead of raising."""
        data = data if isinstance(data, dict) else {}

        def text(key: str, default: str = "") -> str:
            value = data.get(key, default)
            return value if isinstance(value, str) else default

        seed = data.get("seed", 0)
        params = data.get("params")
        parents = data.get("parents")
        return cls(
            plugin=text("plugin"),
            task=text("task"),
            prompt=text("prompt"),
            params=dict(params) if isinstance(params, dict) else {},
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool)
            and 0 <= seed <= MAX_SEED else 0,
            model=text("model"),
            parents=[p for p in parents if isinstance(p, str)] if isinstance(parents, list)
            else [],
            device=text("device", "auto"),
        )


def variations(request: Request, count: int) -> list[Request]:
    """``count`` versions of ``request`` (seeds +1 each); several are grouped as alternatives
    in the History (params ``group`` and ``alternative``)."""
    import uuid

    count = max(1, count)
    group = uuid.uuid4().hex[:12] if count > 1 else ""
    out = []
    for index in range(count):
        version = Request.from_dict(request.to_dict())
        version.seed = (request.seed + index) % (MAX_SEED + 1)
        if group:
            version.params.update(group=group, alternative=index + 1)
        out.append(version)
    return out


@dataclass
class Asset:
    """One output: bytes plus what they are."""

    role: str  # "text", "image", "midi", "audio"...
    mime: str
    data: bytes
    name: str = ""


@dataclass
class ModelIdentity:
    name: str
    ref: str
    sha256: str = ""
    source: str = ""  # "embedded", "local", "hub"


@dataclass
class Result:
    assets: list[Asset]
    model: ModelIdentity
    device: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str = ""


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    request: Request
    label: str = ""
    id: int = field(default_factory=lambda: next(_ids))
    state: JobState = JobState.QUEUED
    device: str = ""
    error: str = ""
    result: Result | None = None
    item_id: str | None = None
    created: float = field(default_factory=time.time)
    progress: Progress = field(default_factory=Progress)
    # Where the result is written; set by the submitter (a ProjectStore or None).
    store: Any = None
    # server:*/<model>: the servers that may run it, and those it failed on (went away)
    pool: tuple[str, ...] = ()
    tried: list[str] = field(default_factory=list)
    load_seconds: float = 0.0  # loading its model before it ran (0: already loaded)


class JobEventKind(enum.Enum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REMOVED = "removed"


@dataclass(frozen=True)
class JobEvent:
    """What happened to a job. PROGRESS carries ``fraction``, ``eta`` (seconds or None) and
    ``preview`` (the text so far, a PNG's bytes… whatever the generator shows)."""

    kind: JobEventKind
    job: Job
    fraction: float = 0.0
    eta: float | None = None
    preview: Any = None


JobListener = Callable[[JobEvent], None]
Inputs = dict[str, list[Asset]]  # the assets (with bytes) of a request's parents, by item id


@runtime_checkable
class Generator(Protocol):
    """What a plugin's generator class offers the runner (no Qt; heavy imports inside).

    ``validate`` (a static method) runs before a job is queued, on a request whose declared
    parameters are already typed and complete: it checks only the rules that tie several
    fields together. ``load`` runs once per model on the worker thread; ``generate`` once per
    job, with ``inputs`` holding the bytes of the request's parent items.
    """

    @staticmethod
    def validate(request: Request) -> None: ...

    def load(self, model: ModelSource, device: str, progress: Progress) -> None: ...

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result: ...

    def unload(self) -> None: ...
