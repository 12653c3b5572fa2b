"""Everyday use through the real window: the Jobs dock says "stopped", shows elapsed time
and new jobs; ETAs say "estimating…" until they know; a Hugging Face id is questioned when
entered with downloads off; a truncated MIDI is told in plain words."""

from __future__ import annotations

import pytest

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Job, JobEvent, JobEventKind, JobState, Request, Result
from creative_studio.io.midi import read_notes
from creative_studio.ui.jobs import format_eta

pytestmark = pytest.mark.gui


def test_the_jobs_dock_says_stopped_elapsed_and_scrolls_to_new_jobs(make_window):
    window = make_window()
    view = window.jobs_view
    view.resize(400, 120)
    jobs = [Job(Request("text", "generate", f"job {i}"), label=f"job {i}") for i in range(40)]
    for job in jobs:
        view.on_event(JobEvent(JobEventKind.QUEUED, job))
    last = view.row(jobs[-1].id)
    assert view.tree.visualItemRect(last).intersects(view.tree.viewport().rect())
    job = jobs[0]
    job.state = JobState.RUNNING
    view.on_event(JobEvent(JobEventKind.PROGRESS, job, 0.1, None, "Once"))
    row = view.row(job.id)
    assert row.text(3) == "estimating…" and row.text(4).endswith(" s")
    job.state = JobState.DONE
    job.result = Result([], None, "cpu", metadata={"stopped": True})
    view.on_event(JobEvent(JobEventKind.DONE, job))
    assert row.text(1) == "stopped"
    assert format_eta(None) == "estimating…" and format_eta(75) == "1 min 15 s"


def test_a_hub_id_is_questioned_when_entered_with_downloads_off(make_window):
    window = make_window()
    panel = window.panels["text"]
    assert not window.settings.allow_downloads
    panel.add_hub_id("nobody/not-cached-here")
    assert "downloads are off" in panel.message.text() and panel.message.isVisible()
    assert panel.model.currentData() == "hub:nobody/not-cached-here"


def test_a_truncated_midi_is_told_in_plain_words():
    from bench.faults.mutations import make_midi

    with pytest.raises(BadInput) as caught:
        read_notes(make_midi()[:30], "tune.mid")
    assert str(caught.value) == "tune.mid is damaged or truncated: it cannot be read as MIDI."


def test_help_plugins_says_version_folder_models_and_errors(make_window, monkeypatch,
                                                            tmp_path):
    from pathlib import Path

    from creative_studio.plugins import PluginRegistry
    from creative_studio.plugins.registry import PATH_VARIABLE

    broken = tmp_path / "plugins" / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.toml").write_text("id = 'broken'\nname = 3\n")
    folder = Path(__file__).parent / "fifth_plugin"
    monkeypatch.setenv(PATH_VARIABLE, f"{folder}:{tmp_path / 'plugins'}")
    window = make_window(PluginRegistry.discover(entry_points=False))
    text = window.plugins_text()
    assert "Text (text), version built in, " in text and "SmolLM2 135M Instruct" in text
    assert "Speech (speech), version 0.3 — ok" in text and str(folder) in text
    assert "broken" in text and "error:" in text


def test_preferences_default_folder_starts_the_dialogs(make_window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from creative_studio.ui.settings_dialog import SettingsDialog

    window = make_window()
    dialog = SettingsDialog(window.settings, window)
    dialog.default_folder.setText(str(tmp_path))
    dialog.threads.setValue(1)
    dialog.model_process.setChecked(False)
    dialog.apply()
    assert window.settings.cpu_threads == 1 and window.settings.model_process is False
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(
        lambda parent, title, start, file_filter="": (asked.append(start), ("", ""))[1]))
    window.open_dialog()
    assert asked == [str(tmp_path)]


def test_play_without_an_audio_output_says_why_and_offers_wav(qtbot, make_window,
                                                              monkeypatch, tmp_path):
    from plugins.music import panel as music_panel

    monkeypatch.setattr(music_panel, "PLAYERS", (
        ("sh", ["-c", "echo 'aplay: main:831: audio open error: No such file' >&2; exit 1",
                "player"]),))
    window = make_window()
    panel = window.panels["music"]
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    panel._play(wav)
    qtbot.waitUntil(lambda: panel._player is None, timeout=10_000)
    assert "no audio output" in panel.message.text() and "Export WAV" in panel.message.text()
    assert "audio open error" not in panel.message.text()  # the log has it, not the panel
    assert panel.play_button.text() == "▶ Play"


def test_eight_bars_of_three_four_are_drawn_as_eight(make_window):
    from creative_studio.io.midi import Note

    window = make_window()
    roll = window.panels["music"].roll
    roll.set_notes([Note(0.0, 1.0, 60), Note(22.0, 2.002, 62)], bar=3.0)  # a tick past
    assert roll.length() == 24.0


@pytest.mark.model
@pytest.mark.parametrize("plugin_id", ["image", "music"])
def test_image_and_music_show_their_queued_jobs(qtbot, make_window, plugin_id):
    window = make_window()
    panel = window.panels[plugin_id]
    window.tabs.setCurrentWidget(panel)
    if plugin_id == "image":
        panel.prompt.setPlainText("a red heart")
    first = panel.generate()
    second = panel.generate()
    assert first and second
    assert "queued" in panel.queue_label.text()  # said at once, before any job runs
    qtbot.waitUntil(lambda: not panel.jobs, timeout=120_000)
    assert panel.queue_label.text() == ""
    assert all(j.state is JobState.DONE for j in first + second), \
        [j.error for j in first + second]


def test_keep_bars_is_hidden_with_its_label_for_a_new_idea(make_window):
    from PySide6.QtWidgets import QLabel

    window = make_window()
    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    panel.task.setCurrentIndex(panel.task.findData("generate"))
    shown = [label.text() for label in panel.side_scroll.widget().findChildren(QLabel)
             if label.isVisible()]
    assert not panel.keep_bars.isVisible() and not any("Keep" in t for t in shown)
    panel.task.setCurrentIndex(panel.task.findData("continue"))
    assert panel.keep_bars.isVisible()


def test_open_png_on_a_text_file_says_it_plainly(make_window, tmp_path):
    window = make_window()
    panel = window.panels["image"]
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all")
    assert panel.recall_png(notes) is None
    assert panel.message.text() == "notes.png is not a PNG the studio can read."
    assert "BytesIO" not in panel.message.text()


def test_the_window_fits_1024_by_700_at_150_and_200_percent(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = ("from PySide6.QtWidgets import QApplication; app = QApplication([]);"
              "from creative_studio.core.settings import Settings;"
              "from creative_studio.plugins import PluginRegistry;"
              "from creative_studio.ui.main_window import MainWindow;"
              "w = MainWindow(PluginRegistry.discover(entry_points=False), "
              "Settings(model_process=False)); w.show();"
              "h = w.minimumSizeHint(); print('MIN', h.width(), h.height())")
    for factor in ("1.5", "2"):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR=factor,
                   CREATIVE_STUDIO_HOME=str(tmp_path / factor), PYTHONPATH=str(root),
                   CREATIVE_STUDIO_NO_PRELOAD="1")
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=root,
                             capture_output=True, text=True, timeout=120)
        width, height = map(int, out.stdout.split("MIN")[1].split())
        assert width <= 1024 and height <= 700, (factor, width, height)
