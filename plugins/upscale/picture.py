"""What a picture is, for choosing its upscale model (no Qt, no torch).

The **Automatic** model looks at the source before it runs and picks:

- **compressed or noisy photos** (a JPEG below quality 90 by its quantization tables, or any
  picture whose 8-px block grid shows, or whose noise is high) → Real-ESRGAN x4plus, trained
  on degraded pictures: DAT-light, trained on clean downscales, sharpens JPEG blocks into a
  grid (issue 37: block-grid ratio 1.60 vs bicubic's 1.47 vs x4plus's 1.01);
- **line art, drawings, anime** (large flat areas, few colours) → Real-ESRGAN animevideov3;
- **clean pictures** → DAT-light, the most faithful on clean sources.

Every figure is measured on the centre of the picture (at most ``CROP`` px square, the
pixels as they are: resampling would hide the block grid). The user's own choice of model
always wins; this only fills in Automatic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AUTO = "auto"  # the model offer that chooses per picture
CROP = 1024
JPEG_QUALITY_CLEAN = 90  # a JPEG at or above this is treated as clean
BLOCK_RATIO = 1.12  # 8-px grid gradient / interior gradient above this: blocky
NOISE_SIGMA = 5.2  # estimated noise (of 255) above this: noisy (clean grainy textures reach 4.7)
FLAT_SHARE = 0.5  # share of (nearly) flat pixels above this, with few colours: line art
FEW_COLOURS = 0.02  # distinct 5-bit colours per pixel below this

# the IJG standard luminance quantization table (JPEG Annex K), in natural order
_STD_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24,
             40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77,
             24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92,
             95, 98, 112, 100, 103, 99)


@dataclass
class Picture:
    kind: str  # "compressed", "noisy", "line art" or "clean"
    why: str  # one sentence for the panel and the recipe
    jpeg_quality: int | None
    block_ratio: float
    noise: float
    flat_share: float
    colours: float

    def figures(self) -> dict:
        return {"kind": self.kind, "jpeg_quality": self.jpeg_quality,
                "block_ratio": round(self.block_ratio, 3), "noise": round(self.noise, 2),
                "flat_share": round(self.flat_share, 3), "colours": round(self.colours, 4)}


def jpeg_quality(image) -> int | None:
    """The IJG quality a JPEG was saved at, estimated from its luminance table (None: not a
    JPEG, or tables PIL does not show)."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables or 0 not in tables:
        return None
    table = list(tables[0])[:64]
    if len(table) != 64:
        return None
    # IJG: scale = 5000/q (q < 50) or 200 - 2q; each entry = (std * scale + 50) / 100
    ratio = sum(table) / sum(_STD_LUMA) * 100
    quality = 5000 / ratio if ratio > 100 else (200 - ratio) / 2
    return max(1, min(100, round(quality)))


def block_ratio(gray, period: int = 8) -> float:
    """Mean absolute gradient across the ``period`` grid's lines over the mean elsewhere,
    both directions (1.0: no grid; JPEG blocks and their upscales raise it)."""
    import numpy as np

    ratios = []
    for axis in (0, 1):
        step = np.abs(np.diff(gray, axis=axis)).mean(axis=1 - axis)  # per line between pixels
        if step.size < 2 * period:
            continue
        at = (np.arange(step.size) + 1) % period == 0  # between pixel k*period-1 and k*period
        inside = step[~at].mean()
        ratios.append(float(step[at].mean() / inside) if inside > 1e-6 else 1.0)
    return float(np.mean(ratios)) if ratios else 1.0


def noise_sigma(gray) -> float:
    """Immerkær's fast noise estimate (of 255) from the Laplacian-like mask's response,
    over the smoother half of the picture (texture and edges would read as noise)."""
    import numpy as np

    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    g = gray
    response = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:] - 2 * g[1:-1, :-2]
                + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:] + g[2:, :-2] - 2 * g[2:, 1:-1]
                + g[2:, 2:])
    gradient = np.abs(g[2:, 1:-1] - g[:-2, 1:-1]) + np.abs(g[1:-1, 2:] - g[1:-1, :-2])
    smooth = gradient <= np.percentile(gradient, 50)
    return float(math.sqrt(math.pi / 2) * np.abs(response[smooth]).mean() / 6)


def analyse(image) -> Picture:
    """What ``image`` (a PIL image, its ``format`` and tables as opened) is, and why."""
    import numpy as np

    quality = jpeg_quality(image)
    rgb = image.convert("RGB")
    width, height = rgb.size
    left, top = max(0, (width - CROP) // 2), max(0, (height - CROP) // 2)
    crop = np.asarray(rgb.crop((left, top, left + min(width, CROP), top + min(height, CROP))),
                      dtype=np.float32)
    gray = crop @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    blocks = block_ratio(gray)
    noise = noise_sigma(gray)
    steps = np.maximum(np.abs(np.diff(gray, axis=0))[:, :-1], np.abs(np.diff(gray, axis=1))[:-1])
    flat = float((steps < 1.0).mean()) if steps.size else 1.0
    quantized = (crop.astype(np.uint16) >> 3)
    codes = (quantized[..., 0] << 10) | (quantized[..., 1] << 5) | quantized[..., 2]
    colours = len(np.unique(codes)) / max(1, codes.size)
    figures = dict(jpeg_quality=quality, block_ratio=blocks, noise=noise, flat_share=flat,
                   colours=colours)
    if quality is not None and quality < JPEG_QUALITY_CLEAN:
        return Picture("compressed", f"a JPEG saved at quality ≈ {quality}: its 8-px blocks "
                       "need a model trained on compressed pictures", **figures)
    if blocks > BLOCK_RATIO:
        return Picture("compressed", f"its 8-px block grid shows (×{blocks:.2f} across the "
                       "grid): it was a JPEG once", **figures)
    if flat > FLAT_SHARE and colours < FEW_COLOURS:
        return Picture("line art", f"flat areas ({flat:.0%} of the pixels) and few colours: "
                       "a drawing", **figures)
    if noise > NOISE_SIGMA:
        return Picture("noisy", f"noisy (σ ≈ {noise:.1f} of 255): a model trained on noisy "
                       "pictures cleans it", **figures)
    return Picture("clean", "a clean picture: the most faithful model", **figures)


# which embedded model each kind gets, by the scale the chosen size needs
CHOICES = {"compressed": {2: "realesrgan-x4plus", 3: "realesrgan-x4plus",
                          4: "realesrgan-x4plus"},
           "noisy": {2: "realesrgan-x4plus", 3: "realesrgan-x4plus", 4: "realesrgan-x4plus"},
           "line art": {2: "animevideov3-x2", 3: "animevideov3-x3", 4: "animevideov3-x4"},
           "clean": {2: "dat-light-x2", 3: "dat-light-x3", 4: "dat-light-x4"}}


def choose(picture: Picture, factor: float) -> str:
    """The embedded model for ``picture`` and the output's scale ``factor``: the smallest of
    ×2, ×3, ×4 that reaches it (×4 beyond; the rest is resampled as for any model)."""
    scale = next((s for s in (2, 3, 4) if factor <= s + 1e-6), 4)
    return CHOICES[picture.kind][scale]


def model_for(image, preset: str) -> tuple[Picture, str]:
    """What ``image`` is, and the embedded model Automatic gives it for the size ``preset``
    (the generator runs that model; the panel says so before Upscale is pressed)."""
    from .sizes import output_size

    picture = analyse(image)
    width = output_size(image.width, image.height, preset, 4)[0]
    return picture, choose(picture, width / image.width)
