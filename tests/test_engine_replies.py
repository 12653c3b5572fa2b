"""The server engines' clients (creative_studio/engines) on exact replies: every error status
and the reason a user reads, keys on every request and on the ComfyUI event socket, which
outputs a finished ComfyUI job hands back and in what order, and a stream's pieces. The
OpenAI client runs on httpx's MockTransport (in-process, exact); ComfyUI on the fake server
of tests/fake_comfyui.py."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from creative_studio.engines import catalog, comfyui, openai
from creative_studio.engines.comfyui import ComfyClient, Output
from creative_studio.engines.openai import (
    Chunk,
    OpenAIClient,
    ServerError,
    ServerGone,
    StreamCut,
    api_base,
)
from tests.fake_comfyui import FakeComfy
from tests.test_comfyui_hostile import png

URL = "http://box:8080"


def client(handler, key: str = "") -> tuple[OpenAIClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return OpenAIClient(URL, key, transport=httpx.MockTransport(record)), seen


def replying(status: int, body=b"", headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: httpx.Response(status, content=data, headers=headers or {})


# -- OpenAI-compatible: addresses, keys, errors ---------------------------------------------
def test_the_api_lives_under_v1_whatever_the_address_given():
    assert api_base("http://h:1") == api_base("http://h:1/") == "http://h:1/v1"
    assert api_base("http://h:1/v1/") == "http://h:1/v1"
    assert api_base("http://h:1/openai") == "http://h:1/openai/v1"


def test_a_key_goes_with_every_request_and_none_without_one():
    models = {"data": [{"id": "a"}]}
    keyed, seen = client(replying(200, models), key="sk-1")
    assert keyed.models() == ["a"]
    assert seen[0].headers["authorization"] == "Bearer sk-1"
    assert seen[0].url == "http://box:8080/v1/models" and seen[0].method == "GET"
    bare, seen = client(replying(200, models))
    bare.models()
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize(("status", "body", "headers", "message"), [
    (401, {"error": {"message": "bad key"}}, {},
     "^The server at http://box:8080 refused the API key \\(401\\): check the key \\(the "
     "window: Preferences → Servers; the command line: creative-studio servers add NAME URL "
     "--key-stdin\\)\\. The server said: bad key$"),
    (403, b"", {}, "refused the API key \\(403\\): check the key .*--key-stdin\\)\\.$"),
    (404, {"detail": "Not Found"}, {},
     "^The server at http://box:8080 has no such model or endpoint \\(404\\)\\. The server "
     "said: Not Found$"),
    (404, b"<html><head><title>404 &amp; gone</title></head><body>x</body></html>", {},
     "\\(404\\)\\. The server said: 404 & gone$"),
    (429, {"message": "slow down"}, {"retry-after": "2.5"},
     "^The server at http://box:8080 is busy \\(429\\)\\. It asks to retry in 2\\.5 s\\. "
     "The server said: slow down$"),
    (429, b"", {"retry-after": "Wed, 21 Oct 2026"}, "^The server at http://box:8080 is busy "
     "\\(429\\)\\.$"),
    (500, {"error": "out of memory"}, {},
     "^The server at http://box:8080 failed \\(500\\)\\. The server said: out of memory$"),
    (503, b"<p>Service\n\x00Unavailable</p>", {}, "failed \\(503\\)\\. The server said: "
     "Service Unavailable$"),
    (418, b"I'm a teapot", {}, "^The server at http://box:8080 refused the request \\(418\\)\\. "
     "The server said: I'm a teapot$"),
    (400, {"error": {"message": "x" * 400}}, {}, "said: x{300}$"),
])
def test_every_refusal_says_why_in_the_servers_words(status, body, headers, message):
    api, _ = client(replying(status, body, headers))
    with pytest.raises(ServerError, match=message) as refused:
        api.models()
    assert refused.value.status == status
    assert refused.value.retry_after == (2.5 if headers.get("retry-after") == "2.5" else None)


def test_unreadable_replies_are_refused_plainly():
    for body, what in ((b"<html>", "a reply that is not JSON"), (b"[1]", "a reply that is not a JSON object"),
                       (b'{"data": 5}', "no model list")):
        api, _ = client(replying(200, body))
        with pytest.raises(ServerError, match=f"^The server at http://box:8080 answered "
                                              f"something that is not an OpenAI-compatible "
                                              f"reply \\({what}"):
            api.models()
    api, _ = client(replying(200, b"{" + b" " * (openai.MAX_BODY + 1) + b"}"))
    with pytest.raises(ServerError, match="larger than the studio reads"):
        api.models()
    listed = {"data": [{"id": "ok"}, {"id": 5}, "x", {"id": "y" * 512}, {"id": "y" * 511}]}
    api, _ = client(replying(200, listed))
    assert api.models() == ["ok", "y" * 511]


def test_a_server_that_cannot_be_reached_is_tried_three_times(monkeypatch):
    slept = []
    monkeypatch.setattr(openai.time, "sleep", slept.append)

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    def long_refusal(request):
        raise httpx.ConnectError("r" * 300)

    api, _ = client(long_refusal)
    with pytest.raises(ServerGone, match=r"\(r{200}\)\. Is it running"):  # the reason's start
        api.models()
    api, seen = client(refuse)
    with pytest.raises(ServerGone, match=r"^Cannot reach the server at http://box:8080 "
                                         r"\(connection refused\)\. Is it running, and is "
                                         r"the address right\?$"):
        api.models()
    assert len(seen) == 3 and slept == [0.5, 1.0] * 2  # twice: the long refusal, then this

    def slow(request):
        raise httpx.ReadTimeout("")

    api, seen = client(slow)
    with pytest.raises(ServerError, match=r"^The server at http://box:8080 did not answer "
                                          r"within 120 s\.$") as late:
        api.models()
    assert not isinstance(late.value, ServerGone) and len(seen) == 1  # never sent again

    def broken(request):
        raise httpx.RemoteProtocolError("")

    api, _ = client(broken)
    with pytest.raises(ServerError, match=r"^The request to http://box:8080 failed "
                                          r"\(RemoteProtocolError\)\.$"):
        api.models()


# -- OpenAI-compatible: streams ----------------------------------------------------------------
def sse(*events) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode())
                    + b"\n\n" for e in events)


def stream(body: bytes, cancelled=lambda: False) -> list[Chunk]:
    api, seen = client(lambda request: httpx.Response(200, content=body))
    out = list(api.stream("/chat/completions", {"model": "m"}, cancelled))
    assert json.loads(seen[0].content) == {"model": "m", "stream": True}
    return out


def test_a_stream_gives_its_pieces_reason_fingerprint_and_count():
    chunks = stream(b": keep-alive\n\nevent: x\n\n" + sse(
        {"choices": [{"delta": {"content": "Hel"}}], "system_fingerprint": "fp1"},
        {"choices": [{"text": "lo"}]},
        {"choices": [], "usage": {"completion_tokens": 2}},
        {"choices": [{"delta": {}, "finish_reason": "length" + "x" * 100}]}))
    assert [c.text for c in chunks] == ["Hel", "lo", "", ""]
    assert chunks[0].system_fingerprint == "fp1" and chunks[2].completion_tokens == 2
    long = stream(sse({"choices": [], "system_fingerprint": "f" * 255},
                      {"choices": [], "system_fingerprint": "f" * 256},
                      {"choices": [], "usage": {"completion_tokens": True}},
                      {"choices": [{"text": "", "finish_reason": "stop"}]}))
    assert [c.system_fingerprint for c in long] == ["f" * 255, None, None, None]
    assert long[2].completion_tokens is None
    assert chunks[3].finish_reason == "length" + "x" * 58
    done = stream(sse({"choices": [{"delta": {"content": "a"}}]}, b"[DONE]"))
    assert [c.text for c in done] == ["a"]


@pytest.mark.parametrize(("body", "error", "message"), [
    (sse({"choices": [{"delta": {"content": "a"}}]}), StreamCut,
     "^The server at http://box:8080 ended the reply before saying it was done\\.$"),
    (sse({"error": {"message": "context full"}}), ServerError,
     "^The server stopped with an error: context full$"),
    (sse({"x": 1}), ServerError, "^The server at http://box:8080 answered something that is "
                                 "not an OpenAI-compatible reply \\(no 'choices'\\)\\.$"),
    (sse({"choices": [5]}), ServerError, "box:8080 .*\\(a choice that is not an object\\)"),
    (sse({"choices": [{"text": 5}]}), ServerError,
     "box:8080 .*\\(text that is not a string\\)"),
    (sse({"choices": [{"text": "", "finish_reason": 1}]}), ServerError,
     "box:8080 .*\\(a finish reason that is not a string\\)"),
    (b"data: {nope\n\n", ServerError, "box:8080 .*\\(a line that is not JSON\\)"),
])
def test_a_broken_stream_says_what_broke(body, error, message):
    with pytest.raises(error, match=message):
        stream(body)


def test_a_stopped_stream_ends_quietly_with_what_came():
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    body = sse(*({"choices": [{"delta": {"content": str(i)}}]} for i in range(50)))
    chunks = stream(body, cancelled)
    assert 1 <= len(chunks) < 50


# -- ComfyUI: keys on the socket, outputs, refusals ---------------------------------------------
@pytest.fixture
def fake():
    server = FakeComfy()
    yield server
    server.stop()


def test_the_key_goes_with_the_event_socket_and_every_request(fake):
    fake.finished()
    fake.set("/view", png())
    keyed = ComfyClient(fake.url, "tok")
    run = keyed.run({"1": {"class_type": "X", "inputs": {}}})
    keyed.image(run.outputs[0])
    assert 0 <= run.queued_s <= run.seconds and run.seconds >= 0.2  # the fake waits 0.2 s
    info = keyed.system_stats()
    assert (info.version, info.python) == ("0.3.40", "3.11")
    keyed.close()
    paths = {path for _, path, _ in fake.headers}
    assert {"/ws", "/prompt", "/history/p-1", "/view"} <= paths
    for method, path, headers in fake.headers:
        assert headers.get("Authorization") == "Bearer tok", (method, path)
    fake.headers.clear()
    bare = ComfyClient(fake.url)
    bare.run({"1": {"class_type": "X", "inputs": {}}})
    bare.close()
    assert fake.headers and all("Authorization" not in h for _, _, h in fake.headers)


def test_a_finished_job_hands_back_saved_pictures_first_in_node_order(fake):
    fake.finished()
    history = {"p-1": {"status": {"status_str": "success"}, "outputs": {
        "12": {"images": [{"filename": "b.png", "subfolder": "", "type": "output"}]},
        "3": {"images": [{"filename": "z.png", "subfolder": "run", "type": "temp"},
                         {"filename": "c.png", "subfolder": "", "type": "output"},
                         {"filename": "a.png", "type": "output"}, "odd"]},
        "4": {"text": ["not a picture"]}, "5": "x"}}}
    fake.set("/history/p-1", history)
    client = ComfyClient(fake.url)
    assert client.outputs("p-1") == [Output("a.png", "", "output", "3"),
                                     Output("c.png", "", "output", "3"),
                                     Output("b.png", "", "output", "12"),
                                     Output("z.png", "run", "temp", "3")]
    fake.set("/history/p-1", {"p-1": {"outputs": {
        "save": {"images": [{"filename": "s.png"}]}, "10": {"images": [{"filename": "t.png"}]},
        "9": {"images": [{"filename": "u.png"}]}}}})
    assert [o.node for o in client.outputs("p-1")] == ["9", "10", "save"]
    # names only go back to the same server's /view (never a path here): control
    # characters, sizes and kinds are what is checked
    for image in ({"filename": "a\x00.png"}, {"filename": "a.png", "type": "input"},
                  {"filename": "a.png", "subfolder": "x\n"}, {"filename": 5}, {},
                  {"filename": "x" * 256}, {"filename": "a.png", "subfolder": None}):
        fake.set("/history/p-1", {"p-1": {"outputs": {"9": {"images": [image]}}}})
        with pytest.raises(comfyui.ServerError, match="an output picture named oddly"):
            client.outputs("p-1")
    fake.set("/history/p-1", {"p-1": {"outputs": {}}})
    assert client.outputs("p-1") == []
    fake.set("/history/p-1", {"p-1": {"status": {"status_str": "error", "messages": [
        ["execution_start", {}], ["execution_error", {"exception_message": " CUDA OOM "}]]}}})
    with pytest.raises(comfyui.ServerError, match=r"^The ComfyUI server at http://127\.0\.0\."
                                                  r"1:\d+ says the job failed: CUDA OOM\.$"):
        client.outputs("p-1")
    fake.set("/history/p-1", {"p-2": {}})
    with pytest.raises(comfyui.ServerError, match="has no record of the job it just finished"):
        client.outputs("p-1")
    client.close()


@pytest.mark.parametrize(("status", "body", "message"), [
    (400, {"error": {"message": "Prompt outputs failed validation", "details": "d"},
           "node_errors": {"3": {"errors": [{"details": "steps too high"}, {"message": "m"}]},
                           "4": "x"}},
     "^The ComfyUI server at .* refused the workflow: Prompt outputs failed validation "
     "\\(d\\); node 3: steps too high; node 3: m$"),
    (400, b"", "refused the workflow: no reason given$"),
    (401, b"", "refused the API key \\(401\\)"),
    (404, b"<title>Not here</title>", "no such model or endpoint \\(404\\)\\. The server said: "
                                      "Not here$"),
    (500, {"error": {"message": "boom"}}, "failed \\(500\\)\\. The server said: boom$"),
])
def test_a_refused_comfyui_request_says_the_servers_reason(fake, status, body, message):
    fake.set("/prompt", body, status=status)
    client = ComfyClient(fake.url)
    with pytest.raises(comfyui.ServerError, match=message):
        client.submit({"1": {"class_type": "X", "inputs": {}}})
    client.close()


def test_test_connection_says_what_a_server_offers(fake):
    checkpoints = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [
        [f"m{i}.safetensors" for i in range(10)]]}}}}
    fake.set("/object_info/CheckpointLoaderSimple", checkpoints)
    fake.set("/object_info/UpscaleModelLoader", {"UpscaleModelLoader": {"input": {
        "required": {"model_name": [[]]}}}})
    server = type("S", (), {"kind": "comfyui", "url": fake.url, "api_key": lambda self: "k"})()
    line = catalog.describe(server)
    assert line.startswith(f"{fake.url} answered: ComfyUI 0.3.40; cuda: ")
    assert "; key accepted; 10 checkpoint(s): m0.safetensors, m1.safetensors" in line
    assert "m7.safetensors … (10 in all); 0 upscale model(s): none listed" in line
    assert catalog.models(server, modality="upscale") == []
    assert len(catalog.models(server)) == 10


def recorder(made: list, **answers):
    """A stand-in client class: notes how it was made and closed, answers each method with
    the value given."""

    class Recorder:
        def __init__(self, url, token, read_timeout):
            made.append((url, token, read_timeout))

        def close(self):
            made.append("closed")

    for name, value in answers.items():
        setattr(Recorder, name, lambda self, value=value: value)
    return Recorder


def test_test_connection_on_an_openai_server_says_the_key_and_the_models(monkeypatch):
    made = []
    monkeypatch.setattr(openai, "OpenAIClient", recorder(made, models=["a", "b"]))
    asked = []
    server = type("S", (), {"kind": "openai", "url": URL,
                            "api_key": lambda self: asked.append(1) or ""})()
    assert catalog.describe(server) == f"{URL} answered; no key needed; 2 model(s): a, b"
    assert made == [(URL, "", 15.0), "closed"] and asked == [1]
    made.clear()
    assert catalog.describe(server, key="typed", timeout=3) == \
        f"{URL} answered; key accepted; 2 model(s): a, b"
    assert made == [(URL, "typed", 3), "closed"] and asked == [1]  # the typed key, not the kept
    assert catalog.models(server, key="") == ["a", "b"] and made[-2] == (URL, "", 15.0)
    assert asked == [1]  # a key given (even none) is not looked up
    keyed = type("S", (), {"kind": "openai", "url": URL, "api_key": lambda self: "kept"})()
    assert catalog.models(keyed) == ["a", "b"] and made[-2] == (URL, "kept", 15.0)


def sent(fake, method: str, path: str) -> list:
    return [json.loads(body) if body else None for m, p, body in fake.requests
            if m == method and p.split("?")[0] == path]


def test_where_a_job_is_on_the_server_and_how_stop_takes_it_out(fake):
    client = ComfyClient(fake.url)
    fake.set("/queue", {"queue_running": [[0, "p-9"]], "queue_pending": [[1, "p-1"], "x", []]})
    assert client.queue_state("p-1") == "pending" and client.queue_state("p-9") == "running"
    assert client.queue_state("p-5") == "absent"
    fake.set("/queue", {"queue_running": "x"})
    assert client.queue_state("p-1") == "absent"
    fake.set("/queue", [1])
    with pytest.raises(comfyui.ServerError, match="a /queue reply that is not an object"):
        client.queue_state("p-1")
    # Stop while waiting: out of the queue; while running: interrupted; gone: nothing sent
    fake.set("/queue", {"queue_running": [], "queue_pending": [[1, "p-1"]]})
    client._stop("p-1", socket=None)
    assert sent(fake, "POST", "/queue") == [{"delete": ["p-1"]}]
    assert sent(fake, "POST", "/interrupt") == []

    class Socket:
        def recv(self, timeout):
            return json.dumps({"type": "execution_interrupted", "data": {"prompt_id": "p-1"}})

    fake.set("/queue", {"queue_running": [[0, "p-1"]], "queue_pending": []})
    client._stop("p-1", Socket())
    assert sent(fake, "POST", "/interrupt") == [{"prompt_id": "p-1"}]
    fake.set("/queue", {"queue_running": [], "queue_pending": []})
    fake.requests.clear()
    client._stop("p-1", None)
    assert [m for m, _, _ in fake.requests] == ["GET"]
    client.close()


def test_a_long_silence_asks_whether_the_job_is_still_there(fake):
    client = ComfyClient(fake.url)
    said = []
    state = {"done": False, "heard": 0.0}
    fake.set("/queue", {"queue_running": [], "queue_pending": [[1, "p-1"]]})
    client._check_alive("p-1", state, said.append)
    assert said == ["Waiting in the server's queue"] and state["done"] is False
    assert state["heard"] > 0
    fake.set("/queue", {"queue_running": [], "queue_pending": []})
    fake.set("/history/p-1", {"p-1": {"outputs": {}}})
    client._check_alive("p-1", state, said.append)
    assert state["done"] is True and len(said) == 1  # finished while a message went missing
    fake.set("/history/p-1", {})
    with pytest.raises(comfyui.ServerGone, match=r"^The ComfyUI server at http://127\.0\.0\.1:"
                                                 r"\d+ dropped the job \(its queue was "
                                                 r"cleared, or it restarted\); nothing was "
                                                 r"saved\.$"):
        client._check_alive("p-1", {"done": False, "heard": 0.0}, None)
    client.close()


def test_an_uploaded_picture_is_named_as_the_server_stored_it(fake):
    client = ComfyClient(fake.url)
    fake.set("/upload/image", {"name": "in.png", "subfolder": "studio"})
    assert client.upload_image(png(), "in.png") == "studio/in.png"
    fake.set("/upload/image", {"name": "in.png", "subfolder": 5})
    assert client.upload_image(png(), "in.png") == "in.png"
    for reply in ({"name": "bad\n"}, {"subfolder": "x"}, [1]):
        fake.set("/upload/image", reply)
        with pytest.raises(comfyui.ServerError, match=r"not a ComfyUI reply \(an upload reply "
                                                      r"without the file's name\)\.$"):
            client.upload_image(png(), "in.png")
    client.close()


def test_a_failed_jobs_reason_is_found_in_any_shape_of_messages():
    assert comfyui._message_of(None) == "" and comfyui._message_of("text") == ""
    assert comfyui._message_of({"execution_error": 1}) == ""
    assert comfyui._message_of([["execution_error", {"exception_message": 5}],
                                ["execution_error", {"exception_message": " late "}]]) == \
        ": late"
    assert comfyui._message_of([["execution_error", {"exception_message": "x" * 400}]]) == \
        ": " + "x" * 300


def test_test_connection_on_comfyui_uses_the_key_and_the_wait_given(monkeypatch):
    made = []
    monkeypatch.setattr(comfyui, "ComfyClient", recorder(
        made, system_stats=type("I", (), {"describe": lambda self: "ComfyUI 1"})(),
        checkpoints=[f"c{i}" for i in range(8)], upscale_models=["x4"]))
    server = type("S", (), {"kind": "comfyui", "url": URL, "api_key": lambda self: "kept"})()
    assert catalog.describe(server) == (f"{URL} answered: ComfyUI 1; key accepted; "
                                        "8 checkpoint(s): c0, c1, c2, c3, c4, c5, c6, c7; "
                                        "1 upscale model(s): x4")  # 8: all shown, no "in all"
    assert made == [(URL, "kept", 15.0), "closed"]
    made.clear()
    catalog.describe(server, key="", timeout=2)
    assert made == [(URL, "", 2), "closed"]
    assert catalog.models(server, "k", 4, modality="upscale") == ["x4"]
    assert made[-2] == (URL, "k", 4)


def test_a_connection_that_breaks_mid_reply_says_why_and_keeps_its_reader_named():
    names = []

    class Breaks(httpx.SyncByteStream):
        def __iter__(self):
            names.extend(t.name for t in threading.enumerate())
            yield sse({"choices": [{"delta": {"content": "Hal"}}]})
            raise httpx.ReadError("peer closed the connection")

    api, _ = client(lambda request: httpx.Response(200, stream=Breaks()))
    got = []
    with pytest.raises(StreamCut, match=r"^The connection to http://box:8080 broke off "
                                        r"mid-reply \(peer closed the connection\)\.$"):
        for chunk in api.stream("/completions", {}, lambda: False):
            got.append(chunk.text)
    assert got == ["Hal"] and "studio-sse" in names  # the reader thread, by its name
    assert api._http.timeout.connect == 5.0 and api._http.timeout.read == 120.0


def test_a_refusal_with_a_huge_page_is_said_by_its_status_and_title(fake):
    page = b"<html><head><title>Login required</title></head>" + b"x" * (300 << 10)
    api, _ = client(replying(401, page))
    with pytest.raises(ServerError, match=r"refused the API key \(401\).*The server said: "
                                          r"Login required$"):
        api.models()
    fake.set("/prompt", page, status=401)
    comfy = ComfyClient(fake.url)
    with pytest.raises(comfyui.ServerError, match=r"refused the API key \(401\).*The server "
                                                  r"said: Login required$"):
        comfy.submit({"1": {"class_type": "X", "inputs": {}}})
    comfy.close()

    class Breaks(httpx.SyncByteStream):
        def __iter__(self):
            yield b"<title>Overloaded</title>"
            raise httpx.ReadError("reset")

    api, _ = client(lambda request: httpx.Response(503, stream=Breaks()))
    with pytest.raises(ServerError, match=r"failed \(503\)\. The server said: Overloaded$"):
        api.models()


def test_a_picture_is_asked_for_by_its_name_folder_and_kind(fake):
    from urllib.parse import parse_qs, urlsplit

    fake.set("/view", png())
    client = ComfyClient(fake.url)
    client.image(Output("a b.png", "sub/dir", "temp", "9"))
    query = parse_qs(urlsplit(next(p for m, p, _ in fake.requests
                                   if p.startswith("/view"))).query, keep_blank_values=True)
    assert query == {"filename": ["a b.png"], "subfolder": ["sub/dir"], "type": ["temp"]}
    client.close()


def test_a_checkpoints_declared_hash_is_read_in_any_case_with_or_without_0x(fake):
    client = ComfyClient(fake.url)
    digest = "AB" * 32
    for reply, expected in (({"modelspec.hash_sha256": "0x" + digest}, digest.lower()),
                            ({"sshs_model_hash": digest}, digest.lower()),
                            ({"modelspec.hash_sha256": "0x" + "ab" * 31}, ""),
                            ({"modelspec.hash_sha256": digest + "\n"}, ""),
                            ({"modelspec.hash_sha256": 5, "sshs_model_hash": "cd" * 32},
                             "cd" * 32),
                            ([digest], ""), ({}, "")):
        fake.set("/view_metadata/checkpoints", reply)
        assert client.checkpoint_sha256("m.safetensors") == expected, reply
    fake.set("/view_metadata/checkpoints", b"", status=404)  # no metadata: no hash, no error
    assert client.checkpoint_sha256("m.safetensors") == ""
    client.close()


def test_a_servers_lists_are_asked_once_a_minute(fake, monkeypatch):
    fake.set("/object_info/CheckpointLoaderSimple", {"CheckpointLoaderSimple": {"input": {
        "required": {"ckpt_name": [["a.safetensors"]]}}}})
    client = ComfyClient(fake.url)
    now = [1000.0]
    monkeypatch.setattr(comfyui.time, "monotonic", lambda: now[0])

    def asked() -> int:
        return sum(1 for _, p, _ in fake.requests if p.startswith("/object_info/Checkpoint"))

    assert client.offered("checkpoints") == ["a.safetensors"] and asked() == 1
    now[0] += comfyui.CHOICES_TTL - 1
    assert client.offered("checkpoints") == ["a.safetensors"] and asked() == 1
    now[0] += 2
    client.offered("checkpoints")
    assert asked() == 2
    client.close()


def test_an_endless_refusal_is_read_only_to_its_limit():
    pulled = []

    class Endless(httpx.SyncByteStream):  # 64 MiB: "endless" to a reader that stops at 64 KiB
        def __iter__(self):
            while len(pulled) < 4096:
                pulled.append(1)
                yield b"x" * (16 << 10)

    api, _ = client(lambda request: httpx.Response(500, stream=Endless()))
    with pytest.raises(ServerError, match=r"failed \(500\)\. The server said: x{300}$"):
        api.models()
    assert len(pulled) == 4  # 64 KiB


def test_a_nodes_choices_are_read_from_either_group_and_either_form(fake):
    client = ComfyClient(fake.url)
    for spec in ({"optional": {"model_name": [["a.pth", "b\n", 5]]}},
                 {"required": {"model_name": ["COMBO", {"options": ["a.pth"]}]}},
                 {"required": {"other": [["x"]]}, "optional": {"model_name": [["a.pth"]]}}):
        fake.set("/object_info/UpscaleModelLoader", {"UpscaleModelLoader": {"input": spec}})
        assert client.input_choices("UpscaleModelLoader", "model_name") == ["a.pth"], spec
    for spec in ({"required": {"model_name": "x"}}, {"required": {"model_name": []}},
                 {"required": {"model_name": ["COMBO", {"options": "a"}]}}, "x"):
        fake.set("/object_info/UpscaleModelLoader", {"UpscaleModelLoader": {"input": spec}})
        assert client.input_choices("UpscaleModelLoader", "model_name") == [], spec
    client.close()


def test_a_refused_workflows_reasons_are_cut_to_a_readable_length(fake):
    fake.set("/prompt", {"error": {"message": "m" * 300, "details": "d" * 300},
                         "node_errors": {"n" * 30: {"errors": [{"message": "e" * 300}]}}},
             status=400)
    client = ComfyClient(fake.url)
    with pytest.raises(comfyui.ServerError) as refused:
        client.submit({"1": {"class_type": "X", "inputs": {}}})
    assert str(refused.value).endswith(
        "refused the workflow: " + "m" * 200 + " (" + "d" * 200 + "); node " + "n" * 20
        + ": " + "e" * 200)
    client.close()


def test_events_that_end_or_measure_a_job_are_read_exactly():
    client = ComfyClient("http://127.0.0.1:9")

    def after(*events) -> tuple[dict, list]:
        state = {"started": None, "done": False, "error": "", "interrupted": False,
                 "heard": 0.0}
        progress = []
        for event in events:
            client._handle(json.dumps(event), "p-1", state,
                           lambda v, m, n: progress.append((v, m, n)), None, None)
        return state, progress

    assert after({"type": "execution_success", "data": {"prompt_id": "p-1"}})[0]["done"]
    assert not after({"type": "execution_success", "data": {"prompt_id": "p-2"}})[0]["done"]
    assert not after({"type": "execution_success", "data": {}})[0]["done"]  # not ours to end
    assert after({"type": "executing", "data": {"prompt_id": "p-1", "node": None}})[0]["done"]
    assert not after({"type": "executing", "data": {"node": None}})[0]["done"]
    _, progress = after({"type": "progress", "data": {"value": 1, "max": 1, "node": "3"}},
                        {"type": "progress", "data": {"value": 9, "max": 4, "node": "x" * 99}},
                        {"type": "progress", "data": {"value": -2, "max": 4}},
                        {"type": "progress", "data": {"value": 1, "max": 0}})
    assert progress == [(1, 1, "3"), (4, 4, "x" * 64), (0, 4, "")]
    state, _ = after({"type": "execution_start", "data": {"prompt_id": "p-1"}})
    assert state["started"] is not None
