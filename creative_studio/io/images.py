"""Reading and writing images safely, with messages a user understands."""

from __future__ import annotations

import io

from ..core.errors import BadInput

MAX_PIXELS = 64 * 1024 * 1024  # 64 MP in: anything larger is refused (decompression bombs)
# what the studio itself writes (an upscale result, band by band) and so must open again to
# show and export: 256 MP (16384², 1 GB as a Pillow image)
MAX_RESULT_PIXELS = 256 * 1024 * 1024
# the largest side each export format can hold (libjpeg: 65,500; WebP: 16,383)
FORMAT_SIDE = {"JPEG": 65_500, "WEBP": 16_383, "PNG": 2**31 - 1, "TIFF": 2**31 - 1}


def decode_image(data: bytes, name: str = "image", limit: int | None = None):
    """A loaded PIL image, or BadInput with a clear message. Pictures above ``limit`` pixels
    (MAX_PIXELS unless given) are refused before any is decoded."""
    from PIL import Image, UnidentifiedImageError

    limit = MAX_PIXELS if limit is None else limit
    if not data:
        raise BadInput(f"{name} is empty.")
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > limit:
            raise BadInput(f"{name} is {image.width}×{image.height}: larger than the "
                           f"{limit // 2**20} MP the studio accepts.")
        image.load()
    except Image.DecompressionBombError as exc:
        raise BadInput(f"{name} is too large to open safely ({exc}).") from exc
    except UnidentifiedImageError as exc:
        raise BadInput(f"{name} is not an image the studio can read.") from exc
    except BadInput:
        raise
    except Exception as exc:  # Pillow raises many kinds for damaged files
        raise BadInput(f"{name} is damaged or truncated ({type(exc).__name__}).") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return image


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 4 << 20  # all text chunks of one PNG together, after decompression
MAX_CHUNKS = 100_000


def png_text(data: bytes, name: str = "The file") -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG, read without decoding any pixel and
    bounded (4 MiB of text in all, compressed chunks inflated only that far); BadInput when
    it is not a PNG. A damaged chunk ends the reading; what came before is kept."""
    import zlib

    if not data.startswith(PNG_SIGNATURE):
        raise BadInput(f"{name} is not a PNG the studio can read.")
    found: dict[str, str] = {}
    budget = MAX_TEXT_BYTES
    for kind, body, _whole in png_chunks(data, MAX_CHUNKS):
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt") or b"\0" not in body:
            continue
        key_bytes, _, rest = body.partition(b"\0")
        key = key_bytes[:79].decode("latin-1")
        try:
            if kind == b"tEXt":
                raw, encoding = rest, "latin-1"
            elif kind == b"zTXt":
                raw, encoding = _inflate(rest[1:], budget), "latin-1"
            else:
                flag, rest = rest[:1], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _translated, _, rest = rest.partition(b"\0")
                raw = _inflate(rest, budget) if flag == b"\x01" else rest
                encoding = "utf-8"
        except zlib.error:
            continue
        if len(raw) > budget:
            break
        budget -= len(raw)
        found.setdefault(key, raw.decode(encoding, errors="replace"))
    return found


def png_chunks(data: bytes, limit: int | None = None):
    """(type, body, the whole chunk with its length and CRC) of each chunk of a PNG after
    its signature, in order, at most ``limit`` of them; ends at a chunk cut short (its CRC
    is not checked here)."""
    import struct

    offset = len(PNG_SIGNATURE)
    count = 0
    while offset + 8 <= len(data) and (limit is None or count < limit):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if len(body) < length:
            return
        yield kind, body, data[offset:offset + 12 + length]
        offset += 12 + length
        count += 1


def _inflate(data: bytes, limit: int) -> bytes:
    """zlib data inflated to at most ``limit`` + 1 bytes (a bomb stops there)."""
    import zlib

    return zlib.decompressobj().decompress(data, limit + 1)


def to_rgb(image):
    """An 8-bit RGB copy of any decoded image: 16-bit and float greys are scaled, not clipped
    (Pillow's own convert("RGB") clips "I;16" values above 255 to white)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        import numpy as np
        from PIL import Image

        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "I":
            top = 65535.0 if values.max() > 255 else 255.0
        else:
            top = 1.0 if values.max() <= 1.0 else float(values.max())
        grey = np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def colour_and_exif(image) -> tuple[bytes | None, bytes | None]:
    """The ICC profile and EXIF block of a decoded image, to carry over to what is made of it."""
    icc = image.info.get("icc_profile") or None
    exif = image.getexif()
    return icc, (exif.tobytes() if len(exif) else None)


def resized_exif(exif: bytes | None, width: int, height: int) -> bytes | None:
    """EXIF with its pixel dimensions updated (other tags kept as they were)."""
    if not exif:
        return None
    from PIL import Image

    data = Image.Exif()
    data.load(exif)
    sub = data.get_ifd(0x8769)  # Exif IFD: PixelXDimension/PixelYDimension
    if 0xA002 in sub or 0xA003 in sub:
        sub[0xA002], sub[0xA003] = width, height
    return data.tobytes()


def encode_png(image, text: dict[str, str] | None = None, icc: bytes | None = None,
               exif: bytes | None = None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    extra = {k: v for k, v in (("icc_profile", icc), ("exif", exif)) if v}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, **extra)
    return buffer.getvalue()


CARRIED_CHUNKS = ("parameters", "prompt", "workflow")  # kept by PNG exports
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
           ".tiff": "TIFF"}


