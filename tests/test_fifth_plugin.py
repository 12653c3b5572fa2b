"""A fifth plugin joins without any change to the framework: tab, CLI, History, export and
project round trip for tests/fifth_plugin/speech (a new "speech" modality)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from creative_studio.core.jobs import JobState
from creative_studio.plugins import PluginRegistry
from creative_studio.plugins.registry import PATH_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tests" / "fifth_plugin"


@pytest.fixture
def plugin_path(monkeypatch):
    monkeypatch.setenv(PATH_VARIABLE, str(FOLDER))
    return FOLDER


def test_discovered_from_the_plugin_path(plugin_path):
    registry = PluginRegistry.discover(entry_points=False)
    record = registry.get("speech")
    assert record.ok and record.manifest.modality == "speech"
    assert [t.id for t in record.manifest.tasks] == ["say"]
    assert [p.name for p in record.manifest.params] == ["pitch", "rate", "voice", "whisper"]
    assert record.load("generator").__name__ == "SpeechGenerator"
    assert registry.get("text").ok  # the built-in plugins are still there


@pytest.mark.gui
def test_tab_history_export_and_project_round_trip(qtbot, make_window, plugin_path,
                                                   tmp_path):
    window = make_window(PluginRegistry.discover(entry_points=False))
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Speech" in titles
    panel = window.panels["speech"]
    panel.prompt.setText("hello studio")
    panel.param_widget("pitch").setValue(220.0)
    panel.param_widget("voice").setCurrentIndex(2)  # dark
    panel.param_widget("whisper").setChecked(True)
    panel.seed_field.mode.setCurrentText("fixed")
    panel.seed_field.seed.setValue(77)
    with qtbot.waitSignal(window.events.event, timeout=30_000,
                          check_params_cb=lambda e: e.kind.value == "done"):
        (job,) = panel.say()
    assert job.state is JobState.DONE, job.error
    item = window.store.item(job.item_id)
    assert item.request.params == {"pitch": 220.0, "rate": 12, "voice": "dark",
                                   "whisper": True}
    assert item.request.seed == 77 and item.request.model == "embedded:formant"
    assert panel.results.count() == 1 and not panel.jobs
    window.history.refresh(select=item.id)
    assert window.history.current_item().id == item.id
    exported = tmp_path / "hello.wav"
    assert panel.export(item, exported)
    with wave.open(str(exported)) as audio:
        assert audio.getframerate() == 16000 and audio.getnframes() > 1000
    recipe = json.loads((tmp_path / "hello.recipe.json").read_text())
    assert recipe["request"]["params"]["voice"] == "dark"
    # the settings come back with the project
    saved = tmp_path / "speech.csproj"
    assert window.save_as(saved)
    window.new_project()
    panel.param_widget("pitch").setValue(100.0)
    panel.param_widget("whisper").setChecked(False)
    assert window.open_project(saved)
    assert panel.param_widget("pitch").value() == 220.0
    assert panel.param_widget("voice").currentData() == "dark"
    assert panel.param_widget("whisper").isChecked()
    assert panel.seed_field.seed.value() == 77 and panel.seed_field.mode.currentText() == "fixed"
    # History → Use all puts a recipe back into the panel
    panel.param_widget("pitch").setValue(100.0)
    window.recall(item, "all")
    assert panel.param_widget("pitch").value() == 220.0 and panel.prompt.text() == "hello studio"


def test_command_line(plugin_path, tmp_path):
    env = {**os.environ, PATH_VARIABLE: str(plugin_path)}

    def cli(*args):
        return subprocess.run([sys.executable, "main.py", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=120, env=env)

    help_text = cli("generate", "speech", "--help")
    assert help_text.returncode == 0
    assert "--pitch" in help_text.stdout and "--whisper" in help_text.stdout
    assert "Choices: neutral, bright, dark" in help_text.stdout
    project, out = tmp_path / "s.csproj", tmp_path / "say.wav"
    made = cli("generate", "speech", "--project", str(project), "--prompt", "hi there",
               "--voice", "bright", "--seed", "5", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert out.read_bytes()[:4] == b"RIFF"
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    assert items[0]["request"]["params"] == {"pitch": 140.0, "rate": 12, "voice": "bright",
                                             "whisper": False}
    bad = cli("generate", "speech", "--project", str(project), "--prompt", "x",
              "--rate", "100")
    assert bad.returncode == 2 and "Letters per second must be between 2 and 30" in bad.stderr
    empty = cli("generate", "speech", "--project", str(project))
    assert empty.returncode == 2 and "Write a prompt for Speech first" in empty.stderr
