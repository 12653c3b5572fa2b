"""Reading and writing images safely, with messages a user understands."""

from __future__ import annotations

import io

from ..core.errors import BadInput

MAX_PIXELS = 64 * 1024 * 1024  # 64 MP in: anything larger is refused (decompression bombs)


def decode_image(data: bytes, name: str = "image"):
    """A loaded PIL image, or BadInput with a clear message."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadInput(f"{name} is empty.")
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise BadInput(f"{name} is {image.width}×{image.height}: larger than the "
                           f"{MAX_PIXELS // 2**20} MP the studio accepts.")
        image.load()
    except Image.DecompressionBombError as exc:
        raise BadInput(f"{name} is too large to open safely ({exc}).") from exc
    except UnidentifiedImageError as exc:
        raise BadInput(f"{name} is not an image the studio can read.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{name} is damaged or truncated ({exc}).") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return image


def encode_png(image, text: dict[str, str] | None = None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
