"""The Upscale generator (work in progress, issue 3) with the real embedded models."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from creative_studio.compat.torchvision_shim import import_spandrel
from creative_studio.core.errors import ModelError
from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
from creative_studio.core.project import ProjectStore
from creative_studio.plugins import PluginRegistry
from creative_studio.workers.runner import JobRunner

try:
    import_spandrel()
except ImportError:
    pytest.skip("spandrel is not installed (tools/setup.sh installs it)",
                allow_module_level=True)
pytestmark = pytest.mark.model

MANIFEST = """schema_version = 1
id = "upscale"
name = "Upscale"
modality = "upscale"
generator = "plugins.upscale.generator:UpscaleGenerator"
panel = "creative_studio.ui.panel:PluginPanel"
[[models]]
id = "animevideov3-x4"
name = "fast"
default = true
"""


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "plugin.toml").write_text(MANIFEST)
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False))
    store = ProjectStore.create(tmp_path / "p.csproj")
    yield runner, store
    runner.shutdown()
    store.close()


def add_image(store, data: bytes, name="in.png") -> str:
    return store.add_item(Request("upscale", "import", params={"filename": name}),
                          Result([Asset("image", "image/png", data, name)],
                                 ModelIdentity("file", name), "none"))


def png(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kw)
    return buffer.getvalue()


def run(runner, store, parent, **params):
    job = runner.submit(Request("upscale", "upscale", params=params, parents=[parent]),
                        store=store)
    runner.wait(job, timeout=120)
    return job


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
    buffer = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 200, 200, 0)).save(buffer, "JPEG")
    job = run(runner, store, add_image(store, buffer.getvalue(), "cmyk.jpg"))
    assert job.state is JobState.DONE, job.error


def test_cancel_between_tiles(setup):
    runner, store = setup
    source = add_image(store, png(Image.new("RGB", (256, 256), "gray")))
    job = runner.submit(Request("upscale", "upscale", params={"tile": 32}, parents=[source]),
                        store=store)
    while job.progress.fraction == 0 and not job.state.finished:
        pass
    runner.cancel(job.id)
    runner.wait(job, timeout=60)
    assert job.state is JobState.CANCELLED and job.item_id is None


def test_user_model_files_are_loaded_without_unpickling_code(tmp_path):
    from plugins.upscale import models

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"x": Image.new("RGB", (1, 1))}))  # arbitrary objects
    with pytest.raises(ModelError, match="not a usable model file"):
        models.load(str(evil))
    with pytest.raises(ModelError, match="Model not found"):
        models.load(str(tmp_path / "missing.pth"))


@pytest.mark.gui
def test_upscale_through_the_window(qtbot, tmp_path):
    from creative_studio.core.settings import Settings
    from creative_studio.ui.main_window import MainWindow

    window = MainWindow(PluginRegistry.discover(), Settings())
    qtbot.addWidget(window)
    window.show()
    panel = window.panels["upscale"]
    picture = tmp_path / "cat.png"
    Image.new("RGB", (48, 32), (30, 120, 200)).save(picture)
    (tmp_path / "junk.png").write_bytes(b"nope")
    assert panel.open_file(tmp_path / "junk.png") is None
    assert "not an image" in panel.message.text()
    source = panel.open_file(picture)
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    job = panel.upscale()
    qtbot.waitUntil(lambda: job.state.finished and panel.upscale_button.isEnabled(),
                    timeout=60_000)
    assert job.state is JobState.DONE, job.error
    item = window.store.item(job.item_id)
    assert item.parents == [source] and item.metadata["width"] == 96
    assert panel.view.after is not None and panel.view.after.width() == 96
    # after an upscale, a text job must still work (transformers probes torchvision)
    text = window.panels["text"]
    text.instruction.setPlainText("Say hi.")
    text.max_tokens.setValue(3)
    text.generate_button.click()
    qtbot.waitUntil(lambda: window.store.count() == 3 and text.generate_button.isEnabled(),
                    timeout=180_000)
    assert window.store.items()[-1].plugin == "text"
    window.runner.shutdown()