def png_with_text(data: bytes, recipe: str = "") -> bytes:
    """A stored PNG as exported, without decoding its pixels: the chunks other tools read
    (A1111's "parameters", ComfyUI's "prompt" and "workflow") and every non-text chunk
    (pixels, ICC profile, EXIF…) are copied as they are, other text chunks dropped, and the
    recipe added as an iTXt chunk before the pixels. BadInput for a damaged PNG."""
    import struct
    import zlib

    from .png_stream import itxt

    out = [PNG_SIGNATURE]
    added, ended = not recipe, False
    for kind, body, whole in png_chunks(data):  # every chunk: a result may have thousands
        if len(whole) < 12 + len(body) or zlib.crc32(whole[4:-4]) & 0xFFFFFFFF != \
                struct.unpack(">I", whole[-4:])[0]:
            raise BadInput("The stored image is a damaged PNG.")
        if kind in (b"tEXt", b"zTXt", b"iTXt") and \
                body.partition(b"\0")[0].decode("latin-1") not in CARRIED_CHUNKS:
            continue
        if kind == b"IDAT" and not added:
            out.append(itxt("creative-studio", recipe))
            added = True
        out.append(whole)
        if kind == b"IEND":
            ended = True
            break
    if not ended or not added:
        raise BadInput("The stored image is a damaged PNG.")
    return b"".join(out)


def convert_image(data: bytes, suffix: str, recipe: str = "", quality: int = 92,
                  scale: int = 1) -> bytes:
    """Re-encode a stored image for export: PNG (recipe in an iTXt chunk), JPEG/WebP (quality,
    recipe in the EXIF UserComment) or TIFF, keeping the ICC profile and EXIF; ``scale``
    enlarges it that many times with sharp pixels (nearest neighbour: pixel art stays pixel
    art; the Upscale panel enlarges with models)."""
    from PIL import Image

    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        raise BadInput(f"Cannot export images as '{suffix}': choose .png, .jpg, .webp or .tif.")
    if fmt == "PNG" and scale <= 1 and data.startswith(PNG_SIGNATURE):
        return png_with_text(data, recipe)  # no decode: any size, every pixel as it was
    image = decode_image(data, "The stored image", MAX_RESULT_PIXELS)
    side = FORMAT_SIDE[fmt]
    if max(image.width, image.height) * max(1, scale) > side:
        raise BadInput(f"{fmt} holds pictures up to {side:,} px a side; this one is "
                       f"{image.width * max(1, scale):,}×{image.height * max(1, scale):,}: "
                       "export it as PNG or TIFF.")
    icc, exif_bytes = colour_and_exif(image)
    if scale > 1:
        if image.width * image.height * scale * scale > MAX_PIXELS:
            raise BadInput(f"×{scale} would make {image.width * scale}×{image.height * scale}: "
                           "too large to export.")
        image = image.resize((image.width * scale, image.height * scale),
                             Image.Resampling.NEAREST)  # (PNG text is read from ``data``)
    if fmt == "PNG":
        # what other tools read stays as it is: A1111's "parameters" text, ComfyUI's
        # "prompt" and "workflow" graphs (pictures made on a ComfyUI server open there
        # again); the studio's full JSON recipe goes beside them
        found = png_text(data) if data.startswith(PNG_SIGNATURE) else {}
        text = {k: found[k] for k in CARRIED_CHUNKS if k in found}
        if recipe:
            text["creative-studio"] = recipe
        return encode_png(image, text, icc, exif_bytes)
    exif = Image.Exif()
    if exif_bytes:
        exif.load(exif_bytes)
    if recipe:
        exif[0x0131] = "Creative Studio"  # Software
        # UserComment (Exif IFD), ASCII charset; JSON escapes anything beyond ASCII
        exif.get_ifd(0x8769)[0x9286] = b"ASCII\0\0\0" + recipe.encode("ascii", "replace")
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # JPEG has no alpha
    extra: dict = {"exif": exif.tobytes()}
    if icc:
        extra["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP"):
        extra["quality"] = max(1, min(100, int(quality)))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **extra)
    return buffer.getvalue()
