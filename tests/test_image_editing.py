"""Editing the user's pictures: img2img, inpaint and outpaint (plugins/image/editing.py and
the generator's edit path) on the embedded model, a tiny embedded-style pipeline and a tiny
Stable Diffusion the tests build; the CLI with --mask; hostile inputs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Asset, JobState, Request
from creative_studio.core.progress import Progress
from plugins.image import editing
from tests.conftest import prepared
from tests.helpers import finished_item
from tests.test_image import make, tiny_emoji, tiny_sd  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def picture(width=64, height=48):
    image = Image.new("RGB", (width, height), (200, 40, 40))
    ImageDraw.Draw(image).ellipse((10, 10, 40, 40), fill=(250, 220, 0))
    # a little texture: a flat picture would hide a shifted or resampled paste-back
    noise = np.random.default_rng(1).integers(0, 30, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(np.asarray(image) - noise)


def mask_of(width=64, height=48, box=(20, 10, 50, 40)):
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def edit(generator, task, source, mask=None, seed=5, prompt="sun", **params):
    """Run one edit as the runner would: parents are item ids, inputs their assets."""
    parents = ["source"] + (["mask"] if mask is not None else [])
    request = prepared(Request("image", task, prompt=prompt, seed=seed,
                               params={"steps": 4, **params}, parents=parents))
    inputs = {"source": [Asset("image", "image/png", png(source), "source.png")]}
    if mask is not None:
        inputs["mask"] = [Asset("image", "image/png", png(mask), "mask.png")]
    result = generator.generate(request, Progress(), inputs)
    return result, np.asarray(Image.open(io.BytesIO(result.assets[0].data)).convert("RGB"))


# -- the pixels around the model -------------------------------------------------------------
def test_feather_stays_inside_the_mask_and_paste_back_keeps_the_rest_exactly():
    mask = np.asarray(mask_of())
    for feather in (0, 1, 8, 40):
        weight = editing.feathered(mask, feather)
        assert not weight[mask == 0].any()
        assert weight.max() == 255 or feather == 40  # deep inside: the drawing alone
    weight = editing.feathered(mask, 8)
    assert weight[25, 35] == 255 and 0 < weight[25, 21] < 255  # a ramp at the edge
    source = np.asarray(picture())
    drawn = np.full_like(source, 7)
    out = editing.paste_back(source, drawn, weight)
    assert np.array_equal(out[weight == 0], source[weight == 0])
    assert np.array_equal(out[weight == 255], drawn[weight == 255])


def test_outpaint_canvas_and_boxes():
    source = np.asarray(picture())
    canvas, mask = editing.extended(source, 16, 8, 0, 24)
    assert canvas.shape == (48 + 32, 64 + 16, 3)
    assert np.array_equal(canvas[8:56, 16:], source) and not mask[8:56, 16:].any()
    assert mask[:8].all() and mask[:, :16].all() and mask[56:].all()
    assert np.array_equal(canvas[0, 20], source[0, 4])  # edge pixels carried outwards
    with pytest.raises(BadInput, match="at least one side"):
        editing.extended(source, 0, 0, 0, 0)
    box = editing.mask_box(np.asarray(mask_of()), native=32)
    assert (box.left, box.top) == (4, 0) and (box.right, box.bottom) == (64, 48)
    assert box.work[0] % 8 == 0 and box.work[1] % 8 == 0
    small = np.zeros((2000, 3000), np.uint8)
    small[1000:1010, 1500:1510] = 255
    box = editing.mask_box(small, native=512)  # a small change in a big photo
    assert box.size == (42, 42) and box.work == (512, 512)
    assert editing.mask_box(small, 512, (64, 64)).work == (64, 64)  # A1111's "only masked"
    assert editing.mask_box(small, 512, (128, 0)).work == (128, 128)
    assert editing.picture_box(3000, 2000, 512).work == (1256, 840)
    assert editing.picture_box(64, 48, 32).work == (64, 48)
    assert editing.picture_box(64, 48, 32, (0, 96)).work == (128, 96)


def test_masks_in_the_forms_painters_save_them():
    size = (64, 48)
    grey = mask_of()
    assert editing.load_mask(png(grey), size).sum() == np.asarray(grey).sum()
    layer = Image.new("RGBA", size, (0, 0, 0, 0))  # strokes on a transparent layer
    ImageDraw.Draw(layer).rectangle((20, 10, 50, 40), fill=(255, 0, 0, 255))
    assert np.array_equal(editing.load_mask(png(layer), size), np.asarray(grey))
    with pytest.raises(BadInput, match="must have the picture's size"):
        editing.load_mask(png(Image.new("L", (10, 10), 255)), size)
    with pytest.raises(BadInput, match="empty"):
        editing.load_mask(png(Image.new("L", size, 0)), size)
    with pytest.raises(BadInput, match="not an image"):
        editing.load_mask(b"GIF89a junk", size)


def test_a_64_megapixel_source_is_refused_before_decoding():
    huge = Image.new("1", (8192, 8192))  # 64 MP, a few kB as a 1-bit PNG
    with pytest.raises(BadInput, match="up to 16 MP: scale it down"):
        editing.load_source(png(huge))
    with pytest.raises(BadInput, match="too small"):
        editing.load_source(png(Image.new("RGB", (4, 4))))


# -- on models ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emoji_generator(tiny_emoji):  # noqa: F811
    return make(str(tiny_emoji))


@pytest.fixture(scope="module")
def sd_generator(tiny_sd):  # noqa: F811
    return make(str(tiny_sd))


@pytest.mark.model
@pytest.mark.parametrize("which", ["emoji_generator", "sd_generator"])
def test_inpaint_keeps_every_unmasked_pixel(which, request):
    generator = request.getfixturevalue(which)
    source, mask = picture(), mask_of()
    result, out = edit(generator, "inpaint", source, mask, strength=1.0)
    kept = np.asarray(mask) == 0
    assert out.shape == np.asarray(source).shape
    assert np.array_equal(out[kept], np.asarray(source)[kept])  # max difference 0
    assert np.abs(out[~kept].astype(int) - np.asarray(source)[~kept]).mean() > 5
    meta = result.metadata
    assert meta["task"] == "inpaint" and meta["feather"] == 8 and meta["box"] == [4, 0, 64, 48]
    text = Image.open(io.BytesIO(result.assets[0].data)).text
    assert "Denoising strength: 1" in text["parameters"] and "Mask blur: 8" in text["parameters"]
    assert json.loads(text["creative-studio"])["parents"] == ["source", "mask"]
    assert result.title.startswith("inpaint: ")


@pytest.mark.model
@pytest.mark.parametrize("which", ["emoji_generator", "sd_generator"])
def test_img2img_strength_and_seed(which, request):
    generator = request.getfixturevalue(which)
    source = picture(32, 24)  # within twice the tiny models' 16 px: drawn at its own size
    _, same = edit(generator, "img2img", source, strength=0.0)
    assert np.array_equal(same, np.asarray(source))  # strength 0: the picture itself
    _, first = edit(generator, "img2img", source, strength=0.5, seed=3)
    _, again = edit(generator, "img2img", source, strength=0.5, seed=3)
    _, other = edit(generator, "img2img", source, strength=0.5, seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.shape == (24, 32, 3)
    result, sized = edit(generator, "img2img", source, strength=0.5, width=64)
    assert sized.shape == (48, 64, 3) and result.metadata["work_size"] == [64, 48]
    result, _ = edit(generator, "img2img", picture(), strength=0.5)  # above: scaled down
    assert result.metadata["work_size"] == [40, 24]
    with pytest.raises(BadInput, match="leaves no step"):
        edit(generator, "img2img", source, strength=0.1)  # 4 steps × 0.1


@pytest.mark.model
def test_low_strength_stays_closer_to_the_source(emoji_generator):
    source = np.asarray(picture(32, 24)).astype(int)
    _, light = edit(emoji_generator, "img2img", picture(32, 24), strength=0.25, steps=8)
    _, heavy = edit(emoji_generator, "img2img", picture(32, 24), strength=1.0, steps=8)
    assert np.abs(light - source).mean() < np.abs(heavy - source).mean()


@pytest.mark.model
def test_outpaint_extends_and_keeps_the_picture(emoji_generator):
    source = np.asarray(picture())
    result, out = edit(emoji_generator, "outpaint", picture(), left=16, bottom=8)
    assert out.shape == (56, 80, 3)
    assert np.array_equal(out[:48, 16:], source)
    assert result.metadata["strength"] == 1.0  # always drawn anew
    assert np.abs(out[:48, :8].astype(int) - source[:, :1]).mean() > 5  # not the edge smeared


@pytest.mark.model
def test_edit_inputs_are_checked(emoji_generator):
    with pytest.raises(BadInput, match="must have the picture's size"):
        edit(emoji_generator, "inpaint", picture(), mask_of(32, 32, (0, 0, 10, 10)))
    with pytest.raises(BadInput, match="needs a picture and a mask"):
        prepared(Request("image", "inpaint", prompt="x", parents=["only-the-picture"]))
    with pytest.raises(BadInput, match="Choose one"):
        prepared(Request("image", "img2img", prompt="x"))
    request = prepared(Request("image", "img2img", prompt="x", parents=["a"]))
    with pytest.raises(BadInput, match="no picture"):
        emoji_generator.generate(request, Progress(), {"a": [Asset("text", "text/plain",
                                                                   b"hi", "a.txt")]})


@pytest.mark.model
def test_embedded_model_inpaints_through_the_runner_with_lineage(studio, tmp_path):
    """The real embedded model, as the panel and the CLI queue it: the source and the mask
    are project items, the result's parents; Re-run of the stored request repeats it."""
    from creative_studio.io.imports import import_bytes

    runner, store = studio
    source_id = import_bytes(store, "image", "apple.png", png(picture(32, 32)), "image",
                             "image/png", {})
    mask_id = import_bytes(store, "image", "mask.png", png(mask_of(32, 32, (8, 8, 23, 23))),
                           "image", "image/png", {})
    request = Request("image", "inpaint", prompt="red apple", seed=11, params={"steps": 6},
                      parents=[source_id, mask_id])
    job = runner.submit(request, store=store)
    runner.wait(job, timeout=300)
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert item.parents == [source_id, mask_id] and item.request.task == "inpaint"
    again = runner.submit(Request.from_dict(item.request.to_dict()), store=store)
    runner.wait(again, timeout=300)
    assert again.result.assets[0].data == job.result.assets[0].data
    out = np.asarray(Image.open(io.BytesIO(job.result.assets[0].data)).convert("RGB"))
    kept = np.asarray(mask_of(32, 32, (8, 8, 23, 23))) == 0
    assert np.array_equal(out[kept], np.asarray(picture(32, 32))[kept])


