"""Key finding and the figures the Music panel reports (no torch, no Qt)."""

from __future__ import annotations

import math

from creative_studio.io.midi import Note

from .grammar import SCALES

NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")
# Krumhansl–Kessler key profiles (probe-tone ratings), tonic first
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def key_name(tonic: int, mode: str) -> str:
    return f"{NOTE_NAMES[tonic % 12]} {mode}"


def _correlation(a: list[float], b: tuple[float, ...]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))
    return num / den if den else 0.0


def detect_key(notes: list[Note]) -> tuple[int, str]:
    """(tonic pitch class, "major"|"minor") by the Krumhansl–Schmuckler method, durations
    weighting the pitch-class histogram."""
    histogram = [0.0] * 12
    for note in notes:
        histogram[note.pitch % 12] += max(note.duration, 0.125)
    best = (-2.0, 0, "major")
    for tonic in range(12):
        rotated = histogram[tonic:] + histogram[:tonic]
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            score = _correlation(rotated, profile)
            if score > best[0]:
                best = (score, tonic, mode)
    return best[1], best[2]


def in_key_share(notes: list[Note], tonic: int, mode: str) -> float:
    """Share of notes whose pitch class is in the scale of the key (minor: natural minor and
    its raised 7th)."""
    if not notes:
        return 0.0
    scale = SCALES[mode]
    return sum((n.pitch - tonic) % 12 in scale for n in notes) / len(notes)


def bar_length(time_signature: tuple[int, int]) -> float:
    """Quarter notes per bar."""
    numerator, denominator = time_signature
    return numerator * 4 / denominator


def summary(notes: list[Note], time_signature: tuple[int, int]) -> dict:
    """Notes, bars, notes per bar, pitch range: what the History and the figures show."""
    if not notes:
        return {"notes": 0, "bars": 0, "notes_per_bar": 0.0, "pitch_range": [0, 0]}
    length = bar_length(time_signature)
    end = max(n.start + n.duration for n in notes)
    bars = max(1, math.ceil(end / length - 1e-6))
    return {"notes": len(notes), "bars": bars, "notes_per_bar": round(len(notes) / bars, 2),
            "pitch_range": [min(n.pitch for n in notes), max(n.pitch for n in notes)]}
