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