@pytest.mark.model
def test_inpaint_from_the_command_line(tmp_path):
    picture().save(tmp_path / "photo.png")
    mask_of().save(tmp_path / "mask.png")
    project = tmp_path / "p.csproj"

    def cli(*args):
        return subprocess.run([sys.executable, "main.py", "generate", "image", *args,
                               "--project", str(project)], capture_output=True, text=True,
                              cwd=ROOT, timeout=600)

    done = cli(str(tmp_path / "photo.png"), "--task", "inpaint", "--mask",
               str(tmp_path / "mask.png"), "--prompt", "sun", "--steps", "4", "--seed", "2",
               "--out", str(tmp_path / "out.png"))
    assert done.returncode == 0, done.stderr
    out = Image.open(tmp_path / "out.png")
    assert "Denoising strength: 0.75" in out.text["parameters"]
    kept = np.asarray(mask_of()) == 0
    assert np.array_equal(np.asarray(out.convert("RGB"))[kept], np.asarray(picture())[kept])
    refused = cli(str(tmp_path / "photo.png"), "--task", "inpaint", "--prompt", "sun")
    assert refused.returncode != 0 and "needs --mask MASK.png" in refused.stderr
    refused = cli(str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"))
    assert refused.returncode != 0 and "reads no mask" in refused.stderr  # img2img
    Image.new("L", (8, 8), 255).save(tmp_path / "small.png")
    refused = cli(str(tmp_path / "photo.png"), "--task", "inpaint", "--mask",
                  str(tmp_path / "small.png"))
    assert refused.returncode != 0 and "must have the picture's size" in refused.stderr


# -- the panel -----------------------------------------------------------------------------
@pytest.mark.gui
@pytest.mark.model
def test_inpaint_through_the_window(qtbot, make_window, tmp_path):
    """A newcomer's edit with the embedded model: drop a photo, paint on it, Inpaint; the
    picture and the mask are the result's parents; Use all brings the edit back."""
    from PySide6.QtCore import QPointF, Qt

    window = make_window()
    panel = window.panels["image"]
    path = tmp_path / "photo.png"
    picture(32, 32).save(path)
    assert panel.open_source(path)
    assert panel.task_id() == "img2img" and panel.canvas.has_picture()
    assert panel.generate_button.text() == "Change"
    panel.task.setCurrentIndex(panel.task.findData("inpaint"))
    assert panel.canvas.painting and not panel.brush_button.isHidden()
    assert panel.edit() == [] and "Paint where" in panel.message.text()
    panel.brush_size.setValue(8)
    panel.canvas.paint_at(QPointF(10, 10), QPointF(20, 20))
    assert not panel.canvas.mask_empty()
    panel.canvas.paint_at(QPointF(2, 28), erase=False)  # a slip of the brush…
    panel.canvas.clear_mask()
    panel.canvas.undo()  # …the clear taken back, then the slip (Ctrl+Z on the canvas)
    panel.canvas.setFocus()
    qtbot.keyClick(panel.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not panel.canvas.mask_empty() and panel.canvas.can_undo()
    mask = np.asarray(Image.open(io.BytesIO(panel.canvas.mask_png())))
    assert mask.shape == (32, 32) and mask[15, 15] == 255 and mask[0, 31] == 0
    assert mask[28, 2] == 0  # the slip is gone
    panel.prompt.setPlainText("red apple")
    panel.steps.setValue(6)
    panel.seed_field.restore(3)
    (job,) = panel.generate()
    item = finished_item(qtbot, window, panel, job, timeout=120_000)
    source_id, mask_id = item.parents
    assert window.store.item(mask_id).kind == "mask"
    out = np.asarray(Image.open(io.BytesIO(job.result.assets[0].data)).convert("RGB"))
    assert np.array_equal(out[mask == 0], np.asarray(picture(32, 32))[mask == 0])
    # the mask is not a picture of the gallery; the edit is
    assert panel.gallery.count() == 2  # the dropped photo and the edit
    # Use all on another task brings back the edit, its picture and its mask
    panel.task.setCurrentIndex(0)
    panel.canvas.clear_mask()
    panel.recall(item, "all")
    assert panel.task_id() == "inpaint" and panel.source_id == source_id
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(panel.canvas.mask_png()))), mask)
    # outpaint: the picture on a grown canvas
    panel.task.setCurrentIndex(panel.task.findData("outpaint"))
    panel.param_widget("right").setValue(16)
    assert panel.canvas.grow == (0, 0, 16, 0) and not panel.canvas.painting
    # Send to from another panel's item (the History's Send to calls accept_input)
    panel.task.setCurrentIndex(0)
    panel.accept_input(item)
    assert panel.source_id == item.id and panel.task_id() == "img2img"
    # a file that is no picture: said, nothing kept
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    assert panel.open_source(junk) is None and panel.source_id == item.id


