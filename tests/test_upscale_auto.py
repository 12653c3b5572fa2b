"""Upscale's Automatic model: what a picture is (JPEG tables, block grid, noise, flat
drawings) and the model it gets, through the real generator and the panel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from plugins.upscale.picture import analyse, block_ratio, choose, jpeg_quality


def photo_like(size: int = 192, seed: int = 0) -> Image.Image:
    """Texture at several scales, like a photo (not flat, many colours, little noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    channels = []
    for c in range(3):
        value = 128 + 40 * np.sin(x / (7 + c) + y / 11) + 30 * np.cos(y / (5 + c) - x / 17)
        value += 25 * np.sin((x + y) / 2.5 + c) * np.cos((x - y) / 3.5)
        channels.append(value + rng.normal(0, 1.0, value.shape))
    return Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8))


def reopened(image: Image.Image, fmt: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def drawing() -> Image.Image:
    image = Image.new("RGB", (200, 160), (250, 246, 232))
    pen = ImageDraw.Draw(image)
    for k in range(8):
        pen.ellipse([10 + 20 * k, 20 + 10 * k, 60 + 20 * k, 60 + 10 * k],
                    fill=(40 * k % 255, 90, 200 - 20 * k), outline=(15, 15, 15), width=3)
    return image


@pytest.mark.parametrize("quality", [20, 35, 50, 75, 90])
def test_a_jpegs_quality_is_read_from_its_tables(quality):
    assert abs(jpeg_quality(reopened(photo_like(), "JPEG", quality=quality)) - quality) <= 2
    assert jpeg_quality(reopened(photo_like(), "PNG")) is None


def test_each_kind_of_picture_gets_its_model():
    clean = analyse(reopened(photo_like(), "PNG"))
    assert clean.kind == "clean", clean
    assert choose(clean, 4) == "dat-light-x4" and choose(clean, 2) == "dat-light-x2"
    assert choose(clean, 2.5) == "dat-light-x3" and choose(clean, 8) == "dat-light-x4"
    jpeg = analyse(reopened(photo_like(), "JPEG", quality=40))
    assert jpeg.kind == "compressed" and "quality ≈ 40" in jpeg.why
    assert choose(jpeg, 2) == "realesrgan-x4plus"
    # a JPEG saved again as PNG: no tables, but its block grid shows
    was_jpeg = analyse(reopened(reopened(photo_like(), "JPEG", quality=30).convert("RGB"),
                                "PNG"))
    assert was_jpeg.kind == "compressed" and was_jpeg.block_ratio > 1.12, was_jpeg
    noisy = np.asarray(photo_like(), np.float32) + np.random.default_rng(1).normal(
        0, 12, (192, 192, 3))
    found = analyse(reopened(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), "PNG"))
    assert found.kind == "noisy", found
    art = analyse(reopened(drawing(), "PNG"))
    assert art.kind == "line art" and choose(art, 4) == "animevideov3-x4", art


def test_the_block_grid_ratio_sees_a_grid_and_only_a_grid():
    flat = np.full((64, 64), 100.0, np.float32)
    assert block_ratio(flat) == 1.0
    grid = flat.copy()
    grid[:, 8::8] += 30  # steps across every 8th column
    assert block_ratio(grid) > 2
    assert block_ratio(grid, period=32) < block_ratio(grid)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "1"])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (9, 9)])
def test_odd_pictures_are_still_judged(mode, size):
    image = photo_like(16).resize(size)
    image = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
    found = analyse(reopened(image, "JPEG" if mode in ("L", "CMYK") else "PNG"))
    assert found.kind in ("compressed", "noisy", "line art", "clean")


@pytest.mark.model
@pytest.mark.parametrize(("fmt", "options", "model"), [
    ("JPEG", {"quality": 35}, "realesrgan-x4plus"),
    ("PNG", {}, "dat-light-x2")])
def test_automatic_chooses_in_the_generator_and_the_recipe_says_so(fmt, options, model):
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from plugins.upscale.generator import UpscaleGenerator
    from tests.conftest import source_of

    generator = UpscaleGenerator()
    generator.load(source_of("upscale"), "cpu", Progress())
    assert generator.auto == {} and generator.upscaler is None  # nothing loaded yet
    buffer = io.BytesIO()
    photo_like(24).save(buffer, fmt, **options)
    request = Request("upscale", "upscale", params={"size": "x2", "tile": 0,
                                                    "precision": "fp32"}, parents=["p"])
    result = generator.generate(request, Progress(), {"p": [Asset("image", "image/x",
                                                                  buffer.getvalue(), "a")]})
    chosen = result.metadata["automatic"]
    assert chosen["chose"] == model and result.model.ref == f"embedded:{model}"
    assert chosen["because"] and Image.open(io.BytesIO(result.assets[0].data)).size == (48, 48)
    again = generator.generate(request, Progress(), {"p": [Asset("image", "image/x",
                                                                 buffer.getvalue(), "a")]})
    assert again.assets[0].data == result.assets[0].data  # Re-run: same choice, same picture
    assert list(generator.auto) == [model]  # loaded once


