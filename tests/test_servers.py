"""Text on OpenAI-compatible servers: the client against a misbehaving fake server, the
Text plugin through the runner, keys in the keyring only, the CLI's servers command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from creative_studio.core import secrets
from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.settings import Settings
from creative_studio.plugins import PluginRegistry
from creative_studio.workers.runner import JobRunner
from tests.fake_openai import FakeOpenAI
from tests.helpers import window_with_server

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("httpx")


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def client(url, key=""):
    from creative_studio.engines.openai import OpenAIClient

    return OpenAIClient(url, key, read_timeout=3.0)


def stream_text(url, model, key="", endpoint="/chat/completions"):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return "".join(c.text for c in client(url, key).stream(endpoint, body, lambda: False))


def test_models_and_streams(fake):
    assert client(fake.url).models()[:2] == ["ok", "slow-ok"]
    assert stream_text(fake.url, "ok") == "Hello from the fake server."
    assert stream_text(fake.url + "/v1/", "ok", endpoint="/completions") == \
        "Hello from the fake server."
    assert fake.requests[-1]["path"] == "/v1/completions"
    assert fake.requests[-1]["body"]["stream"] is True


@pytest.mark.parametrize("model, message", [
    ("unauthorized", "refused the API key (403)"),
    ("busy", "is busy (429). It asks to retry in 7 s."),
    ("fail", "failed (500). The server said: CUDA error: device lost"),
    ("nope", "has no such model or endpoint (404). The server said: model 'nope' not found"),
    ("garbage", "not an OpenAI-compatible reply (a line that is not JSON)"),
    ("not-object", "not an OpenAI-compatible reply (a reply that is not a JSON object)"),
    ("huge", "a reply larger than the studio reads"),
    ("cut", "ended the reply before saying it was done"),
    ("silent", "did not answer within 3 s"),
])
def test_failures_in_plain_words(fake, model, message):
    from creative_studio.engines.openai import ServerError

    with pytest.raises(ServerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stream_text(fake.url, model)


def test_a_wrong_key_and_a_port_with_nothing_behind_it():
    from creative_studio.engines.openai import ServerError

    with FakeOpenAI(key="right") as server:
        assert client(server.url, "right").models()
        with pytest.raises(ServerError, match=r"refused the API key \(401\).*Invalid API key"):
            client(server.url, "wrong").models()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ServerError, match="Cannot reach the server"):
        client(f"http://127.0.0.1:{port}").models()


def test_stop_closes_a_slow_stream(fake):
    from creative_studio.engines.openai import OpenAIClient

    got = []
    body = {"model": "slow-ok", "messages": []}
    for chunk in OpenAIClient(fake.url).stream("/chat/completions", body,
                                               lambda: len(got) >= 2):
        got.append(chunk.text)
    assert got == ["Hello", " from"]


def settings_with(*servers, **kw) -> Settings:
    return Settings(servers=[{"name": n, "url": u, "kind": "openai"} for n, u in servers],
                    **kw)


def run_text(settings, store=None, listener=None, **request):
    runner = JobRunner(PluginRegistry.discover(entry_points=False), listener,
                       settings=settings)
    try:
        job = runner.submit(Request("text", **request), store=store)
        assert runner.wait(job, timeout=60), "the job did not finish"
        return job
    finally:
        runner.shutdown()


def test_text_jobs_on_a_server_keep_their_provenance(fake, tmp_path):
    from creative_studio.core import logs
    from creative_studio.core.project import ProjectStore

    logs.setup()
    secrets.put("server:fake", "sk-secret-123")
    store = ProjectStore.create(tmp_path / "p.csproj")
    settings = settings_with(("fake", fake.url))
    job = run_text(settings, store, task="generate", prompt="Say hello", model="server:fake/ok",
                   seed=42, params={"system": "Be brief.", "max_tokens": 50})
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert store.item_text(item) == "Hello from the fake server."
    meta = item.metadata
    assert meta["server_url"] == fake.url and meta["server_model"] == "ok"
    assert meta["system_fingerprint"] == "fp_fake_1" and meta["finish_reason"] == "stop"
    assert meta["tokens"] == 5 and item.model["source"] == "server"
    sent = fake.requests[-1]
    assert sent["auth"] == "Bearer sk-secret-123"
    assert sent["body"]["seed"] == 42 and sent["body"]["max_tokens"] == 50
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    cont = run_text(settings, store, task="continue", model="server:fake/ok",
                    params={"context": "Once upon a time"})
    assert cont.state is JobState.DONE and fake.requests[-1]["path"] == "/v1/completions"
    assert fake.requests[-1]["body"]["prompt"] == "Once upon a time"
    store.close()
    settings.save()
    # the key is in the keyring alone: not in the project, the settings, or the log
    for path in (tmp_path / "p.csproj", Settings.path(), logs.log_file()):
        assert b"sk-secret-123" not in path.read_bytes()


def test_a_cut_stream_keeps_what_was_written(fake, tmp_path):
    job = run_text(settings_with(("fake", fake.url)), task="generate", prompt="x",
                   model="server:fake/cut")
    assert job.state is JobState.DONE
    assert job.result.assets[0].data == b"Hello from"
    assert job.result.metadata["finish_reason"] == "interrupted"
    assert "ended the reply" in job.result.metadata["interrupted"]
    assert job.result.title.startswith("(cut off)")


def test_stop_through_the_runner_keeps_the_partial_text(fake):
    runner_ref = {}

    def listener(event):  # Stop as soon as the second word is shown
        if event.kind is JobEventKind.PROGRESS and isinstance(event.preview, str) \
                and event.preview.count(" ") >= 1:
            runner_ref["runner"].cancel(event.job.id)

    runner = JobRunner(PluginRegistry.discover(entry_points=False), listener,
                       settings=settings_with(("fake", fake.url)))
    runner_ref["runner"] = runner
    try:
        job = runner.submit(Request("text", "generate", "x", model="server:fake/slow-ok"))
        assert runner.wait(job, timeout=30)
    finally:
        runner.shutdown()
    assert job.state is JobState.DONE and job.result.metadata["stopped"]
    assert job.result.assets[0].data == b"Hello from"


def test_unknown_servers_and_models_are_plain_failures(fake):
    missing = run_text(settings_with(), task="generate", prompt="x", model="server:gone/ok")
    assert missing.state is JobState.FAILED and "No server named 'gone'" in missing.error
    wrong = run_text(settings_with(("fake", fake.url)), task="generate", prompt="x",
                     model="server:fake/nope")
    assert wrong.state is JobState.FAILED
    assert wrong.error == ("The server fake has no model 'nope' (it lists ok, slow-ok, "
                           "unauthorized, busy, fail, garbage, not-object, cut and 2 more): "
                           "choose one of its models.")
    assert not [r for r in fake.requests if r["body"].get("model") == "nope"]  # never sent


def test_server_names_and_addresses_are_checked():
    from creative_studio.core.errors import BadInput
    from creative_studio.core.servers import ServerConfig, servers_of

    assert ServerConfig.checked(" box ", "http://h:8000/").url == "http://h:8000"
    for name, url, says in (("a/b", "http://h", "server name is 1–40"),
                            ("ok", "ftp://h", "'ftp://h' is not a server address"),
                            ("ok", "http://u:p@h", "API key in its own field"),
                            ("", "http://h", "server name is 1–40")):
        with pytest.raises(BadInput, match=says):
            ServerConfig.checked(name, url)
    with pytest.raises(BadInput, match="Unknown server kind 'gopher'"):
        ServerConfig.checked("ok", "http://h", kind="gopher")
    settings = Settings(servers=[{"name": "ok", "url": "http://h"}, {"name": "x/y"}, "junk"])
    assert [s.name for s in servers_of(settings)] == ["ok"]


def test_servers_from_the_command_line(fake, tmp_path):
    env = {**os.environ}

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "main.py", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=120, env=env, input=stdin)

    added = cli("servers", "add", "fake", fake.url, "--key-stdin", stdin="sk-cli-key\n")
    assert added.returncode == 0, added.stderr
    assert "sk-cli-key" not in Settings.path().read_text()
    listed = cli("servers", "list")
    assert "fake" in listed.stdout and "key in the keyring" in listed.stdout
    tested = cli("servers", "test", "fake")
    assert tested.returncode == 0 and "10 model(s)" in tested.stdout
    project = tmp_path / "cli.csproj"
    made = cli("generate", "text", "--project", str(project), "--prompt", "hi", "--model",
               "server:fake/ok", "--seed", "3", "-n", "2")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Hello from the fake server.")
    assert [r["auth"] for r in fake.requests[-2:]] == ["Bearer sk-cli-key"] * 2
    assert [r["body"]["seed"] for r in fake.requests[-2:]] == [3, 4]  # alternatives: seeds +1
    bad = cli("generate", "text", "--project", str(project), "--prompt", "hi", "--model",
              "server:fake/busy")
    assert bad.returncode == 1 and "is busy (429)" in bad.stderr
    assert cli("servers", "remove", "fake").returncode == 0
    assert "fake" not in cli("servers", "list").stdout
    # no OS keyring (a headless Linux): the key would die with the command — refused
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    refused = cli("servers", "add", "fake", fake.url, "--key-stdin", stdin="sk-lost\n")
    assert refused.returncode == 2
    assert refused.stderr == ("error: No working OS keyring here, so the key cannot be kept: "
                              "fake was not added. Install a Secret Service (GNOME Keyring, "
                              "KWallet), or a keyring backend such as keyrings.alt's "
                              "encrypted file, then add it again.\n")
    assert "fake" not in cli("servers", "list").stdout
    assert "sk-lost" not in Settings.path().read_text()


@pytest.mark.gui
def test_preferences_servers_page(qtbot, fake):
    from creative_studio.ui.settings_dialog import SettingsDialog

    settings = Settings()
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    page = dialog.servers
    page.name.setText("fake")
    page.url.setText(fake.url)
    page.key.setText("sk-typed")
    assert page.save_server() and "key is in the OS keyring" in page.result.text()
    assert page.key.text() == "" and secrets.get("server:fake") == "sk-typed"
    page.test_connection()
    qtbot.waitUntil(lambda: page.result.text().startswith(("✓", "✗")), timeout=20_000)
    assert page.result.text().startswith("✓") and "10 model(s)" in page.result.text()
    dialog.apply()
    assert settings.servers == [{"name": "fake", "url": fake.url, "kind": "openai"}]
    assert "sk-typed" not in json.dumps(settings.servers)


@pytest.mark.gui
def test_a_server_model_streams_into_the_text_panel(qtbot, make_window, fake):
    window = window_with_server(make_window, "fake", fake.url)
    panel = window.panels["text"]
    # the server's models are listed beside the local ones once it answers
    qtbot.waitUntil(lambda: panel.model.findData("server:fake/slow-ok") >= 0, timeout=20_000)
    assert panel.model.itemText(panel.model.findData("server:fake/ok")) == "ok — fake"
    panel.add_model_ref("server:fake/slow-ok", "slow-ok — fake")
    panel.instruction.setPlainText("Greet me")
    previews = []
    window.events.event.connect(lambda e: previews.append(e.preview)
                                if e.kind is JobEventKind.PROGRESS else None)
    panel.generate_button.click()
    qtbot.waitUntil(lambda: panel._stream is None and not panel.jobs, timeout=30_000)
    assert panel.editor.toPlainText() == "Hello from the fake server."
    assert len([p for p in previews if p]) >= 3  # streamed word by word
    item = window.store.items()[-1]
    assert item.metadata["server_model"] == "slow-ok"
    # Re-run sends the same request and says whether the text matched
    job = window.rerun(item)
    assert window.runner.wait(job, timeout=30)
    assert job.result.metadata["rerun_matches"] is True
    assert threading.active_count() < 40  # stream readers do not pile up


def test_error_pages_are_said_in_words_not_markup():
    from creative_studio.engines.openai import _error_detail

    page = (b"<!DOCTYPE html><html><head><title>404 Not Found</title><style>body{}</style>"
            b"</head><body><h1>Not Found</h1><p>The requested URL was not found.</p></body>"
            b"</html>")
    assert _error_detail(page) == "404 Not Found"
    untitled = b"<html><body><h1>Bad &amp; gone</h1>\n<p>try\tlater</p></body></html>"
    assert _error_detail(untitled) == "Bad & gone try later"
    assert _error_detail(b"plain\x00text\r\nover lines") == "plain text over lines"
    assert _error_detail(b"no markup < here") == "no markup < here"
    assert len(_error_detail(b"<p>" + b"x" * 1000 + b"</p>")) == 300