# -- refine --------------------------------------------------------------------------------------
def test_tiles_cover_the_picture_evenly_and_blend_without_a_seam():
    assert editing.tile_spans(512, 512, 64) == [(0, 512)]
    spans = editing.tile_spans(1024, 512, 64)
    assert spans[0][0] == 0 and spans[-1][1] == 1024 and len(spans) == 3
    assert all((end - start) % 8 == 0 for start, end in spans)
    assert all(a[1] - b[0] >= 64 for a, b in zip(spans, spans[1:], strict=False))
    for length, tile in ((1000, 512), (2056, 768), (600, 512), (130, 64)):
        spans = editing.tile_spans(length, tile, max(32, tile // 8))
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(end - start <= max(tile, length // 8 * 8) for start, end in spans)
    # ramps: the weights of the tiles over any px add up to more than 0, and to 1 where
    # two tiles meet
    spans = editing.tile_spans(1024, 512, 64)
    total = np.zeros(1024)
    for index, (start, end) in enumerate(spans):
        total[start:end] += editing.ramp(spans, index, 1024)
    assert total.min() > 0.99 and total.max() < 1.01
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (300, 520, 3), dtype=np.uint8)
    same = editing.tiled(pixels, 128, 32, lambda tile, i, n: tile)
    assert np.array_equal(same, pixels)  # drawing nothing new changes nothing
    flat = np.full((256, 512, 3), 100, np.uint8)
    shifted = editing.tiled(flat, 128, 32, lambda tile, i, n: tile + (i % 2) * 40)
    steps = np.abs(np.diff(shifted[..., 0].astype(int), axis=1))
    assert steps.max() <= 4  # tiles of different brightness fade into each other


@pytest.mark.model
def test_refine_enlarges_and_redraws_in_tiles(emoji_generator):
    source = picture(40, 24)
    result, out = edit(emoji_generator, "refine", source, scale=2.0, detail=0.5, tile=32)
    assert out.shape == (48, 80, 3)
    meta = result.metadata
    assert meta["task"] == "refine" and meta["tiles"] == [2, 1] and meta["tile"] == [56, 48]
    enlarged = np.asarray(source.resize((80, 48), Image.Resampling.LANCZOS)).astype(int)
    assert 1 < np.abs(out.astype(int) - enlarged).mean() < 60  # redrawn, not replaced
    _, again = edit(emoji_generator, "refine", source, scale=2.0, detail=0.5, tile=32)
    assert np.array_equal(out, again)
    with pytest.raises(BadInput, match="refine stops at"):
        edit(emoji_generator, "refine", picture(3000, 3000), scale=4.0)


@pytest.mark.gui
def test_an_upscale_goes_to_the_image_panel_for_refining(qtbot, make_window, tmp_path):
    window = make_window()
    upscale, image = window.panels["upscale"], window.panels["image"]
    path = tmp_path / "photo.png"
    picture(32, 32).save(path)
    (source,) = upscale.open_files([path])
    upscale.send_result_to_image()
    assert "Upscale a picture first, then edit the result" in upscale.message.text()
    upscale.results[source] = source  # as if its upscale were this picture
    upscale.send_result_to_image()
    assert window.tabs.currentWidget() is image
    assert image.source_id == source and image.canvas.has_picture()
    image.task.setCurrentIndex(image.task.findData("refine"))
    assert image.generate_button.text() == "Refine"
    assert not image.param_widget("scale").isHidden()
    assert image.param_widget("strength").isHidden()