@pytest.mark.gui
def test_the_panel_says_which_model_automatic_will_use(make_window, qtbot, tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    assert panel.model.currentData() == "embedded:auto"
    path = tmp_path / "holiday.jpg"
    photo_like(64).save(path, "JPEG", quality=30)
    panel.open_files([path])
    qtbot.waitUntil(lambda: "Automatic will use" in panel.message.text(), timeout=20_000)
    assert "Real-ESRGAN x4plus" in panel.message.text()
    assert "quality ≈ 30" in panel.message.text()
    # a model chosen by hand: what Automatic would do is no longer said; back to Automatic,
    # it is said again
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    assert "Automatic will use" not in panel.message.text()
    panel.model.setCurrentIndex(panel.model.findData("embedded:auto"))
    qtbot.waitUntil(lambda: "Automatic will use" in panel.message.text(), timeout=20_000)
    # chosen by hand while Automatic was still looking: its late answer is not shown
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    panel.model.setCurrentIndex(panel.model.findData("embedded:auto"))  # starts looking
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x4"))  # at once
    qtbot.wait(1500)
    assert "Automatic will use" not in panel.message.text()


@pytest.mark.gui
@pytest.mark.model
def test_several_models_in_one_go_are_compared_side_by_side(make_window, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from creative_studio.io.export import suggested_name

    window = make_window()
    panel = window.panels["upscale"]
    path = tmp_path / "tile.png"
    photo_like(16).save(path)
    source = panel.open_files([path])[0]
    panel.several_models_dialog()
    rows = {panel.several_list.item(i).data(Qt.ItemDataRole.UserRole):
            panel.several_list.item(i) for i in range(panel.several_list.count())}
    assert rows["embedded:auto"].checkState() == Qt.CheckState.Checked  # the panel's model
    rows["embedded:auto"].setCheckState(Qt.CheckState.Unchecked)
    for ref in ("embedded:animevideov3-x2", "embedded:animevideov3-x4"):
        rows[ref].setCheckState(Qt.CheckState.Checked)
    panel.several.accept()
    jobs = list(panel.jobs)
    assert len(jobs) == 2
    qtbot.waitUntil(lambda: not panel.jobs, timeout=60_000)
    items = sorted(panel.branches(source), key=lambda i: i.metadata["width"])
    assert [i.model["name"] for i in items] == ["Real-ESRGAN animevideov3 ×2 (fast)",
                                                "Real-ESRGAN animevideov3 ×4 (fast)"]
    assert len({i.request.params["group"] for i in items}) == 1  # one group of branches
    assert len({suggested_name(i) for i in items}) == 2  # distinct export names
    assert suggested_name(items[0]) == "tile_x2_animevideov3-x2.png"
    choices = [panel.right_choice.itemData(i) for i in range(panel.right_choice.count())]
    assert choices[0] == source and set(choices[1:]) == {items[0].id, items[1].id}
    assert panel.left_choice.currentData() == source
    # compare the two upscales with each other: ×2 on the left, ×4 on the right
    for choice, item in ((panel.left_choice, items[0]), (panel.right_choice, items[1])):
        choice.setCurrentIndex(choice.findData(item.id))
    panel.left_choice.activated.emit(1)
    qtbot.waitUntil(lambda: panel.view.before is not None
                    and panel.view.before.width() == 32, timeout=10_000)
    assert panel.view.labels == ("Real-ESRGAN animevideov3 ×2", "Real-ESRGAN animevideov3 ×4")
    assert panel.view.after.width() == 64


@pytest.mark.gui
@pytest.mark.parametrize("shade", [0, 255])
def test_the_views_labels_read_on_light_and_dark_pictures(qtbot, shade):
    from PySide6.QtGui import QColor, QImage

    from plugins.upscale.panel import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    picture = QImage(100, 100, QImage.Format.Format_RGB32)
    picture.fill(QColor(shade, shade, shade))
    view.set_images(picture, picture)
    view.zoom_at(4.0, view.rect().center().toPointF())
    image = view.grab().toImage()
    def region(top: int) -> list[int]:
        return [image.pixelColor(x, y).lightness() for x in range(8, 60)
                for y in range(top, top + 14)]

    for strip in (region(image.height() - 26), region(8)):  # the zoom, the left side's name
        assert min(strip) < 90 and max(strip) > 200  # white letters on a dark box
