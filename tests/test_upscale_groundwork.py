"""Upscale groundwork (issue 3): the ncnn → torch converter and the torchvision shim."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from plugins.upscale.ncnn_convert import (
    FP16_TAG,
    ConversionError,
    convert,
    parse_param,
    rrdb_names,
)


def write_compact(tmp_path, rng):
    """A tiny SRVGG-like ncnn model: conv(3→4) PReLU conv(4→12) + final bicubic 0.5."""
    param = "\n".join([
        "7767517", "5 5",
        "Input in 0 1 data",
        "Convolution c0 1 1 data a 0=4 1=3 4=1 5=1 6=108",
        "PReLU p0 1 1 a b 0=4",
        "Convolution c1 1 1 b c 0=12 1=3 4=1 5=1 6=432",
        "Interp r 1 1 c output 0=3 1=5.000000e-01 2=5.000000e-01",
    ])
    w0 = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    b0 = rng.standard_normal(4).astype(np.float32)
    p0 = rng.standard_normal(4).astype(np.float32)
    w1 = rng.standard_normal((12, 4, 3, 3)).astype(np.float16)
    b1 = rng.standard_normal(12).astype(np.float32)
    blob = (struct.pack("<I", FP16_TAG) + w0.tobytes() + b0.tobytes() + p0.tobytes()
            + struct.pack("<I", FP16_TAG) + w1.tobytes() + b1.tobytes())
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(blob)
    return w0, b0, p0, w1, b1


def test_compact_conversion_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w0, b0, p0, w1, b1 = write_compact(tmp_path, rng)
    state, resize = convert(tmp_path / "m.param", tmp_path / "m.bin")
    assert resize == 0.5
    assert set(state) == {"body.0.weight", "body.0.bias", "body.1.weight", "body.2.weight",
                          "body.2.bias"}
    np.testing.assert_array_equal(state["body.0.weight"], w0.astype(np.float32))
    np.testing.assert_array_equal(state["body.1.weight"], p0)
    np.testing.assert_array_equal(state["body.2.weight"], w1.astype(np.float32))
    np.testing.assert_array_equal(state["body.2.bias"], b1)


def test_truncated_or_foreign_files_are_refused(tmp_path):
    write_compact(tmp_path, np.random.default_rng(1))
    blob = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "m.bin").write_bytes(blob[:-8])
    with pytest.raises(ConversionError, match="shorter"):
        convert(tmp_path / "m.param", tmp_path / "m.bin")
    (tmp_path / "m.bin").write_bytes(blob + b"\0" * 8)
    with pytest.raises(ConversionError, match="not used"):
        convert(tmp_path / "m.param", tmp_path / "m.bin")
    with pytest.raises(ConversionError, match="magic"):
        parse_param("hello\n")


def test_rrdb_names_follow_the_architecture():
    names = rrdb_names(23)
    assert len(names) == 351 and names[1] == "body.0.rdb1.conv1"
    assert names[-5:] == ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def test_torchvision_shim_provides_what_spandrel_imports():
    import torch

    from creative_studio.compat import torchvision_shim

    shimmed = torchvision_shim.install()
    if not shimmed:  # PyPI's torchvision does not load beside torch 2.13; a working one may
        pytest.skip("a working torchvision is installed: the stand-in is not used")
    try:
        import torchvision.transforms.functional as tvf

        assert tvf.InterpolationMode.BICUBIC.value == "bicubic"
        out = tvf.normalize(torch.full((3, 2, 2), 2.0), [0.5, 1.0, 0.0], [0.5, 0.5, 2.0])
        assert torch.allclose(out[:, 0, 0], torch.tensor([3.0, 2.0, 1.0]))
        with pytest.raises(NotImplementedError, match="torchvision"):
            tvf.rotate(None, 90)
    finally:
        torchvision_shim.uninstall()
    assert "torchvision" not in sys.modules


def _conv_sr(layers: int = 5, scale: int = 2):
    """A small real conv SR network (random weights): receptive radius = ``layers`` px."""
    import torch

    torch.manual_seed(0)
    body = []
    channels = 3
    for _ in range(layers - 1):
        body += [torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.PReLU(8)]
        channels = 8
    body += [torch.nn.Conv2d(channels, 3 * scale * scale, 3, padding=1),
             torch.nn.PixelShuffle(scale)]
    return torch.nn.Sequential(*body).eval()


def test_tiling_with_enough_context_matches_the_whole_image():
    import numpy as np
    import torch

    from creative_studio.core.errors import Cancelled
    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import plan, run_tiled

    model = _conv_sr(layers=5)
    image = torch.rand(1, 3, 45, 70)
    whole = run_tiled(model, image, 2, tile=10**6, pad=0)
    assert whole.shape == (90, 140, 3) and whole.dtype == np.uint8
    fractions = []
    progress = Progress(lambda f, eta, preview: fractions.append(f))
    exact = run_tiled(model, image, 2, tile=16, pad=5, progress=progress)
    assert np.abs(exact.astype(int) - whole).max() <= 1  # float noise may flip a rounding
    tiles = len(plan(45, 70, 16))
    assert tiles == 15 and fractions[-1] == 1.0
    ends = {round((i + 1) / tiles, 9) for i in range(tiles)}
    assert ends <= {round(f, 9) for f in fractions}  # every tile's end is reported…
    inside = [f for f in fractions if 0 < f < 1 / tiles]
    assert inside and inside == sorted(inside)  # …and progress inside the first tile too
    assert fractions == sorted(fractions)  # never backwards
    seamy = run_tiled(model, image, 2, tile=16, pad=1)
    assert (np.abs(seamy.astype(int) - whole) > 1).any()  # too little context shows seams
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        run_tiled(model, image, 2, tile=16, pad=5, progress=progress)


def test_cancel_reaches_inside_a_tile():
    """A DAT tile can take tens of seconds on a CPU: cancel is checked between blocks."""
    import torch

    from creative_studio.core.errors import Cancelled
    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import run_tiled

    model = _conv_sr(layers=5)
    progress = Progress()
    calls = []

    def cancel_after_two(module, args):
        calls.append(module)
        if len(calls) == 2:
            progress.cancel()

    model[0].register_forward_pre_hook(cancel_after_two)
    model[1].register_forward_pre_hook(cancel_after_two)
    with pytest.raises(Cancelled):
        run_tiled(model, torch.rand(1, 3, 20, 20), 2, tile=10**6, pad=0, progress=progress)
    assert len(calls) == 2  # stopped before the third block ran


def test_auto_tile_follows_free_memory():
    from plugins.upscale.tiling import MAX_TILE, MIN_TILE, auto_tile

    small = auto_tile("DAT", pad=32, align=32, budget=200 << 20)
    large = auto_tile("DAT", pad=32, align=32, budget=4 << 30)
    assert MIN_TILE <= small < large <= MAX_TILE and small % 32 == 0
    assert auto_tile("RealESRGAN Compact", 16, budget=200 << 20) > small  # lighter network
    assert auto_tile("DAT", 32, 32, budget=1) == MIN_TILE
    assert MIN_TILE <= auto_tile("ESRGAN", 64) <= MAX_TILE  # from this machine's memory
    # RRDB through ncnn on the CPU needs more memory a pixel: smaller tiles, a picture that
    # fits whole on PyTorch is tiled there
    assert auto_tile("ESRGAN", 32, budget=1 << 30, ncnn=True) < \
        auto_tile("ESRGAN", 32, budget=1 << 30)
    assert auto_tile("ESRGAN", 32, budget=1 << 30, picture=(192, 256)) == 256
    assert auto_tile("ESRGAN", 32, budget=1 << 30, picture=(192, 256), ncnn=True) < 192
    assert auto_tile("RealESRGAN Compact", 16, budget=1 << 30, picture=(192, 256),
                     ncnn=True) == 256


@pytest.mark.parametrize("height, width", [(192, 256), (300, 1000), (161, 161), (2000, 64),
                                           (5000, 5000), (97, 3000)])
@pytest.mark.parametrize("architecture, pad, align", [("ESRGAN", 64, 1), ("DAT", 32, 32)])
def test_auto_tile_for_a_picture_runs_no_more_than_it_must(height, width, architecture, pad,
                                                           align):
    """The whole picture when it fits the budget unpadded; else tiles evened out: never
    more tiles than the plain largest tile makes, never over the budget."""
    from plugins.upscale.tiling import BYTES_PER_PIXEL, auto_tile, plan

    budget = 1 << 30
    plain = auto_tile(architecture, pad, align, budget=budget)
    fitted = auto_tile(architecture, pad, align, budget=budget, picture=(height, width))
    if height * width * BYTES_PER_PIXEL[architecture] <= budget:
        assert fitted == max(height, width)  # one pass, no overlap
        return
    assert fitted <= plain and fitted % align == 0
    assert len(plan(height, width, fitted, align)) == len(plan(height, width, plain, align))
    # evened out: the smallest tile (the last of a row or column) is never smaller than
    # with the plain tile, where it could be a sliver run with a whole tile's context

    def smallest(tile):
        return min(min(y1 - y0, x1 - x0) for y0, y1, x0, x1 in plan(height, width, tile, align))

    assert smallest(fitted) >= smallest(plain)


def test_output_size_presets():
    from creative_studio.core.errors import BadInput
    from plugins.upscale.sizes import PRESETS, output_size

    assert output_size(300, 200, "model", 4) == (1200, 800)
    assert output_size(300, 200, "x2", 4) == (600, 400)
    assert output_size(300, 200, "long:1920", 4) == (1920, 1280)
    assert output_size(200, 300, "long:3840", 2) == (2560, 3840)
    for key, _label in PRESETS:  # every preset the panel offers: a size, the picture's shape
        width, height = output_size(640, 480, key, 4)
        assert width >= 640 and abs(width / height - 640 / 480) < 0.01, key
    for bad, says in (("x0", "would scale by 0"), ("huge", "Unknown output size 'huge'"),
                      ("long:abc", "Unknown output size 'long:abc'"),
                      ("x99", "would scale by 99")):
        with pytest.raises(BadInput, match=says):
            output_size(300, 200, bad, 4)
    with pytest.raises(BadInput, match="larger than"):
        output_size(8000, 8000, "x4", 4)


def test_tile_plan_aligns_corners():
    from plugins.upscale.tiling import plan

    boxes = plan(100, 130, tile=50, align=32)
    assert all(y0 % 32 == 0 and x0 % 32 == 0 for y0, _, x0, _ in boxes)
    covered = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes)
    assert covered == 100 * 130


def test_spandrel_import_leaves_no_torchvision_behind():
    """transformers probes find_spec("torchvision"): a leftover stand-in would break it."""
    import importlib.util

    pytest.importorskip("einops")
    from creative_studio.compat.torchvision_shim import SHIM_VERSION, import_spandrel

    try:
        import_spandrel()
    except ImportError:
        pytest.skip("spandrel is not installed")
    module = sys.modules.get("torchvision")
    assert module is None or getattr(module, "__version__", "") != SHIM_VERSION
    importlib.util.find_spec("torchvision")  # must not raise
