"""How many CPU threads a job gets: one policy for every engine, decided at each job's start.

A desktop shares its CPU (a browser, a DAW, Krita). When two threads of one matrix product
each get half a core, the one that finishes first spins waiting for the other (OpenMP's
active wait, ggml's barrier) and a job collapses up to 24x. So the model process, before
every job (and every load), measures the CPU actually available to the studio *now*:

- the CPUs it may run on (affinity) and their physical cores (two hardware threads of one
  core share its vector units);
- a cgroup CPU quota (containers, systemd slices), v2 ``cpu.max`` or v1 ``cfs_quota_us``;
- the CPU that other programs used over the last half second (per-CPU times of the allowed
  CPUs, less this process's own time, sampled every 0.1 s), not a one-minute load average,
  which still counts programs that have finished.

and gives the job the cores nobody else is using (at least one; each further thread needs
most of a free core). An engine may declare a ceiling for a job (``thread_ceiling``, with
its reason) where more threads do not help it. Preferences → CPU threads, or
``OMP_NUM_THREADS`` in the environment, override the measurement. The decision and its
reason go into the recipe.

Waiting is left to each library's default (OpenMP and ggml spin briefly, then sleep):
measured on 2 cores (bench/threads.py), passive waiting (``OMP_WAIT_POLICY=PASSIVE``) made
an idle machine's 2-thread jobs 1.7-3.3x slower (llama.cpp 1.02 → 3.39 s, the image model
1.45 → 2.35 s) and a shorter spin (``GOMP_SPINCOUNT``) 15-30 % slower, while beside a busy
program the policy gives one thread, which waits for nobody. The thread count is what
prevents the collapse, so it is decided before every job.

Each job and load also runs with the process's C heap tuned for tensors (:mod:`.heap`):
freed memory reused within the job instead of faulted in again, given back after it.

Nothing here imports Qt or torch (torch's thread count is set only where torch is loaded).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from . import heap

MIN_WINDOW = 0.12  # seconds: the shortest measurement of the other programs' CPU use
WINDOW = 0.5  # seconds: what "now" means when the sampler has it
SAMPLE_EVERY = 0.1  # seconds between two samples of the sampler thread
MAX_WINDOW = 3.0  # seconds: an older sample no longer says how busy the machine is now
# a further thread needs this much of a free core: a thread on a core another program
# shares half the time runs at half speed, and every other thread then waits for it
FURTHER_THREAD = 0.65


@dataclass(frozen=True)
class Machine:
    """The CPU available to this process: what it may run on, and what others use."""

    cpus: int  # logical CPUs in the affinity mask
    cores: int  # physical cores among them
    quota: float | None = None  # cgroup quota in CPUs; None when unlimited
    others: float = 0.0  # CPUs other programs kept busy over the window
    window: float = 0.0  # seconds measured (0: not measured)

    def capacity(self) -> float:
        """Cores this process could use if nobody else ran."""
        return min(float(self.cores), self.quota) if self.quota else float(self.cores)


@dataclass(frozen=True)
class Decision:
    threads: int
    reason: str
    source: str  # "measured", "preferences", "environment"

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "policy": self.source, "reason": self.reason}


def _fmt(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def decide(machine: Machine, preference: int = 0, environment: str | None = None,
           ceiling: int | None = None, ceiling_why: str = "") -> Decision:
    """The threads of one job. ``preference``: Preferences → CPU threads (0 = automatic);
    ``environment``: ``OMP_NUM_THREADS`` as the user's environment says it; ``ceiling``: the
    most the engine uses well, with ``ceiling_why`` said in the reason."""
    if preference and preference > 0:
        return Decision(int(preference), f"{int(preference)} (Preferences → CPU threads)",
                        "preferences")
    if environment:
        try:
            value = int(environment.strip().split(",")[0])
        except ValueError:
            value = 0
        if value > 0:
            return Decision(value, f"{value} (OMP_NUM_THREADS={environment.strip()} in the "
                                   "environment)", "environment")
    capacity = machine.capacity()
    free = max(0.0, capacity - machine.others)
    threads = max(1, min(machine.cores, math.floor(free + 1 - FURTHER_THREAD)))
    if machine.quota:
        threads = min(threads, max(1, math.ceil(machine.quota)))
    cores = (f"{machine.cores} core{'s' if machine.cores != 1 else ''}"
             + (f", a quota of {_fmt(machine.quota)} CPUs" if machine.quota
                and machine.quota < machine.cores else ""))
    if machine.window <= 0:
        reason = f"{threads} of {cores} (other programs' use not measurable here)"
    elif machine.others >= 0.05:
        reason = (f"{threads} of {cores}: other programs use {_fmt(machine.others)} "
                  f"CPU{'s' if machine.others >= 1.05 else ''}")
    else:
        reason = f"{threads} of {cores}: the machine is otherwise idle"
    if ceiling and threads > ceiling:
        threads = ceiling
        reason = f"{threads} of {cores}: {ceiling_why or 'the engine runs best so'}"
    return Decision(threads, reason, "measured")


# ------------------------------------------------------------------------------------------
# reading the machine


def affinity() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        try:
            import psutil

            return sorted(psutil.Process().cpu_affinity())
        except Exception:
            return list(range(os.cpu_count() or 1))


@cache
def _cpuinfo() -> str:
    """``/proc/cpuinfo`` (read once: the topology does not change while the studio runs)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def physical_cores(cpus: list[int], cpuinfo: str | None = None) -> int:
    """Distinct (package, core) pairs among ``cpus``; from ``/proc/cpuinfo`` on Linux, else
    the machine's physical share of them."""
    if cpuinfo is None:
        cpuinfo = _cpuinfo()
    wanted = set(cpus)
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        try:
            number = int(fields.get("processor", ""))
        except ValueError:
            continue
        if number in wanted and "core id" in fields:
            cores.add((fields.get("physical id", ""), fields["core id"]))
    if cores:
        return len(cores)
    try:
        import psutil

        logical = psutil.cpu_count() or len(cpus)
        physical = psutil.cpu_count(logical=False) or logical
        return max(1, round(len(cpus) * physical / logical))
    except Exception:
        return max(1, len(cpus))


