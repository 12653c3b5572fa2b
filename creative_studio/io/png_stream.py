"""Large pictures written band by band, never whole in memory (no Qt; numpy, Pillow).

A 100-megapixel upscale is 300 MB as an 8-bit RGB array, 400 MB as a Pillow image and as
much again while Pillow encodes it. ``PngWriter`` takes the rows as they come (a band of
tiles at a time), filters each row with PNG's Paeth predictor (vectorised across the row:
its three neighbours are raw bytes already known) and feeds zlib, so only the current band
and the compressed bytes are held. ``BandResizer`` resamples such a stream to another size
(Lanczos, as Pillow does for the whole picture) keeping only the source rows the filter
still needs. Pillow has no row-wise PNG encoder and pypng filters in pure Python (minutes
for 100 MP), hence this small one; files it writes are read back by Pillow in the tests.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from .images import PNG_SIGNATURE

IDAT_BYTES = 1 << 20  # compressed bytes per IDAT chunk
MAX_SIDE = 2**31 - 1  # the PNG format's limit per side


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + \
        struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def itxt(key: str, value: str) -> bytes:
    """An uncompressed iTXt chunk (UTF-8 text, as Pillow's ``add_itxt`` writes)."""
    return chunk(b"iTXt", key.encode("latin-1")[:79] + b"\0\0\0\0\0" + value.encode("utf-8"))


def paeth_filter(rows, previous):
    """PNG filter type 4 of ``rows`` (h, w, c uint8) given the row above the first one
    (``previous``, (w, c), zeros at the top of the picture); returns (h, w·c + 1) bytes,
    each row led by its filter type."""
    import numpy as np

    height, width, channels = rows.shape
    raw = rows.reshape(height, width * channels).astype(np.int16)
    above = np.empty_like(raw)
    above[0] = previous.reshape(-1)
    above[1:] = raw[:-1]
    left = np.zeros_like(raw)
    left[:, channels:] = raw[:, :-channels]
    upper_left = np.zeros_like(raw)
    upper_left[:, channels:] = above[:, :-channels]
    estimate = left + above - upper_left
    pa, pb, pc = np.abs(estimate - left), np.abs(estimate - above), \
        np.abs(estimate - upper_left)
    predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
    out = np.empty((height, width * channels + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = (raw - predicted).astype(np.uint8)  # modulo 256
    return out


class PngWriter:
    """An 8-bit RGB or RGBA PNG written to ``stream`` row band by row band.

    ``write(rows)`` takes (h, width, channels) uint8 arrays top to bottom; ``close()``
    checks that ``height`` rows came and ends the file. ``text`` goes into iTXt chunks,
    ``icc`` into iCCP, ``exif`` into eXIf, all before the pixels."""

    def __init__(self, stream: BinaryIO, width: int, height: int, channels: int = 3,
                 text: dict[str, str] | None = None, icc: bytes | None = None,
                 exif: bytes | None = None, level: int = 6) -> None:
        import numpy as np

        if channels not in (3, 4):
            raise ValueError("PngWriter writes RGB or RGBA")
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ValueError(f"a PNG cannot be {width}×{height}")
        self.stream, self.width, self.height, self.channels = stream, width, height, channels
        self.rows = 0
        self.previous = np.zeros((width, channels), np.uint8)
        self.zip = zlib.compressobj(level)
        self.pending = bytearray()
        stream.write(PNG_SIGNATURE)
        colour = 2 if channels == 3 else 6
        stream.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)))
        if icc:
            stream.write(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
        if exif:
            stream.write(chunk(b"eXIf", exif))
        for key, value in (text or {}).items():
            stream.write(itxt(key, value))

    def write(self, rows) -> None:
        if rows.ndim != 3 or rows.shape[1:] != (self.width, self.channels):
            raise ValueError(f"rows of {rows.shape[1:]} in a {self.width}-px "
                             f"{self.channels}-channel PNG")
        if self.rows + rows.shape[0] > self.height:
            raise ValueError("more rows than the PNG's height")
        for start in range(0, rows.shape[0], 256):  # the int16 work arrays stay small
            part = rows[start:start + 256]
            self.pending += self.zip.compress(paeth_filter(part, self.previous).tobytes())
            self.previous = part[-1].copy()
            self._flush(IDAT_BYTES)
        self.rows += rows.shape[0]

    def _flush(self, at_least: int) -> None:
        while len(self.pending) >= max(1, at_least):
            self.stream.write(chunk(b"IDAT", bytes(self.pending[:IDAT_BYTES])))
            del self.pending[:IDAT_BYTES]

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"{self.rows} of {self.height} rows were written")
        self.pending += self.zip.flush()
        self._flush(1)
        self.stream.write(chunk(b"IEND", b""))


class BandResizer:
    """Resample a picture that arrives in row bands to ``size`` with Lanczos, passing each
    finished band of output rows to ``sink`` (y, rows). Only the source rows that output
    rows still to come need are kept. The result equals Pillow's resize of the whole
    picture within one level (the same filter, rows first as Pillow does, then each band
    cut with ``box`` out of enough context rows; the box's float ends may round a
    coefficient differently)."""

    def __init__(self, source: tuple[int, int], size: tuple[int, int], sink) -> None:
        self.source, self.size, self.sink = source, size, sink
        self.ratio = source[1] / size[1]  # source rows per output row
        self.support = 3.0 * max(1.0, self.ratio) + 2  # Lanczos-3, widened when shrinking
        self.kept = None  # source rows [self.first, self.first + len(kept))
        self.first = 0
        self.done = 0  # output rows written

    def __call__(self, _y: int, rows) -> None:
        """The band-sink form (``sink(y, rows)``): bands come in order, ``y`` follows."""
        self.write(rows)

    def write(self, rows) -> None:
        import numpy as np
        from PIL import Image

        if rows.shape[1] != self.size[0]:  # the horizontal pass, as Pillow makes it first
            rows = np.asarray(Image.fromarray(rows).resize((self.size[0], rows.shape[0]),
                                                           Image.Resampling.LANCZOS))
        if self.kept is None:
            self.kept = rows
        else:
            self.kept = np.concatenate([self.kept, rows])
        have = self.first + self.kept.shape[0]
        last = have >= self.source[1]
        # output rows whose filter window ends within the rows here
        ready = self.size[1] if last else \
            max(self.done, min(self.size[1], int((have - self.support) / self.ratio - 0.5)))
        if ready > self.done:
            self._emit(ready)

    def _emit(self, ready: int) -> None:
        import numpy as np
        from PIL import Image

        top = (self.done * self.ratio) - self.first
        bottom = (ready * self.ratio) - self.first
        start = max(0, int(top - self.support))
        stop = min(self.kept.shape[0], int(bottom + self.support) + 1)
        # the context rows keep Pillow from clamping its window where the picture goes on;
        # at the picture's own top and bottom it clamps as it does on the whole picture
        band = Image.fromarray(self.kept[start:stop])
        out = band.resize((self.size[0], ready - self.done), Image.Resampling.LANCZOS,
                          box=(0, top - start, self.size[0], bottom - start))
        self.sink(self.done, np.asarray(out))
        self.done = ready
        drop = max(0, int(ready * self.ratio - self.support) - self.first)
        if drop:
            self.kept = self.kept[drop:]
            self.first += drop
