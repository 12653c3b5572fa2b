"""Output size presets of the Upscale panel (no Qt, no torch).

A preset is a string kept in the recipe: ``model`` (the network's own factor), ``x2``/``x3``/
``x4`` (factor of the input) or ``long:N`` (the longer side becomes N px). When the preset
differs from the network's factor, the network output is resampled with Lanczos (downscaling a
×4 result to ×2 supersamples it, which is sharper than running a ×2 network on less detail).
"""

from __future__ import annotations

from creative_studio.core.errors import BadInput

PRESETS = [
    ("model", "Model scale"),
    ("x2", "×2"),
    ("x3", "×3"),
    ("x4", "×4"),
    ("long:1920", "Full HD (1920 px long side)"),
    ("long:3840", "4K (3840 px long side)"),
]
MAX_OUTPUT_PIXELS = 256 * 1024 * 1024  # 256 MP out (16384²): a 768 MB RGB array


def output_size(width: int, height: int, preset: str, model_scale: int) -> tuple[int, int]:
    """The final (width, height) for an input of ``width``×``height``."""
    if preset in ("", "model"):
        factor = float(model_scale)
    elif preset.startswith("x"):
        try:
            factor = float(preset[1:])
        except ValueError:
            raise BadInput(f"Unknown output size '{preset}'.") from None
    elif preset.startswith("long:"):
        try:
            factor = int(preset[5:]) / max(width, height)
        except ValueError:
            raise BadInput(f"Unknown output size '{preset}'.") from None
    else:
        raise BadInput(f"Unknown output size '{preset}'.")
    if not 0 < factor <= 16:
        raise BadInput(f"Output size '{preset}' would scale by {factor:g}: choose 1–16×.")
    size = max(1, round(width * factor)), max(1, round(height * factor))
    if size[0] * size[1] > MAX_OUTPUT_PIXELS:
        raise BadInput(f"The result would be {size[0]}×{size[1]}, larger than the "
                       f"{MAX_OUTPUT_PIXELS // 2**20} MP the studio writes: choose a smaller "
                       f"size or crop the picture.")
    return size