def cgroup_quota(proc_cgroup: str = "/proc/self/cgroup",
                 root: str = "/sys/fs/cgroup") -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup and its parents; None when
    there is none (or no cgroup file system)."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2
            for folder in _ancestors(Path(root), path):
                quotas += _quota_v2(folder / "cpu.max")
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu", "cpu,cpuacct"):
                base = Path(root) / name
                if base.is_dir():
                    for folder in _ancestors(base, path):
                        quotas += _quota_v1(folder)
                    break
    return min(quotas) if quotas else None


def _ancestors(base: Path, path: str) -> list[Path]:
    parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _quota_v2(file: Path) -> list[float]:
    try:
        quota, _, period = file.read_text().strip().partition(" ")
        if quota == "max":
            return []
        value = int(quota) / int(period or 100000)
    except (OSError, ValueError, ZeroDivisionError):
        return []
    return [value] if value > 0 else []


def _quota_v1(folder: Path) -> list[float]:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return []
    return [quota / period] if quota > 0 and period > 0 else []


@dataclass(frozen=True)
class Sample:
    when: float  # time.monotonic()
    busy: float  # CPU-seconds the allowed CPUs were busy (all programs)
    total: float  # CPU-seconds the allowed CPUs existed (busy + idle)
    own: float  # CPU-seconds this process used


def sample(cpus: list[int]) -> Sample | None:
    """The allowed CPUs' times and this process's own; None where psutil cannot tell."""
    try:
        import psutil

        times = psutil.cpu_times(percpu=True)
    except Exception:
        return None
    own = os.times()  # this process, all its threads
    busy = total = 0.0
    for number in cpus or range(len(times)):
        if number >= len(times):
            continue
        t = times[number]
        idle = t.idle + getattr(t, "iowait", 0.0)
        # guest time is part of user time on Linux: the sum leaves it out
        spent = (t.user + t.nice + t.system + getattr(t, "irq", 0.0)
                 + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0))
        busy += spent
        total += spent + idle
    return Sample(time.monotonic(), busy, total, own.user + own.system)


def others_between(first: Sample, last: Sample, cpus: int) -> float:
    """CPUs other programs kept busy between two samples (this process's own time left
    out), from 0 to ``cpus``."""
    total = last.total - first.total
    if total <= 0 or cpus <= 0:
        return 0.0
    per_cpu = total / cpus  # seconds each CPU existed: the window, on the kernel's clock
    others = (last.busy - first.busy - (last.own - first.own)) / per_cpu
    return min(float(cpus), max(0.0, others))


# ------------------------------------------------------------------------------------------
# the policy of this process


