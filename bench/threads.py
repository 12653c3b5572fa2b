"""Every panel beside busy programs, the way a desktop shares its CPU: the studio's thread
policy vs the best bare configuration of the same library, measured in the same run.

    .venv/bin/python bench/threads.py [--busy 0,1,2] [--panels text,image,upscale,music,
        harmonize] [--runs 5] [--configs studio,1,all,all-passive]

For each load (0, 1 or 2 busy programs, each ``python3 -c "while True: pass"`` started in a
session of its own, as ``setsid`` starts it: another scheduling group, as a desktop's other
apps are) and each panel's job, one process per configuration:

- **studio**: ``JobRunner(isolate=True)`` with default preferences — the model process, its
  thread policy (creative_studio/core/cpu.py) deciding before every job (``studio-in``: the
  same with models in the studio's own process);
- **bare**: the plugin's generator called directly in a plain process, the library at
  1 thread (``1``), at all cores with OpenMP's default (spinning) waits (``all``), and at
  all cores with ``OMP_WAIT_POLICY=PASSIVE`` (``all-passive``) — the same job, model, seed.

Each process loads the model and warms up with one job (not timed); then the processes take
turns, one job each per round, 0.8 s apart (the busy programs' share moves over time: turns
put every configuration under the same conditions; the pause keeps one configuration's job
out of the next one's "programs beside"), for ``--runs`` rounds; the median is the figure.
A configuration whose job takes longer than ``--limit`` × the idle studio's time (at least
12 s) is stopped and shown as ``>N``. Ratios: the best bare median / the studio's (≥ 0.9 is
the goal); ``paired``, the median over rounds of that round's best-bare job / studio job
(the two ran seconds apart: the VM's drift between rounds cancels); and each studio job
beside busy programs / the same job idle (≤ 2.5 beside one).

Jobs: Text — the embedded SmolLM2 GGUF on llama.cpp, 96 tokens; Image — the embedded model,
32×32, 25 steps; Upscale — Real-ESRGAN x4plus, a 64×64 photo ×4; Music — an 8-bar idea;
Harmonize — alto, tenor and bass under such an idea (the rework).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PANELS = ("text", "image", "upscale", "music", "harmonize")
CONFIGS = ("studio", "1", "all", "all-passive")
PAUSE = 0.8  # seconds between two configurations' turns (more than the policy's window)


# ------------------------------------------------------------------------------------------
# one process: load, warm up, time the jobs (``--child``)


def picture() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([(x * 4) % 256, (y * 4) % 256, (x + y) * 2 % 256], -1).astype(np.float32)
    rgb += rng.normal(0, 12, rgb.shape)
    buffer = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def requests(panel: str, store):
    """(warm-up request, timed request maker) for a panel; parents live in ``store``."""
    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result

    if panel == "text":
        def make(seed):
            return Request("text", "generate", prompt="Write a short story about a "
                           "lighthouse keeper who finds a message in a bottle.",
                           params={"max_tokens": 96, "temperature": 0.7}, seed=seed)
    elif panel == "image":
        def make(seed):
            return Request("image", "generate", prompt="red apple", seed=seed,
                           params={"steps": 25})
    elif panel == "upscale":
        source = store.add_item(Request("upscale", "import"),
                                Result([Asset("image", "image/png", picture(), "in.png")],
                                       ModelIdentity("file", "in.png"), "none"))

        def make(seed):
            return Request("upscale", "upscale", parents=[source], seed=seed,
                           model="embedded:realesrgan-x4plus")
    elif panel in ("music", "harmonize"):
        def idea(seed):
            return Request("music", "generate", seed=seed,
                           params={"bars": 8, "time_signature": "4/4", "mode": "major"})
        if panel == "music":
            make = idea
        else:
            melody = store.add_item(*_bare_run(idea(5), store))

            def make(seed):
                return Request("music", "harmonize", parents=[melody], seed=seed)
    else:
        raise SystemExit(f"unknown panel {panel}")
    return make


def _bare_run(request, store):
    """Run one request on a bare generator (a parent's melody): (request, result)."""
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request

    registry = PluginRegistry.discover()
    prepare_request(registry, request)
    generator = registry.get(request.plugin).load("generator")()
    generator.load(registry.resolve_model(request.plugin, request.model), "cpu", Progress())
    result = generator.generate(request, Progress(), {})
    generator.unload()
    return request, result


def child(panel: str, config: str) -> None:
    """Load, warm up, say ``ready``; then one timed job per ``run SEED`` line on stdin."""
    from creative_studio.core.jobs import Asset, JobState
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry

    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    make = requests(panel, store)
    registry = PluginRegistry.discover()
    if config.startswith("studio"):  # "studio-in": models in this process (Preferences)
        from creative_studio.workers.runner import JobRunner

        runner = JobRunner(registry, device_preference="cpu", isolate=config == "studio")

        def run(seed):
            job = runner.submit(make(seed), store=store)
            runner.wait(job, timeout=3600)
            assert job.state is JobState.DONE, job.error
            return job.result
    else:
        import torch

        from creative_studio.core import cpu
        from creative_studio.core.progress import Progress
        from creative_studio.workers.runner import prepare_request

        threads = 1 if config == "1" else cpu.physical_cores(cpu.affinity())
        torch.set_num_threads(threads)
        # engines that ask the policy (llama.cpp) get the same fixed count
        cpu.POLICY.current = cpu.Decision(threads, "bare", "bench")
        generators = {}

        def run(seed):
            request = make(seed)
            prepare_request(registry, request)
            generator = generators.get(request.task)
            if generator is None:
                generator = registry.get(request.plugin).load("generator")()
                generator.load(registry.resolve_model(request.plugin, request.model), "cpu",
                               Progress())
                generators[request.task] = generator
            inputs = {i: [Asset(a.role, a.mime, store.asset_bytes(a.id), a.name)
                          for a in store.item(i).assets] for i in request.parents}
            return generator.generate(request, Progress(), inputs)
    run(100)  # loads the model, warms up
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.startswith("run "):
            break
        seed = int(line.split()[1])
        start = time.perf_counter()
        result = run(seed)
        elapsed = time.perf_counter() - start
        meta = result.metadata
        if panel == "text":  # per 96 tokens: a reply may end early
            elapsed *= 96 / max(1, meta.get("tokens", 96))
        print(json.dumps({"seconds": elapsed, "cpu": meta.get("cpu")}), flush=True)
    if config.startswith("studio"):
        runner.shutdown()


# ------------------------------------------------------------------------------------------
# the parent: busy programs, configurations, the table


class Config:
    """One configuration's process, driven a job at a time."""

    def __init__(self, panel: str, config: str, limit: float) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")}
        env["CREATIVE_STUDIO_HOME"] = tempfile.mkdtemp(prefix="bench-home-")  # default prefs
        env["PYTHONUNBUFFERED"] = "1"
        name, *extra = config.split("+")  # e.g. all+GOMP_SPINCOUNT=10000
        env.update(item.split("=", 1) for item in extra)
        if name == "1":
            env["OMP_NUM_THREADS"] = "1"
        elif name == "all-passive":
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        self.limit = limit
        self.seconds: list[float] = []
        self.decisions: list = []
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", panel, name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()
        self.alive = self._line(45 + 2 * limit) == "ready"  # the load and the warm-up job
        if not self.alive:
            self.stop()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def run(self, seed: int) -> None:
        """One timed job; one that takes longer than the limit stops this configuration."""
        if not self.alive:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {seed}\n")
        self.proc.stdin.flush()
        line = self._line(self.limit)
        if line is None or not line.startswith("{"):
            self.alive = False
            self.stop()
            return
        record = json.loads(line)
        self.seconds.append(record["seconds"])
        self.decisions.append(record["cpu"])

    def median(self) -> float:
        return statistics.median(self.seconds) if self.alive and self.seconds else float("inf")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def busy_programs(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=True) for _ in range(count)]


