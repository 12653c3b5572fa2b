"""Humanize (plugins/music/humanize.py): a player's timing and loudness, seeded, bounded."""

from __future__ import annotations

import statistics

import pytest

from creative_studio.io.midi import Note
from plugins.music.humanize import ACCENT, CHORD_SPREAD, MAX_SHIFT, MAX_VELOCITY, humanize


def written(bars: int = 8) -> list[Note]:
    """Eighths with a two-note chord on every beat, two voices."""
    notes = []
    for i in range(bars * 8):
        notes.append(Note(i * 0.5, 0.5, 60 + i % 7, 80, 0))
        if i % 2 == 0:
            notes.append(Note(i * 0.5, 1.0, 48 + i % 5, 70, 1))
    return notes


def test_strength_zero_is_the_notes_as_written():
    notes = written()
    assert humanize(notes, (4, 4), 0.0, seed=1) == notes
    assert humanize([], (4, 4), 1.0, seed=1) == []


def test_the_same_seed_plays_the_same_and_another_seed_differently():
    notes = written()
    assert humanize(notes, (4, 4), 0.7, 5) == humanize(notes, (4, 4), 0.7, 5)
    assert humanize(notes, (4, 4), 0.7, 5) != humanize(notes, (4, 4), 0.7, 6)


@pytest.mark.parametrize("strength", [0.3, 1.0, 7.0])  # above 1 counts as 1
def test_bounded_moves_same_pitches_voices_and_onset_order(strength):
    notes = written()
    played = humanize(notes, (4, 4), strength, 11)
    s = min(1.0, strength)
    assert [(n.pitch, n.voice) for n in played] == [(n.pitch, n.voice) for n in notes]
    shifts = [p.start - n.start for p, n in zip(played, notes, strict=True)]
    assert max(abs(x) for x in shifts) <= MAX_SHIFT * s * (1 + CHORD_SPREAD) + 1e-9
    assert statistics.pstdev(shifts) > MAX_SHIFT * s * 0.1  # it did move them
    assert all(p.start >= 0 and p.duration > 0 for p in played)
    # a later onset never sounds before an earlier one
    order = sorted(range(len(notes)), key=lambda i: notes[i].start)
    for a, b in zip(order, order[1:], strict=False):
        if notes[a].start < notes[b].start:
            assert played[a].start < played[b].start
    assert all(1 <= p.velocity <= 127 for p in played)
    changes = [p.velocity - n.velocity for p, n in zip(played, notes, strict=True)]
    assert max(abs(c) for c in changes) <= round(s * (ACCENT + MAX_VELOCITY)) + 1


def test_strong_beats_sound_louder():
    notes = [Note(i * 0.5, 0.5, 60, 80) for i in range(256)]
    played = humanize(notes, (4, 4), 1.0, 3)
    downbeats = [p.velocity for p, n in zip(played, notes, strict=True) if n.start % 4 == 0]
    offbeats = [p.velocity for p, n in zip(played, notes, strict=True) if n.start % 1 == 0.5]
    assert statistics.fmean(downbeats) > statistics.fmean(offbeats) + ACCENT / 2


def test_close_onsets_keep_their_order_at_full_strength():
    notes = [Note(i / 8, 1 / 8, 60 + i % 3) for i in range(64)]  # thirty-seconds
    played = humanize(notes, (4, 4), 1.0, 9)
    starts = [p.start for p in played]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_velocities_stay_in_midi_range():
    loud = [Note(i * 1.0, 1.0, 60, 127) for i in range(32)]
    soft = [Note(i * 1.0, 1.0, 60, 1) for i in range(32)]
    assert all(p.velocity <= 127 for p in humanize(loud, (4, 4), 1.0, 1))
    assert all(p.velocity >= 1 for p in humanize(soft, (4, 4), 1.0, 1))


def test_the_humanize_task_keeps_tracks_tempo_and_meter_and_says_how_far_it_moved():
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import Part, read_notes, write_parts
    from plugins.music.generator import MusicGenerator
    from tests.conftest import prepared, source_of

    notes = written(4)
    data = write_parts([Part([n for n in notes if n.voice == v]) for v in (0, 1)], 90.0,
                       (3, 4))
    generator = MusicGenerator()
    generator.load(source_of("music", "embedded:music-gpt2"), "cpu", Progress())
    request = prepared(Request("music", "humanize", params={"strength": 0.8}, seed=4,
                               parents=["m"], model="embedded:music-gpt2"))
    result = generator.generate(request, Progress(), {"m": [Asset("midi", "audio/midi",
                                                                  data, "m.mid")]})
    content = read_notes(result.assets[0].data)
    assert content.time_signature == (3, 4) and content.tempo == pytest.approx(90.0, abs=0.01)
    assert sorted({n.voice for n in content.notes}) == [0, 1]
    assert len(content.notes) == len(notes)
    meta = result.metadata
    assert 0 < meta["mean_shift_ms"] <= meta["largest_shift_ms"]
    assert meta["largest_shift_ms"] <= MAX_SHIFT * 0.8 * (1 + CHORD_SPREAD) * 60 / 90 * 1000 + 1
    assert result.title == f"Humanized (0.80): {len(notes)} notes"


def test_humanize_keeps_the_tracks_instruments_and_chords(tmp_path):
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import CHORD_TRACK, Note, Part, read_notes, write_parts
    from plugins.music.generator import MusicGenerator
    from tests.conftest import prepared

    melody = [Note(i * 0.5, 0.5, 72 + i % 5) for i in range(16)]
    data = write_parts([Part(melody, 40, "Violin"), Part([Note(0, 8, 48)], 42, "Cello"),
                        Part([Note(0, 8, 60), Note(0, 8, 64)], 0, CHORD_TRACK)], 96, (4, 4),
                       marks=[(0.0, "C")])
    request = prepared(Request("music", "humanize", params={"strength": 0.5}, seed=2,
                               parents=["m"]))
    assert "program" not in request.params  # the MIDI's own instruments stay
    result = MusicGenerator().generate(request, Progress(),
                                       {"m": [Asset("midi", "audio/midi", data, "m.mid")]})
    content = read_notes(result.assets[0].data)
    assert content.tracks == [("Violin", 40), ("Cello", 42)]
    assert content.marks == [(0.0, "C")] and len(content.chord_notes) == 2
