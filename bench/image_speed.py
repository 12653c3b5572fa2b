"""Image speed: seconds per image at 25 steps through the studio vs a bare diffusers call on
the same pipeline, in the same run; and whether a seeded re-run is bit-identical.

    .venv/bin/python bench/image_speed.py [--model embedded:emoji-unet | FOLDER]
        [--unet .cache/image-train/unet] [--rounds 5] [--steps 25]

``--unet`` puts a UNet folder (e.g. a training checkpoint) into the embedded pipeline's layout,
so the speed can be measured before the shipped weights exist (speed does not depend on
training). Studio: JobRunner → worker → ImageGenerator (scheduler, previews every few steps,
cancel checks, PNG with metadata) → project write. Bare: ``pipe(prompt, …)`` with the same
arguments and seed, then PIL → PNG. Rounds alternate.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))


def pipeline_from_unet(unet: Path) -> Path:
    """A resources-like folder with this UNet, assembled into a full pipeline folder."""
    from creative_studio.core import paths
    from plugins.image import models

    fake = Path(tempfile.mkdtemp()) / "resources"
    from creative_studio.plugins import PluginRegistry

    shipped = PluginRegistry.discover(entry_points=False).resolve_model("image").path
    target = fake / shipped.relative_to(paths.resources_dir())  # where plugin.toml says
    shutil.copytree(unet, target / "unet")
    from tools.image.train import make_scheduler

    make_scheduler().save_pretrained(target / "scheduler")
    paths.resources_dir = lambda: fake  # this process only
    return models.assemble_embedded(target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded:emoji-unet")
    parser.add_argument("--unet", type=Path, help="a UNet folder to measure in the embedded "
                                                  "layout (e.g. .cache/image-train/unet)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    import torch

    from creative_studio.core.jobs import JobState, Request
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from plugins.image import models

    model = str(pipeline_from_unet(args.unet)) if args.unet else args.model
    folder = models.pipeline_folder(PluginRegistry.discover(entry_points=False).resolve_model("image", model))[0]
    pipe = models.load_pipeline(folder, "cpu")
    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    params = {"steps": args.steps, "guidance": 3.0}
    prompt = "red apple"
    studio, bare, outputs = [], [], []
    for seed in range(args.rounds + 1):
        job = runner.submit(Request("image", "generate", prompt=prompt, params=params,
                                    seed=seed, model=model), store=store)
        start = time.perf_counter()
        runner.wait(job)
        elapsed = time.perf_counter() - start
        assert job.state is JobState.DONE, job.error
        start = time.perf_counter()
        with torch.inference_mode():
            image = pipe(prompt=prompt, num_inference_steps=args.steps, guidance_scale=3.0,
                         generator=torch.Generator().manual_seed(seed)).images[0]
        image.save(io.BytesIO(), "PNG")
        bare_elapsed = time.perf_counter() - start
        if seed:  # the first round loads and warms up
            studio.append(elapsed)
            bare.append(bare_elapsed)
        outputs.append(job.result.assets[0].data)
    again = runner.submit(Request("image", "generate", prompt=prompt, params=params, seed=1,
                                  model=model), store=store)
    runner.wait(again)
    s, b = statistics.median(studio), statistics.median(bare)
    meta = job.result.metadata
    print(f"{folder.name}: {meta['width']}×{meta['height']}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"seconds per image: studio {s:.2f} vs bare diffusers call {b:.2f} → ratio "
          f"{s / b:.3f} (target ≤ 1.05)")
    print(f"seeded re-run bit-identical: {again.result.assets[0].data == outputs[1]}")
    runner.shutdown()
    store.close()


if __name__ == "__main__":
    main()
