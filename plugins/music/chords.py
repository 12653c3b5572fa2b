"""Chords: a progression typed as text (``C Am F G``, bars split by ``|``), the chords found
in a MIDI, and what a melody or a harmonization does with them. No Qt, no torch.

- **Text**: chord symbols as lead sheets write them, parsed by pychord (``Am7``, ``F#m7b5``,
  ``Bbmaj7``, ``C/E``…). Without ``|`` each chord takes one bar; with it, each ``|``-bar
  lists the chords of one bar, which share it evenly. A progression shorter than the piece
  repeats.
- **Found in a MIDI**: the file's own chord symbols (marker events the studio and DAWs
  write) or its chord track (a track named "Chords"); otherwise one chord per bar matched
  against the notes (the chord whose tones hold most of the bar's sounding time, notes on
  strong beats counting double).
- **Strong beats**: a bar's downbeat, and in 4/4, 2/2, 6/8 and 12/8 its middle as well.
  The figure of the issue — chord tones among the melody's notes that start on strong beats
  — is :func:`chord_tone_share`.
"""

from __future__ import annotations

from dataclasses import dataclass

from creative_studio.core.errors import BadInput
from creative_studio.io.midi import Note

NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# qualities the finder tries: intervals above the root, and a cost for the extra tone
QUALITIES = {"": ((0, 4, 7), 0.0), "m": ((0, 3, 7), 0.0), "7": ((0, 4, 7, 10), 0.08),
             "m7": ((0, 3, 7, 10), 0.08), "dim": ((0, 3, 6), 0.05)}
MAX_CHORDS = 512  # symbols in one progression


@dataclass(frozen=True)
class Chord:
    """One chord of a progression, placed: ``start`` and ``duration`` in quarter notes."""

    start: float
    duration: float
    symbol: str
    root: int  # pitch class
    tones: frozenset[int]  # pitch classes
    bass: int  # pitch class: the slash chord's bass, else the root


def parse_chord(symbol: str) -> tuple[int, frozenset[int], int]:
    """(root, tones, bass) of a chord symbol, or BadInput saying which one is not a chord."""
    from pychord import Chord as PyChord

    text = symbol.strip().replace("♯", "#").replace("♭", "b")
    try:
        chord = PyChord(text)
        offsets = chord.components(visible=False)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise BadInput(f"'{symbol}' is not a chord symbol the studio knows (examples: C, Am, "
                       "G7, F#m7b5, Bbmaj7, C/E).") from exc
    root = NAMES.index(_spelled(str(chord.root)))
    tones = frozenset(int(o) % 12 for o in offsets)  # pychord counts from C
    bass = NAMES.index(_spelled(str(chord.on))) if chord.on else root
    return root, tones | {bass}, bass


def _spelled(note: str) -> str:
    """A note name as NAMES spells it (C# and Db are one pitch class)."""
    from pychord.utils import note_to_val

    return NAMES[note_to_val(note) % 12]


def parse_progression(text: str) -> list[list[str]]:
    """The bars of a progression, each a list of chord symbols (checked); [] for none."""
    text = (text or "").strip()
    if not text:
        return []
    if "|" in text:
        bars = [part.split() for part in text.strip("|").split("|")]
    else:
        bars = [[symbol] for symbol in text.split()]
    bars = [bar for bar in bars if bar]
    count = sum(len(bar) for bar in bars)
    if count > MAX_CHORDS:
        raise BadInput(f"The progression has {count} chords: at most {MAX_CHORDS}.")
    for bar in bars:
        for symbol in bar:
            parse_chord(symbol)
    return bars


def place(bars_of_chords: list[list[str]], bars: int, bar: float,
          first_bar: int = 0) -> list[Chord]:
    """The progression laid over ``bars`` bars of length ``bar`` (quarter notes) from bar
    ``first_bar`` (0-based), repeating it when it is shorter."""
    if not bars_of_chords:
        return []
    placed = []
    for index in range(bars):
        symbols = bars_of_chords[index % len(bars_of_chords)]
        share = bar / len(symbols)
        for slot, symbol in enumerate(symbols):
            root, tones, bass = parse_chord(symbol)
            placed.append(Chord((first_bar + index) * bar + slot * share, share, symbol, root,
                                tones, bass))
    return placed


def from_marks(marks: list[tuple[float, str]], end: float) -> list[Chord]:
    """Chord symbols at times (a MIDI's markers) as chords lasting to the next one; marks
    that are not chord symbols are left out."""
    known = []
    for time, text in sorted(marks):
        try:
            root, tones, bass = parse_chord(text)
        except BadInput:
            continue
        known.append((time, text.strip(), root, tones, bass))
    chords = []
    for index, (time, symbol, root, tones, bass) in enumerate(known):
        stop = known[index + 1][0] if index + 1 < len(known) else max(end, time + 1.0)
        if stop > time:
            chords.append(Chord(time, stop - time, symbol, root, tones, bass))
    return chords


def strong_beats(meter: tuple[int, int]) -> list[float]:
    """Where a bar's strong beats fall, in quarter notes from its start."""
    numerator, denominator = meter
    bar = numerator * 4.0 / denominator
    if (numerator, denominator) in ((4, 4), (2, 2), (6, 8), (12, 8)):
        return [0.0, bar / 2]
    return [0.0]


def is_strong(time: float, meter: tuple[int, int]) -> bool:
    bar = meter[0] * 4.0 / meter[1]
    within = time % bar
    return any(abs(within - beat) < 1e-6 for beat in strong_beats(meter))


def at(chords: list[Chord], time: float) -> Chord | None:
    """The chord sounding at ``time``."""
    for chord in chords:
        if chord.start - 1e-6 <= time < chord.start + chord.duration - 1e-6:
            return chord
    return None


