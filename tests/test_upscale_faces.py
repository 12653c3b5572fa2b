"""Faces restored after upscaling (issue 37, item 6): found, aligned, restored by a face
model file the tests build (RestoreFormer small, GFPGAN full size, random weights), pasted
back only inside the face, streamed band by band."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from creative_studio.core.errors import BadInput, ModelError
from tests.conftest import require_spandrel

require_spandrel()
cv2 = pytest.importorskip("cv2", reason="tools/setup.sh installs OpenCV")
samples = pytest.importorskip("skimage.data", reason="the test extras install scikit-image")

from plugins.upscale import faces  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def restoreformer(tmp_path_factory):
    """A small RestoreFormer (random weights) saved as .safetensors."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(0)
    model = RestoreFormer(n_embed=64, embed_dim=32, ch=32, out_ch=3, ch_mult=(1,) * 6,
                          num_res_blocks=1, attn_resolutions=(16,), dropout=0.0,
                          in_channels=3, resolution=512, z_channels=32, double_z=False,
                          enable_mid=True, head_size=8)
    path = tmp_path_factory.mktemp("faces") / "restoreformer-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def astronaut(side: int = 256) -> Image.Image:
    return Image.fromarray(samples.astronaut()).resize((side, side), Image.Resampling.LANCZOS)


def test_faces_are_found_with_their_eye_line():
    (face,) = faces.detect(Image.fromarray(samples.astronaut()))
    assert face.x == pytest.approx(224, abs=6) and face.y == pytest.approx(102, abs=6)
    assert face.eyes == pytest.approx(46, abs=5) and abs(face.roll) < 0.15
    assert faces.detect(Image.fromarray(samples.coffee())) == []  # no face: none made up
    assert faces.detect(Image.fromarray(samples.camera())) == []
    big = Image.fromarray(samples.astronaut()).resize((2048, 2048))
    (found,) = faces.detect(big)  # looked for at 1024 px, given in the picture's pixels
    assert found.x == pytest.approx(224 * 4, abs=24)


def test_the_aligned_crop_puts_the_eyes_where_the_models_expect_them():
    face = faces.Face(100.0, 80.0, 40.0, 0.3)
    matrix = face.matrix()
    for sign in (-1, 1):  # each eye, along the rolled eye line
        eye = np.array([100 + sign * 20 * np.cos(0.3), 80 + sign * 20 * np.sin(0.3), 1.0])
        x, y = matrix @ eye
        assert x == pytest.approx(256 + sign * faces.EYE_SPAN * 512 / 2, abs=1e-6)
        assert y == pytest.approx(faces.EYE_HEIGHT * 512, abs=1e-6)


def _paste(model, picture, strength, bands):
    array = np.asarray(picture).copy()
    found = faces.detect(picture)
    out = np.zeros_like(array)

    def sink(y, rows):
        out[y:y + rows.shape[0]] = rows

    paster = faces.FacePaster(found, model, strength, array.shape[0], sink)
    for y in range(0, array.shape[0], bands):
        paster(y, array[y:y + bands])
    paster.close()
    return array, out, found


def test_faces_are_restored_inside_the_face_only(restoreformer):
    model = faces.FaceModel(restoreformer)
    assert model.architecture == "RestoreFormer" and len(model.sha256) == 64
    picture = astronaut(384)
    source, restored, (face,) = _paste(model, picture, 1.0, bands=40)
    changed = np.any(source != restored, axis=2)
    assert changed.sum() > 1000  # the face is the model's now
    ys, xs = np.nonzero(changed)
    top, bottom = face.rows(384)
    assert top <= ys.min() and ys.max() < bottom  # nothing outside the face's crop moved
    side = face.eyes / faces.EYE_SPAN
    assert np.all(np.hypot(xs - face.x, ys - face.y) < side)
    # the same in one band as in forty-row bands; strength 0 leaves the upscale as it was
    assert np.array_equal(_paste(model, picture, 1.0, bands=10_000)[1], restored)
    assert np.array_equal(_paste(model, picture, 0.0, bands=40)[1], source)
    half = _paste(model, picture, 0.5, bands=40)[1].astype(int)
    inside = changed
    expected = (source[inside].astype(int) + restored[inside]) / 2  # linear in strength
    assert np.abs(half[inside] - expected).max() <= 1.5


def test_gfpgan_files_run_in_their_own_range(tmp_path):
    """GFPGAN works in [-1, 1] with fixed noise: the same face every time."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(1)
    net = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2,
                 decoder_load_path=None, fix_decoder=False, num_mlp=8, input_is_latent=True,
                 different_w=True, narrow=1, sft_half=True)
    path = tmp_path / "GFPGANv1.4-random.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    del net
    model = faces.FaceModel(path)
    assert model.architecture == "GFPGAN"
    crop = np.asarray(astronaut(512))
    first, second = model.restore(crop), model.restore(crop)
    assert first.shape == (512, 512, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    x = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = (model.descriptor.model(x * 2 - 1, randomize_noise=False)[0] + 1) / 2
    expected = expected[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(first, expected)


def test_files_that_are_not_face_models_are_refused(tmp_path, restoreformer):
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    compact = tmp_path / "compact.safetensors"
    save_file(Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
              .state_dict(), str(compact))
    with pytest.raises(ModelError, match="not a face restoration model"):
        faces.FaceModel(compact)
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="junk.pth"):
        faces.FaceModel(tmp_path / "junk.pth")
    with pytest.raises(BadInput, match="not there"):
        faces.FaceModel(tmp_path / "missing.pth")
    del torch


def test_faces_through_the_runner(studio, tmp_path, restoreformer):
    from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result

    runner, store = studio
    buffer = io.BytesIO()
    astronaut(200).save(buffer, "PNG")
    source = store.add_item(Request("upscale", "import"),
                            Result([Asset("image", "image/png", buffer.getvalue(), "a.png")],
                                   ModelIdentity("file", "a.png"), "none"))

    def run(**params):
        job = runner.submit(Request("upscale", "upscale", parents=[source],
                                    model="embedded:animevideov3-x2",
                                    params={"precision": "fp32", "engine": "torch", **params}),
                            store=store)
        runner.wait(job)
        return job

    plain, restored = run(), run(faces=str(restoreformer), face_strength=0.8)
    assert restored.state is JobState.DONE, restored.error
    said = store.item(restored.item_id).metadata["faces"]
    assert said["found"] == 1 and said["architecture"] == "RestoreFormer"
    assert said["strength"] == 0.8 and len(said["sha256"]) == 64
    pictures = [np.asarray(Image.open(io.BytesIO(store.asset_bytes(
        store.item(j.item_id).assets[0].id))), dtype=int) for j in (plain, restored)]
    changed = np.any(pictures[0] != pictures[1], axis=2)
    assert 500 < changed.sum() < changed.size / 3  # the face, not the picture
    missing = run(faces=str(tmp_path / "gone.pth"))
    assert missing.state is JobState.FAILED and "is not there" in missing.error
    as_upscaler = runner.submit(Request("upscale", "upscale", parents=[source],
                                        model=str(restoreformer)), store=store)
    runner.wait(as_upscaler)
    assert as_upscaler.state is JobState.FAILED
    assert "face restoration model: choose it as the Face model" in as_upscaler.error
