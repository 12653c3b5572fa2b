"""Single-file checkpoints (plugins/image/checkpoints.py): SD 1.5, SD 2.x and SDXL layouts
with tiny random weights, written by tests/checkpoints.py; their detection from the header,
their loading offline (weights identical to the models they were written from), drawing and
editing with them, and hostile files."""

from __future__ import annotations

import io
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from creative_studio.core.errors import ModelError
from creative_studio.core.progress import Progress
from plugins.image import checkpoints
from tests import checkpoints as build
from tests.helpers import finished_item
from tests.test_image import make, request
from tests.test_image_editing import edit, mask_of, picture

pytest.importorskip("diffusers")
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    parts = {"sd15": {}, "sdxl": {}}
    return {"root": root, "parts": parts,
            "sd15": build.tiny_sd15(root / "tiny-sd15.safetensors", parts=parts["sd15"]),
            "sdxl": build.tiny_sdxl(root / "tiny-sdxl.safetensors", parts=parts["sdxl"]),
            "sd2": build.tiny_sd2(root / "tiny-sd2-v.safetensors", v_prediction=True)}


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_the_weights_load_exactly_as_they_were_saved(files, kind):
    pipe = checkpoints.load(files[kind], "cpu")
    for name, module in files["parts"][kind].items():
        mine, theirs = getattr(pipe, name).state_dict(), module.state_dict()
        assert set(mine) == set(theirs), name
        assert all(np.array_equal(mine[k].numpy(), theirs[k].numpy()) for k in theirs), name


def test_families_and_configs_come_from_the_tensors(files):
    sd15, sdxl, sd2 = (checkpoints.inspect(files[k]) for k in ("sd15", "sdxl", "sd2"))
    assert (sd15.family, sdxl.family, sd2.family) == ("sd1", "sdxl", "sd2")
    assert sd15.title == "Stable Diffusion 1.x" and not sd15.inpainting
    unet = checkpoints.unet_config(sdxl)
    assert unet["block_out_channels"] == [64, 128]
    assert unet["transformer_layers_per_block"] == [1, 2]
    assert unet["down_block_types"] == ["DownBlock2D", "CrossAttnDownBlock2D"]
    assert unet["cross_attention_dim"] == 96 and unet["use_linear_projection"]
    assert unet["projection_class_embeddings_input_dim"] == 32 + 6 * 256
    assert checkpoints.unet_config(sd15)["attention_head_dim"] == 8
    assert checkpoints.prediction_of(sd2) == "v_prediction"
    assert checkpoints.prediction_of(sd15) == "epsilon"
    text = checkpoints.configs(sd2)["text_encoder/config.json"]
    assert text["num_hidden_layers"] == 2  # SD 2.x conditions on the penultimate layer
    assert checkpoints.configs(sdxl)["model_index.json"]["_class_name"] == \
        "StableDiffusionXLPipeline"


def test_an_sd2_v_model_loads_with_its_prediction(files):
    pipe = checkpoints.load(files["sd2"], "cpu")
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.unet.config.upcast_attention


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_drawing_and_inpainting_with_a_checkpoint_file(files, kind):
    generator = make(str(files[kind]))
    result = generator.generate(request(width=64, height=64), Progress(), {})
    image = Image.open(io.BytesIO(result.assets[0].data))
    assert image.size == (64, 64) and np.asarray(image).std() > 1
    stem = files[kind].stem
    assert f"Model: {stem}" in image.text["parameters"]
    assert f"Model hash: {generator.identity.sha256[:10]}" in image.text["parameters"]
    again = generator.generate(request(width=64, height=64), Progress(), {})
    assert again.assets[0].data == result.assets[0].data  # the same seed, the same picture
    source, mask = picture(), mask_of()
    _, out = edit(generator, "inpaint", source, mask, strength=1.0)
    kept = np.asarray(mask) == 0
    assert np.array_equal(out[kept], np.asarray(source)[kept])


