"""ComfyUI workflows on their own (plugins/image/workflows.py): the standard graph, which
inputs of a user's graph take the panel's values (with and without a KSampler), putting
values in, and the kept document — exact mappings and messages. The real server runs them in
test_comfyui.py; hostile shapes are in test_comfyui_hostile.py."""

from __future__ import annotations

import json

import pytest

from creative_studio.core.errors import BadInput
from plugins.image import workflows
from plugins.image.workflows import (
    MAX_NODES,
    MAX_WORKFLOW,
    apply,
    check_workflow,
    document,
    guess_inputs,
    load_document,
    parse_workflow,
    standard,
)

STANDARD = standard("sd15.safetensors", "a red fox", "blurry", 42, 20, 6.5, "euler_ancestral",
                    "karras", 512, 768)
STANDARD_INPUTS = {"seed": ["3", "seed"], "steps": ["3", "steps"], "guidance": ["3", "cfg"],
                   "prompt": ["6", "text"], "negative": ["7", "text"],
                   "width": ["5", "width"], "height": ["5", "height"],
                   "checkpoint": ["4", "ckpt_name"]}


def node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def test_the_standard_graph_carries_every_setting_where_comfyui_reads_it():
    sampler = STANDARD["3"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"], sampler["sampler_name"],
            sampler["scheduler"], sampler["denoise"]) == (42, 20, 6.5, "euler_ancestral",
                                                          "karras", 1.0)
    assert STANDARD["4"]["inputs"]["ckpt_name"] == "sd15.safetensors"
    assert STANDARD["5"]["inputs"] == {"width": 512, "height": 768, "batch_size": 1}
    assert STANDARD["6"]["inputs"]["text"] == "a red fox"
    assert STANDARD["7"]["inputs"]["text"] == "blurry"
    # every wire points at a node of the graph and an output it has
    outputs = {"4": 3, "5": 1, "6": 1, "7": 1, "3": 1, "8": 1}
    for item in STANDARD.values():
        for value in item["inputs"].values():
            if isinstance(value, list):
                assert value[1] < outputs[value[0]]
    assert STANDARD["9"]["class_type"] == "SaveImage"
    check_workflow(STANDARD)
    assert set(workflows.SAMPLERS) >= {"default", "Euler a", "DPM++ 2M"}


def test_the_standard_graphs_inputs_are_found_by_following_the_sampler():
    assert guess_inputs(STANDARD) == STANDARD_INPUTS


def test_inputs_are_found_in_any_node_order_and_with_an_advanced_sampler():
    graph = {key: STANDARD[key] for key in ("9", "8", "7", "6", "5", "4", "3")}
    graph["3"] = node("KSamplerAdvanced", noise_seed=1, steps=30, cfg=7,
                      positive=["7", 0], negative=["6", 0], latent_image=["5", 0])
    found = guess_inputs(graph)
    assert found["seed"] == ["3", "noise_seed"] and found["steps"] == ["3", "steps"]
    assert found["prompt"] == ["7", "text"] and found["negative"] == ["6", "text"]  # by wire


def test_a_graph_without_a_ksampler_takes_the_seed_from_any_node_and_the_first_text():
    """SamplerCustomAdvanced graphs (Flux, SD3): the seed lives on RandomNoise, the prompt on
    the first text encoder, no steps/cfg on a sampler to follow."""
    graph = {
        "1": node("UNETLoader", unet_name="flux.safetensors"),
        "2": node("CLIPTextEncode", text="a lighthouse", clip=["9", 0]),
        "3": node("CLIPTextEncode", text="second", clip=["9", 0]),
        "4": node("RandomNoise", noise_seed=7),
        "5": node("BasicScheduler", steps=20, model=["1", 0]),
        "6": node("SamplerCustomAdvanced", noise=["4", 0], sigmas=["5", 0]),
        "7": node("CheckpointLoaderSimple", ckpt_name="other.safetensors"),
    }
    assert guess_inputs(graph) == {"seed": ["4", "noise_seed"], "prompt": ["2", "text"],
                                   "checkpoint": ["7", "ckpt_name"]}
    nothing = {"1": node("LoadImage", image="x.png"), "2": node("SaveImage", images=["1", 0])}
    assert guess_inputs(nothing) == {}


def test_wired_inputs_are_not_taken_and_a_size_may_come_from_another_latent_node():
    graph = json.loads(json.dumps(STANDARD))
    graph["3"]["inputs"]["seed"] = ["10", 0]  # from a primitive node: not a value to replace
    graph["6"]["inputs"]["text"] = ["11", 0]
    graph["10"] = node("PrimitiveInt", value=3)
    graph["11"] = node("CLIPTextEncode", text="fallback")  # the first literal text encoder
    graph["5"] = node("EmptySD3LatentImage", width=1024, height=["10", 0])
    found = guess_inputs(graph)
    assert "seed" not in found and "height" not in found
    assert found["width"] == ["5", "width"]
    assert found["prompt"] == ["7", "text"]  # the first text encoder with a literal text
    graph["5"] = node("SomeLatent", width=64, height=64)  # not a known latent, but sized
    assert guess_inputs(graph)["height"] == ["5", "height"]
    graph["5"] = node("VAEEncode", pixels=["10", 0])  # an image-to-image latent: no size
    assert "width" not in guess_inputs(graph)


