"""What the window does when things go wrong (issue 26's untested paths): a failed job,
quitting or switching projects while jobs run, exports that cannot be written, audio that
cannot be rendered or played, Upscale's failed and cancelled jobs."""

from __future__ import annotations

import errno

import pytest

from creative_studio.core.jobs import JobEvent, JobEventKind, JobState, Request
from creative_studio.core.project import ProjectStore
from creative_studio.plugins import PluginRegistry
from tests.helpers import write_plugin


@pytest.fixture
def window(make_window, tmp_path):
    from creative_studio.plugins.registry import _builtin_root

    write_plugin(tmp_path / "plugins", "rev", id="rev", name="Reverse")
    return make_window(PluginRegistry.discover([_builtin_root(), tmp_path / "plugins"],
                                               entry_points=False))


def running_job(qtbot, window, **params):
    """A Reverse job that runs until cancelled (it has started and reported progress)."""
    job = window.submit(Request("rev", "generate", "abc", {"steps": 100_000,
                                                           "step_seconds": 0.01, **params}))
    qtbot.waitUntil(lambda: job.state is JobState.RUNNING and job.progress.fraction > 0,
                    timeout=30_000)
    return job


def test_a_failed_job_is_shown_in_the_status_bar_the_jobs_view_and_the_panel(qtbot, window):
    job = window.submit(Request("rev", "generate", "explode"))
    qtbot.waitUntil(lambda: job.state is JobState.FAILED, timeout=30_000)
    qtbot.waitUntil(lambda: job.error in window.errors)
    assert job.error.startswith("Out of memory")
    row = window.jobs_view.row(job.id)
    qtbot.waitUntil(lambda: row.text(1).startswith("failed: Out of memory"))
    assert row.toolTip(1) == job.error
    assert window.statusBar().currentMessage() == f"Failed: {job.error}"
    assert window.store.count() == 0


def test_quitting_while_a_job_runs_asks_and_no_keeps_everything(qtbot, window):
    job = running_job(qtbot, window)
    window.close()  # no dialogs in tests: the answer is the default, No
    assert window.isVisible() and not window.store.closed
    assert job.state is JobState.RUNNING
    answers = []
    window.ask = lambda title, text, buttons, default, headless=None: \
        answers.append(title) or __import__("PySide6.QtWidgets").QtWidgets.QMessageBox \
        .StandardButton.Yes
    window.close()
    assert answers[0] == "Quit" and not window.isVisible()
    assert job.state is JobState.CANCELLED and window.store.closed
    assert not any(w.is_alive() for w in window.runner._workers.values())


def test_switching_projects_while_a_job_runs(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    other = tmp_path / "other.csproj"
    ProjectStore.create(other).close()
    first_store = window.store
    job = running_job(qtbot, window)
    assert window.open_project(other) is False  # default No: stay, the job goes on
    assert window.store is first_store and job.state is JobState.RUNNING
    window.ask = lambda *args, **kwargs: QMessageBox.StandardButton.Yes
    assert window.open_project(other) is True
    assert window.store.path == other and job.state is JobState.CANCELLED
    assert window.store.count() == 0  # nothing of the cancelled job went anywhere
    done = window.submit(Request("rev", "generate", "new"))
    qtbot.waitUntil(lambda: done.state is JobState.DONE and window.store.count() == 1,
                    timeout=30_000)


@pytest.mark.parametrize("error, says", [
    (OSError(errno.ENOSPC, "No space left on device"), "The disk is full"),
    (PermissionError(errno.EACCES, "Permission denied", "/exports/out.txt"),
     "Permission denied: /exports/out.txt"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone/out.txt"),
     "File not found: /gone/out.txt"),
    (OSError(errno.EROFS, "Read-only file system", "/media/cd/out.txt"),
     "read-only"),
])
def test_exports_that_cannot_be_written_say_why_in_plain_words(qtbot, window, tmp_path,
                                                               monkeypatch, error, says):
    from creative_studio.core import files

    job = window.submit(Request("rev", "generate", "abc"))
    qtbot.waitUntil(lambda: job.state is JobState.DONE and bool(job.item_id), timeout=30_000)
    item = window.store.item(job.item_id)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(files, "atomic_write", fail)
    assert window.export_item(item, tmp_path / "out.txt") is False
    assert says in window.errors[-1] and "Errno" not in window.errors[-1]
    assert not (tmp_path / "out.txt").exists()


def test_music_audio_that_cannot_be_rendered_or_played_is_told(qtbot, make_window,
                                                               monkeypatch, tmp_path):
    from creative_studio.io import midi
    from plugins.music import panel as music_panel

    window = make_window()
    panel = window.panels["music"]

    def broken(data):
        raise RuntimeError("the soundfont is damaged")

    monkeypatch.setattr(midi, "render_wav", broken)
    previews = tmp_path / "previews"
    previews.mkdir()
    panel.renderer.render("item", b"MThd", previews)
    qtbot.waitUntil(lambda: "Could not render audio" in panel.message.text(), timeout=10_000)
    assert "the soundfont is damaged" in panel.message.text()
    assert panel.audio_label.text() == "" and not list(previews.iterdir())
    monkeypatch.setattr(music_panel, "PLAYERS", (("no-such-audio-player-here", []),))
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    panel._play(wav)
    assert "No audio player found" in panel.message.text() and panel._player is None
    assert panel.play_button.text() == "▶ Play"


def test_upscale_shows_failed_and_cancelled_jobs_and_refuses_an_empty_export(
        qtbot, make_window, tmp_path):
    from PIL import Image

    window = make_window()
    panel = window.panels["upscale"]
    picture = tmp_path / "p.png"
    Image.new("RGB", (8, 8), "red").save(picture)
    source = panel.open_file(picture)
    assert source
    panel.export_dialog()  # nothing upscaled yet
    assert "Upscale a picture first" in panel.message.text()
    for state, error, shown in ((JobState.FAILED, "The model file is damaged.", "Failed"),
                                (JobState.CANCELLED, "", "Cancelled")):
        job = window.runner.submit(Request("upscale", "upscale", params={},
                                           parents=[source]), store=window.store)
        window.runner.cancel(job.id)  # a job object for the panel to show; it never runs
        panel.jobs[job.id] = job
        panel.sources_of[job.id] = source
        job.state, job.error = state, error
        kind = JobEventKind.FAILED if state is JobState.FAILED else JobEventKind.CANCELLED
        panel.handle_event(JobEvent(kind, job))
        assert panel.info.text() == shown and job.id not in panel.sources_of
        assert job.id not in panel.jobs and panel.upscale_button.text() == "Upscale"
        if error:
            assert panel.message.text() == error
    assert panel.results == {}
