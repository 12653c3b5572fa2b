"""Recipes read back out of PNGs (plugins/image/recipes.py): the studio's own JSON, A1111's
``parameters`` and ComfyUI's ``prompt`` graph — exact fields, hostile values dropped, and
no input that makes a reader raise anything but BadInput."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput
from plugins.image.recipes import clean, parse_a1111, parse_comfyui, recipe_from_png
from tests.helpers import Outcomes, examples


def png(**chunks: str) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key.replace("_", "-"), value)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


GRAPH = {"3": {"class_type": "KSampler", "inputs": {
    "seed": 42, "steps": 20, "cfg": 8.0, "positive": ["6", 0], "negative": ["7", 0]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark"}}}


def test_a1111_parameters_are_read_whole():
    a1111 = parse_a1111("a castle, sunset\nmisty\nNegative prompt: ugly, lowres\nSteps: 30, "
                        "Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1234, Size: 512x768, "
                        "Model: sd15, Model hash: abc123, Clip skip: 2")
    assert a1111 == {"prompt": "a castle, sunset\nmisty", "negative": "ugly, lowres",
                     "steps": 30, "scheduler": "DPM++ 2M", "guidance": 7.5, "seed": 1234,
                     "width": 512, "height": 768, "model": "sd15", "model_hash": "abc123"}


def test_a1111_negative_prompts_over_lines_and_comfyui_graphs_in_any_order():
    text = "a cat\nNegative prompt: blurry,\nwatermark\nSteps: 3"
    assert parse_a1111(text)["negative"] == "blurry,\nwatermark"
    reordered = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox"}},
                 "2": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
                 "3": GRAPH["3"], "6": GRAPH["6"], "7": GRAPH["7"]}
    assert parse_comfyui(json.dumps(reordered))["seed"] == 42


def test_a1111_without_settings_or_with_bad_values():
    assert parse_a1111("") == {}
    assert parse_a1111("just a prompt\nover two lines") == {
        "prompt": "just a prompt\nover two lines", "negative": ""}
    odd = parse_a1111("p\nSteps: 5, Seed: seven, Size: 12xbig, CFG scale: x")
    assert odd == {"prompt": "p", "negative": "", "steps": 5}
    assert parse_a1111("p\nSteps: many, Seed: 7")["prompt"] == "p\nSteps: many, Seed: 7"
    quoted = parse_a1111('p\nSteps: 5, Model: "my: model, v2", Sampler: "unclosed')
    assert quoted["model"] == "my: model, v2" and quoted["steps"] == 5
    assert quoted["scheduler"] == '"unclosed'
    assert parse_a1111('p\nSteps: 5, Model: "a\\q"')["model"] == '"a\\q"'  # not JSON: as is


def test_comfyui_graphs():
    assert parse_comfyui(json.dumps(GRAPH)) == {"prompt": "a fox", "negative":
                                                "text, watermark", "seed": 42, "steps": 20,
                                                "guidance": 8.0}
    advanced = {"1": {"class_type": "KSamplerAdvanced", "inputs": {
        "noise_seed": 9, "steps": 4, "positive": ["2", 0], "negative": ["missing", 0]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": 5}}}
    assert parse_comfyui(json.dumps(advanced)) == {"prompt": "", "negative": "", "seed": 9,
                                                   "steps": 4}
    assert parse_comfyui("[1, 2]") == {} and parse_comfyui("{}") == {}
    # JSON that Python reads: Infinity, NaN, booleans are no seed (int(inf) raised)
    for odd in ("Infinity", "-Infinity", "NaN", "true"):
        text = json.dumps(GRAPH).replace('"seed": 42', f'"seed": {odd}').replace(
            '"cfg": 8.0', f'"cfg": {odd}')
        assert parse_comfyui(text) == {"prompt": "a fox", "negative": "text, watermark",
                                       "steps": 20}
        assert recipe_from_png(png(prompt=text))["source"] == "ComfyUI"
    assert parse_comfyui(json.dumps({"1": "x", "2": {"class_type": "KSampler",
                                                     "inputs": []}})) == {}


def test_clean_keeps_known_fields_of_the_right_type_in_bounds():
    dirty = {"prompt": "x" * 30_000, "negative": 5, "steps": True, "seed": 2 ** 31,
             "guidance": float("nan"), "width": 64, "height": -1, "scheduler": "Euler",
             "model": None, "evil": "rm -rf", "source": "A1111"}
    assert clean(dirty) == {"prompt": "x" * 20_000, "width": 64, "scheduler": "Euler",
                            "source": "A1111"}
    assert clean({"guidance": 7, "seed": 0, "steps": 2 ** 31 - 1}) == {
        "guidance": 7.0, "seed": 0, "steps": 2 ** 31 - 1}
    assert clean({"guidance": 1e6}) == {} and clean({"guidance": -999_999.0}) == {
        "guidance": -999_999.0}


def test_which_recipe_a_png_gives():
    studio = json.dumps({"request": {"prompt": "red apple", "seed": 5,
                                     "params": {"negative": "blurry", "guidance": 5.5}}})
    assert recipe_from_png(png(creative_studio=studio)) == {
        "prompt": "red apple", "negative": "blurry", "guidance": 5.5, "seed": 5,
        "source": "Creative Studio"}
    # a studio chunk that says nothing gives way to A1111's, then to ComfyUI's
    both = png(creative_studio="[]", parameters="a cat\nSteps: 3", prompt=json.dumps(GRAPH))
    assert recipe_from_png(both) == {"prompt": "a cat", "negative": "", "steps": 3,
                                     "source": "A1111"}
    comfy = recipe_from_png(png(creative_studio="not json", prompt=json.dumps(GRAPH)))
    assert comfy["prompt"] == "a fox" and comfy["source"] == "ComfyUI"
    flat = json.dumps({"prompt": "flat", "seed": 3, "params": "not a dict"})
    assert recipe_from_png(png(creative_studio=flat)) == {"prompt": "flat", "seed": 3,
                                                           "source": "Creative Studio"}
    for chunks in ({}, {"prompt": "{not json"}, {"prompt": json.dumps({"1": {}})},
                   {"creative_studio": json.dumps({"params": {}})}):
        with pytest.raises(BadInput, match="The file carries no recipe"):
            recipe_from_png(png(**chunks))
    with pytest.raises(BadInput, match="pic.png carries no recipe"):
        recipe_from_png(png(), "pic.png")
    with pytest.raises(BadInput, match="^pic.gif is not a PNG"):
        recipe_from_png(b"GIF89a nonsense", "pic.gif")
    words = json.dumps({"prompt": "only words"})  # either the prompt or the seed will do
    assert recipe_from_png(png(creative_studio=words)) == {"prompt": "only words",
                                                            "source": "Creative Studio"}
    seed = json.dumps({"prompt": None, "seed": 9})
    assert recipe_from_png(png(creative_studio=seed)) == {"seed": 9,
                                                           "source": "Creative Studio"}


GARBAGE = (st.integers(-5, 10**20).map(str) | st.floats().map(str) | st.text(max_size=12)
           | st.text(max_size=10).map(json.dumps))
A1111_SETTING = st.one_of(
    st.tuples(st.sampled_from(["Steps", "Seed"]), st.integers(0, 2**31 + 9).map(str) | GARBAGE),
    st.tuples(st.just("CFG scale"), st.floats(-1e7, 1e7).map(str) | GARBAGE),
    st.tuples(st.just("Size"), st.builds("{}x{}".format, st.integers(0, 99999),
                                         st.integers(-9, 99999)) | GARBAGE),
    st.tuples(st.sampled_from(["Sampler", "Model", "Model hash", "Other", ""]), GARBAGE))
A1111_LINE = st.one_of(
    st.text(max_size=60),
    st.builds("Negative prompt: {}".format, st.text(max_size=30)),
    st.builds(lambda steps, pairs: ", ".join([f"Steps: {steps}"]
                                             + [f"{k}: {v}" for k, v in pairs]),
              st.integers(0, 200), st.lists(A1111_SETTING, max_size=8)))


def test_a1111_text_never_breaks_the_reader():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=150), deadline=None, derandomize=True)
    @given(text=st.lists(A1111_LINE, max_size=5).map("\n".join) | st.text(max_size=400))
    def check(text):
        recipe = clean(parse_a1111(text))
        assert set(recipe) <= {"prompt", "negative", "steps", "guidance", "seed", "scheduler",
                               "width", "height", "model", "model_hash"}
        assert all(0 <= recipe.get(k, 0) < 2**31 for k in ("steps", "seed", "width", "height"))
        seen.update(k for k in ("prompt", "negative", "steps", "seed", "width") if k in recipe)

    check()
    seen.require("prompt", "negative", "steps", "seed", "width")  # each field was read


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4), max_leaves=20)


WIRE = st.tuples(st.sampled_from(["1", "2", "3", "x"]), st.integers(0, 1)).map(list)
SAMPLER = st.fixed_dictionaries({
    "class_type": st.sampled_from(["KSampler", "KSamplerAdvanced", "Other"]),
    "inputs": st.fixed_dictionaries({}, optional={
        "positive": WIRE | json_like, "negative": WIRE | json_like,
        "seed": st.integers() | json_like, "noise_seed": st.integers(),
        "steps": st.integers(0, 200) | json_like,
        "cfg": st.floats(-100, 100) | st.floats() | json_like})})
TEXT_NODE = st.fixed_dictionaries({"class_type": st.just("CLIPTextEncode"),
                                   "inputs": st.fixed_dictionaries({"text": st.text(max_size=8)
                                                                    | json_like})})


def test_any_comfyui_graph_gives_a_clean_recipe_or_nothing():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=150), deadline=None, derandomize=True)
    @given(graph=st.builds(lambda sampler, text, extra: {
        **extra, "1": {**sampler, "inputs": {**sampler["inputs"], "positive": ["2", 0]}},
        "2": text},
                           SAMPLER, TEXT_NODE, st.dictionaries(st.sampled_from(["3", "x"]),
                                                               SAMPLER | json_like))
           | st.dictionaries(st.sampled_from(["1", "2", "3", "x"]),
                             SAMPLER | TEXT_NODE | json_like, max_size=4) | json_like)
    def check(graph):
        recipe = clean(parse_comfyui(json.dumps(graph)))
        assert all(isinstance(v, str | int | float) for v in recipe.values())
        seen.update(k for k in ("prompt", "steps", "guidance", "seed") if recipe.get(k))
        seen["nothing"] += not recipe

    check()
    seen.require("prompt", "steps", "guidance", "seed", "nothing")
