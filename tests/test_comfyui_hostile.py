"""A ComfyUI server is untrusted input: sizes, types, images and events from a scripted
hostile server (tests/fake_comfyui.py) end in plain messages, never a crash or a hang; the
event reader and the workflow reader get property tests."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput
from creative_studio.engines import comfyui
from creative_studio.engines.comfyui import ComfyClient, Output, ServerError, ServerGone
from plugins.image import workflows
from tests.fake_comfyui import FakeComfy, frame
from tests.helpers import Outcomes, examples


@pytest.fixture
def fake():
    server = FakeComfy()
    yield server
    server.stop()


def png(width: int = 8, height: int = 8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims a huge picture (a few hundred bytes on the wire)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_a_job_on_a_well_behaved_fake_and_what_it_sends(fake):
    fake.finished()
    fake.set("/view", png())
    client = ComfyClient(fake.url, "tok")
    seen = []
    run = client.run({"1": {"class_type": "X", "inputs": {}}},
                     on_progress=lambda v, m, n: seen.append((v, m)))
    assert run.prompt_id == "p-1" and seen == [(1, 2)]
    assert run.outputs == [Output("a.png", "", "output", "9")]
    assert client.image(run.outputs[0]).startswith(b"\x89PNG")
    assert client.system_stats().describe() == \
        "ComfyUI 0.3.40; cuda: cuda:0 NVIDIA Fake, 6.0 GB free of 8.0 GB"
    sent = json.loads(next(body for method, path, body in fake.requests
                           if path == "/prompt"))
    assert sent["client_id"] == client.client_id  # the socket and the prompt match
    assert any(path.startswith(f"/ws?clientId={client.client_id}")
               for _, path, _ in fake.requests)
    client.close()


@pytest.mark.parametrize("route, value, message", [
    ("/system_stats", b"<html>nginx</html>", "not a ComfyUI reply (a reply that is not JSON)"),
    ("/system_stats", [1, 2], "no 'system'"),
    ("/system_stats", {"system": "x"}, "no 'system'"),
])
def test_replies_that_are_not_comfyui_are_refused_plainly(fake, route, value, message):
    fake.set(route, value)
    with pytest.raises(ServerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ComfyClient(fake.url).system_stats()


def test_odd_lists_and_names_are_dropped_or_refused(fake):
    fake.set("/object_info/CheckpointLoaderSimple", {"CheckpointLoaderSimple": {"input": {
        "required": {"ckpt_name": [["ok.safetensors", 7, None, "bad\x00name", "x" * 300]]}}}})
    fake.set("/object_info/KSampler", {"KSampler": {"input": {"required": {
        "sampler_name": ["COMBO", {"options": ["euler", {"x": 1}]}]}}}})
    client = ComfyClient(fake.url)
    assert client.checkpoints() == ["ok.safetensors"]
    assert client.samplers() == ["euler"]  # the newer COMBO form
    assert client.schedulers() == []
    fake.set("/history/p-9", {"p-9": {"outputs": {"9": {"images": [
        {"filename": "a.png", "subfolder": "", "type": "/etc"}]}}}})
    with pytest.raises(ServerError, match="named oddly"):
        client.outputs("p-9")
    fake.set("/history/p-9", {"p-9": {"status": {"status_str": "error", "messages": [
        ["execution_error", {"exception_message": "CUDA out of memory"}]]}}})
    with pytest.raises(ServerError, match="the job failed: CUDA out of memory"):
        client.outputs("p-9")


def test_pictures_are_checked_like_any_file(fake, monkeypatch):
    client = ComfyClient(fake.url)
    fake.set("/view", bomb_png())
    with pytest.raises(BadInput, match="larger than|too large"):
        client.image(Output("a.png"))
    fake.set("/view", b"GIF89a-not-really")
    with pytest.raises(BadInput, match="not an image|damaged"):
        client.image(Output("a.png"))
    monkeypatch.setattr(comfyui, "MAX_IMAGE", 1000)
    fake.set("/view", png(400, 400) + b"\0" * 2000)
    with pytest.raises(ServerError, match="larger than the studio reads"):
        client.image(Output("a.png"))


def test_a_refused_workflow_says_which_node_and_why(fake):
    fake.set("/prompt", {"error": {"message": "Prompt outputs failed validation",
                                   "details": ""},
                         "node_errors": {"3": {"errors": [
                             {"message": "Value not in list",
                              "details": "sampler_name: 'warp' not in ['euler']"}]}}}, 400)
    with pytest.raises(ServerError, match=r"refused the workflow: Prompt outputs failed "
                                          r"validation; node 3: sampler_name: 'warp'"):
        ComfyClient(fake.url).submit({"3": {"class_type": "KSampler", "inputs": {}}})


@pytest.mark.parametrize("frames, error, message", [
    (["not json at all"], ServerError, "an event that is not JSON"),
    ([{"no": "type"}], ServerError, "an event without a type"),
    ([{"type": "execution_error", "data": {"prompt_id": "p-1", "node_type": "KSampler",
                                           "exception_message": "mat1 and mat2 shapes"}}],
     ServerError, "failed in KSampler: mat1 and mat2 shapes"),
    ([{"type": "execution_interrupted", "data": {"prompt_id": "p-1"}}], ServerError,
     r"interrupted on the ComfyUI server .* \(by someone else\)"),
    ([{"type": "execution_start", "data": {"prompt_id": "p-1"}}], ServerGone,
     "went away mid-job"),  # the socket closes before the job ends
])
def test_hostile_events_end_in_plain_messages(fake, frames, error, message):
    fake.events(*frames)
    with pytest.raises(error, match=message):
        ComfyClient(fake.url).run({"1": {"class_type": "X", "inputs": {}}})


def test_an_event_larger_than_the_studio_reads_is_refused(fake, monkeypatch):
    monkeypatch.setattr(comfyui, "MAX_MESSAGE", 10_000)
    fake.events({"type": "status", "data": {"pad": "x" * 50_000}})
    with pytest.raises(ServerError, match="larger than the studio reads"):
        ComfyClient(fake.url).run({"1": {"class_type": "X", "inputs": {}}})


def test_previews_of_other_jobs_and_broken_frames_are_ignored(fake):
    fake.finished()
    fake.ws_frames[1:1] = [
        frame(
            struct.pack(">II", 1, 2) + png()),
        frame(b"\x00\x01"),  # too short
        frame(json.dumps(
            {"type": "progress", "data": {"value": 5, "max": 9, "prompt_id": "someone-else"}}))]
    seen, previews = [], []
    ComfyClient(fake.url).run({"1": {"class_type": "X", "inputs": {}}},
                              on_progress=lambda v, m, n: seen.append((v, m)),
                              on_preview=previews.append)
    assert seen == [(1, 2)] and len(previews) == 1 and previews[0].startswith(b"\x89PNG")


def test_a_server_that_is_not_there_is_said_at_once():
    from tools.llama_server import free_port

    with pytest.raises(ServerGone, match="Cannot reach the ComfyUI server"):
        ComfyClient(f"http://127.0.0.1:{free_port()}").system_stats()


# -- properties -----------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
EVENT = st.fixed_dictionaries({"type": st.sampled_from(
    ["status", "progress", "executing", "executed", "execution_start", "execution_error",
     "execution_interrupted", "execution_cached", "x"]) | st.text(max_size=10),
    "data": JSON | st.dictionaries(st.sampled_from(
        ["prompt_id", "node", "value", "max", "status", "exception_message", "node_type"]),
        JSON | st.just("p-1"), max_size=6)})


OURS = st.sampled_from(["p-1", "p-1", "someone-else"])
WELL_FORMED = st.one_of(
    st.fixed_dictionaries({"type": st.just("progress"), "data": st.fixed_dictionaries(
        {"prompt_id": OURS, "value": st.integers(-3, 30), "max": st.integers(-2, 30)})}),
    st.fixed_dictionaries({"type": st.just("executing"), "data": st.fixed_dictionaries(
        {"prompt_id": OURS, "node": st.none() | st.sampled_from(["3", "9"])})}),
    st.fixed_dictionaries({"type": st.sampled_from(["execution_error", "execution_success",
                                                    "execution_interrupted"]),
                           "data": st.fixed_dictionaries(
        {"prompt_id": OURS, "node_type": JSON, "exception_message": JSON})}))


def test_any_events_end_in_a_state_or_a_server_error():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=80), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(WELL_FORMED | EVENT | JSON | st.binary(max_size=40), max_size=6))
    def check(messages):
        client = ComfyClient("http://127.0.0.1:9")
        state = {"started": None, "done": False, "error": "", "interrupted": False,
                 "heard": 0.0}
        progress = []
        for message in messages:
            raw = message if isinstance(message, bytes) else json.dumps(message)
            try:
                client._handle(raw, "p-1", state, lambda v, m, n: progress.append((v, m)),
                               lambda data: None, lambda text: None)
            except ServerError as error:
                assert "127.0.0.1:9" in str(error)
                seen["garbage"] += 1
                break
        assert all(0 <= v <= m and m > 0 for v, m in progress)
        assert isinstance(state["done"], bool)
        assert not state["error"] or state["error"].startswith("ComfyUI at http://127.0.0.1:9")
        seen["progress"] += bool(progress)
        seen["done"] += state["done"]
        seen["error"] += bool(state["error"])
        seen["interrupted"] += state["interrupted"]

    check()
    seen.require("garbage", "progress", "done", "error", "interrupted")


NODE = st.fixed_dictionaries({"class_type": st.sampled_from(
    ["KSampler", "CLIPTextEncode", "EmptyLatentImage", "CheckpointLoaderSimple", "SaveImage",
     "Other"]), "inputs": st.dictionaries(st.sampled_from(
         ["seed", "steps", "cfg", "text", "width", "height", "ckpt_name", "positive",
          "negative", "latent_image", "noise_seed"]),
         st.integers(0, 9) | st.text(max_size=5) | st.tuples(st.sampled_from("123"),
                                                             st.integers(0, 2)).map(list))})


def test_any_graph_gets_inputs_that_apply_to_it():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=60), deadline=None, derandomize=True)
    @given(st.dictionaries(st.sampled_from("123456"), NODE, min_size=1, max_size=6))
    def check(graph):
        inputs = workflows.guess_inputs(graph)
        for role, (node, name) in inputs.items():
            assert role in workflows.ROLES and name in graph[node]["inputs"]
            assert workflows._is_value(graph[node]["inputs"][name])
        values = {role: 7 for role in inputs}
        out = workflows.apply(graph, inputs, values)
        for node, name in inputs.values():
            assert out[node]["inputs"][name] == 7
        assert graph == json.loads(json.dumps(graph))  # the original is untouched
        doc = workflows.document("f.json", graph, inputs)
        assert workflows.load_document(doc) == ("f.json", graph, inputs)
        seen.update(list(inputs))  # the roles found
        seen["none"] += not inputs

    check()
    seen.require("prompt", "seed", "steps", "none")


def test_any_file_is_a_workflow_or_a_plain_refusal():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=60), deadline=None, derandomize=True)
    @given(JSON | st.text(max_size=60)
           | st.dictionaries(st.sampled_from("123"), NODE | JSON, min_size=1, max_size=4))
    def check(value):
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            graph = workflows.parse_workflow(text)
        except BadInput as refusal:
            assert str(refusal).startswith("The workflow")
            seen["refused"] += 1
            return
        assert isinstance(graph, dict) and graph
        assert all(isinstance(node.get("class_type"), str) and isinstance(node.get("inputs"), dict)
                   for node in graph.values())
        workflows.guess_inputs(graph)
        seen["workflow"] += 1

    check()
    seen.require("refused", "workflow")
