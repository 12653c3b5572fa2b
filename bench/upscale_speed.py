"""Upscale speed: CPU-seconds per input megapixel through the studio vs a bare torch loop,
and the cheap CPU wins (bf16 autocast, channels_last, torch.compile) with their quality.

    .venv/bin/python bench/upscale_speed.py [--rounds 2] [--wins]

Studio: a job submitted to the JobRunner (queue → worker thread → UpscaleGenerator: decode,
auto tile, autocast, 8-bit output, PNG encode with ICC/EXIF → project write), timed from
submit to the project item. Bare: the same spandrel model on the same picture in a plain
loop: decode the PNG, one forward pass under ``inference_mode`` with the same autocast,
encode the PNG (the model is channels_last, as the studio loads it). CPU time is the process's user+system time (both cores count), so other
load on the machine changes it little. Rounds alternate studio/bare.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))

CASES = (("animevideov3-x4", 384), ("dat-light-x4", 160), ("realesrgan-x4plus", 128))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_picture(side: int) -> bytes:
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def speed(args) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore
    from creative_studio.io.images import encode_png
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from plugins.upscale import models
    from plugins.upscale.generator import fast_dtype

    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    dtype = fast_dtype("cpu", "auto")
    print(f"precision: {dtype or 'float32'}; threads {torch.get_num_threads()}")
    print(f"{'model':20}{'input':>9}{'studio CPU-s/MP':>17}{'bare CPU-s/MP':>15}"
          f"{'ratio':>8}{'bare fwd only':>15}")
    for ref, side in CASES:
        if args.models and ref not in args.models.split(","):
            continue
        data = test_picture(side)
        source = store.add_item(Request("upscale", "import"),
                                Result([Asset("image", "image/png", data, "in.png")],
                                       ModelIdentity("file", "in.png"), "none"))
        up = models.load(embedded_source(ref))
        megapixels = side * side / 1e6
        studio, bare, forward = [], [], []

        def studio_run(source=source, ref=ref):
            job = runner.submit(Request("upscale", "upscale", parents=[source],
                                        model=f"embedded:{ref}"), store=store)
            runner.wait(job, timeout=3600)
            assert job.state is JobState.DONE, job.error

        studio_run()  # loads the model in the runner's cache (not timed)
        for _ in range(args.rounds):
            start = cpu_seconds()
            studio_run()
            studio.append((cpu_seconds() - start) / megapixels)
            start = cpu_seconds()
            rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
            x = torch.from_numpy(rgb / 255).permute(2, 0, 1)[None]
            x = x.contiguous(memory_format=torch.channels_last)  # as models.load sets up
            mid = cpu_seconds()
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                        enabled=dtype is not None):
                y = up.model(x)
            done = cpu_seconds()
            pixels = (y[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            encode_png(Image.fromarray(pixels))
            bare.append((cpu_seconds() - start) / megapixels)
            forward.append((done - mid) / megapixels)
        s, b = statistics.median(studio), statistics.median(bare)
        print(f"{ref:20}{side:>5}²px{s:>17.1f}{b:>15.1f}{s / b:>8.3f}"
              f"{statistics.median(forward):>15.1f}", flush=True)
    runner.shutdown()
    store.close()


def wins(args) -> None:
    """fp32 vs bf16 autocast vs channels_last vs torch.compile on a 128² crop."""
    import numpy as np
    import torch
    from skimage import data

    from plugins.upscale import models

    crop = data.astronaut()[:128, 128:256]
    x = torch.from_numpy(crop.astype(np.float32) / 255).permute(2, 0, 1)[None]

    def timed(module, inp, dtype=None):
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                                    enabled=dtype is not None):
            out = module(inp)
        return out.float().clamp(0, 1).numpy(), time.perf_counter() - start

    def psnr(a, b):
        return 10 * np.log10(1 / max(1e-20, float(np.mean((a - b) ** 2))))

    print(f"\nCheap wins on a 128² crop (wall s; PSNR vs the float32 output; "
          f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()})")
    for ref, _ in CASES:
        if args.models and ref not in args.models.split(","):
            continue
        net = models.load(embedded_source(ref)).model.model
        net = net.to(memory_format=torch.contiguous_format)  # the plain float32 reference
        timed(net, x[:, :, :32, :32])
        base, t32 = timed(net, x)
        line = f"  {ref:20} fp32 {t32:6.2f}s"
        out, t = timed(net, x, torch.bfloat16)
        line += f" | bf16 {t:6.2f}s ({t32 / t:.2f}x, {psnr(base, out):.1f} dB)"
        net = net.to(memory_format=torch.channels_last)
        out, t = timed(net, x.contiguous(memory_format=torch.channels_last))
        line += f" | channels_last {t:6.2f}s ({t32 / t:.2f}x)"
        out, t = timed(net, x.contiguous(memory_format=torch.channels_last), torch.bfloat16)
        line += f" | both {t:6.2f}s ({t32 / t:.2f}x, {psnr(base, out):.1f} dB)"
        net = net.to(memory_format=torch.contiguous_format)
        compiled = torch.compile(net)
        start = time.perf_counter()
        timed(compiled, x)
        warm = time.perf_counter() - start
        out, t = timed(compiled, x)
        line += f" | compile {t:6.2f}s ({t32 / t:.2f}x, first call {warm:.0f}s)"
        print(line, flush=True)


def embedded_source(ref: str):
    """The ModelSource of an embedded upscale model."""
    from creative_studio.plugins import PluginRegistry

    return PluginRegistry.discover(entry_points=False).resolve_model("upscale", f"embedded:{ref}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default="", help="comma-separated subset")
    parser.add_argument("--wins", action="store_true", help="also try the cheap CPU wins")
    args = parser.parse_args()
    speed(args)
    if args.wins:
        wins(args)


if __name__ == "__main__":
    main()