def test_single_file_and_folder_draw_the_same_picture(files, tmp_path):
    folder = tmp_path / "as-folder"
    checkpoints.load(files["sd15"], "cpu").save_pretrained(folder)
    one = make(str(files["sd15"])).generate(request(width=64, height=64), Progress(), {})
    two = make(str(folder)).generate(request(width=64, height=64), Progress(), {})
    pixels = [np.asarray(Image.open(io.BytesIO(r.assets[0].data))) for r in (one, two)]
    assert np.array_equal(*pixels)


def test_a_ckpt_is_read_without_unpickling_code(files, tmp_path):
    import torch
    from safetensors.torch import load_file

    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": load_file(str(files["sd15"]))}, plain)
    assert checkpoints.inspect(plain).family == "sd1"

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))  # would run on an unpickling load

    hostile = tmp_path / "hostile.ckpt"
    with open(hostile, "wb") as handle:
        pickle.dump({"state_dict": Payload()}, handle)
    with pytest.raises(ModelError, match="cannot be read safely"):
        checkpoints.inspect(hostile)


def _safetensors(path, header: dict, body: bytes = b"") -> None:
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data + body)


def test_hostile_and_foreign_files_get_a_message(tmp_path):
    import torch
    from safetensors.torch import save_file

    cases = {
        "lora.safetensors": {"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 8)},
        "flux.safetensors": {"double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2)},
        "random.safetensors": {"some.tensor": torch.zeros(2)},
        "refiner.safetensors": {"conditioner.embedders.0.model.text_projection": torch.zeros(2),
                                "model.diffusion_model.input_blocks.0.0.weight":
                                    torch.zeros(1, 4, 3, 3)},
    }
    said = {}
    for name, tensors in cases.items():
        save_file(tensors, str(tmp_path / name))
        with pytest.raises(ModelError) as caught:
            checkpoints.inspect(tmp_path / name)
        said[name] = str(caught.value)
    assert "looks like a LoRA" in said["lora.safetensors"]
    assert "Flux" in said["flux.safetensors"]
    assert "not a checkpoint the studio knows" in said["random.safetensors"]
    assert "SDXL refiner" in said["refiner.safetensors"]
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 5) + b"{[[[ ")
    _safetensors(tmp_path / "shapeless.safetensors", {"a": {"dtype": "F32", "shape": "x"}})
    _safetensors(tmp_path / "deep.safetensors", {"a": [[[[[[[[1]]]]]]]]})
    for name, words in (("junk", "too short"), ("huge", "header claims"),
                        ("bad", "damaged header"), ("shapeless", "has no shape"),
                        ("deep", "has no shape")):
        with pytest.raises(ModelError, match=words):
            checkpoints.inspect(tmp_path / f"{name}.safetensors")


def test_a_damaged_checkpoint_is_refused_when_loaded(files, tmp_path):
    """A header that promises tensors the body does not hold (a download cut short)."""
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(files["sd15"].read_bytes()[:-4096])
    with pytest.raises(ModelError, match="could not be loaded"):
        make(str(cut))


# -- LoRAs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_files(files):
    root = files["root"]
    parts = files["parts"]
    return {"sd15": build.tiny_lora(root / "zq-style.safetensors", parts["sd15"]["unet"],
                                    parts["sd15"]["text_encoder"]),
            "sdxl": build.tiny_lora(root / "xl-style.safetensors", parts["sdxl"]["unet"],
                                    parts["sdxl"]["text_encoder_2"], xl_text=True)}


def _pixels(result):
    return np.asarray(Image.open(io.BytesIO(result.assets[0].data)))


def test_lora_weight_zero_is_the_picture_without_it_and_one_changes_it(files, lora_files):
    generator = make(str(files["sd15"]))
    lora = lora_files["sd15"]

    def run(**params):
        return generator.generate(request(width=64, height=64, **params), Progress(), {})

    without = run()
    with_one = run(loras=[f"{lora}:1"])
    with_zero = run(loras=[f"{lora}:0"])
    after = run()  # the LoRA unloaded again: the model's own layers
    assert np.array_equal(_pixels(without), _pixels(with_zero))
    assert np.array_equal(_pixels(without), _pixels(after))
    assert np.abs(_pixels(without).astype(int) - _pixels(with_one)).mean() > 1
    half = run(loras=[f"{lora}:0.5"])  # loaded adapter, new weight: between the two
    assert not np.array_equal(_pixels(half), _pixels(with_one))
    text = Image.open(io.BytesIO(with_one.assets[0].data)).text["parameters"]
    from plugins.image.loras import addnet_hash

    assert text.startswith("red apple <lora:zq-style:1>\n")
    assert f'Lora hashes: "zq-style: {addnet_hash(lora)[:12]}"' in text
    (entry,) = with_one.metadata["loras"]
    assert entry["triggers"] == ["zq style"] and entry["weight"] == 1.0
    assert entry["sha256"] == generator._described[next(iter(generator._described))].sha256
    assert "Lora hashes" not in Image.open(io.BytesIO(with_zero.assets[0].data)).text[
        "parameters"]


