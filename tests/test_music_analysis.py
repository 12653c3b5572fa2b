"""The rhythm figures of plugins/music/analysis.py, by hand-counted examples."""

from __future__ import annotations

import math

import pytest

from creative_studio.io.midi import Note
from plugins.music.analysis import beat_length, rhythm


def line(*durations: float, start: float = 0.0, legato: float = 1.0) -> list[Note]:
    notes, at = [], start
    for value in durations:
        notes.append(Note(at, value * legato, 60, 90))
        at += value
    return notes


@pytest.mark.parametrize(("meter", "beat"), [((4, 4), 1.0), ((3, 4), 1.0), ((2, 2), 2.0),
                                             ((6, 8), 1.5), ((9, 8), 1.5), ((3, 8), 0.5)])
def test_beats_of_simple_and_compound_meters(meter, beat):
    assert beat_length(meter) == beat


def test_one_duration_everywhere_is_share_one_and_no_entropy():
    figures = rhythm(line(*[0.5] * 16), (4, 4))
    assert figures == {"top_share": 1.0, "entropy": 0.0, "syncopation": 0.0, "onsets": 16}


def test_two_values_half_and_half_is_one_bit():
    figures = rhythm(line(1.0, 0.5, 0.5, 1.0), (4, 4))
    assert figures["top_share"] == 0.5
    assert figures["entropy"] == pytest.approx(1.0)


def test_three_values_entropy_and_share():
    # 1.5 (dotted quarter), 0.5, 1.0, 1.0 → shares 1/4, 1/4, 2/4
    figures = rhythm(line(1.5, 0.5, 1.0, 1.0), (4, 4))
    assert figures["top_share"] == 0.5
    assert figures["entropy"] == pytest.approx(1.5)


def test_staccato_and_legato_read_the_same_and_chords_count_once():
    legato = rhythm(line(1.0, 0.5, 0.5, 2.0), (4, 4))
    staccato = rhythm(line(1.0, 0.5, 0.5, 2.0, legato=0.5)[:-1] + [Note(2.0, 2.0, 60, 90)],
                      (4, 4))
    chord = line(1.0, 0.5, 0.5, 2.0) + [Note(0.0, 1.0, 64, 90), Note(1.0, 0.5, 67, 90)]
    assert legato == staccato == rhythm(chord, (4, 4))
    assert legato["onsets"] == 4


def test_syncopation_is_an_offbeat_onset_held_across_the_beat():
    # eighth, quarter (from 0.5 across beat 1), eighth, then halves on the beat
    figures = rhythm(line(0.5, 1.0, 0.5, 2.0), (4, 4))
    assert figures["syncopation"] == pytest.approx(1 / 4)
    # in 6/8 the beat is a dotted quarter: a quarter from 1.0 crosses it at 1.5
    assert rhythm(line(1.0, 1.0, 1.0), (6, 8))["syncopation"] == pytest.approx(1 / 3, abs=1e-4)
    # an offbeat note that ends on the beat is not syncopated
    assert rhythm(line(0.5, 0.5, 1.0), (4, 4))["syncopation"] == 0.0


def test_no_notes():
    assert rhythm([], (4, 4)) == {"top_share": 0.0, "entropy": 0.0, "syncopation": 0.0,
                                  "onsets": 0}


def test_entropy_of_many_values_is_log2_of_their_count():
    figures = rhythm(line(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0), (4, 4))
    assert figures["entropy"] == pytest.approx(math.log2(8))
    assert figures["top_share"] == 0.125


@pytest.mark.parametrize("key", [(9, "minor"), (10, "major"), (6, "major"), (1, "minor"),
                                 (3, "major"), (0, "major")])
def test_a_midi_key_signature_is_read_back(key):
    from creative_studio.io.midi import read_notes, write_midi

    assert read_notes(write_midi([Note(0, 1, 60)], 100, (4, 4), 0, key)).key == key


def test_no_key_signature_reads_as_none():
    from creative_studio.io.midi import read_notes, write_midi

    assert read_notes(write_midi([Note(0, 1, 60)], 100, (4, 4))).key is None


def test_the_signature_chooses_between_a_major_key_and_its_relative_minor():
    from plugins.music.analysis import detect_key

    # a C-major tune around E, G and B: alone it reads as E minor
    tune = [Note(i * 1.0, 1.0, p) for i, p in enumerate(
        [64, 67, 71, 76, 71, 67, 64, 62, 60, 64, 67, 71, 74, 71, 67, 64])]
    assert detect_key(tune) == (4, "minor")
    assert detect_key(tune, (0, "major")) == (0, "major")
    assert detect_key(tune, (9, "minor")) == (0, "major")  # the signature's pair: C or Am
    # A minor's own tune under the same signature stays A minor
    minor = [Note(i * 1.0, 1.0, p) for i, p in enumerate([57, 60, 64, 69, 64, 60, 57, 56, 57])]
    assert detect_key(minor, (0, "major")) == (9, "minor")


def test_a_signature_the_notes_do_not_fit_is_not_believed():
    from plugins.music.analysis import detect_key

    e_flat = [Note(i * 1.0, 1.0, p) for i, p in enumerate([63, 65, 67, 68, 70, 72, 74, 75,
                                                           70, 67, 63])]
    assert detect_key(e_flat, (0, "major")) == detect_key(e_flat) == (3, "major")
