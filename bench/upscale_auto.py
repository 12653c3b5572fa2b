"""Upscale's Automatic model on JPEG photos and on clean downscales, held-out pictures.

    .venv/bin/pip install scikit-image        # the photos ship inside it (BSD-3)
    .venv/bin/python bench/upscale_auto.py [--crop 96] [--qualities 30,45,60]

Pictures the thresholds of plugins/upscale/picture.py were *not* tuned on (those were
astronaut, coffee, chelsea, rocket, motorcycle): immunohistochemistry, hubble_deep_field,
retina and a crop of skimage's "camera" (grey, made RGB). Each is cropped (``--crop``
source pixels, from its centre after a ×4 bicubic downscale of the photo) and run through
the studio's generator (``generate``: decoding, Automatic's choice, tiling) at ×4:

- **JPEG photos**: the crop saved as JPEG at each quality; the block-grid ratio (mean
  gradient across the 32-px grid — the source's 8-px JPEG blocks ×4 — over the mean
  elsewhere) of Automatic's result, of plain bicubic ×4 and of DAT-light ×4 (the default
  before Automatic). Goal: Automatic ≤ 1.1 and never above bicubic.
- **Clean downscales**: the crop as PNG; PSNR-Y against the photo before the downscale, of
  Automatic and of DAT-light. Goal: within 0.3 dB of DAT-light.

Printed per picture: the model Automatic chose and why, and the figures, in one run.
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

PICTURES = ("immunohistochemistry", "hubble_deep_field", "retina", "camera")


def photo(name: str):
    import numpy as np
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3]


def generator_for(ref: str):
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from plugins.upscale.generator import UpscaleGenerator

    generator = UpscaleGenerator()
    source = PluginRegistry.discover(entry_points=False).resolve_model("upscale", ref)
    generator.load(source, "cpu", Progress())
    return generator


def upscale(generator, data: bytes, name: str):
    """The generator's whole path on one encoded picture: (RGB array, metadata, model)."""
    import numpy as np
    from PIL import Image

    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress

    request = Request("upscale", "upscale", params={"size": "x4", "tile": 0,
                                                    "precision": "auto"}, parents=["p"])
    result = generator.generate(request, Progress(), {"p": [Asset("image", "image/x", data,
                                                                  name)]})
    out = np.asarray(Image.open(io.BytesIO(result.assets[0].data)).convert("RGB"))
    return out, result.metadata, result.model.name


def grid_ratio(rgb, period: int) -> float:
    from plugins.upscale.picture import block_ratio

    gray = rgb.astype("float32") @ [0.299, 0.587, 0.114]
    return block_ratio(gray, period)


def psnr_y(a, b, border: int = 4) -> float:
    import numpy as np

    def y(rgb):
        x = rgb.astype(np.float64) / 255
        return 16 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]

    diff = (y(a) - y(b))[border:-border, border:-border]
    return float(10 * np.log10(255 ** 2 / np.mean(diff ** 2)))


def main() -> None:
    import numpy as np
    import torch
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--qualities", default="30,45,60")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    auto, dat = generator_for("embedded:auto"), generator_for("embedded:dat-light-x4")
    qualities = [int(q) for q in args.qualities.split(",")]
    started = time.perf_counter()
    print(f"JPEG photos, ×4 from {args.crop}² crops: block-grid ratio at the 32-px period "
          "(goal: Automatic ≤ 1.1 and ≤ bicubic)")
    worst = []
    clean_rows = []
    for name in PICTURES:
        hr_full = photo(name)
        small = Image.fromarray(hr_full).resize((hr_full.shape[1] // 4, hr_full.shape[0] // 4),
                                                Image.Resampling.BICUBIC)
        left = (small.width - args.crop) // 2 // 8 * 8
        top = (small.height - args.crop) // 2 // 8 * 8
        crop = small.crop((left, top, left + args.crop, top + args.crop))
        hr = hr_full[top * 4:(top + args.crop) * 4, left * 4:(left + args.crop) * 4]
        for quality in qualities:
            buffer = io.BytesIO()
            crop.save(buffer, "JPEG", quality=quality)
            data = buffer.getvalue()
            source = Image.open(io.BytesIO(data)).convert("RGB")
            bicubic = np.asarray(source.resize((args.crop * 4, args.crop * 4),
                                               Image.Resampling.BICUBIC))
            mine, meta, model = upscale(auto, data, f"{name}.jpg")
            old, _, _ = upscale(dat, data, f"{name}.jpg")
            ratios = [grid_ratio(x, 32) for x in (mine, bicubic, old)]
            worst.append((ratios[0], ratios[1]))
            print(f"  {name:<22} q{quality:<3} Automatic → {model} ({meta['automatic']['kind']})"
                  f": {ratios[0]:.3f}   bicubic {ratios[1]:.3f}   DAT-light {ratios[2]:.3f}",
                  flush=True)
        buffer = io.BytesIO()
        crop.save(buffer, "PNG")
        mine, meta, model = upscale(auto, buffer.getvalue(), f"{name}.png")
        old, _, _ = upscale(dat, buffer.getvalue(), f"{name}.png")
        clean_rows.append((name, model, meta["automatic"]["because"], psnr_y(mine, hr),
                           psnr_y(old, hr)))
    print("\nClean downscales ×4: PSNR-Y (dB) against the photo (goal: within 0.3 dB of "
          "DAT-light)")
    for name, model, why, mine, old in clean_rows:
        print(f"  {name:<22} Automatic → {model} ({why}): {mine:.2f}   DAT-light {old:.2f}"
              f"   Δ {mine - old:+.2f}")
    print(f"\nJPEG: worst Automatic ratio {max(r for r, _ in worst):.3f}; above bicubic in "
          f"{sum(r > b for r, b in worst)} of {len(worst)}; clean: worst Δ "
          f"{min(m - o for *_, m, o in clean_rows):+.2f} dB ({time.perf_counter() - started:.0f}"
          " s in all)")


if __name__ == "__main__":
    main()