def test_a1111_prompt_tags_find_the_lora_by_name(files, lora_files, monkeypatch):
    from creative_studio.core.settings import Settings

    generator = make(str(files["sd15"]))
    listed = generator.generate(request(width=64, height=64,
                                        loras=[f"{lora_files['sd15']}:0.8"]), Progress(), {})
    monkeypatch.setattr(Settings, "load", classmethod(
        lambda cls: Settings(model_folders=[str(files["root"])])))
    tagged = generator.generate(request("red apple <lora:zq-style:0.8>", width=64, height=64),
                                Progress(), {})
    assert np.array_equal(_pixels(listed), _pixels(tagged))
    assert tagged.metadata["loras"][0]["name"] == "zq-style"
    with pytest.raises(Exception, match="No LoRA called “missing”"):
        generator.generate(request("red apple <lora:missing:1>", width=64, height=64),
                           Progress(), {})


def test_a_lora_for_another_architecture_is_refused(files, lora_files, tmp_path):
    generator = make(str(files["sd15"]))
    with pytest.raises(ModelError, match="was made for"):
        generator.generate(request(width=64, height=64, loras=[f"{lora_files['sdxl']}:1"]),
                           Progress(), {})
    # the model still draws as before afterwards
    assert generator.generate(request(width=64, height=64), Progress(), {}).assets
    not_lora = tmp_path / "not-a-lora.safetensors"
    not_lora.write_bytes(files["sd2"].read_bytes())
    with pytest.raises(ModelError, match="is not a LoRA"):
        generator.generate(request(width=64, height=64, loras=[f"{not_lora}:1"]), Progress(),
                           {})
    with pytest.raises(Exception, match="weight is between"):
        request(loras=[f"{lora_files['sd15']}:9"])


def test_loras_on_sdxl_and_on_the_embedded_model(files, lora_files):
    generator = make(str(files["sdxl"]))
    plain = generator.generate(request(width=64, height=64), Progress(), {})
    styled = generator.generate(request(width=64, height=64,
                                        loras=[f"{lora_files['sdxl']}:1"]), Progress(), {})
    assert not np.array_equal(_pixels(plain), _pixels(styled))
    embedded = make("embedded:emoji-unet")
    with pytest.raises(ModelError, match="work with Stable Diffusion models"):
        embedded.generate(request(loras=[f"{lora_files['sd15']}:1"]), Progress(), {})
    # weight 0 on a model without LoRA support: nothing to apply, nothing refused
    assert embedded.generate(request(loras=[f"{lora_files['sd15']}:0"]), Progress(), {}).assets


@pytest.mark.gui
def test_checkpoint_and_lora_stack_through_the_window(qtbot, make_window, files, lora_files,
                                                      tmp_path):

    window = make_window()
    panel = window.panels["image"]
    panel.add_model_ref(str(files["sd15"]), "File: tiny-sd15.safetensors")
    assert panel.add_lora(lora_files["sd15"])
    assert not panel.add_lora(files["sd2"])  # a checkpoint is not a LoRA: said
    assert "is not a LoRA" in panel.message.text()
    (row,) = panel.loras.rows
    row.weight.setValue(0.7)
    assert panel.loras.list_value() == [f"{lora_files['sd15']}:0.7"]
    panel.prompt.setPlainText("red apple")
    panel.loras.trigger_words.emit(", ".join(row.triggers))
    assert panel.prompt.toPlainText() == "red apple, zq style"
    panel.steps.setValue(3)
    panel.width_box.setValue(64)
    panel.height_box.setValue(64)
    item = finished_item(qtbot, window, panel, *panel.generate(), timeout=120_000)
    assert item.request.params["loras"] == [f"{lora_files['sd15']}:0.7"]
    assert item.metadata["loras"][0]["hash"] and item.model["sha256"]
    panel.loras.set_list_value([])
    panel.recall(item, "all")  # Use all: the stack comes back with its weights
    assert panel.loras.list_value() == [f"{lora_files['sd15']}:0.7"]


