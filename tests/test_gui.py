"""The real window, driven like a user would (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from creative_studio.core import project as project_mod
from creative_studio.core.jobs import JobState, Request
from creative_studio.plugins import PluginRegistry
from tests.helpers import write_plugin

pytestmark = pytest.mark.gui
MODEL_TIMEOUT = 180_000


def generate(qtbot, window, prompt="Write one sentence about a cat.", tokens=16, seed=7,
             alternatives=1):
    panel = window.panels["text"]
    panel.instruction.setPlainText(prompt)
    panel.max_tokens.setValue(tokens)
    panel.seed.setValue(seed)
    panel.seed_mode.setCurrentText("fixed")
    panel.alternatives.setValue(alternatives)
    before = window.store.count()
    qtbot.mouseClick(panel.generate_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.store.count() == before + alternatives and panel._stream is None
                    and panel.generate_button.isEnabled(), timeout=MODEL_TIMEOUT)
    return panel


@pytest.mark.model
def test_text_panel_generates_with_the_embedded_model(qtbot, make_window, smollm_folder):
    window = make_window()
    panel = window.panels["text"]
    panel.editor.setPlainText("Notes:\n")
    cursor = panel.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    panel.editor.setTextCursor(cursor)
    generate(qtbot, window)
    item = window.store.items()[-1]
    text = window.store.item_text(item)
    assert text.strip()
    # no cursor placed by the user: the reply is a new paragraph at the end
    assert panel.editor.toPlainText() == "Notes:\n\n" + text
    assert item.request.seed == 7 and item.model["source"] == "embedded"
    assert window.history.tree.topLevelItemCount() == 1
    row = window.jobs_view.tree.topLevelItem(0)
    assert row.text(1) == "done"
    assert panel.word_count.text().startswith(f"{len(panel.editor.toPlainText().split())} words · ")
    assert not panel.editor.isReadOnly()


@pytest.mark.model
def test_recall_and_seeded_rerun_give_the_same_text(qtbot, make_window, smollm_folder):
    window = make_window()
    panel = generate(qtbot, window, prompt="Write a short motto for a bakery.", seed=123)
    original = window.store.items()[-1]
    # change everything, then recall
    panel.instruction.setPlainText("something else")
    panel.temperature.setValue(1.5)
    panel.seed.setValue(1)
    window.history.select(original.id)
    window.history.buttons["all"].click()
    assert panel.instruction.toPlainText() == "Write a short motto for a bakery."
    assert panel.seed.value() == 123 and panel.seed_mode.currentText() == "fixed"
    assert abs(panel.temperature.value() - original.request.params["temperature"]) < 1e-6
    # regenerate from the recalled settings: identical text
    panel.editor.clear()
    generate(qtbot, window, prompt=panel.instruction.toPlainText(), seed=panel.seed.value())
    again = window.store.items()[-1]
    assert window.store.item_text(again) == window.store.item_text(original)
    # "Re-run" from the history: identical too, with the original as parent
    window.history.select(original.id)
    job = window.rerun(original)
    assert window.runner.wait(job, timeout=120), "the re-run did not finish"
    qtbot.waitUntil(lambda: window.store.count() == 3, timeout=MODEL_TIMEOUT)
    rerun = window.store.items()[-1]
    assert rerun.parents == [original.id]
    assert window.store.item_text(rerun) == window.store.item_text(original)


@pytest.mark.model
def test_alternatives_are_kept_as_branches(qtbot, make_window, smollm_folder):
    window = make_window()
    generate(qtbot, window, prompt="Suggest a name for a cat.", tokens=8, alternatives=2)
    first, second = window.store.items()
    assert first.request.params["group"] == second.request.params["group"]
    assert second.request.seed == first.request.seed + 1
    assert window.history.tree.topLevelItemCount() == 1
    assert window.history.tree.topLevelItem(0).childCount() == 1


@pytest.mark.model
def test_stop_keeps_what_was_written(qtbot, make_window, smollm_folder):
    window = make_window()
    panel = window.panels["text"]
    panel.instruction.setPlainText("Write a long story about a dragon and a knight.")
    panel.max_tokens.setValue(400)
    panel.generate_button.click()
    qtbot.waitUntil(lambda: len(panel.editor.toPlainText()) > 20, timeout=MODEL_TIMEOUT)
    assert panel.editor.isReadOnly()  # the editor is locked while tokens stream in
    panel.stop_button.click()
    qtbot.waitUntil(lambda: panel._stream is None, timeout=MODEL_TIMEOUT)
    item = window.store.items()[-1]
    assert item.metadata["stopped"] is True
    assert panel.editor.toPlainText() == window.store.item_text(item)


def test_empty_prompt_shows_a_message_and_queues_nothing(qtbot, make_window):
    window = make_window()
    panel = window.panels["text"]
    panel.instruction.setPlainText("  ")
    panel.generate_button.click()
    assert panel.message.isVisible() or panel.message.text()
    assert "instruction" in panel.message.text()
    assert window.runner.jobs == []
    panel.editor.setPlainText("")
    panel.continue_button.click()
    assert "Nothing to continue" in panel.message.text()


def test_bad_project_files_show_an_error_and_keep_the_work(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["text"]
    panel.editor.setPlainText("my precious draft")
    store = window.store
    for content in (b"", b"not a project at all", b"SQLite format 3\x00" + b"\x01" * 3000):
        bad = tmp_path / "bad.csproj"
        bad.write_bytes(content)
        assert window.open_project(bad) is False
    assert window.open_project(tmp_path / "missing.csproj") is False
    assert len(window.errors) == 4 and all(window.errors)
    assert window.store is store
    assert panel.editor.toPlainText() == "my precious draft"


def test_drafts_are_autosaved_and_survive_reopen_and_crash(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["text"]
    panel.editor.setPlainText("a draft that must not be lost")
    window.autosave()
    untitled = window.store.path
    # crash: the process that owned the unsaved project is gone
    window.store.close()
    (untitled.with_name(untitled.name + ".owner")).write_text("999999999")
    other = make_window()
    assert other.panels["text"].editor.toPlainText() == ""
    other.offer_recovery()  # without dialogs it answers "yes"
    assert other.store.path == untitled
    assert other.panels["text"].editor.toPlainText() == "a draft that must not be lost"
    # Save As, then open in a new window
    assert other.save_as(tmp_path / "saved.csproj")
    other.panels["text"].editor.setPlainText("edited after saving")
    other.autosave()
    third = make_window()
    assert third.open_project(tmp_path / "saved.csproj")
    assert third.panels["text"].editor.toPlainText() == "edited after saving"
    assert str((tmp_path / "saved.csproj").resolve()) in third.settings.recent_files


def test_a_broken_plugin_shows_its_error_and_the_others_work(qtbot, make_window, tmp_path):
    from creative_studio.plugins.registry import _builtin_root

    write_plugin(tmp_path, "broken", id="broken", name="Broken",
                 panel="tests.fake_plugin:BrokenPanel")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "plugin.toml").write_text("this is not toml")
    registry = PluginRegistry.discover([_builtin_root(), tmp_path], entry_points=False)
    window = make_window(registry)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Text" in titles and "⚠ Broken" in titles and "⚠ garbled" in titles
    assert "text" in window.panels and "broken" not in window.panels
    assert "broken on purpose" in registry.get("broken").error


def test_jobs_view_cancel_remove_and_clear(qtbot, make_window, tmp_path):
    from creative_studio.plugins.registry import _builtin_root

    write_plugin(tmp_path, "rev", id="rev", name="Reverse")
    window = make_window(PluginRegistry.discover([_builtin_root(), tmp_path],
                                                 entry_points=False))
    slow = {"steps": 2000, "step_seconds": 0.01}
    running = window.submit(Request("rev", "generate", "abc", dict(slow)))
    queued = [window.submit(Request("rev", "generate", f"q{i}")) for i in range(3)]
    view = window.jobs_view
    qtbot.waitUntil(lambda: running.state is JobState.RUNNING and view.row(running.id)
                    is not None and view.row(queued[0].id) is not None)
    view.tree.setCurrentItem(view.row(queued[0].id))
    view.remove_button.click()
    qtbot.waitUntil(lambda: view.row(queued[0].id) is None)
    view.clear_button.click()
    qtbot.waitUntil(lambda: view.tree.topLevelItemCount() == 1)
    view.tree.setCurrentItem(view.row(running.id))
    view.cancel_button.click()
    qtbot.waitUntil(lambda: running.state is JobState.CANCELLED, timeout=10_000)
    qtbot.waitUntil(lambda: view.row(running.id).text(1) == "cancelled")
    assert window.store.count() == 0


def test_theme_toggle_and_menus(qtbot, make_window):
    window = make_window()
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Edit", "&Run", "&View", "&Help"]
    window.toggle_theme()
    from PySide6.QtWidgets import QApplication

    assert QApplication.instance().property("studio_theme") == "dark"
    window.toggle_theme()
    assert QApplication.instance().property("studio_theme") == "light"


@pytest.mark.model
def test_screenshot_of_the_real_window(qtbot, make_window, smollm_folder, tmp_path):
    """The window as a user sees it, grabbed to a PNG (looked at: docs/screenshot.png)."""
    window = make_window()
    window.resize(1280, 820)
    generate(qtbot, window, prompt="Write the first line of a poem about the sea.", tokens=24)
    image = window.grab().toImage()
    path = tmp_path / "window.png"
    assert image.save(str(path))
    assert image.width() >= 1000 and image.height() >= 700
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37)
               for y in range(0, image.height(), 29)}
    assert len(colours) > 20  # not a blank window


@pytest.mark.skipif(not __import__("shutil").which("xvfb-run"), reason="Xvfb not installed")
def test_studio_starts_on_a_real_x_server(tmp_path):
    """`python main.py` on Xvfb (the xcb platform, as on a desktop): first paint, clean exit."""
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    out = subprocess.run(["xvfb-run", "-a", sys.executable, "main.py", "--exit-after-paint"],
                         capture_output=True, text=True, timeout=120, env=env,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert "FIRST_PAINT" in out.stdout and "torch_loaded=False" in out.stdout
    assert project_mod.recoverable() == []  # an empty untitled project leaves nothing behind


def test_disk_full_shows_a_message_and_keeps_the_result(qtbot, make_window, tmp_path):
    from creative_studio.plugins.registry import _builtin_root

    write_plugin(tmp_path, "rev", id="rev", name="Reverse")
    window = make_window(PluginRegistry.discover([_builtin_root(), tmp_path],
                                                 entry_points=False))
    pages = window.store._conn.execute("PRAGMA page_count").fetchone()[0]
    window.store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    job = window.submit(Request("rev", "generate", "abc", {"steps": 9000,
                                                             "step_seconds": 0}))
    qtbot.waitUntil(lambda: job.state is JobState.DONE, timeout=10_000)
    qtbot.waitUntil(lambda: any("disk is full" in e for e in window.errors))
    assert job.item_id is None and len(window.store.pending) == 1
    window.store._conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert window.save_as(tmp_path / "rescued.csproj")  # Save As writes what was pending
    assert window.store.count() == 1 and window.store.pending == []
