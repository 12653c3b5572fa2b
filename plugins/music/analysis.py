"""Key finding and the figures the Music panel reports (no torch, no Qt)."""

from __future__ import annotations

import math

from creative_studio.core.errors import BadInput
from creative_studio.io.midi import Note

from .grammar import SCALES

NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")
# Krumhansl–Kessler key profiles (probe-tone ratings), tonic first
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
SIGNATURE_FIT = 0.8  # share of notes in a file's key signature for it to be believed


def key_name(tonic: int, mode: str) -> str:
    return f"{NOTE_NAMES[tonic % 12]} {mode}"


def _correlation(a: list[float], b: tuple[float, ...]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))
    return num / den if den else 0.0


def detect_key(notes: list[Note], signature: tuple[int, str] | None = None
               ) -> tuple[int, str]:
    """(tonic pitch class, "major"|"minor") by the Krumhansl–Schmuckler method, durations
    weighting the pitch-class histogram. With the file's key ``signature`` (what the user's
    DAW wrote), only that signature's major key and its relative minor are weighed: a
    signature names the notes, not which of the two the music is in. A signature the notes
    do not fit (a DAW's default C major under music in E♭) is not believed: less than
    :data:`SIGNATURE_FIT` of the notes in it, and every key is weighed."""
    histogram = [0.0] * 12
    for note in notes:
        histogram[note.pitch % 12] += max(note.duration, 0.125)
    candidates = [(t, m) for t in range(12) for m in ("major", "minor")]
    if signature is not None:
        major = signature[0] if signature[1] != "minor" else (signature[0] + 3) % 12
        if in_key_share(notes, major, "major") >= SIGNATURE_FIT:
            candidates = [(major, "major"), ((major + 9) % 12, "minor")]
    best = (-2.0, 0, "major")
    for tonic, mode in candidates:
        rotated = histogram[tonic:] + histogram[:tonic]
        score = _correlation(rotated, MAJOR_PROFILE if mode == "major" else MINOR_PROFILE)
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


def beat_length(time_signature: tuple[int, int]) -> float:
    """Quarter notes per beat: a dotted beat in compound meters (6/8, 9/8, 12/8)."""
    numerator, denominator = time_signature
    if denominator == 8 and numerator % 3 == 0 and numerator > 3:
        return 1.5
    return 4 / denominator


def key_of(params: dict, notes: list[Note], signature: tuple[int, str] | None = None
           ) -> tuple[int, str]:
    """(tonic, mode) a job works in: the ``tonic``/``mode`` params, each found from the
    notes (and the MIDI's key signature) where it is "auto" or not given."""
    tonic, mode = params.get("tonic", "auto"), params.get("mode", "auto")
    if tonic == "auto" or mode == "auto":
        found_tonic, found_mode = detect_key(notes, signature)
        tonic = found_tonic if tonic == "auto" else tonic
        mode = found_mode if mode == "auto" else mode
    return int(tonic), mode


def check_selection(first: int, last: int, bars: int) -> None:
    """BadInput unless bars ``first``–``last`` (1-based) are a selection of the ``bars``."""
    if last < first:
        raise BadInput(f"The selection ends (bar {last}) before it starts (bar {first}).")
    if last > bars:
        raise BadInput(f"The MIDI has {bars} bar{'s' if bars != 1 else ''}: bars "
                       f"{first}–{last} are not all in it.")


def bars_of(notes: list[Note], time_signature: tuple[int, int]) -> int:
    """How many bars the notes span (a note ending a hair past a bar line opens none)."""
    end = max((n.start + n.duration for n in notes), default=0.0)
    return max(1, math.ceil(end / bar_length(time_signature) - 1e-6))


def rhythm(notes: list[Note], time_signature: tuple[int, int]) -> dict:
    """A melody's rhythm in three figures (chords count once, by their onset):

    - ``top_share``: the share of notes on the most common duration (1.0: all one value);
    - ``entropy``: the Shannon entropy of the durations, in bits (0: all one value);
    - ``syncopation``: the share of notes that start off a beat and hold across the next one.

    Durations are the time to the next onset (the last note: its own), on a 1/48-quarter
    grid, so that staccato and legato playing of one rhythm read the same."""
    onsets = sorted({round(n.start * 48) for n in notes})
    if not onsets:
        return {"top_share": 0.0, "entropy": 0.0, "syncopation": 0.0, "onsets": 0}
    last = max((n for n in notes if round(n.start * 48) == onsets[-1]),
               key=lambda n: n.duration)
    values = [b - a for a, b in zip(onsets, onsets[1:], strict=False)]
    values.append(max(1, round(last.duration * 48)))
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    total = len(values)
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    beat = round(beat_length(time_signature) * 48)
    syncopated = sum(1 for onset, value in zip(onsets, values, strict=True)
                     if onset % beat and (onset // beat + 1) * beat < onset + value)
    return {"top_share": round(max(counts.values()) / total, 4),
            "entropy": round(entropy + 0.0, 4),
            "syncopation": round(syncopated / total, 4), "onsets": total}