# -- models on this computer ---------------------------------------------------------------
def test_the_folders_of_other_apps_are_listed_by_header(files, lora_files, tmp_path):
    import shutil

    from creative_studio.core.provenance import weights_sha256
    from plugins.image import found

    home = tmp_path / "home"
    a1111 = home / "stable-diffusion-webui" / "models"
    (a1111 / "Stable-diffusion").mkdir(parents=True)
    (a1111 / "Lora" / "styles").mkdir(parents=True)
    comfy = home / "ComfyUI" / "models" / "checkpoints"
    comfy.mkdir(parents=True)
    shutil.copy(files["sd15"], a1111 / "Stable-diffusion" / "dream.safetensors")
    shutil.copy(files["sd15"], comfy / "dream copy.safetensors")  # the same file twice
    shutil.copy(files["sdxl"], comfy / "xl.safetensors")
    shutil.copy(lora_files["sd15"], a1111 / "Lora" / "styles" / "zq.safetensors")
    (comfy / "broken.safetensors").write_bytes(b"\xff" * 20)
    import torch
    from safetensors.torch import save_file

    save_file({"encoder.down_blocks.0.conv.weight": torch.zeros(1)},
              str(comfy / "a-vae.safetensors"))  # neither: left out
    (comfy / "loop").symlink_to(comfy)
    known = weights_sha256(comfy / "xl.safetensors")  # hashed before: shown
    models = found.scan(home=home)
    listed = {Path(m.path).name: m for m in models}
    # A1111's folder is looked in first: its copy is the entry, ComfyUI's a copy of it
    assert set(listed) == {"dream.safetensors", "xl.safetensors", "zq.safetensors",
                           "broken.safetensors"}
    dream = next(m for m in models if m.name.startswith("dream"))
    assert dream.kind == "checkpoint" and dream.family == "Stable Diffusion 1.x"
    assert len(dream.copies) == 1 and dream.sha256 == ""  # never hashed while listing
    assert listed["xl.safetensors"].family == "SDXL" and listed["xl.safetensors"].sha256 == known
    lora = listed["zq.safetensors"]
    assert (lora.kind, lora.triggers, lora.app) == ("lora", ("zq style",), "A1111")
    assert "not a safetensors file" in listed["broken.safetensors"].error
    assert [m.kind for m in models[:3]] == ["checkpoint", "checkpoint", "lora"]


@pytest.mark.gui
def test_the_image_panel_lists_and_uses_what_other_apps_keep(make_window, qtbot, files,
                                                             lora_files, tmp_path):
    import shutil

    from creative_studio.core.settings import Settings

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copy(files["sd15"], shelf / "dream.safetensors")
    shutil.copy(lora_files["sd15"], shelf / "zq.safetensors")
    window = make_window(settings=Settings(model_folders=[str(shelf)]))
    panel = window.panels["image"]
    qtbot.waitUntil(lambda: panel.model.findData(str(shelf / "dream.safetensors")) >= 0,
                    timeout=15_000)
    assert panel.model.currentData() == "embedded:emoji-unet"  # listed, not switched
    panel.found_models_dialog()
    dialog = panel.found_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=15_000)
    assert dialog.table.item(0, 1).text() == "Checkpoint"
    assert dialog.table.item(1, 2).text() == "32-wide text"  # the tiny model's width
    dialog.filter.setText("zq")  # a hundred LoRAs: the one wanted by a part of its name
    assert dialog.table.isRowHidden(0) and not dialog.table.isRowHidden(1)
    dialog.table.selectRow(1)
    dialog.use_button.click()
    assert panel.loras.list_value() == [f"{shelf / 'zq.safetensors'}:1"]
