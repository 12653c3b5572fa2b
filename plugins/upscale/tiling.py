"""Seam-free tiled inference for super-resolution models (no Qt, torch imported lazily).

Each tile's *core* is run with ``pad`` pixels of real context around it, and only the core
of the output is kept, so a tile sees the same neighbourhood as a whole-image run would.
Tile corners sit on multiples of ``align`` so that window-attention models (DAT) see the
same windows as in a whole-image run. Tiles are written straight into an 8-bit output
array (a 4096² result is 50 MB, not a 200 MB float tensor), or handed on a row of tiles at a
time to a sink that writes the file (a 100-MP result is never whole in memory). Progress is
reported per tile; cancel is checked between tiles and, through forward hooks, between the
network's blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# peak working memory of one forward pass, bytes per input pixel of a tile (context
# included), measured on CPU with torch 2.13 for 64–256 px tiles (tools/upscale/README.md)
BYTES_PER_PIXEL = {"RealESRGAN Compact": 3_000, "ESRGAN": 12_000, "DAT": 15_000}
# the same through ncnn on the CPU (peak RSS, whole 256×192 pictures): its sgemm
# convolutions' workspace makes RRDB 3.5× heavier than on PyTorch; Compact alike
NCNN_BYTES_PER_PIXEL = {**BYTES_PER_PIXEL, "ESRGAN": 45_000}
DEFAULT_BYTES_PER_PIXEL = 15_000
CPU_BUDGET = 1 << 30  # at most 1 GiB of activations on CPU, whatever is free
MIN_TILE, MAX_TILE = 64, 1024


def plan(height: int, width: int, tile: int, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Core boxes (y0, y1, x0, x1) covering the image, ``tile`` px wide (multiple of align)."""
    tile = max(align, tile // align * align)
    boxes = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            boxes.append((y0, min(height, y0 + tile), x0, min(width, x0 + tile)))
    return boxes


def available_memory(device: str = "cpu") -> int:
    """Bytes the next tile may use on ``device``: free memory, with a margin."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free * 0.6)
    try:
        import psutil

        free = psutil.virtual_memory().available
    except ImportError:  # psutil is a dependency; this keeps a broken install usable
        free = 4 << 30
    return min(CPU_BUDGET, free // 4)


def auto_tile(architecture: str, pad: int, align: int = 1, budget: int | None = None,
              device: str = "cpu", picture: tuple[int, int] | None = None,
              ncnn: bool = False) -> int:
    """The largest tile (input px, multiple of 32) whose forward pass fits the budget.

    With the ``picture``'s (height, width): the whole picture when it fits the budget
    without padding (no tile overlap at all: a 256×192 picture on Real-ESRGAN x4plus took
    2.2× longer in four 160-px tiles with their 64-px context), else the tile evened out
    so that as many tiles as the largest one needs are all the same size (less context
    run twice). ``ncnn``: the costs of the ncnn engine on the CPU."""
    if budget is None:
        budget = available_memory(device)
    costs = NCNN_BYTES_PER_PIXEL if ncnn else BYTES_PER_PIXEL
    per_pixel = costs.get(architecture, DEFAULT_BYTES_PER_PIXEL)
    side = int(math.sqrt(budget / per_pixel)) - 2 * pad
    step = max(32, align)
    tile = max(MIN_TILE, min(MAX_TILE, side // step * step))
    if picture is None:
        return tile
    height, width = picture
    if height * width * per_pixel <= budget:
        return max(height, width)
    even = max(math.ceil(width / math.ceil(width / tile)),
               math.ceil(height / math.ceil(height / tile)))
    even = math.ceil(even / align) * align
    return even if even <= tile else tile


def _block_hooks(model, progress, state: dict) -> list:
    """Before each top-level block: check for cancel (a DAT tile can take tens of seconds)
    and report progress inside the tile (blocks run / blocks a tile runs, counted on the
    first tile)."""
    module = getattr(model, "model", model)
    if progress is None or not hasattr(module, "modules"):
        return []

    def before(*_args) -> None:
        progress.check()
        state["fired"] += 1
        inside = min(0.99, state["fired"] / max(1, state["per_tile"]))
        progress.update(state["base"] + state["span"] * inside)

    hooks = []
    for child in list(module.children())[:64]:
        hooks.append(child.register_forward_pre_hook(before))
        for grandchild in list(child.children())[:64]:
            hooks.append(grandchild.register_forward_pre_hook(before))
    state["per_tile"] = len(hooks)  # until the first tile has counted the real number
    return hooks


def to_uint8(tensor):
    """(1, C, H, W) float in [0, 1] → (H, W, C) uint8 numpy array."""
    import torch

    pixels = tensor[0].float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()


def _as_input(part):
    """A tile as the network takes it: float in [0, 1] (uint8 pictures are converted tile
    by tile: a 25-MP picture is 75 MB as bytes and 300 MB as floats)."""
    import torch

    return part.float().div_(255.0) if part.dtype == torch.uint8 else part


def run_tiled(model: Callable, image, scale: int, tile: int, pad: int, align: int = 1,
              progress=None, convert: Callable = to_uint8, sink: Callable | None = None):
    """Upscale ``image`` (1, C, H, W tensor: float in [0, 1], or uint8) tile by tile.

    Returns an (H·scale, W·scale, C) array: uint8 by default, or whatever ``convert`` makes
    of each (1, C, h, w) output tensor (an (h, w, C) numpy array). With ``sink``, nothing is
    assembled: ``sink(y, rows)`` gets each finished band of output rows, top to bottom (one
    row of tiles at a time: a 100-MP result is never whole in memory), and None is returned.
    """
    import numpy as np
    import torch

    _, channels, height, width = image.shape
    state = {"fired": 0, "base": 0.0, "span": 1.0}  # _block_hooks adds "per_tile"
    hooks = _block_hooks(model, progress, state)
    try:
        if tile >= max(height, width):
            if progress is not None:
                progress.check()
            with torch.inference_mode():
                out = convert(model(_as_input(image)))
            if progress is not None:
                progress.update(1.0)
            if sink is None:
                return out
            sink(0, out)
            return None
        pad = int(math.ceil(pad / align) * align)
        boxes = plan(height, width, tile, align)
        out = band = None
        state["span"] = 1.0 / len(boxes)
        for index, (y0, y1, x0, x1) in enumerate(boxes):
            if index == 1 and state["fired"]:
                state["per_tile"] = state["fired"]  # measured on the first tile
            state["fired"], state["base"] = 0, index / len(boxes)
            if progress is not None:
                progress.check()
                progress.say(f"Tile {index + 1} of {len(boxes)}")
            ry0, rx0 = max(0, y0 - pad), max(0, x0 - pad)
            ry1, rx1 = min(height, y1 + pad), min(width, x1 + pad)
            with torch.inference_mode():
                result = model(_as_input(image[:, :, ry0:ry1, rx0:rx1]))
                core = result[:, :, (y0 - ry0) * scale:(y1 - ry0) * scale,
                              (x0 - rx0) * scale:(x1 - rx0) * scale]
                pixels = convert(core)
            del result, core
            if sink is None:
                if out is None:
                    out = np.empty((height * scale, width * scale, channels), pixels.dtype)
                out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = pixels
            else:
                if band is None:
                    band = np.empty(((y1 - y0) * scale, width * scale, channels), pixels.dtype)
                band[:, x0 * scale:x1 * scale] = pixels
                if x1 == width:  # the last tile of this row of tiles: the band is done
                    sink(y0 * scale, band)
                    band = None
            if progress is not None:
                progress.update((index + 1) / len(boxes))
        return out
    finally:
        for hook in hooks:
            hook.remove()
