"""Seam-free tiled inference for super-resolution models (no Qt, torch imported lazily).

Each tile's *core* is run with ``pad`` pixels of real context around it, and only the core
of the output is kept, so a tile sees the same neighbourhood as a whole-image run would.
Tile corners sit on multiples of ``align`` so that window-attention models (DAT) see the
same windows as in a whole-image run. Progress is reported and cancel checked per tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def plan(height: int, width: int, tile: int, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Core boxes (y0, y1, x0, x1) covering the image, ``tile`` px wide (multiple of align)."""
    tile = max(align, tile // align * align)
    boxes = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            boxes.append((y0, min(height, y0 + tile), x0, min(width, x0 + tile)))
    return boxes


def run_tiled(model: Callable, image, scale: int, tile: int, pad: int, align: int = 1,
              progress=None):
    """Upscale ``image`` (1, C, H, W float tensor) with ``model`` tile by tile."""
    import torch

    _, channels, height, width = image.shape
    if tile >= max(height, width):
        with torch.inference_mode():
            return model(image)
    pad = int(math.ceil(pad / align) * align)
    boxes = plan(height, width, tile, align)
    out = None
    for index, (y0, y1, x0, x1) in enumerate(boxes):
        if progress is not None:
            progress.check()
        ry0, rx0 = max(0, y0 - pad), max(0, x0 - pad)
        ry1, rx1 = min(height, y1 + pad), min(width, x1 + pad)
        with torch.inference_mode():
            result = model(image[:, :, ry0:ry1, rx0:rx1])
        if out is None:
            out = torch.empty((1, result.shape[1], height * scale, width * scale),
                              dtype=result.dtype)
        out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = result[
            :, :, (y0 - ry0) * scale:(y1 - ry0) * scale, (x0 - rx0) * scale:(x1 - rx0) * scale]
        if progress is not None:
            progress.update((index + 1) / len(boxes))
    return out
