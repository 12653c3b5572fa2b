"""Peak memory of a 1024×1024 → 4096×4096 upscale job through the studio (target ≤ 2 GB).

    .venv/bin/python bench/upscale_memory.py [--models animevideov3-x4,dat-light-x4]

Each model runs in a fresh process: JobRunner → UpscaleGenerator with the automatic tile
size → PNG → project file. Printed: peak RSS of the process (ru_maxrss), the RSS after the
model is loaded and imports are done (the reference, same process), wall time, tile size.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(ref: str, side: int) -> None:
    from PIL import Image
    from skimage import data

    from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner

    picture = Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    source = store.add_item(Request("upscale", "import"),
                            Result([Asset("image", "image/png", buffer.getvalue(), "in.png")],
                                   ModelIdentity("file", "in.png"), "none"))
    tiny = store.add_item(Request("upscale", "import"),
                          Result([Asset("image", "image/png", _png(16), "tiny.png")],
                                 ModelIdentity("file", "tiny.png"), "none"))
    model = f"embedded:{ref}"
    job = runner.submit(Request("upscale", "upscale", parents=[tiny], model=model), store=store)
    runner.wait(job)  # loads the model and imports everything
    loaded = rss_mb()
    start = time.perf_counter()
    job = runner.submit(Request("upscale", "upscale", parents=[source], model=model),
                        store=store)
    runner.wait(job)
    assert job.state is JobState.DONE, job.error
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = job.result.metadata
    print(f"{ref:20} {side}²→{meta['width']}×{meta['height']}: peak RSS {peak:7.0f} MB "
          f"(after model load {loaded:5.0f} MB; job adds {peak - loaded:5.0f} MB), "
          f"tile {meta['tile']}, {meta['precision']}, {time.perf_counter() - start:.0f} s",
          flush=True)
    runner.shutdown()


def _png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), "gray").save(buffer, "PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="animevideov3-x4,dat-light-x4")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side)
        return
    for ref in args.models.split(","):
        subprocess.run([sys.executable, __file__, "--child", ref, "--side", str(args.side)],
                       check=False)


if __name__ == "__main__":
    main()
