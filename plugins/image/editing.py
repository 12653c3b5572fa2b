"""Editing a picture the user has: the geometry and the pixels around the model (no Qt, no
torch). img2img, inpaint and outpaint all come down to one *edit*: a source picture, a mask of
what may change (all of it for img2img), and a box of the picture the model works on.

- **The working box.** An inpaint works on the mask's bounding box with some context around it
  (A1111's "only masked"), scaled so the model draws at about its own size; a small change in a
  big photo costs as much as one picture at the model's size, and the rest of the photo is
  never touched. img2img works on the whole picture (or the size asked for).
- **Paste-back.** The model's drawing is scaled back and blended into the source through the
  mask, feathered *inwards*: outside the mask the weight is exactly 0, so every unmasked pixel
  is the source's, bit for bit (as Krita AI Diffusion does). The result keeps the source's
  size.
- **Outpaint** is an inpaint of a canvas extended on any side, its new area filled with the
  edge's pixels (what the model starts from below strength 1) and masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from creative_studio.core.errors import BadInput
from creative_studio.io.images import decode_image, to_rgb

MAX_EDIT_PIXELS = 16 * 1024 * 1024  # a source above 16 MP: scale it down first
MAX_EXTEND = 2048  # px an outpaint adds on one side
MAX_WORK_SIDE = 2048  # the model never draws more than this on a side (as generate)
CONTEXT = 0.25  # an inpaint box's context: this share of the mask's size on each side...
MIN_CONTEXT = 16  # ...and at least this many px


def _size(image) -> str:
    return f"{image.width}×{image.height}"


def load_source(data: bytes, name: str = "The picture"):
    """The source picture as RGB; BadInput for a damaged file or one above 16 MP."""
    try:  # refused before a pixel is decoded
        image = decode_image(data, name, limit=MAX_EDIT_PIXELS)
    except BadInput as exc:
        if "larger than" not in str(exc) and "too large" not in str(exc):
            raise
        raise BadInput(f"{exc} Editing takes pictures up to {MAX_EDIT_PIXELS // 2**20} MP: "
                       "scale it down first (the Upscale panel's Size, or another program), "
                       "or crop it.") from exc
    if min(image.size) < 8:
        raise BadInput(f"{name} is {_size(image)}: too small to edit (8 px at least).")
    return to_rgb(image)


def load_mask(data: bytes, size: tuple[int, int], name: str = "The mask"):
    """The mask as an 8-bit array, 255 where the picture may change: white (or, in a picture
    with transparency, what is painted) is changed, black (or transparent) is kept. BadInput
    when its size is not the picture's or nothing is masked."""
    import numpy as np

    image = decode_image(data, name, limit=MAX_EDIT_PIXELS)
    if image.size != tuple(size):
        raise BadInput(f"{name} is {_size(image)} but the picture is {size[0]}×{size[1]}: a "
                       "mask must have the picture's size (paint it on the picture in the "
                       "panel, or export it at that size).")
    if "transparency" in image.info:
        image = image.convert("RGBA")
    bands = image.getbands()
    if "A" in bands and image.getchannel("A").getextrema()[0] < 255:
        values = np.asarray(image.getchannel("A"))  # strokes painted on a transparent layer
    else:
        values = np.asarray(image.convert("L"))
    mask = np.where(values >= 128, 255, 0).astype(np.uint8)
    if not mask.any():
        raise BadInput(f"{name} is empty: paint (white) where the picture should change.")
    return mask


def feathered(mask, feather: int):
    """The paste-back weight (uint8) of a 0/255 mask: 255 deep inside, falling to 0 at the
    mask's edge over about ``feather`` px, and exactly 0 everywhere outside the mask."""
    import numpy as np
    from PIL import Image, ImageFilter

    if feather <= 0:
        return mask.copy()
    # a blur is 128 on the edge; stretching 128…255 to 0…255 puts the ramp inside the mask
    blurred = np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(feather / 2)),
                         dtype=np.int32)
    inward = np.clip(blurred * 2 - 255, 0, 255).astype(np.uint8)
    return np.where(mask > 0, inward, 0).astype(np.uint8)


def paste_back(source, drawn, weight):
    """``source`` (uint8 H×W×3) with ``drawn`` blended in through ``weight`` (uint8 H×W):
    where the weight is 0 the source's bytes are kept as they are."""
    import numpy as np

    w = weight.astype(np.uint32)[..., None]
    mixed = (source.astype(np.uint32) * (255 - w) + drawn.astype(np.uint32) * w + 127) // 255
    return np.where(w > 0, mixed, source).astype(np.uint8)


def extended(source, left: int, top: int, right: int, bottom: int):
    """(canvas, mask) of an outpaint: the source on a canvas grown by the given px, its new
    area filled with the nearest edge pixels and masked 255."""
    import numpy as np

    sides = (left, top, right, bottom)
    if min(sides) < 0 or max(sides) > MAX_EXTEND:
        raise BadInput(f"Outpaint adds 0 to {MAX_EXTEND} px on a side.")
    if not any(sides):
        raise BadInput("Outpaint needs at least one side to extend (Left, Top, Right or "
                       "Bottom above 0).")
    pixels = np.asarray(source)
    canvas = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge")
    if canvas.shape[0] * canvas.shape[1] > MAX_EDIT_PIXELS:
        raise BadInput(f"The extended picture would be {canvas.shape[1]}×{canvas.shape[0]}: "
                       f"editing stops at {MAX_EDIT_PIXELS // 2**20} MP.")
    mask = np.full(canvas.shape[:2], 255, np.uint8)
    mask[top:top + pixels.shape[0], left:left + pixels.shape[1]] = 0
    return canvas, mask


