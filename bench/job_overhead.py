"""What the studio adds to a job: its wall time through the runner vs the time the engine
itself measured (``metadata.seconds``), with the model process and without.

    .venv/bin/python bench/job_overhead.py [--runs 4]

Text (the embedded GGUF, 96 tokens) and Music (an 8-bar idea) — bench/threads.py's jobs —
after one warm-up job each;
the difference is the runner, the model process's messages, the thread policy's look at the
machine and the project write (fsync included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    from threads import requests  # the same jobs as the thread bench

    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner

    for isolate in (True, False):
        store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
        runner = JobRunner(PluginRegistry.discover(), device_preference="cpu",
                           isolate=isolate)
        for panel in ("text", "music"):
            request = requests(panel, store)
            runner.wait(runner.submit(request(100), store=store), timeout=600)
            walls, inner = [], []
            for seed in range(args.runs):
                start = time.perf_counter()
                job = runner.submit(request(seed), store=store)
                runner.wait(job, timeout=600)
                walls.append(time.perf_counter() - start)
                inner.append(float(job.result.metadata["seconds"]))
            wall, own = statistics.median(walls), statistics.median(inner)
            where = "model process" if isolate else "studio's process"
            print(f"{panel:6} ({where:16}): job {wall:.3f} s, engine {own:.3f} s, "
                  f"the studio adds {(wall - own) * 1000:.1f} ms ({wall / own:.3f}×)")
        runner.shutdown()
        store.close()


if __name__ == "__main__":
    main()
