"""Humanize a MIDI: the timing and loudness a player gives notes written on a grid.

A player does not hit the grid: onsets wander by a few milliseconds, drift rather than jump
(a phrase rushes or drags a little), notes of a chord land almost together, and strong beats
sound louder than weak ones. With ``strength`` 1 (and tempo in mind) an onset moves by at
most :data:`MAX_SHIFT` of a quarter note (about 30 ms at 120 BPM), a velocity by at most
:data:`MAX_VELOCITY` plus the beat's accent. ``strength`` 0 returns the notes unchanged. The
same seed gives the same performance. Every note keeps its pitch, voice and order of onsets;
none starts before 0 or ends before it starts. No torch, no Qt.
"""

from __future__ import annotations

import random

from creative_studio.io.midi import Note

from .analysis import beat_length

MAX_SHIFT = 0.06  # quarter notes an onset may move at strength 1
MAX_VELOCITY = 12  # velocity steps of random change at strength 1
ACCENT = 8  # velocity added on the bar's first beat at strength 1 (half on other beats)
CHORD_SPREAD = 0.25  # share of the shift that notes of one chord differ by


def humanize(notes: list[Note], time_signature: tuple[int, int], strength: float,
             seed: int) -> list[Note]:
    strength = max(0.0, min(1.0, float(strength)))
    if strength == 0 or not notes:
        return list(notes)
    rng = random.Random(int(seed))
    beat = beat_length(time_signature)
    bar = time_signature[0] * 4 / time_signature[1]
    onsets = sorted({round(n.start * 480) for n in notes})
    # a slow drift (a random walk pulled back to the grid) plus a small jitter per onset
    # never so far that two onsets swap: each stays within 40 % of the gap to a neighbour
    limit_of = {}
    for i, onset in enumerate(onsets):
        gaps = ([onset - onsets[i - 1]] if i > 0 else []) + \
            ([onsets[i + 1] - onset] if i + 1 < len(onsets) else [])
        limit_of[onset] = 0.4 * min(gaps) / 480 if gaps else MAX_SHIFT
    shift_of: dict[int, float] = {}
    drift = 0.0
    for onset in onsets:
        drift = 0.7 * drift + rng.gauss(0.0, 0.35)
        shift_of[onset] = max(-1.0, min(1.0, drift + rng.gauss(0.0, 0.25))) * MAX_SHIFT \
            * strength
    out = []
    for note in notes:
        onset = round(note.start * 480)
        limit = limit_of[onset]
        shift = shift_of[onset] + rng.uniform(-1, 1) * CHORD_SPREAD * MAX_SHIFT * strength
        start = max(0.0, note.start + max(-limit, min(limit, shift)))
        shift = start - note.start
        end = max(start + min(note.duration, 1 / 32), note.start + note.duration + shift)
        position = note.start % bar
        if abs(position) < 1e-6 or abs(position - bar) < 1e-6:
            accent = ACCENT
        elif abs(position / beat - round(position / beat)) < 1e-6:
            accent = ACCENT // 2
        else:
            accent = 0
        velocity = note.velocity + round(strength * (accent - ACCENT / 4
                                                     + rng.uniform(-1, 1) * MAX_VELOCITY))
        out.append(Note(start, end - start, note.pitch, max(1, min(127, velocity)),
                        note.voice))
    return out
