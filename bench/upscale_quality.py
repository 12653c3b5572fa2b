"""Upscale quality: PSNR-Y / SSIM-Y of each model vs bicubic, and tile seams vs a whole run.

    .venv/bin/pip install scikit-image        # the photos ship inside it (BSD-3)
    .venv/bin/python bench/upscale_quality.py [--models dat-light-x4,...] [--precision auto]

Photos: astronaut, coffee, chelsea, rocket, motorcycle (left stereo view) from skimage.data,
cropped to a multiple of 4, degraded ×4 with bicubic (PIL, antialiased), then enlarged back ×4
by bicubic (the reference, in the same run) and by each model through the studio's generator
code (tiling, precision). PSNR and SSIM on the Y channel (BT.601, 16–235), 4 px border
shaved, as in the SR literature; SSIM is skimage's (7×7 window).

Seams: each model upscales one 128×128 crop whole and in 64 px tiles with its padding; the
PSNR between the two must be ≥ 50 dB (issue 3).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle")
X4_MODELS = ("dat-light-x4", "realesrgan-x4plus", "realesrgan-x4plus-anime", "animevideov3-x4")
ALL_MODELS = X4_MODELS + ("dat-light-x2", "dat-light-x3", "animevideov3-x2", "animevideov3-x3")


def photo(name: str):
    from skimage import data

    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    h, w = image.shape[0] // 4 * 4, image.shape[1] // 4 * 4
    return image[:h, :w, :3]


def y_channel(rgb):
    import numpy as np

    x = rgb.astype(np.float64) / 255
    return 16 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def psnr_ssim(a, b, border: int) -> tuple[float, float]:
    import numpy as np
    from skimage.metrics import structural_similarity

    ya, yb = y_channel(a)[border:-border, border:-border], y_channel(b)[border:-border,
                                                                         border:-border]
    mse = np.mean((ya - yb) ** 2)
    return 10 * np.log10(255 ** 2 / mse), structural_similarity(ya, yb, data_range=255)


def upscaler(ref: str):
    from creative_studio.core.progress import Progress
    from plugins.upscale.generator import UpscaleGenerator

    generator = UpscaleGenerator()
    from creative_studio.plugins import PluginRegistry

    generator.load(PluginRegistry.discover(entry_points=False).resolve_model("upscale", f"embedded:{ref}"), "cpu", Progress())
    return generator


def run(generator, rgb, tile: int, precision: str):
    import numpy as np
    import torch

    from plugins.upscale.tiling import run_tiled

    up = generator.upscaler
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    network, _ = generator.network(precision)
    return run_tiled(network, x, up.scale, tile, up.pad, up.align)


def main() -> None:
    import numpy as np
    from PIL import Image

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(X4_MODELS))
    parser.add_argument("--seam-models", default=",".join(ALL_MODELS))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)

    print(f"x4 quality on {len(PHOTOS)} photos (PSNR-Y dB / SSIM-Y), precision "
          f"{args.precision}")
    pairs = []
    for name in PHOTOS:
        hr = photo(name)
        lr = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // 4, hr.shape[0] // 4),
                                                   Image.Resampling.BICUBIC))
        bicubic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]),
                                                        Image.Resampling.BICUBIC))
        pairs.append((name, hr, lr, bicubic))
    rows = {"bicubic": [psnr_ssim(hr, bic, 4) for _, hr, _, bic in pairs]}
    for ref in filter(None, args.models.split(",")):
        generator = upscaler(ref)
        start = time.perf_counter()
        rows[ref] = [psnr_ssim(hr, run(generator, lr, 10**6, args.precision), 4)
                     for _, hr, lr, _ in pairs]
        print(f"  ({ref}: {time.perf_counter() - start:.1f} s)", flush=True)
    header = f"{'':24}" + "".join(f"{n:>15}" for n, *_ in pairs) + f"{'mean':>15}{'Δ bicubic':>11}"
    print(header)
    base = np.mean([p for p, _ in rows["bicubic"]])
    for ref, scores in rows.items():
        cells = "".join(f"{p:8.2f}/{s:.3f}" for p, s in scores)
        mean_p, mean_s = np.mean([p for p, _ in scores]), np.mean([s for _, s in scores])
        print(f"{ref:24}{cells}{mean_p:8.2f}/{mean_s:.3f}{mean_p - base:+10.2f}")

    print("\nTile seams: 128×128 crop of coffee, 64 px tiles vs whole (PSNR, dB; ≥ 50 wanted)")
    crop = photo("coffee")[100:228, 200:328]
    for ref in filter(None, args.seam_models.split(",")):
        generator = upscaler(ref)
        whole = run(generator, crop, 10**6, args.precision).astype(np.float64)
        tiled = run(generator, crop, 64, args.precision).astype(np.float64)
        mse = np.mean((whole - tiled) ** 2)
        figure = "identical" if mse == 0 else f"{10 * np.log10(255 ** 2 / mse):.1f} dB"
        up = generator.upscaler
        print(f"  {ref:24} pad {up.pad:3} align {up.align:3}: {figure}", flush=True)


if __name__ == "__main__":
    main()