class ThreadPolicy:
    """Measures and decides before each job; one per process (:data:`POLICY`).

    A sampler thread reads the CPU times every :data:`SAMPLE_EVERY` seconds (started at the
    first job; a few /proc reads), so that a job starts at once with the last
    :data:`WINDOW` seconds measured — what other programs do *now*, not a second ago. With no
    recent sample (the first job, or a machine where the thread is off) the job waits
    :data:`MIN_WINDOW` to measure."""

    def __init__(self, sampler: bool = True) -> None:
        self._lock = threading.Lock()
        self._ring: list[Sample] = []  # recent samples, oldest first
        self._sampler = sampler
        self._thread: threading.Thread | None = None
        self.current: Decision | None = None

    def _keep(self, found: Sample) -> None:
        with self._lock:
            self._ring.append(found)
            while self._ring and found.when - self._ring[0].when > MAX_WINDOW:
                self._ring.pop(0)

    def _sample_forever(self, cpus: list[int]) -> None:
        while True:
            found = sample(cpus)
            if found is None:
                return
            self._keep(found)
            time.sleep(SAMPLE_EVERY)

    def machine(self) -> Machine:
        cpus = affinity()
        cores = physical_cores(cpus)
        quota = cgroup_quota()
        now = sample(cpus)
        if now is None:
            return Machine(len(cpus), cores, quota)
        if self._sampler and self._thread is None:
            self._thread = threading.Thread(target=self._sample_forever, args=(cpus,),
                                            name="studio-cpu-sampler", daemon=True)
            self._thread.start()
        with self._lock:
            recent = [s for s in self._ring if now.when - s.when <= MAX_WINDOW]
        # the newest sample at least WINDOW old, else the oldest recent one
        first = next((s for s in reversed(recent) if now.when - s.when >= WINDOW - 1e-3),
                     recent[0] if recent else now)
        wait = MIN_WINDOW - (now.when - first.when)
        if wait > 0:
            time.sleep(wait)
            now = sample(cpus) or now
        self._keep(now)
        others = others_between(first, now, len(cpus))
        # the quota is shared with this process's cgroup only, the CPUs with everyone: the
        # others' use counts against the smaller of the two
        return Machine(len(cpus), cores, quota, others, now.when - first.when)

    def begin(self, ceiling: int | None = None, ceiling_why: str = "",
              preference: int | None = None) -> Decision:
        """Decide this job's threads now and apply them to the engines loaded here (torch);
        other engines read :attr:`current` (llama.cpp at each generation)."""
        if preference is None:
            preference = _preference()
        decision = decide(self.machine(), preference, os.environ.get("OMP_NUM_THREADS"),
                          ceiling, ceiling_why)
        apply_torch(decision.threads)
        self.current = decision
        return decision

    def threads(self) -> int:
        """The current job's threads (decided now when no job began here)."""
        return (self.current or self.begin()).threads


def _preference() -> int:
    from .settings import Settings

    try:
        return int(Settings.load().cpu_threads)
    except Exception:  # Settings.load reports damage itself; automatic meanwhile
        return 0


def apply_torch(threads: int) -> None:
    """torch's intra-op threads, where torch is loaded (never imported here)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def generate(generator: Any, request: Any, progress: Any, inputs: Any) -> Any:
    """Run one job of ``generator`` with the threads decided for it, the decision in its
    recipe (the model process and the studio's own worker both run jobs through this); the
    C heap kept for the job and trimmed after it (:mod:`.heap`)."""
    decision = job_threads(generator, request)
    try:
        return record(generator.generate(request, progress, inputs), decision)
    finally:
        heap.release()  # what the job left free beyond a little goes back to the system


def job_threads(generator: Any, request: Any = None) -> Decision:
    """Begin a job (or, without ``request``, a load) of ``generator``; its
    ``thread_ceiling(request)`` may return (threads, why) where more do not help it."""
    heap.tune()  # once per process: freed tensors' memory reused, not faulted in again
    ceiling = getattr(generator, "thread_ceiling", None)
    found = ceiling(request) if callable(ceiling) and request is not None else None
    most, why = found if found else (None, "")
    return POLICY.begin(most, why)


POLICY = ThreadPolicy()


def record(result: Any, decision: Decision) -> Any:
    """The decision in a result's metadata (its recipe), unless the engine said its own."""
    metadata = getattr(result, "metadata", None)
    if isinstance(metadata, dict):
        metadata.setdefault("cpu", decision.to_dict())
    return result
