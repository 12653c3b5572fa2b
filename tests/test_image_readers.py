"""Property tests of the Image plugin's readers of untrusted bytes and text: safetensors
headers (checkpoints, LoRAs, found models), masks, LoRA entries and A1111 prompt tags, the
trigger words in a file's metadata. Whatever comes in: a value, or the studio's own error
with a message — never another exception, a hang or a huge allocation."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import StudioError
from plugins.image import checkpoints, editing, found, loras
from tests.helpers import examples

SHAPE = st.lists(st.integers(-3, 2**41), max_size=5)
ENTRY = st.fixed_dictionaries({"dtype": st.sampled_from(["F16", "F32", "X"]),
                               "shape": SHAPE | st.text(max_size=3) | st.none(),
                               "data_offsets": st.just([0, 0])})
NAME = st.sampled_from([
    "model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.model.token_embedding.weight",
    "conditioner.embedders.1.model.positional_embedding",
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    "lora_unet_x_attn2_to_k.lora_down.weight", "lora_te2_a.lora_down.weight", "v_pred",
    "double_blocks.0.x", "__metadata__"]) | st.text(max_size=30)
HEADER = st.dictionaries(NAME, ENTRY | st.integers() | st.text(max_size=5), max_size=8)


def _file(tmp: Path, header, tail: bytes = b"") -> Path:
    data = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path = tmp / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(data)) + data + tail)
    return path


@settings(max_examples=examples(300, least=60), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HEADER | st.binary(max_size=64), st.binary(max_size=16))
def test_any_header_is_read_or_refused_in_words(tmp_path, header, tail):
    path = _file(tmp_path, header, tail)
    try:
        shapes = checkpoints.read_shapes(path)
    except StudioError as exc:
        assert str(exc)
        return
    assert all(isinstance(s, tuple) for s in shapes.values())
    try:
        checkpoints.family_of(shapes, path.name)
    except StudioError as exc:
        assert str(exc)
    assert isinstance(checkpoints.metadata(path), dict)
    entry = found.describe(path, "folder")
    assert entry is None or entry.error or entry.kind in ("checkpoint", "lora")


@settings(max_examples=examples(200, least=40), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=24))
def test_cut_or_junk_files_never_raise_anything_else(tmp_path, data):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(data)
    try:
        checkpoints.read_shapes(path)
    except StudioError as exc:
        assert str(exc)
    entry = found.describe(path, "folder")  # listed as unreadable, or left out
    assert entry is None or entry.error


@settings(max_examples=examples(300, least=60), deadline=None, derandomize=True)
@given(st.text(max_size=80))
def test_lora_entries_and_prompt_tags(text):
    for call in (lambda: loras.parse_entry(text), lambda: loras.prompt_tags(text),
                 lambda: loras.prompt_tags(f"a cat <lora:{text}>")):
        try:
            call()
        except StudioError as exc:
            assert str(exc)
    try:
        clean, tags = loras.prompt_tags(f"a cat <lora:{text.replace('>', '')}:0.5> by the sea")
    except StudioError as exc:
        assert "names no LoRA" in str(exc) or "not a number" in str(exc)
    else:
        assert "<lora:" not in clean.lower() and len(tags) == 1


@settings(max_examples=examples(200, least=40), deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["modelspec.trigger_phrase", "ss_tag_frequency", "x"]),
                       st.text(max_size=40) | st.builds(json.dumps, st.recursive(
                           st.integers() | st.text(max_size=5),
                           lambda inner: st.dictionaries(st.text(max_size=5), inner,
                                                         max_size=3), max_leaves=8))))
def test_trigger_words_from_any_metadata(info):
    words = loras.trigger_words(info)
    assert isinstance(words, tuple) and len(words) <= 5


@settings(max_examples=examples(120, least=30), deadline=None, derandomize=True)
@given(st.binary(max_size=200) | st.sampled_from([b"\x89PNG\r\n\x1a\n" + b"\x00" * 30]),
       st.integers(8, 40), st.integers(8, 40))
def test_any_mask_bytes_are_a_mask_or_a_message(data, width, height):
    try:
        mask = editing.load_mask(data, (width, height))
    except StudioError as exc:
        assert str(exc)
    else:
        assert mask.shape == (height, width) and mask.any()


def test_a_mask_png_in_every_mode():
    from PIL import Image

    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        image = Image.new(mode, (16, 12))
        image.paste(Image.new(mode, (6, 6), 255 if mode not in ("RGB", "RGBA", "LA") else
                              ((255,) * len(mode))), (2, 2))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        try:
            mask = editing.load_mask(buffer.getvalue(), (16, 12))
        except StudioError as exc:
            assert "empty" in str(exc), mode
        else:
            assert mask.shape == (12, 16), mode
