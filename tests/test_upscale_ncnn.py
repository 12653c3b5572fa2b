"""The ncnn engine (plugins/upscale/ncnn_engine.py): the embedded .param/.bin pairs run as
they are, agreeing with their PyTorch conversion, tiled like it, chosen by measurement."""

from __future__ import annotations

import io

import numpy as np
import pytest

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import Asset, Request
from creative_studio.core.progress import Progress
from plugins.upscale import ncnn_engine

pytestmark = pytest.mark.skipif(not ncnn_engine.available(), reason="ncnn is not installed")


def embedded(model_id: str):
    from plugins.upscale.generator import UpscaleGenerator
    from tests.conftest import source_of

    generator = UpscaleGenerator()
    generator.load(source_of("upscale", f"embedded:{model_id}"), "cpu", Progress())
    return generator


def picture(size: int = 48) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:size, 0:size]
    value = 120 + 60 * np.sin(x / 4)[..., None] * np.cos(y / 6)[..., None] \
        + rng.normal(0, 4, (size, size, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(value, 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def upscaled(generator, **params) -> tuple[np.ndarray, dict]:
    from PIL import Image

    request = Request("upscale", "upscale", parents=["p"], params={
        "size": "model", "tile": 0, "precision": "fp32", "engine": "auto", "vulkan": 0,
        **params})
    result = generator.generate(request, Progress(), {"p": [Asset("image", "image/png",
                                                                  picture(), "p.png")]})
    return np.asarray(Image.open(io.BytesIO(result.assets[0].data)), np.float64), \
        result.metadata


def test_the_graphs_blobs_are_read_and_foreign_files_refused(tmp_path):
    generator = embedded("animevideov3-x4")
    param, _ = generator.upscaler.ncnn
    assert ncnn_engine._blobs(param) == ("data", "output")
    bad = tmp_path / "bad.param"
    bad.write_text("not ncnn\n")
    with pytest.raises(ModelError, match="not a text ncnn"):
        ncnn_engine._blobs(bad)
    bad.write_text("7767517\n1 1\nConvolution c 1 1 a b\n")
    with pytest.raises(ModelError, match="no Input"):
        ncnn_engine._blobs(bad)


@pytest.mark.parametrize("model_id", ["animevideov3-x4", "animevideov3-x2"])
def test_ncnn_and_pytorch_write_the_same_picture(model_id):
    generator = embedded(model_id)
    ncnn, meta = upscaled(generator, engine="ncnn", vulkan=-1)
    torch_out, torch_meta = upscaled(generator, engine="torch")
    assert meta["engine"] == "ncnn" and meta["ncnn_device"] == "cpu"
    assert meta["precision"] == "float32"  # Exact: ncnn stores float32 too
    assert torch_meta["engine"] == "pytorch" and ncnn.shape == torch_out.shape
    psnr = 10 * np.log10(255 ** 2 / np.mean((ncnn - torch_out) ** 2))
    assert psnr > 45, psnr
    tiled, _ = upscaled(generator, engine="ncnn", vulkan=-1, tile=32)  # tiles, padded
    assert 10 * np.log10(255 ** 2 / max(1e-9, np.mean((tiled - ncnn) ** 2))) > 40


@pytest.mark.skipif(not ncnn_engine.available() or not ncnn_engine.gpus(),
                    reason="no Vulkan device (tools/setup.sh installs Mesa's lavapipe)")
def test_a_vulkan_device_writes_the_same_picture_as_the_cpu():
    """Mesa's lavapipe (Vulkan on the CPU) where no GPU is: the Vulkan path runs for real."""
    generator = embedded("animevideov3-x4")
    on_cpu, _ = upscaled(generator, engine="ncnn", vulkan=-1)
    on_vulkan, meta = upscaled(generator, engine="ncnn", vulkan=0)
    assert meta["ncnn_device"] == f"vulkan:0 ({ncnn_engine.gpus()[0]})"
    assert 10 * np.log10(255 ** 2 / max(1e-9, np.mean((on_cpu - on_vulkan) ** 2))) > 40


def test_fastest_measured_is_measured_once_and_said(monkeypatch):
    generator = embedded("animevideov3-x4")
    _, meta = upscaled(generator)
    hardware = ncnn_engine.gpus() and not ncnn_engine.software(0)
    measured = {"ncnn", "pytorch"} | ({"ncnn-vulkan"} if hardware else set())
    assert set(meta["engine_seconds"]) == measured  # lavapipe (a CPU) is not measured
    assert meta["engine"] == min(meta["engine_seconds"], key=meta["engine_seconds"].get)
    monkeypatch.setattr(ncnn_engine, "_timed", lambda *a: pytest.fail("measured again"))
    _, again = upscaled(generator)
    assert again["engine"] == meta["engine"] and again["engine_seconds"] == \
        meta["engine_seconds"]


def test_the_recipe_says_ncnn_stores_bfloat16_when_fast():
    _, meta = upscaled(embedded("animevideov3-x4"), engine="ncnn", vulkan=-1,
                       precision="auto")
    assert meta["engine"] == "ncnn" and meta["precision"] == "bfloat16"


def test_ncnn_is_refused_for_a_model_that_has_no_ncnn_files():
    generator = embedded("dat-light-x2")
    with pytest.raises(BadInput, match="runs models that come as .param/.bin"):
        upscaled(generator, engine="ncnn")
    _, meta = upscaled(generator)  # Fastest measured: PyTorch, the only one
    assert meta["engine"] == "pytorch" and "engine_seconds" not in meta


def test_no_vulkan_gpu_means_the_cpu_and_says_so():
    generator = embedded("animevideov3-x4")
    _, meta = upscaled(generator, engine="ncnn", vulkan=5)
    expected = "cpu" if len(ncnn_engine.gpus()) <= 5 else meta["ncnn_device"]
    assert meta["ncnn_device"] == expected
