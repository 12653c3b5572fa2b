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
    assert panel.view.after is not None and panel.view.after.width() == 24


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