def find(notes: list[Note], meter: tuple[int, int], key: tuple[int, str] | None = None
         ) -> list[Chord]:
    """One chord per bar that has notes, matched against them (module docstring); with
    ``key``, chords of the key win ties."""
    from .grammar import SCALES

    if not notes:
        return []
    bar = meter[0] * 4.0 / meter[1]
    end = max(n.start + n.duration for n in notes)
    scale = {(key[0] + s) % 12 for s in SCALES.get(key[1], SCALES["major"])} if key else None
    chords = []
    for index in range(int(end // bar + (end % bar > 1e-6))):
        lo, hi = index * bar, (index + 1) * bar
        weight = [0.0] * 12
        for n in notes:
            sounding = min(hi, n.start + n.duration) - max(lo, n.start)
            if sounding > 0:
                double = 2.0 if lo <= n.start < hi and is_strong(n.start, meter) else 1.0
                weight[n.pitch % 12] += sounding * double
        total = sum(weight)
        if total <= 0:
            continue
        best = None
        for root in range(12):
            for quality, (intervals, cost) in QUALITIES.items():
                tones = {(root + i) % 12 for i in intervals}
                inside = sum(weight[t] for t in tones)
                score = (inside - 0.5 * (total - inside)) / total - cost
                if len(intervals) == 4 and weight[(root + intervals[3]) % 12] <= 0:
                    continue  # a seventh chord only where the seventh sounds
                if scale is not None and tones <= scale:
                    score += 0.02
                if weight[root] > 0:
                    score += 0.01
                if best is None or score > best[0] + 1e-9:
                    best = (score, root, quality, frozenset(tones))
        _, root, quality, tones = best
        chords.append(Chord(lo, bar, NAMES[root] + quality, root, tones, root))
    return chords


def text(chords: list[Chord], meter: tuple[int, int]) -> str:
    """A progression as the text :func:`parse_progression` reads back: one ``|``-bar per
    bar (``C | Am | F G | G``); a bar without a chord of its own holds the one before."""
    if not chords:
        return ""
    bar = meter[0] * 4.0 / meter[1]
    bars: dict[int, list[str]] = {}
    for chord in chords:
        bars.setdefault(int(chord.start // bar + 1e-9), []).append(chord.symbol)
    out, held = [], chords[0].symbol
    for index in range(max(bars) + 1):
        symbols = bars.get(index) or [held]
        held = symbols[-1]
        out.append(" ".join(symbols))
    return " | ".join(out)


def track(chords: list[Chord], velocity: int = 60) -> list[Note]:
    """The chord track's notes: each chord as a block, its bass in octave 2 (36–47) and its
    tones close above middle C's octave below (48–59), so a DAW plays the progression."""
    notes = []
    for chord in chords:
        pitches = {36 + chord.bass}
        pitches |= {48 + t for t in chord.tones}
        notes += [Note(chord.start, chord.duration, p, velocity) for p in sorted(pitches)]
    return notes


def chord_tone_share(notes: list[Note], chords: list[Chord], meter: tuple[int, int]
                     ) -> tuple[float, int]:
    """(share of the notes starting on strong beats whose pitch is a tone of the chord
    there, how many such notes); (1.0, 0) when none does."""
    judged = hits = 0
    for n in notes:
        if not is_strong(n.start, meter):
            continue
        chord = at(chords, n.start)
        if chord is None:
            continue
        judged += 1
        hits += n.pitch % 12 in chord.tones
    return (hits / judged if judged else 1.0), judged


FROM_MIDI = "from-midi"  # the chords param's word for "the chords the MIDI holds"


def of_midi(content, meter: tuple[int, int]) -> list[Chord]:
    """The chords a MIDI holds (core io.midi.MidiContent): its chord symbols (markers), else
    its chord track matched bar by bar, else its notes matched bar by bar."""
    end = max((n.start + n.duration for n in content.notes + content.chord_notes),
              default=0.0)
    marked = from_marks(content.marks, end)
    if marked:
        return marked
    return find(content.chord_notes or content.notes, meter,
                None if content.chord_notes else content.key)


def requested(value: str, content, meter: tuple[int, int], bars: int) -> list[Chord]:
    """The chords a job plays to over its ``bars`` bars from the first: the progression
    typed, or (``FROM_MIDI``) the given MIDI's own (:func:`of_midi`), repeated; [] for
    none."""
    value = (value or "").strip()
    if not value:
        return []
    bar = meter[0] * 4.0 / meter[1]
    if value.lower() == FROM_MIDI:
        if content is None:
            raise BadInput(f"'{FROM_MIDI}' takes the chords of the MIDI a job reads: a new "
                           "idea has none; type a progression such as C Am F G.")
        found = of_midi(content, meter)
        if not found:
            raise BadInput("No chords were found in the MIDI.")
        value = text(found, meter)
    return place(parse_progression(value), bars, bar)


def grammar_tones(chords: list[Chord], meter: tuple[int, int], bars: int, shift: int,
                  positions_per_beat: int) -> dict[tuple[int, int], frozenset[int]]:
    """(bar index, grammar position) of each strong beat → the chord's pitch classes there,
    moved by ``shift`` semitones (into the melody model's key of C)."""
    bar = meter[0] * 4.0 / meter[1]
    per_quarter = positions_per_beat * meter[1] / 4
    out = {}
    for index in range(bars):
        for beat in strong_beats(meter):
            chord = at(chords, index * bar + beat)
            if chord is not None:
                out[(index, round(beat * per_quarter))] = frozenset(
                    (t + shift) % 12 for t in chord.tones)
    return out
