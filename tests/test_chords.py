"""Chords (plugins/music/chords.py): symbols and progressions read, placed, found in a MIDI,
written to and read from MIDI files; melodies written over them by the shipped model, and
harmonizations held to them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput
from creative_studio.io.midi import (
    CHORD_TRACK,
    MidiContent,
    Note,
    Part,
    read_notes,
    write_midi,
    write_parts,
)
from plugins.music import chords

pytest.importorskip("pychord")


@pytest.mark.parametrize(("symbol", "root", "tones", "bass"), [
    ("C", 0, {0, 4, 7}, 0),
    ("Am", 9, {9, 0, 4}, 9),
    ("G7", 7, {7, 11, 2, 5}, 7),
    ("F#m7b5", 6, {6, 9, 0, 4}, 6),
    ("Bbmaj7", 10, {10, 2, 5, 9}, 10),
    ("B♭", 10, {10, 2, 5}, 10),
    ("C/E", 0, {0, 4, 7}, 4),
    ("D/F#", 2, {2, 6, 9}, 6),
    ("Dsus4", 2, {2, 7, 9}, 2),
])
def test_a_chord_symbol_gives_its_root_tones_and_bass(symbol, root, tones, bass):
    assert chords.parse_chord(symbol) == (root, frozenset(tones), bass)


@pytest.mark.parametrize("text", ["H", "C Xm", "C | 7 |", "Cmaj99"])
def test_what_is_not_a_chord_is_said_by_name(text):
    with pytest.raises(BadInput, match="is not a chord symbol"):
        chords.parse_progression(text)


def test_a_progression_is_a_bar_a_chord_or_bars_split_by_bars():
    assert chords.parse_progression("C Am F G") == [["C"], ["Am"], ["F"], ["G"]]
    assert chords.parse_progression("| C | Am7 | F G |") == [["C"], ["Am7"], ["F", "G"]]
    assert chords.parse_progression("  ") == []
    with pytest.raises(BadInput, match="at most"):
        chords.parse_progression("C " * (chords.MAX_CHORDS + 1))


def test_placed_chords_share_their_bar_and_the_progression_repeats():
    placed = chords.place(chords.parse_progression("C | F G"), 3, 3.0)  # 3/4
    assert [(c.start, c.duration, c.symbol) for c in placed] == [
        (0.0, 3.0, "C"), (3.0, 1.5, "F"), (4.5, 1.5, "G"), (6.0, 3.0, "C")]
    assert chords.at(placed, 4.4).symbol == "F" and chords.at(placed, 4.5).symbol == "G"
    assert chords.at(placed, 9.0) is None
    assert chords.text(placed, (3, 4)) == "C | F G | C"


@pytest.mark.parametrize(("meter", "strong"), [
    ((4, 4), [0.0, 2.0]), ((3, 4), [0.0]), ((2, 4), [0.0]), ((6, 8), [0.0, 1.5]),
    ((2, 2), [0.0, 2.0]), ((9, 8), [0.0])])
def test_strong_beats_of_each_meter(meter, strong):
    assert chords.strong_beats(meter) == strong


def test_chords_are_found_bar_by_bar_from_a_melody():
    # C E G | A C E | F A C | G B D F, on the beat
    bars = [(60, 64, 67, 72), (69, 72, 76, 69), (65, 69, 72, 65), (67, 71, 74, 77)]
    notes = [Note(b * 4 + i, 1.0, p) for b, bar in enumerate(bars) for i, p in enumerate(bar)]
    found = chords.find(notes, (4, 4), (0, "major"))
    assert [c.symbol for c in found] == ["C", "Am", "F", "G7"]
    assert chords.text(found, (4, 4)) == "C | Am | F | G7"


def test_a_bar_without_a_chord_holds_the_one_before_in_the_text():
    placed = [chords.Chord(0.0, 4.0, "C", 0, frozenset({0, 4, 7}), 0),
              chords.Chord(8.0, 4.0, "G", 7, frozenset({7, 11, 2}), 7)]
    assert chords.text(placed, (4, 4)) == "C | C | G"


def test_chord_tones_on_strong_beats_are_counted():
    placed = chords.place([["C"], ["G"]], 2, 4.0)
    notes = [Note(0.0, 1.0, 64), Note(1.0, 1.0, 62),  # E on 1 (tone), D on 2 (weak)
             Note(2.0, 1.0, 65),  # F on 3: not a tone of C
             Note(4.0, 1.0, 71), Note(6.0, 1.0, 74)]  # B and D over G
    assert chords.chord_tone_share(notes, placed, (4, 4)) == (0.75, 4)
    assert chords.chord_tone_share([], placed, (4, 4)) == (1.0, 0)


def test_chords_written_to_midi_come_back_as_marks_and_a_chord_track():
    placed = chords.place(chords.parse_progression("Dm7 | G7 | C"), 3, 4.0)
    melody = [Note(0.0, 1.0, 74), Note(4.0, 1.0, 71), Note(8.0, 4.0, 72)]
    data = write_parts([Part(melody, 73), Part(chords.track(placed), 0, CHORD_TRACK)], 90,
                       (4, 4), (0, "major"), length=12.0,
                       marks=[(c.start, c.symbol) for c in placed])
    content = read_notes(data)
    assert [(n.start, n.pitch) for n in content.notes] == [(0.0, 74), (4.0, 71), (8.0, 72)]
    assert content.marks == [(0.0, "Dm7"), (4.0, "G7"), (8.0, "C")]
    assert {n.pitch for n in content.chord_notes if n.start == 4.0} == {43, 55, 59, 50, 53}
    back = chords.of_midi(content, (4, 4))
    assert [(c.start, c.duration, c.symbol) for c in back] == [
        (0.0, 4.0, "Dm7"), (4.0, 4.0, "G7"), (8.0, 4.0, "C")]
    # without markers the chord track is matched bar by bar
    bare = MidiContent(content.notes, (4, 4), 90.0, None, [], content.chord_notes)
    assert [c.symbol for c in chords.of_midi(bare, (4, 4))] == ["Dm7", "G7", "C"]


def test_requested_chords_from_text_from_the_midi_or_none():
    content = MidiContent([Note(i * 1.0, 1.0, p) for i, p in enumerate(
        [60, 64, 67, 64, 65, 69, 72, 69])], (4, 4), 120.0)
    assert chords.requested("", content, (4, 4), 4) == []
    typed = chords.requested("Am F", None, (4, 4), 3)
    assert [c.symbol for c in typed] == ["Am", "F", "Am"]
    found = chords.requested("from-midi", content, (4, 4), 4)
    assert [c.symbol for c in found] == ["C", "F", "C", "F"]  # found, then repeated
    with pytest.raises(BadInput, match="a new idea has none"):
        chords.requested("from-midi", None, (4, 4), 4)


def test_grammar_tones_are_moved_into_the_models_key():
    placed = chords.place([["G"], ["D7"]], 2, 4.0)
    tones = chords.grammar_tones(placed, (4, 4), 2, 5, 8)  # G major: the model writes in C
    assert tones == {(0, 0): frozenset({0, 4, 7}), (0, 16): frozenset({0, 4, 7}),
                     (1, 0): frozenset({7, 11, 2, 5}), (1, 16): frozenset({7, 11, 2, 5})}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_typed_progression_is_read_or_refused_plainly(text):
    try:
        bars = chords.parse_progression(text)
    except BadInput as exc:
        assert str(exc)
        return
    for bar in bars:
        for symbol in bar:
            root, tones, bass = chords.parse_chord(symbol)
            assert 0 <= root < 12 and bass in tones and tones <= set(range(12))


# -- with the shipped melody model ----------------------------------------------------------

@pytest.fixture(scope="module")
def generator():
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator
    from tests.conftest import source_of

    g = MusicGenerator()
    g.load(source_of("music", "embedded:music-gpt2"), "cpu", Progress())
    return g


def run(generator, task="generate", seed=1, inputs=None, **params):
    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    request = prepared(Request("music", task, params=params, seed=seed,
                               parents=list(inputs or {}), model="embedded:music-gpt2"))
    return generator.generate(request, Progress(), inputs or {})


@pytest.mark.model
@pytest.mark.parametrize(("seed", "meter", "progression"), [
    (1, "4/4", "G Em C D"), (2, "3/4", "Am | Dm E7"), (3, "6/8", "D | A7 | D G | A7 D")])
def test_a_melody_over_chords_takes_chord_tones_on_its_strong_beats(generator, seed, meter,
                                                                      progression):
    result = run(generator, seed=seed, bars=4, time_signature=meter, tonic=7, chords=progression)
    content = read_notes(result.assets[0].data)
    numerator, denominator = (int(x) for x in meter.split("/"))
    placed = chords.place(chords.parse_progression(progression), 4,
                          numerator * 4 / denominator)
    share, judged = chords.chord_tone_share(content.notes, placed, (numerator, denominator))
    assert judged >= 3 and share == 1.0
    assert result.metadata["chord_tones_on_strong_beats"] == 1.0
    assert [m[1] for m in content.marks] == [c.symbol for c in placed]
    assert content.chord_notes and all(n.pitch < 60 for n in content.chord_notes)
    assert result.metadata["chords"] == chords.text(placed, (numerator, denominator))


@pytest.mark.model
@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_new_idea_ends_on_the_tonic_held(generator, seed):
    result = run(generator, seed=seed, bars=4, tonic=2, mode="major")
    content = read_notes(result.assets[0].data)
    last_bar = [n for n in content.notes if n.start >= 12.0]
    assert last_bar and all(n.start == 12.0 for n in last_bar)  # one onset: the downbeat
    melody = max(last_bar, key=lambda n: n.pitch)
    assert melody.pitch % 12 == 2 and melody.duration >= 2.0  # D, at least half the bar
    assert result.metadata["ends_on_tonic"] is True
    free = run(generator, seed=seed, bars=4, tonic=2, mode="major", end_on_tonic=False)
    assert free.assets[0].data != result.assets[0].data


@pytest.mark.model
def test_the_cadence_takes_the_last_chords_tone_where_it_lacks_the_tonic(generator):
    result = run(generator, seed=3, bars=2, tonic=0, chords="C G")  # a half cadence on G
    content = read_notes(result.assets[0].data)
    last = [n for n in content.notes if n.start >= 4.0]
    assert last and {n.pitch % 12 for n in last} <= {7, 11, 2}


@pytest.mark.model
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_continuation_reaches_its_themes_range_and_cadences(generator, seed):
    from creative_studio.core.jobs import Asset

    steps = (0, 4, 7, 4, 2, 4, 0, 7)  # a C-major theme that reaches G4 (67) in every bar
    theme = [Note(i * 0.5, 0.5, 60 + steps[i % 8]) for i in range(32)]
    inputs = {"theme": [Asset("midi", "audio/midi", write_midi(theme, 120, (4, 4)), "t.mid")]}
    result = run(generator, "continue", seed, inputs, keep_bars=4, bars=4, tonic=0,
                 mode="major")
    content = read_notes(result.assets[0].data)
    new = [n for n in content.notes if n.start >= 16.0]
    assert max(n.pitch for n in new) >= 65  # within two semitones of the theme's peak
    assert result.metadata["theme_high"] == 67 and result.metadata["new_high"] >= 65
    assert max(new, key=lambda n: (n.start, n.pitch)).pitch % 12 == 0


def test_harmonized_lower_voices_keep_to_the_chords():
    import numpy as np
    import torch

    from plugins.music.coconet import PITCHES
    from plugins.music.harmonize import harmonize

    class Uniform(torch.nn.Module):
        def forward(self, rolls, hidden):
            return torch.zeros((1, 4, rolls.shape[-1], PITCHES))

    soprano = np.array([72] * 16 + [74] * 16, dtype=np.int16)  # two bars of 4/4 sixteenths
    placed = chords.place([["C"], ["G7"]], 2, 4.0)
    steps = [chords.at(placed, t / 4) for t in range(len(soprano))]
    rolls = harmonize(Uniform(), soprano, iterations=6, seed=0,
                      chords=[(c.tones, c.bass) for c in steps])
    for t, chord in enumerate(steps):
        assert all(int(rolls[v, t]) % 12 in chord.tones for v in (1, 2, 3)), t
    free = harmonize(Uniform(), soprano, iterations=6, seed=0)
    assert any(int(free[v, t]) % 12 not in steps[t].tones
               for v in (1, 2, 3) for t in range(len(soprano)))
    # the bass leans to the chord's bass note: more roots than a uniform draw gives
    roots = sum(int(rolls[3, t]) % 12 == steps[t].bass for t in range(len(soprano)))
    assert roots > len(soprano) / 3


def test_markers_that_are_not_chords_are_left_out():
    marks = [(0.0, "Verse"), (0.0, "C"), (4.0, "Chorus 1"), (6.0, "G7"), (8.0, "Am")]
    found = chords.from_marks(marks, 12.0)
    assert [(c.start, c.duration, c.symbol) for c in found] == [
        (0.0, 6.0, "C"), (6.0, 2.0, "G7"), (8.0, 4.0, "Am")]
    assert chords.from_marks([(0.0, "Intro")], 8.0) == []
