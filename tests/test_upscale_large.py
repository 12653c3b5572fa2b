"""Large pictures (issue 37, item 5): results written band by band (io/png_stream.py),
resampled on the way, shown reduced, exported without a decode or with a plain message where
the format cannot hold them."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from creative_studio.core.errors import BadInput
from creative_studio.io import images
from creative_studio.io.png_stream import BandResizer, PngWriter


def _png_of(array, bands, **kw) -> bytes:
    buffer = io.BytesIO()
    writer = PngWriter(buffer, array.shape[1], array.shape[0], array.shape[2], **kw)
    for y in range(0, array.shape[0], bands):
        writer.write(array[y:y + bands])
    writer.close()
    return buffer.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.sampled_from([3, 4]), st.integers(1, 300),
       st.integers(0, 2**32 - 1))
def test_png_written_in_bands_reads_back_exactly(width, height, channels, bands, seed):
    array = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    if seed % 2:  # smooth pictures exercise the filter's predictions, noise its wrap-around
        array = np.cumsum(array, axis=1, dtype=np.uint8)
    data = _png_of(array, bands, text={"creative-studio": "upscale é"})
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.mode == ("RGB" if channels == 3 else "RGBA")
    assert np.array_equal(np.asarray(image), array)
    assert images.png_text(data) == {"creative-studio": "upscale é"}


def test_png_writer_carries_profile_and_exif_and_refuses_wrong_rows():
    icc = Image.new("RGB", (1, 1)).info.get("icc_profile") or b"\0" * 128
    exif = Image.Exif()
    exif[0x0131] = "Creative Studio"
    array = np.zeros((4, 5, 3), np.uint8)
    image = Image.open(io.BytesIO(_png_of(array, 4, icc=icc, exif=exif.tobytes())))
    assert image.info["icc_profile"] == icc and image.getexif()[0x0131] == "Creative Studio"
    writer = PngWriter(io.BytesIO(), 5, 4)
    with pytest.raises(ValueError, match="rows of"):
        writer.write(np.zeros((1, 6, 3), np.uint8))
    writer.write(array[:3])
    with pytest.raises(ValueError, match="3 of 4 rows"):
        writer.close()
    with pytest.raises(ValueError, match="more rows"):
        writer.write(array)


@pytest.mark.parametrize("source, size", [
    ((64, 80), (32, 40)), ((64, 80), (200, 250)), ((50, 400), (50, 123)),
    ((90, 90), (91, 91)), ((100, 300), (400, 1200)), ((120, 30), (17, 5)),
])
@pytest.mark.parametrize("bands", [1, 16, 1000])
def test_band_resizer_matches_resizing_the_whole_picture(source, size, bands):
    array = np.random.default_rng(1).integers(0, 256, (source[1], source[0], 3), np.uint8)
    whole = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))
    out = np.full_like(whole, 7)
    written = []

    def sink(y, rows):
        assert y == sum(written)  # top to bottom, no gap, no overlap
        written.append(rows.shape[0])
        out[y:y + rows.shape[0]] = rows

    resizer = BandResizer(source, size, sink)
    for y in range(0, source[1], bands):
        resizer.write(array[y:y + bands])
        assert resizer.kept.shape[0] <= bands + 2 * resizer.support * \
            max(1.0, resizer.ratio) + resizer.ratio * 2 + 8  # only what is still needed
    assert sum(written) == size[1]
    assert np.abs(out.astype(int) - whole).max() <= 1


def test_export_of_a_png_copies_its_pixels_and_adds_the_recipe():
    array = np.random.default_rng(2).integers(0, 256, (30, 20, 3), np.uint8)
    stored = _png_of(array, 7, text={"creative-studio": "upscale", "parameters": "a1111"})
    out = images.convert_image(stored, ".png", '{"seed": 3}')
    assert images.png_text(out) == {"parameters": "a1111", "creative-studio": '{"seed": 3}'}
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), array)
    damaged = bytearray(stored)
    damaged[60] ^= 0xFF  # inside a chunk: its CRC no longer matches
    with pytest.raises(BadInput, match="damaged PNG"):
        images.convert_image(bytes(damaged), ".png", "{}")
    with pytest.raises(BadInput, match="damaged PNG"):
        images.convert_image(stored[:-12], ".png", "{}")  # no IEND


@pytest.mark.parametrize("suffix, side", [(".jpg", 65_500), (".webp", 16_383)])
def test_formats_that_cannot_hold_the_picture_say_so(suffix, side):
    wide = io.BytesIO()
    Image.new("RGB", (side + 1, 1), "red").save(wide, "PNG")
    with pytest.raises(BadInput, match=f"holds pictures up to {side:,} px a side.*as PNG or "
                                       "TIFF"):
        images.convert_image(wide.getvalue(), suffix, "{}")
    fits = io.BytesIO()
    Image.new("RGB", (side, 1), "red").save(fits, "PNG")
    assert Image.open(io.BytesIO(images.convert_image(fits.getvalue(), suffix))).width == side


def test_pictures_the_studio_writes_above_the_input_limit_open_for_export():
    tall = io.BytesIO()
    Image.new("L", (1, images.MAX_PIXELS + 1)).save(tall, "PNG")  # 64 MP + 1, tiny file
    with pytest.raises(BadInput, match="larger than the 64 MP"):
        images.decode_image(tall.getvalue())  # what a user imports stays bounded
    tiff = images.convert_image(tall.getvalue(), ".tif", "{}")
    assert Image.open(io.BytesIO(tiff)).size == (1, images.MAX_PIXELS + 1)


def test_a_large_picture_is_shown_reduced_with_its_real_size(qapp, monkeypatch):
    from creative_studio.ui import widgets

    monkeypatch.setattr(widgets, "DISPLAY_PIXELS", 1000)
    buffer = io.BytesIO()
    Image.new("RGB", (100, 50), "navy").save(buffer, "PNG")
    shown = widgets._display_image(buffer.getvalue())
    assert shown.width() * shown.height() <= 1000 and shown.width() == -(-100 // 3)  # ceil
    assert shown.text("size") == "100×50"


def test_upscale_result_is_the_same_written_in_bands_and_resampled(studio):
    """The generator writes the network's output band by band and resamples it on the way:
    a tiled, resized, transparent job gives the picture a whole-picture job gives."""
    from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
    from tests.conftest import require_spandrel

    require_spandrel()
    runner, store = studio
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (70, 90, 4), np.uint8), "RGBA")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    source = store.add_item(Request("upscale", "import"),
                            Result([Asset("image", "image/png", buffer.getvalue(), "a.png")],
                                   ModelIdentity("file", "a.png"), "none"))
    outputs = []
    for tile in (32, 4096):
        job = runner.submit(Request("upscale", "upscale", parents=[source],
                                    model="embedded:animevideov3-x4",
                                    params={"tile": tile, "size": "long:250",
                                            "precision": "fp32", "engine": "torch"}),
                            store=store)
        runner.wait(job)
        assert job.state is JobState.DONE, job.error
        data = store.asset_bytes(store.item(job.item_id).assets[0].id)
        outputs.append(np.asarray(Image.open(io.BytesIO(data)), dtype=int))
    assert outputs[0].shape == (194, 250, 4)  # 90×70 → long side 250, alpha kept
    expected_alpha = np.asarray(picture.getchannel("A").resize((250, 194),
                                                               Image.Resampling.BICUBIC))
    assert np.array_equal(outputs[0][..., 3], expected_alpha)
    # tiles only change float rounding in the network; the bands add nothing
    assert np.abs(outputs[0] - outputs[1]).max() <= 2


def test_png_chunks_are_well_formed():
    data = _png_of(np.zeros((300, 2000, 3), np.uint8) + 9, 100)
    offset, kinds = 8, []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == \
            struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0]
        kinds.append(kind)
        offset += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
