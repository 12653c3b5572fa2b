"""Items told apart (the real window): upscales named by picture, model and sizes; list
labels with seed and time; "—" for seeds that mean nothing; the Gallery shows upscales;
"From project…" offers thumbnails."""

from __future__ import annotations

import pytest
from PIL import Image

from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
from creative_studio.ui.widgets import item_label

pytestmark = pytest.mark.gui


def _png(color) -> bytes:
    import io

    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, "PNG")
    return out.getvalue()


def test_two_upscales_of_one_picture_with_two_models_read_differently(qtbot, make_window,
                                                                       tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    Image.new("RGB", (24, 16), (30, 120, 200)).save(tmp_path / "photo.png")
    panel.open_files([tmp_path / "photo.png"])
    titles = []
    for ref in ("embedded:animevideov3-x2", "embedded:animevideov3-x3"):
        panel.model.setCurrentIndex(panel.model.findData(ref))
        (job,) = panel.upscale()
        qtbot.waitUntil(lambda job=job: job.state.finished, timeout=60_000)
        assert job.state is JobState.DONE, job.error
        titles.append(window.store.item(job.item_id).title)
    assert titles[0] != titles[1]
    assert titles[0].startswith("photo ×2 · ") and "(24×16 → 48×32)" in titles[0]
    assert "animevideov3" in titles[0].lower() and titles[1].startswith("photo ×3 · ")
    window.history.refresh()
    seeds = {window.history.tree.topLevelItem(i).text(2)
             for i in range(window.history.tree.topLevelItemCount())}
    assert seeds == {"—"}  # the imported picture and its upscales have no seed


def test_labels_and_the_gallery(make_window):
    window = make_window()
    store = window.store
    model = ModelIdentity("emoji", "embedded:emoji")
    same = [store.add_item(Request("image", "generate", "a green tree", seed=seed),
                           Result([Asset("image", "image/png", _png("green"))], model, "cpu",
                                  title="a green tree")) for seed in (1, 2)]
    up = store.add_item(Request("upscale", "upscale", parents=[same[0]]),
                        Result([Asset("image", "image/png", _png("red"))],
                               ModelIdentity("DAT", "embedded:dat"), "cpu",
                               title="tree ×4 · DAT (16×16 → 64×64)"))
    first, second = (item_label(store.item(i)) for i in same)
    assert first != second and "seed 1" in first and "seed 2" in second
    assert "seed" not in item_label(store.item(up))
    image = window.panels["image"]
    image.refresh_gallery()
    shown = {image.gallery.item(i).data(256) for i in range(image.gallery.count())}
    assert shown == {*same, up}  # the upscaled picture is in the gallery too
    upscale = window.panels["upscale"]
    upscale.choose_project_image()  # headless: the newest non-upscale image is taken
    assert upscale.sources.count() == 1


def test_an_image_exports_at_x8_with_sharp_pixels_and_its_recipe(make_window, tmp_path):
    from plugins.image.recipes import recipe_from_png

    window = make_window()
    store = window.store
    item_id = store.add_item(Request("image", "generate", "a red dot", seed=5),
                             Result([Asset("image", "image/png", _png("red"))],
                                    ModelIdentity("emoji", "embedded:emoji"), "cpu",
                                    title="a red dot"))
    panel = window.panels["image"]
    panel.export_scale.setCurrentIndex(panel.export_scale.findData(8))
    assert panel.export(store.item(item_id), tmp_path / "dot.png",
                        scale=panel.export_scale.currentData())
    exported = Image.open(tmp_path / "dot.png")
    assert exported.size == (128, 128) and len(exported.getcolors()) == 1  # no blur
    recipe = recipe_from_png((tmp_path / "dot.png").read_bytes())
    assert recipe["prompt"] == "a red dot" and recipe["seed"] == 5
    assert panel.work_state()["export_scale"] == 8
