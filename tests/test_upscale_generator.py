"""The Upscale generator (work in progress, issue 3) with the real embedded models."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import (
    Asset,
    JobEventKind,
    JobState,
    ModelIdentity,
    Request,
    Result,
)
from tests.conftest import require_spandrel, source_of

require_spandrel()
pytestmark = pytest.mark.model

FAST = "embedded:animevideov3-x4"  # the quickest embedded model


@pytest.fixture
def setup(studio):
    return studio


def add_image(store, data: bytes, name="in.png") -> str:
    return store.add_item(Request("upscale", "import", params={"filename": name}),
                          Result([Asset("image", "image/png", data, name)],
                                 ModelIdentity("file", name), "none"))


def png(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kw)
    return buffer.getvalue()


def run(runner, store, parent, **params):
    job = runner.submit(Request("upscale", "upscale", params=params, parents=[parent],
                                 model=params.pop("model", FAST)),
                        store=store)
    assert runner.wait(job, timeout=120), "the upscale did not finish"
    return job


def jpeg_with_exif_and_icc() -> bytes:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 1  # Orientation
    exif.get_ifd(0x8769)[0xA002] = 40  # PixelXDimension
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 160, 90)).save(buffer, "JPEG", exif=exif.tobytes(),
                                                    icc_profile=icc, quality=95)
    return buffer.getvalue()


def test_upscale_keeps_alpha_and_lineage(setup):
    runner, store = setup
    rgba = Image.new("RGBA", (40, 30), (200, 30, 30, 90))
    source = add_image(store, png(rgba))
    job = run(runner, store, source, tile=32)
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert item.parents == [source] and item.model["source"] == "embedded"
    out = Image.open(io.BytesIO(store.asset_bytes(item.assets[0].id)))
    assert out.size == (160, 120) and out.mode == "RGBA"
    assert abs(int(np.asarray(out)[60, 80, 3]) - 90) <= 2


def test_palette_transparency_becomes_alpha(setup):
    runner, store = setup
    picture = Image.new("P", (20, 20), 0)
    picture.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    picture.paste(1, (10, 0, 20, 20))
    job = run(runner, store, add_image(store, png(picture, transparency=0)))
    assert job.state is JobState.DONE, job.error
    out = Image.open(io.BytesIO(store.asset_bytes(store.item(job.item_id).assets[0].id)))
    alpha = np.asarray(out)[..., 3]
    assert out.mode == "RGBA" and alpha[:, :30].max() < 30 and alpha[:, 50:].min() > 225


def test_exif_and_colour_profile_are_kept(setup, tmp_path):
    from creative_studio.io.export import export_item

    runner, store = setup
    original = jpeg_with_exif_and_icc()
    job = run(runner, store, add_image(store, original, "photo.jpg"))
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert item.metadata["icc"] and item.metadata["exif"]
    out = Image.open(io.BytesIO(store.asset_bytes(item.assets[0].id)))
    assert out.info["icc_profile"] == Image.open(io.BytesIO(original)).info["icc_profile"]
    exif = out.getexif()
    assert exif[0x010F] == "TestCam" and exif.get_ifd(0x8769)[0xA002] == 160
    # exported files keep them too, with the recipe inside
    for suffix in (".png", ".jpg", ".webp", ".tif"):
        (path,) = export_item(store, item, tmp_path / f"out{suffix}", quality=80)
        exported = Image.open(path)
        assert exported.size == (160, 120) and exported.info.get("icc_profile")
        assert exported.getexif()[0x010F] == "TestCam"
        if suffix == ".png":
            assert item.id in exported.text["creative-studio"]
        elif suffix != ".tif":
            assert item.id.encode() in exported.getexif().get_ifd(0x8769)[0x9286]


def test_output_size_presets_resample_the_result(setup):
    runner, store = setup
    source = add_image(store, png(Image.new("RGB", (50, 40), "teal")))
    job = run(runner, store, source, size="x2")
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert (item.metadata["width"], item.metadata["height"]) == (100, 80)
    assert item.metadata["resampled"] and item.metadata["size"] == "x2"
    job = run(runner, store, source, size="long:120")
    assert job.state is JobState.DONE and store.item(job.item_id).metadata["height"] == 96
    with pytest.raises(BadInput, match="Unknown output size"):  # refused when submitted
        run(runner, store, source, size="enormous")


def test_reduced_precision_stays_close_to_float32(setup):
    runner, store = setup
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    source = add_image(store, png(noise))
    results = []
    for precision in ("fp32", "bf16"):
        job = run(runner, store, source, precision=precision)
        assert job.state is JobState.DONE, job.error
        item = store.item(job.item_id)
        results.append(np.asarray(Image.open(io.BytesIO(store.asset_bytes(item.assets[0].id))),
                                  dtype=np.float64))
    assert store.item(job.item_id).metadata["precision"] == "bfloat16"
    mse = np.mean((results[0] - results[1]) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 40  # dB between bf16 and float32 results


@pytest.mark.parametrize("make, message", [
    (lambda: b"this is not an image", "not an image"),
    (lambda: png(Image.new("RGB", (64, 64), "white"))[:120], "damaged or truncated"),
    (lambda: png(Image.new("RGB", (1, 1))), "too small"),
])
def test_bad_images_fail_with_clear_messages(setup, make, message):
    runner, store = setup
    job = run(runner, store, add_image(store, make()))
    assert job.state is JobState.FAILED and message in job.error


def test_decompression_bomb_is_refused(setup):
    runner, store = setup
    bomb = png(Image.new("1", (10000, 10000)))  # 100 MP of zeros: a few kB on disk
    job = run(runner, store, add_image(store, bomb))
    assert job.state is JobState.FAILED and "larger than" in job.error


def test_sixteen_bit_and_cmyk_inputs(setup):
    runner, store = setup
    grey16 = Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16))
    job = run(runner, store, add_image(store, png(grey16)))
    assert job.state is JobState.DONE, job.error
    out = np.asarray(Image.open(io.BytesIO(store.asset_bytes(store.item(job.item_id)
                                                             .assets[0].id))), dtype=float)
    # scaled from 16 bits, not clipped to white: a dark-to-light ramp like the input
    assert out[:16].mean() < 100 < out[-16:].mean() < 250
    buffer = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 200, 200, 0)).save(buffer, "JPEG")
    job = run(runner, store, add_image(store, buffer.getvalue(), "cmyk.jpg"))
    assert job.state is JobState.DONE, job.error


def test_cancel_between_tiles(setup):
    runner, store = setup
    source = add_image(store, png(Image.new("RGB", (256, 256), "gray")))
    # cancelled from its own first tile's progress: the same on a slow CPU and a fast GPU
    runner.listener = lambda event: runner.cancel(event.job.id) \
        if event.kind is JobEventKind.PROGRESS and event.fraction > 0 else None
    job = runner.submit(Request("upscale", "upscale", params={"tile": 32}, parents=[source],
                                model=FAST),
                        store=store)
    assert runner.wait(job, timeout=60), "the job did not stop"
    assert job.state is JobState.CANCELLED and job.item_id is None


def test_user_model_files_are_loaded_without_unpickling_code(tmp_path):
    from plugins.upscale import models

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"x": Image.new("RGB", (1, 1))}))  # arbitrary objects
    with pytest.raises(ModelError) as refused:
        models.load(source_of("upscale", str(evil)))
    assert str(refused.value) == (
        "evil.pth is not a usable model file (it holds objects other than weights, which "
        "would run code when loaded: refused; use a .safetensors file or a .pth of plain "
        "weights).")  # one line, not torch's paragraphs
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{" + b"x" * 5000)
    with pytest.raises(ModelError, match=r"^cut\.safetensors is not a usable model file "
                                         r"\([^\n]{1,201}\)\.$"):
        models.load(source_of("upscale", str(truncated)))
    with pytest.raises(ModelError, match="Model not found"):
        source_of("upscale", str(tmp_path / "missing.pth"))


@pytest.mark.gui
def test_upscale_through_the_window(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    folder = tmp_path / "batch"
    folder.mkdir()
    Image.new("RGB", (48, 32), (30, 120, 200)).save(folder / "a.png")
    Image.new("RGBA", (20, 24), (200, 20, 20, 128)).save(folder / "b.webp")
    (folder / "junk.png").write_bytes(b"nope")
    (folder / "notes.txt").write_text("not a picture")
    assert panel.open_file(tmp_path / "missing.png") is None
    sources = panel.open_files([folder])
    assert len(sources) == 2 and panel.sources.count() == 2
    assert "Skipped 1" in panel.message.text() and "junk.png" in panel.message.text()
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    jobs = panel.upscale()  # both are selected after a folder import: a batch
    assert len(jobs) == 2 and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: all(j.state.finished for j in jobs) and not panel.jobs,
                    timeout=60_000)
    assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE], [j.error for j in jobs]
    items = [window.store.item(j.item_id) for j in jobs]
    assert [i.parents for i in items] == [[s] for s in sources]
    assert (items[0].metadata["width"], items[1].metadata["width"]) == (96, 40)
    qtbot.waitUntil(lambda: panel.view.after is not None and panel.view.after.width() == 40,
                    timeout=10_000)  # decoded off the GUI thread
    assert not panel.stop_button.isEnabled()
    # zoom and pan move before and after together (one transform for both)
    view = panel.view
    view.resize(400, 300)
    fitted = view.target()
    view.zoom_at(2.0, QPointF(100, 100))
    zoomed = view.target()
    assert zoomed.width() == pytest.approx(fitted.width() * 2)
    # the image point under the cursor stays under it
    u = (100 - fitted.left()) / fitted.width()
    assert zoomed.left() + u * zoomed.width() == pytest.approx(100)
    view.fit()
    assert view.target() == fitted
    # export with the recipe inside; the history item is the upscale result
    assert panel.export(items[1], tmp_path / "b.jpg")
    assert Image.open(tmp_path / "b.jpg").size == (40, 48)
    # feed a project image (here: the first result) back in from the history, lineage kept
    window.history.select(items[0].id)
    assert window.history.send_button.isEnabled()
    actions = window.history.send_button.menu().actions()
    assert [a.text() for a in actions] == ["Image", "Upscale"]  # edit it, or upscale again
    actions[1].trigger()
    (again,) = panel.upscale()
    qtbot.waitUntil(lambda: again.state.finished and not panel.jobs, timeout=60_000)
    assert window.store.item(again.item_id).parents == [items[0].id]
    # the list of pictures and their results come back with the saved project
    saved = tmp_path / "pictures.csproj"
    assert window.save_as(saved)
    window.new_project()
    assert panel.sources.count() == 0
    assert window.open_project(saved)
    assert panel.sources.count() == 3 and set(panel.results) >= set(sources)
    # after an upscale, a text job must still work (transformers probes torchvision)
    text = window.panels["text"]
    text.instruction.setPlainText("Say hi.")
    text.max_tokens.setValue(3)
    text.generate_button.click()
    qtbot.waitUntil(lambda: window.store.items()[-1].plugin == "text"
                    and text.generate_button.isEnabled(), timeout=180_000)


@pytest.mark.gui
def test_stop_cancels_a_batch(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    for name in ("a", "b", "c"):
        Image.new("RGB", (256, 256), "gray").save(tmp_path / f"{name}.png")
    panel.open_files([tmp_path])
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x4"))
    panel.tile.setValue(32)
    jobs = panel.upscale()
    qtbot.waitUntil(lambda: jobs[0].progress.fraction > 0, timeout=60_000)
    panel.stop_button.click()
    # a job's state is set on the worker's thread; the panel hears of it a moment later
    qtbot.waitUntil(lambda: all(j.state.finished for j in jobs) and not panel.jobs,
                    timeout=60_000)
    assert jobs[0].state is JobState.CANCELLED
    assert all(j.state is JobState.CANCELLED for j in jobs[1:])
    assert window.store.count() == 3  # the imports are kept, no partial results
    assert panel.upscale_button.text() == "Upscale"