def test_values_go_into_a_copy_and_a_missing_input_is_named():
    out = apply(STANDARD, STANDARD_INPUTS, {"prompt": "a cat", "seed": 9, "steps": None,
                                            "guidance": 2.0, "unknown": 1})
    assert out["6"]["inputs"]["text"] == "a cat" and out["3"]["inputs"]["seed"] == 9
    assert out["3"]["inputs"]["steps"] == 20  # None: as the workflow has it
    assert out["3"]["inputs"]["cfg"] == 2.0
    assert STANDARD["6"]["inputs"]["text"] == "a red fox"  # the original is untouched
    out["5"]["inputs"]["width"] = 1
    assert STANDARD["5"]["inputs"]["width"] == 512  # a deep copy
    with pytest.raises(BadInput, match=r"^The workflow has no input seed on node 30 for the "
                                       r"seed: choose its inputs again in Workflow…\.$"):
        apply(STANDARD, {"seed": ["30", "seed"]}, {"seed": 1})
    with pytest.raises(BadInput, match="no input cfg2 on node 3 for the guidance \\(cfg\\)"):
        apply(STANDARD, {"guidance": ["3", "cfg2"]}, {"guidance": 1.0})


def test_the_kept_document_round_trips_and_cleans_what_it_does_not_know():
    text = document("x" * 300, STANDARD, STANDARD_INPUTS)
    name, graph, inputs = load_document(text)
    assert name == "x" * 200 and graph == STANDARD and inputs == STANDARD_INPUTS
    assert "a red fox" in text and ": " not in text  # compact
    dirty = json.dumps({"workflow": STANDARD, "inputs": {
        "seed": ["3", "seed"], "bogus": ["3", "x"], "steps": ["3"], "cfg": [3, "cfg"],
        "guidance": "3"}})
    assert load_document(dirty) == ("own workflow", STANDARD, {"seed": ["3", "seed"]})
    no_inputs = json.dumps({"name": 5, "workflow": STANDARD, "inputs": []})
    assert load_document(no_inputs) == ("5", STANDARD, {})
    bare = json.dumps(STANDARD)  # a bare API-format file: its inputs guessed
    assert load_document(bare) == ("workflow", STANDARD, STANDARD_INPUTS)


@pytest.mark.parametrize(("text", "message"), [
    ("{", r"^The workflow kept with these settings is damaged \(not JSON\): open it again "
          r"with Workflow…\.$"),
    ("[1]", r"^The workflow kept with these settings is damaged: open it again\.$"),
    ('{"workflow": []}', r"^The kept workflow is not a ComfyUI API-format workflow"),
])
def test_a_damaged_kept_document_is_said_plainly(text, message):
    with pytest.raises(BadInput, match=message):
        load_document(text)


def test_workflow_files_are_checked_before_use():
    assert parse_workflow(json.dumps(STANDARD)) == STANDARD
    with pytest.raises(BadInput, match=r"^Mine\.json is too large \(4,000,001 characters; "
                                       r"at most 4,000,000\)\.$"):
        parse_workflow(" " * (MAX_WORKFLOW + 1), "Mine.json")
    parse_workflow(json.dumps(STANDARD).ljust(MAX_WORKFLOW))  # exactly the limit is read
    with pytest.raises(BadInput, match=r"^The workflow is not JSON\.$"):
        parse_workflow("{nodes")
    with pytest.raises(BadInput) as ui_format:
        parse_workflow(json.dumps({"nodes": [], "links": []}))
    assert str(ui_format.value) == (
        "The workflow is in ComfyUI's UI format: in ComfyUI, use Workflow → Export (API) (or "
        "\"Save (API Format)\") and open that file.")
    # "nodes" that is not the UI's list is just a node id
    with pytest.raises(BadInput, match="node nodes is not a node of the API format"):
        parse_workflow(json.dumps({"nodes": {}, "links": []}))
    with pytest.raises(BadInput, match=r"^The workflow is not a ComfyUI API-format workflow "
                                       r"\(a table of nodes\)\.$"):
        parse_workflow("{}")
    many = {str(i): node("X") for i in range(MAX_NODES + 1)}
    with pytest.raises(BadInput, match=r"^The workflow has 5,001 nodes \(at most 5,000\)\.$"):
        parse_workflow(json.dumps(many))
    check_workflow({str(i): node("X") for i in range(MAX_NODES)})
    for bad in ({"1": node(5)}, {"1": {"class_type": "X", "inputs": []}}, {"1": [1]},
                {"y" * 65: node("X")}):
        with pytest.raises(BadInput, match=r"^The workflow: node (1|y{64}) is not a node of the "
                                           r"API format \(class_type and inputs\)\.$"):
            check_workflow(bad)
    check_workflow({"y" * 64: node("X")})
    with pytest.raises(BadInput, match=r"^W: node y{64} is not"):
        check_workflow({"y" * 65: node("X")}, "W")
