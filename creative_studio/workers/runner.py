"""The job runner shared by the GUI and the CLI.

One queue holds every panel's jobs; one worker thread per device takes the oldest queued
job for its device. Each worker keeps the models it loaded (a small LRU cache) so that a
second job on the same model starts at once. Events (core.jobs.JobEvent: QUEUED, STARTED,
PROGRESS with fraction/eta/preview, DONE, FAILED, CANCELLED, REMOVED) go to
``listener(event)`` from worker threads; the GUI turns them into Qt signals (ui/jobs.py).

With ``isolate=True`` (the window and the CLI, ``Settings.model_process``) each worker
drives a child process that holds its models (workers/model_process.py): a native crash
there fails one job with a plain message and the next job starts a new child; the studio's
own process never imports torch.

Models on servers (``server:<name>/<model>``) have a worker per server, in this process (no
torch there): jobs on two servers run at the same time, and a local job never waits behind a
server's. ``server:*/<model>`` jobs form a pool: each server worker of the plugin's kinds
takes the next one, so a batch is spread over the servers that are up; a job whose server
goes away mid-job (``ServerGone``, nothing saved) is queued again for the others, and the
server is left out of the pool for ``DOWN_S`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from ..core import cpu, devices
from ..core import models as model_refs
from ..core.errors import (
    BadInput,
    Cancelled,
    ProjectError,
    StudioError,
    describe,
    is_out_of_memory,
)
from ..core.jobs import (
    MAX_SEED,
    Asset,
    Generator,
    Inputs,
    Job,
    JobEvent,
    JobEventKind,
    JobListener,
    JobState,
    Request,
)
from ..core.progress import Progress
from ..plugins import PluginRegistry
from .preload import IMPORT_LOCK

log = logging.getLogger(__name__)
DOWN_S = 30.0  # a server that went away takes no pool job for this long
_FINISHED = {JobState.DONE: JobEventKind.DONE, JobState.FAILED: JobEventKind.FAILED,
             JobState.CANCELLED: JobEventKind.CANCELLED}


def prepare_request(registry: PluginRegistry, request: Request) -> type[Generator]:
    """Complete and check a request; returns the generator class. Raises BadInput.

    The declared parameters of the task are typed, range-checked and completed with their
    defaults (so the project records every value used); the generator's ``validate`` then
    checks what ties fields together; the task's prompt and input rules come last.
    """
    record = registry.get(request.plugin)
    if not record.ok:
        raise StudioError(record.error)
    manifest = record.manifest
    spec = manifest.task(request.task)
    if spec is None:
        raise BadInput(f"{manifest.name} has no task '{request.task}' (it has: "
                       f"{', '.join(t.id for t in manifest.tasks)}).")
    if not request.model:
        default = manifest.offer(spec.model) if spec.model else manifest.default_model
        if default is None:
            raise BadInput(f"Choose a model for {manifest.name}.")
        request.model = default.ref
    model_refs.split_ref(request.model)  # a malformed reference is refused before queueing
    if not isinstance(request.seed, int) or not 0 <= request.seed <= MAX_SEED:
        raise BadInput(f"The seed must be a whole number between 0 and {MAX_SEED}.")
    request.params = manifest.params.resolve(request.task, request.params)
    try:
        generator_cls = record.load("generator")
    except Exception as exc:  # its import failed: said once, the same way every time
        raise StudioError(record.error) from exc
    generator_cls.validate(request)
    if spec.prompt == "required" and not request.prompt.strip():
        raise BadInput(f"Write a prompt for {manifest.name} first.")
    if spec.mask and len(request.parents) != spec.inputs + 1:
        raise BadInput(f"{spec.title} needs a picture and a mask: paint where it may change.")
    if spec.input and len(request.parents) != spec.inputs + spec.mask:
        what = spec.input.rstrip("/").split("/")[-1].upper() if "/" in spec.input.rstrip("/") \
            else spec.input.rstrip("/")
        count = "one" if spec.inputs == 1 else str(spec.inputs)
        raise BadInput(f"Choose {count} {what} item{'s' if spec.inputs > 1 else ''} to "
                       f"{spec.title.lower()}.")
    return generator_cls


class _Worker(threading.Thread):
    def __init__(self, runner: JobRunner, device: str) -> None:
        super().__init__(name=f"studio-worker-{device}", daemon=True)
        self.runner = runner
        self.device = device
        self.models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.process = None
        self.server = device[len("server:"):] if device.startswith("server:") else ""
        if runner.isolate and not self.server:  # server clients need no model process
            from .model_process import ModelProcess

            self.process = ModelProcess(device)

    def run(self) -> None:
        while True:
            job = self.runner._take(self.device)
            if job is None:
                break
            if job is _UNLOAD:
                self.unload_all()
                continue
            if isinstance(job, _WarmUp):
                self._warm_up(job.modules)
                continue
            self._run_job(job)
        self.unload_all()
        if self.process is not None:
            self.process.stop()

    def _warm_up(self, modules: list[str]) -> None:
        """Start the model process and import the plugins' libraries there (in-process
        runners import them on a background thread)."""
        if self.process is None:
            from .preload import preload

            preload(modules)
            return
        try:
            self.process.preload(modules)
        except OSError:
            log.exception("the model process could not be started")

    def _model_ref(self, job: Job) -> str:
        """The job's model reference; a pool job's names this worker's server."""
        if job.pool and self.server:
            return f"server:{self.server}/{job.request.model.partition('/')[2]}"
        return job.request.model

    def _generator(self, job: Job, generator_cls: type[Generator]) -> Generator:
        key = (job.request.plugin, self._model_ref(job))
        if self.process is not None:
            # a child that died took its models with it; one started since (a warm-up after
            # a crash) has none of them
            for stale in [k for k in self.models if not self.process.alive()
                          or "\0".join(k) not in self.process.loaded]:
                del self.models[stale]
        if key in self.models:
            self.models.move_to_end(key)
            return self.models[key]
        while len(self.models) >= self.runner.max_loaded:
            _, old = self.models.popitem(last=False)
            _unload(old)
        source = self.runner.registry.resolve_model(job.request.plugin, key[1],
                                                    settings=self.runner.settings)
        if self.process is not None:
            from .model_process import ProcessGenerator

            record = self.runner.registry.get(job.request.plugin)
            assert record.manifest is not None
            generator = ProcessGenerator(self.process, "\0".join(key),
                                         record.manifest.generator,
                                         str(record.root) if record.root else None)
            generator.load(source, self.device, job.progress)
        else:
            generator = generator_cls()
            with IMPORT_LOCK:  # no import races with the preload thread or another worker
                if not self.server:
                    cpu.job_threads(generator)  # (the model process decides its own)
                generator.load(source, self.device, job.progress)
        self.models[key] = generator
        return generator

    def _run_job(self, job: Job) -> None:
        runner = self.runner
        try:
            generator_cls = runner.registry.get(job.request.plugin).load("generator")
            inputs = self._inputs(job)
            loading = time.monotonic()
            generator = self._generator(job, generator_cls)
            job.load_seconds = time.monotonic() - loading
            job.progress.check()
            job.progress.restart_clock()
            if self.process is None and not self.server:
                result = cpu.generate(generator, job.request, job.progress, inputs)
            else:  # (the model process decides its own; a server's threads are its own)
                result = generator.generate(job.request, job.progress, inputs)
        except Cancelled:
            runner._finish(job, JobState.CANCELLED)
            return
        except BaseException as exc:  # every failure becomes a message on the job (also a
            # SystemExit or KeyboardInterrupt some library raises: it would end this worker
            # thread and leave every later job of the device waiting)
            if job.pool and self.server and runner._requeue(job, self.server, exc):
                return
            if is_out_of_memory(exc):
                log.warning("job %s ran out of memory: unloading every model", job.id)
                self.unload_all()
            if isinstance(exc, StudioError | OSError):
                log.info("job %s failed: %s", job.id, describe(exc))
            else:
                log.exception("job %s (%s) failed", job.id, job.request.plugin)
            runner._finish(job, JobState.FAILED, error=describe(exc))
            return
        job.result = result
        self._compare_rerun(job, result)
        if job.store is not None:
            try:
                job.item_id = job.store.add_item(job.request, result)
            except ProjectError as exc:
                job.error = str(exc)  # result kept in store.pending; the GUI offers Save As
        runner._finish(job, JobState.DONE)

    @staticmethod
    def _compare_rerun(job: Job, result) -> None:
        """A re-run (params ``rerun_of``) says whether it made the same output as the item
        it re-runs (``rerun_matches`` in the result's metadata): local engines are seeded,
        servers do not all promise it."""
        original_id = job.request.params.get("rerun_of")
        if job.store is None or not isinstance(original_id, str) or not result.assets:
            return
        import hashlib

        try:
            original = job.store.item(original_id)
        except StudioError:
            return
        if original.assets:
            made = hashlib.sha256(result.assets[0].data).hexdigest()
            result.metadata["rerun_matches"] = made == original.assets[0].sha256

    @staticmethod
    def _inputs(job: Job) -> Inputs:
        """The assets (with bytes) of the items a request reads: its parents."""
        if job.store is None:
            if job.request.parents:
                raise StudioError("This job reads project items but has no project.")
            return {}
        inputs = {}
        for item_id in job.request.parents:
            item = job.store.item(item_id)
            inputs[item_id] = [Asset(a.role, a.mime, job.store.asset_bytes(a.id), a.name)
                               for a in item.assets]
        return inputs

    def unload_all(self) -> None:
        while self.models:
            _, generator = self.models.popitem()
            _unload(generator)