@dataclass(frozen=True)
class Box:
    """A region of the picture (left, top, right, bottom) and the size the model draws it at
    (multiples of 8)."""

    left: int
    top: int
    right: int
    bottom: int
    work: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.right - self.left, self.bottom - self.top


def _eights(value: float) -> int:
    """The nearest multiple of 8 (8 at least): a side the models draw."""
    return max(8, round(value / 8) * 8)


def work_size(width: int, height: int, native: int, area: float | None = None
              ) -> tuple[int, int]:
    """The size (multiples of 8) the model draws a ``width``×``height`` region at: scaled to
    ``area`` px (the model's own size squared by default), never above MAX_WORK_SIDE."""
    area = area or native * native
    scale = math.sqrt(area / (width * height))
    scale = min(scale, MAX_WORK_SIDE / max(width, height))
    return _eights(width * scale), _eights(height * scale)


def picture_box(width: int, height: int, native: int, asked: tuple[int, int] = (0, 0)) -> Box:
    """The whole picture as the working box of an img2img: the size asked for, else the
    picture's own (to multiples of 8) while it is no more than twice the model's size on a
    side in area, else scaled down to that."""
    if asked[0] and asked[1]:
        work = asked
    elif asked[0] or asked[1]:  # one side given: the other keeps the picture's shape
        w = asked[0] or _eights(asked[1] * width / height)
        h = asked[1] or _eights(asked[0] * height / width)
        work = (w, h)
    elif width * height <= (2 * native) ** 2 and max(width, height) <= MAX_WORK_SIDE:
        work = (max(8, width // 8 * 8), max(8, height // 8 * 8))
    else:
        work = work_size(width, height, native, (2 * native) ** 2)
    return Box(0, 0, width, height, work)


def mask_box(mask, native: int, asked: tuple[int, int] = (0, 0)) -> Box:
    """The working box of an inpaint: the mask's bounding box with context around it,
    clipped to the picture, drawn at about the model's own size — or at about the area
    ``asked`` (A1111's width × height of "only masked"), the box's shape kept."""
    import numpy as np

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    pad = max(MIN_CONTEXT, round(CONTEXT * max(right - left, bottom - top)))
    height, width = mask.shape
    left, top = max(0, left - pad), max(0, top - pad)
    right, bottom = min(width, right + pad), min(height, bottom + pad)
    area = asked[0] * asked[1] if asked[0] and asked[1] else \
        (asked[0] or asked[1]) ** 2 or None
    return Box(left, top, right, bottom, work_size(right - left, bottom - top, native, area))


def crop(pixels, box: Box):
    return pixels[box.top:box.bottom, box.left:box.right]


def resized(pixels, size: tuple[int, int], mask: bool = False):
    """An array (uint8 H×W×3, or H×W) at ``size`` (w, h): Lanczos for pictures, bilinear
    then a threshold at half for masks (a mask stays 0/255)."""
    import numpy as np
    from PIL import Image

    if (pixels.shape[1], pixels.shape[0]) == tuple(size):
        return pixels
    image = Image.fromarray(pixels)
    if mask:
        scaled = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
        return np.where(scaled >= 128, 255, 0).astype(np.uint8)
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


# -- refine: upscale, then img2img in overlapping tiles ------------------------------------------
MAX_REFINE_PIXELS = 36 * 1024 * 1024  # a refined picture above 36 MP: refine a crop


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of tiles covering ``length`` px: as few as fit with at least ``overlap``
    px shared by neighbours, evened out (each a multiple of 8 wide, the last one flush with
    the end); one span when the tile covers it all."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count / 8) * 8
    size = min(size, length // 8 * 8)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    return [(start, start + size) for start in starts]


def ramp(spans: list[tuple[int, int]], index: int, length: int):
    """A tile's blending weight along one axis: rising over the px it shares with the
    tile before it, falling over those it shares with the one after, 1 elsewhere (and at
    the picture's edges)."""
    import numpy as np

    start, end = spans[index]
    weight = np.ones(end - start, np.float32)
    if index > 0:
        shared = spans[index - 1][1] - start
        if shared > 0:
            weight[:shared] = np.minimum(weight[:shared],
                                         (np.arange(shared) + 0.5) / shared)
    if index + 1 < len(spans):
        shared = end - spans[index + 1][0]
        if shared > 0:
            weight[-shared:] = np.minimum(weight[-shared:],
                                          (np.arange(shared)[::-1] + 0.5) / shared)
    return weight


def refine_size(width: int, height: int, scale: float) -> tuple[int, int]:
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    if size[0] * size[1] > MAX_REFINE_PIXELS:
        raise BadInput(f"Refined ×{scale:g}, the picture would be {size[0]}×{size[1]}: "
                       f"refine stops at {MAX_REFINE_PIXELS // 2**20} MP (lower the scale, or "
                       "refine a crop).")
    return size


def tiled(pixels, tile: int, overlap: int, draw):
    """``pixels`` (uint8 H×W×3) redrawn tile by tile by ``draw(tile_pixels, index, count)``
    (same size back) and blended where tiles overlap, so no seam shows."""
    import numpy as np

    height, width = pixels.shape[:2]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    total = np.zeros((height, width, 3), np.float32)
    weights = np.zeros((height, width, 1), np.float32)
    count = len(rows) * len(cols)
    for r, (top, bottom) in enumerate(rows):
        for c, (left, right) in enumerate(cols):
            drawn = draw(pixels[top:bottom, left:right], r * len(cols) + c, count)
            weight = (ramp(rows, r, height)[:, None] * ramp(cols, c, width)[None, :])[..., None]
            total[top:bottom, left:right] += drawn.astype(np.float32) * weight
            weights[top:bottom, left:right] += weight
    return np.clip(np.round(total / np.maximum(weights, 1e-6)), 0, 255).astype(np.uint8)
