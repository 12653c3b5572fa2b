"""The current view comes back with the project (the real window and models): Upscale's
selection and compare view, the Music panel's piano roll."""

from __future__ import annotations

import pytest
from PIL import Image

from creative_studio.core.jobs import JobState

pytestmark = [pytest.mark.gui, pytest.mark.model]


def test_upscale_selection_and_compare_view_come_back(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    for index, color in enumerate(("red", "green", "blue")):
        Image.new("RGB", (12, 8), color).save(tmp_path / f"p{index}.png")
    panel.open_files([tmp_path / f"p{i}.png" for i in range(3)])
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    panel.sources.clearSelection()
    panel.sources.setCurrentRow(1)
    (job,) = panel.upscale()
    qtbot.waitUntil(lambda: job.state.finished and not panel.jobs, timeout=60_000)
    assert job.state is JobState.DONE, job.error
    chosen = panel.selected_sources()
    assert len(chosen) == 1
    assert window.save_as(tmp_path / "up.csproj")
    window.new_project()
    assert panel.sources.count() == 0
    assert window.open_project(tmp_path / "up.csproj")
    assert panel.sources.count() == 3
    assert panel.selected_sources() == chosen  # not every picture pre-selected
    qtbot.waitUntil(lambda: panel.view.after is not None and panel.view.after.width() == 24,
                    timeout=10_000)  # decoded off the GUI thread


def test_the_piano_roll_shows_again_what_it_showed(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["music"]
    panel.bars.setValue(2)
    panel.generate()
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished and not panel.jobs, timeout=120_000)
    assert job.state is JobState.DONE, job.error
    shown = list(panel.roll.notes)
    assert shown
    assert window.save_as(tmp_path / "tune.csproj")
    window.new_project()
    assert panel.roll.notes == [] or panel.current is None
    assert window.open_project(tmp_path / "tune.csproj")
    assert panel.current is not None and panel.current.id == job.item_id
    assert panel.roll.notes == shown


def test_upscale_pictures_are_decoded_off_the_gui_thread_and_the_latest_choice_wins(
        qtbot, make_window, tmp_path, monkeypatch):
    """A 5-MP result took ~150 ms to decode on the GUI thread: decoding is a thread's, and a
    decode that finishes late (a picture chosen before) never replaces the one chosen now."""
    import threading
    import time

    from PIL import Image

    window = make_window()
    panel = window.panels["upscale"]
    for name, size in (("a.png", (30, 20)), ("b.png", (50, 40))):
        Image.new("RGB", size, (10, 200, 30)).save(tmp_path / name)
    panel.open_files([tmp_path / "a.png", tmp_path / "b.png"])
    threads = []
    decode = panel.loader._decode

    def slow_first(token, datas):
        threads.append(threading.current_thread().name)
        if token == first[0]:
            time.sleep(0.3)  # the first picture's decode ends after the second's
        decode(token, datas)

    monkeypatch.setattr(panel.loader, "_decode", slow_first)
    first = [panel.loader.token + 1]
    panel.sources.setCurrentRow(0)
    panel.sources.setCurrentRow(1)
    qtbot.waitUntil(lambda: panel.view.before is not None and panel.view.before.width() == 50,
                    timeout=10_000)
    qtbot.wait(500)  # the late decode of a.png has come and gone
    assert panel.view.before.width() == 50 and panel.view.after is None
    assert threads and all(name == "studio-image-decode" for name in threads)