def _unload(generator: Generator) -> None:
    try:
        generator.unload()
    except Exception:
        log.exception("unloading %s failed", type(generator).__name__)


_UNLOAD: Any = object()  # handed to a worker by _take() when its models should be freed


class _WarmUp:  # handed to a worker by _take() to start its engine before the first job
    def __init__(self, modules: list[str]) -> None:
        self.modules = modules


class JobRunner:
    def __init__(self, registry: PluginRegistry, listener: JobListener | None = None, *,
                 device_preference: str = "auto", max_loaded: int = 2,
                 settings: Any = None, isolate: bool = False) -> None:
        self.registry = registry
        self.listener = listener
        self.settings = settings  # read at each model load (allow_downloads)
        self.device_preference = device_preference
        self.max_loaded = max_loaded
        self._jobs: list[Job] = []
        self._cond = threading.Condition()
        self._workers: dict[str, _Worker] = {}
        self._unload: set[str] = set()
        self._warm: dict[str, list[str]] = {}
        self._down_until: dict[str, float] = {}  # server → when it may take pool jobs again
        # (plugin, model) → fraction per second of its last finished job: the next job's ETA
        self._rates: dict[tuple[str, str], float] = {}
        self._closing = False
        self.isolate = isolate  # models in a child process per device

    # -- public API --------------------------------------------------------------
    def submit(self, request: Request, *, store: Any = None, label: str = "") -> Job:
        """Validate and queue a request. Raises BadInput/StudioError for bad requests."""
        prepare_request(self.registry, request)
        device, pool = self._route(request)
        job = Job(request=request, label=label or request.prompt[:60], device=device,
                  store=store, pool=pool)
        job.progress = Progress(lambda f, eta, preview, job=job: self._emit(
            JobEventKind.PROGRESS, job, f, eta, preview))
        job.progress.prior_rate = self._rates.get((request.plugin, request.model))
        with self._cond:
            if self._closing:
                raise StudioError("The studio is shutting down.")
            self._jobs.append(job)
            for name in pool:
                self._worker(f"server:{name}")
            if not pool:
                self._worker(device)
            self._cond.notify_all()
        self._emit(JobEventKind.QUEUED, job)
        return job

    def _route(self, request: Request) -> tuple[str, tuple[str, ...]]:
        """The worker a request goes to, and a pool job's servers: a server's own worker
        for its models, the device's for the others."""
        kind, value = model_refs.split_ref(request.model)
        if kind != "server":
            return self._device(request.device), ()
        server = value.partition("/")[0]
        if server != "*":
            return f"server:{server}", ()
        from ..core.servers import of_kinds

        manifest = self.registry.get(request.plugin).manifest
        kinds = manifest.servers if manifest is not None else ()
        pool = tuple(s.name for s in of_kinds(self.settings, kinds)) if kinds else ()
        if not pool:
            raise BadInput("There is no server to run this on: add one in Edit → "
                           "Preferences → Servers.")
        return "server:*", pool

    def _requeue(self, job: Job, server: str, exc: Exception) -> bool:
        """A pool job whose server went away, or does not have the model, goes back to the
        queue for the others (True), unless none is left to try. A server that went away
        takes no pool job for DOWN_S seconds."""
        from ..engines.openai import NotOnServer, ServerGone

        if not isinstance(exc, ServerGone | NotOnServer):
            return False
        with self._cond:
            if isinstance(exc, ServerGone):
                self._down_until[server] = time.monotonic() + DOWN_S
            job.tried.append(server)
            if not [name for name in job.pool if name not in job.tried] or self._closing \
                    or job.progress.cancelled:
                return False
            job.state, job.device = JobState.QUEUED, "server:*"
            self._cond.notify_all()
        log.info("job %s: %s cannot run it (%s); queued again for the other servers", job.id,
                 server, exc)
        why = "went away" if isinstance(exc, ServerGone) else "does not have the model"
        job.progress.say(f"{server} {why}; trying another server…")
        self._emit(JobEventKind.QUEUED, job)
        return True

    def _device(self, requested: str = "auto") -> str:
        """The worker a request goes to. With a model process the studio's own process does
        not import torch to look: the child resolves "auto" to the real device."""
        preference = requested if requested not in ("", "auto") else self.device_preference
        return devices.resolve(preference, probe=not self.isolate)

    def _worker(self, device: str) -> _Worker:
        worker = self._workers.get(device)
        if worker is None:
            worker = self._workers[device] = _Worker(self, device)
            worker.start()
        return worker

    def warm_up(self, modules: list[str]) -> None:
        """Start the default device's engine now (the model process, and ``modules``
        imported there), so the first job does not wait for it."""
        device = self._device()
        with self._cond:
            if self._closing:
                return
            self._warm[device] = list(modules)
            self._worker(device)
            self._cond.notify_all()

    def downloads_allowed(self) -> bool:
        """The user's current choice (Preferences), read at each model load."""
        return bool(getattr(self.settings, "allow_downloads", False))

    @property
    def jobs(self) -> list[Job]:
        with self._cond:
            return list(self._jobs)

    def active(self) -> list[Job]:
        return [j for j in self.jobs if not j.state.finished]

    def get(self, job_id: int) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    def cancel(self, job_id: int) -> None:
        """Cancel a running job (at its next check) or drop a queued one."""
        with self._cond:
            job = next((j for j in self._jobs if j.id == job_id), None)
            if job is None or job.state.finished:
                return
            job.progress.cancel()
            queued = job.state is JobState.QUEUED
            if queued:
                job.state = JobState.CANCELLED
        if queued:
            self._emit(JobEventKind.CANCELLED, job)

    def remove(self, job_id: int) -> None:
        """Remove a queued or finished job from the list (a running one is cancelled)."""
        with self._cond:
            job = next((j for j in self._jobs if j.id == job_id), None)
            if job is None:
                return
            if job.state is JobState.RUNNING:
                job.progress.cancel()
                return
            if job.state is JobState.QUEUED:
                job.state = JobState.CANCELLED
                job.progress.cancel()
            self._jobs.remove(job)
        self._emit(JobEventKind.REMOVED, job)

    def clear(self) -> None:
        """Drop every queued job and forget finished ones; the running job goes on."""
        for job in self.jobs:
            if job.state is not JobState.RUNNING:
                self.remove(job.id)

    def unload_models(self) -> None:
        """Free every loaded model (each worker does it between jobs)."""
        with self._cond:
            self._unload.update(self._workers)
            self._cond.notify_all()

    def loaded_models(self) -> list[tuple[str, str, str]]:
        """(device, plugin, model ref) of every model a worker holds."""
        return [(device, plugin, ref) for device, worker in list(self._workers.items())
                for plugin, ref in list(worker.models)]

    def cancel_all(self) -> None:
        for job in self.jobs:
            self.cancel(job.id)

    def wait(self, job: Job, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not job.state.finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        for job in self.jobs:
            if not self.wait(job, timeout):
                return False
        return True

    def shutdown(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        if cancel:
            self.cancel_all()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            workers = list(self._workers.values())
        for worker in workers:
            worker.join(timeout)

    # -- worker side ---------------------------------------------------------------
    def _take(self, device: str) -> Any:
        with self._cond:
            while True:
                if device in self._unload:
                    self._unload.discard(device)
                    return _UNLOAD
                if device in self._warm:
                    return _WarmUp(self._warm.pop(device))
                server = device[len("server:"):] if device.startswith("server:") else ""
                resting = self._down_until.get(server, 0.0) - time.monotonic()
                waiting_pool = False
                for job in self._jobs:
                    if job.state is not JobState.QUEUED:
                        continue
                    if job.device == device:
                        break
                    if server and job.pool and server in job.pool and \
                            server not in job.tried:
                        if resting <= 0 or all(n in job.tried or n == server
                                               for n in job.pool):
                            job.device = device
                            break
                        waiting_pool = True
                else:
                    if self._closing:
                        return None
                    self._cond.wait(resting if waiting_pool else None)
                    continue
                job.state = JobState.RUNNING
                job.progress.restart_clock()
                break
        self._emit(JobEventKind.STARTED, job)
        return job

    def _finish(self, job: Job, state: JobState, error: str = "") -> None:
        rate = job.progress.measured_rate() if state is JobState.DONE else None
        with self._cond:
            if rate:
                self._rates[(job.request.plugin, job.request.model)] = rate
            job.state = state
            if error:
                job.error = error
            self._cond.notify_all()
        self._emit(_FINISHED[state], job)

    def _emit(self, kind: JobEventKind, job: Job, fraction: float = 0.0,
              eta: float | None = None, preview: Any = None) -> None:
        if self.listener is None:
            return
        try:
            self.listener(JobEvent(kind, job, fraction, eta, preview))
        except Exception:  # a listener's bug must not stop the worker; it is logged
            log.exception("job listener failed on %s of job %s", kind.value, job.id)