def show(value: float, cap: float) -> str:
    return f">{cap:.0f}" if value == float("inf") else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--busy", default="0,1,2")
    parser.add_argument("--panels", default=",".join(PANELS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=float, default=5.0,
                        help="stop a configuration after this × the idle studio's time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1])
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the busy programs are killed
    panels = args.panels.split(",")
    configs = args.configs.split(",")
    idle: dict[str, float] = {}
    rows = []
    print(f"{'busy':>4} {'panel':10}" + "".join(f"{c:>13}" for c in configs)
          + f"{'best bare':>11}{'ratio':>7}{'paired':>8}{'vs idle':>9}  studio's threads")
    for busy in [int(b) for b in args.busy.split(",")]:
        programs = busy_programs(busy)
        time.sleep(1.0)
        try:
            for panel in panels:
                cap = max(12.0, args.limit * idle.get(panel, 10.0))
                started = {}
                for config in configs:  # loaded one at a time, then run in turns
                    started[config] = Config(panel, config, cap)
                for seed in range(args.runs):
                    for config in configs:
                        # the job before (another configuration's) is not one of "the
                        # programs beside": the policy looks at the last half second
                        time.sleep(PAUSE)
                        started[config].run(seed)
                for config in started.values():
                    config.stop()
                medians = {c: started[c].median() for c in configs}
                reasons = sorted({f"{d['threads']}: {d['reason']}"
                                  for c in configs if c.startswith("studio")
                                  for d in started[c].decisions if d})
                studio = medians.get("studio", float("nan"))
                bare = [v for k, v in medians.items() if not k.startswith("studio")]
                best = min(bare) if bare else float("nan")
                if busy == 0:
                    idle[panel] = studio
                ratio = best / studio if studio and studio != float("inf") else 0.0
                # the same ratio round by round (both ran within seconds of each other, under
                # the same share of the CPU), its median: less moved by the VM's drift
                best_config = min((k for k in medians if not k.startswith("studio")),
                                  key=medians.get, default=None)
                pairs = ([b / s for b, s in zip(started[best_config].seconds,
                                                 started["studio"].seconds, strict=False)]
                         if best_config and "studio" in started else [])
                paired = statistics.median(pairs) if pairs else float("nan")
                versus = studio / idle[panel] if idle.get(panel) else float("nan")
                rows.append({"busy": busy, "panel": panel, "medians": medians,
                             "best_bare": best, "ratio": ratio, "paired": paired,
                             "vs_idle": versus,
                             "studio_threads": reasons})
                print(f"{busy:>4} {panel:10}" + "".join(f"{show(medians[c], cap):>13}"
                                                       for c in configs)
                      + f"{show(best, cap):>11}{ratio:>7.2f}{paired:>8.2f}{versus:>9.2f}  "
                      + "; ".join(reasons), flush=True)
        finally:
            for program in programs:
                program.kill()
                program.wait()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
