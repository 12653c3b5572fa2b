"""Grammar-masked decoding of the REMI token language (tokens.py), one state per sequence.

A piece is ``BOS Style Mode`` then bars: ``Bar TimeSig (Position (Pitch Duration)+)*``.
At each step only tokens that keep the sequence valid are allowed:

- after ``Bar``: the requested ``TimeSig`` only (the meter is the user's choice);
- after ``TimeSig``: a ``Position`` inside the bar, or ``Bar`` (an empty bar);
- after ``Position``: a ``Pitch`` in the allowed range (in the scale with ``strict_key``);
- after ``Pitch``: a ``Duration``;
- after ``Duration``: another ``Pitch`` (a chord), a later ``Position``, or ``Bar``.

The requested number of bars is honoured exactly: ``EOS`` is masked until the last bar has
started, and once it has, the probability the model gives to a new ``Bar`` goes to ``EOS``
(to ``Infill_End`` when the bars fill a selection: ``end``).

Three musical rules narrow the pitches further where they are given (pitch classes in the
model's key, tonic C):

- ``chords``: on a strong beat (chords.py) a note must be a tone of the chord there;
- ``cadence``: the last bar opens with one note on its downbeat, the tonic (or, where the
  chord there lacks the tonic, a tone of that chord), held for at least half the bar, and
  the piece ends there (a chorale, ``stack``, may stack the tonic triad on it);
- ``peak``: a continuation reaches its theme's range — if none of its new notes has come
  within two semitones of the theme's highest note by the downbeat of ``peak_bar``, that
  downbeat's note is one of the key's notes there;
- ``joins`` (Regenerate bars): the first notes written lie within ``JOIN_LEAP`` semitones
  of the note before the selection, and the notes of its last bar within that of the note
  after it — a seam no wider than the tunes' own bar lines (95 % of them).

No torch import at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tokens import PITCH_RANGE

SCALES = {  # pitch classes of each mode with tonic C
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10, 11),  # natural minor + the leading tone (harmonic)
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
TIME_SIGNATURES = ("4/4", "3/4", "2/4", "6/8", "9/8", "2/2")  # those the data has enough of
POSITIONS_PER_BEAT = 8  # tokenizer beat_res: 8 positions per beat of the denominator
GENERATE_RANGE = (48, 93)  # the training data spans 52–93 with tonic C; a little room below
JOIN_LEAP = 8  # semitones: 95 % of the folk tunes' bar-line intervals are no wider


def positions_per_bar(time_signature: str) -> int:
    numerator = int(time_signature.split("/")[0])
    return numerator * POSITIONS_PER_BEAT


@dataclass
class RowState:
    phase: str = "start"  # start | bar | timesig | position | pitch | duration | done
    position: int = -1
    bars: int = 0  # bars started (after the prompt, if any, counting its bars too)
    notes: int = 0
    high: int = -1  # the highest pitch written after the prompt
    onsets: int = 0  # onsets (Position tokens) written after the prompt
    counting: bool = False  # past the prompt: notes count toward ``high``, ``onsets``


@dataclass
class Vocabulary:
    """Token ids grouped by kind, read once from a miditok vocabulary."""

    vocab: dict[str, int]
    pad: int = 0
    bos: int = 0
    eos: int = 0
    bar: int = 0
    timesig: dict[str, int] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)
    pitch: dict[int, int] = field(default_factory=dict)
    duration: list[int] = field(default_factory=list)
    kind: dict[int, tuple[str, str]] = field(default_factory=dict)
    positions_of: dict[int, float] = field(default_factory=dict)  # Duration id → positions

    def __post_init__(self) -> None:
        v = self.vocab
        self.pad, self.bos, self.eos, self.bar = (v["PAD_None"], v["BOS_None"], v["EOS_None"],
                                                  v["Bar_None"])
        for name, token_id in v.items():
            kind, _, value = name.partition("_")
            self.kind[token_id] = (kind, value)
            if kind == "TimeSig":
                self.timesig[value] = token_id
            elif kind == "Position":
                self.position[int(value)] = token_id
            elif kind == "Pitch":
                self.pitch[int(value)] = token_id
            elif kind == "Duration":
                self.duration.append(token_id)
                beats, ticks, resolution = (int(x) for x in value.split("."))
                self.positions_of[token_id] = (beats + ticks / resolution) * \
                    POSITIONS_PER_BEAT


class Grammar:
    """Allowed next tokens for each sequence of a batch, updated token by token."""

    def __init__(self, vocab: Vocabulary, time_signature: str, bars: int, mode: str = "major",
                 strict_key: bool = False, pitch_range: tuple[int, int] = GENERATE_RANGE,
                 end: int | None = None,
                 chords: dict[tuple[int, int], frozenset[int]] | None = None,
                 cadence: bool = False, peak: int | None = None, peak_bar: int = 0,
                 stack: bool = False, joins: tuple[int | None, int | None] = (None, None)):
        """``chords``: (bar index from 0, position) of each strong beat → the chord's
        pitch classes there; ``cadence``, ``peak`` and ``peak_bar`` (1-based, counting the
        prompt's bars): the module docstring's rules; ``stack``: the cadence's note may
        carry a chord (a chorale), else it ends the melody alone; ``joins``: the pitches
        just before and just after the bars written (Regenerate bars), or None."""
        if time_signature not in vocab.timesig:
            raise ValueError(f"time signature {time_signature} is not in the vocabulary")
        self.v = vocab
        self.end = vocab.eos if end is None else end  # what ends the bars (infill: its own)
        self.time_signature = time_signature
        self.bars = bars
        self.bar_positions = positions_per_bar(time_signature)
        low, high = max(pitch_range[0], PITCH_RANGE[0]), min(pitch_range[1], PITCH_RANGE[1])
        scale = SCALES.get(mode, SCALES["major"])
        self.pitches = {p: i for p, i in vocab.pitch.items() if low <= p <= high
                        and (not strict_key or p % 12 in scale)}
        self.pitch_ids = list(self.pitches.values())
        self.scale = frozenset(scale)
        self.chords = chords or {}
        self.cadence = cadence
        self.peak, self.peak_bar = peak, peak_bar
        self.stack = stack
        self.join_from, self.join_to = joins
        self.rows: list[RowState] = []
        self._masks: dict[tuple, tuple] = {}

    def start(self, prompts: list[list[int]]) -> None:
        """Read each row's prompt (BOS Style Mode [tokens of kept bars…])."""
        self.rows = []
        for prompt in prompts:
            state = RowState()
            for token in prompt[3:]:
                self.advance(state, token)
            state.counting = True
            self.rows.append(state)

    def advance(self, state: RowState, token: int) -> None:
        kind, value = self.v.kind.get(token, ("", ""))
        if token in (self.end, self.v.eos, self.v.pad):
            state.phase = "done"
        elif kind == "Bar":
            state.phase, state.position = "bar", -1
            state.bars += 1
        elif kind == "TimeSig":
            state.phase = "timesig"
        elif kind == "Position":
            state.phase, state.position = "position", int(value)
            state.onsets += state.counting
        elif kind == "Pitch":
            state.phase = "pitch"
            state.notes += 1
            if state.counting:
                state.high = max(state.high, int(value))
        elif kind == "Duration":
            state.phase = "duration"

    def _cadence_bar(self, state: RowState) -> bool:
        return self.cadence and state.bars >= self.bars

    def _climb_due(self, state: RowState) -> bool:
        """This bar's downbeat must reach the theme's range (``peak``): no note has yet."""
        return (self.peak is not None and state.bars == self.peak_bar
                and state.high < self.peak - 2 and not self._cadence_bar(state))

    def _climbs(self, state: RowState) -> bool:
        return state.position == 0 and self._climb_due(state)

    def _tones(self, state: RowState) -> frozenset[int] | None:
        """The pitch classes a note at the state's position must have (None: any)."""
        chord = self.chords.get((state.bars - 1, state.position))
        if self._cadence_bar(state):
            last = self.chords.get((state.bars - 1, 0))
            return frozenset({0}) if last is None or 0 in last else last
        if self._climbs(state):
            return chord or self.scale
        return chord

    def _anchors(self, state: RowState) -> list[int]:
        """The pitches the next note must stay within JOIN_LEAP of (``joins``): the note
        before, for the first onset; the note after, for the last bar."""
        anchors = []
        if self.join_from is not None and state.onsets <= 1:  # the first onset, all of it
            anchors.append(self.join_from)
        if self.join_to is not None and state.bars >= self.bars:
            anchors.append(self.join_to)
        return anchors

    def _pitch_ids(self, state: RowState) -> list[int]:
        ids = self._rule_pitch_ids(state)
        anchors = self._anchors(state)
        allowed = set(ids)
        while anchors:  # both seams where they can be met, else the one before
            kept = [i for p, i in self.pitches.items()
                    if i in allowed and all(abs(p - a) <= JOIN_LEAP for a in anchors)]
            if kept:
                return kept
            anchors = anchors[:-1]
        return ids

    def _rule_pitch_ids(self, state: RowState) -> list[int]:
        tones = self._tones(state)
        if tones is None:
            return self.pitch_ids
        fitting = [(p, i) for p, i in self.pitches.items() if p % 12 in tones]
        if self._climbs(state):
            high = [i for p, i in fitting if p >= self.peak - 2]
            if high:
                return high
        return [i for _, i in fitting] or self.pitch_ids  # none fits: a strict key without
        # the chord's tones

    def _stacked(self, state: RowState) -> list[int]:
        """The notes the cadence's downbeat may stack on its first: the tonic triad (or the
        chord there)."""
        tones = self._tones(state)
        if tones == frozenset({0}):
            tones = frozenset({0, 4 if 4 in self.scale else 3, 7})
        return [i for p, i in self.pitches.items() if p % 12 in tones]

    @staticmethod
    def nucleus(state: RowState) -> bool:
        """Whether top-p applies to the next token: to a note's pitch only. Rhythm (where
        the next note starts, how long it lasts) is drawn from the whole distribution — its
        few choices' tails are the rhythm's variety, and cutting them at every note makes
        whole pieces of one duration (bench/music_rhythm.py)."""
        return state.phase == "position"

    def allowed(self, state: RowState) -> tuple[list[int], bool]:
        """(allowed token ids, whether the Bar probability should go to EOS instead)."""
        v = self.v
        last_bar = state.bars >= self.bars
        if state.phase == "done":
            return [v.pad], False
        if state.phase == "start":
            return [v.bar], False
        if state.phase == "bar":
            return [v.timesig[self.time_signature]], False
        if state.phase == "position":
            return self._pitch_ids(state), False
        if state.phase == "pitch":
            if self._cadence_bar(state):  # the last note is held
                half = self.bar_positions / 2
                return [d for d in v.duration if v.positions_of[d] >= half - 1e-6], False
            return v.duration, False
        if self._cadence_bar(state):
            if state.phase == "timesig":
                return [v.position[0]], False
            return (self._stacked(state) if self.stack else []) + [self.end], True
        if state.phase == "timesig" and self._climb_due(state):  # a note on the downbeat
            return [v.position[0]], False
        later = [v.position[p] for p in range(state.position + 1, self.bar_positions)
                 if p in v.position]
        if state.phase == "timesig":
            return later + ([self.end] if last_bar else [v.bar]), last_bar
        # after a Duration: a chord note, a later position, or the next bar / the end
        return self._pitch_ids(state) + later + ([self.end] if last_bar else [v.bar]), last_bar

    def mask(self, state: RowState, size: int | None = None):
        """``allowed`` as a cached boolean tensor over the model's ``size`` tokens (the
        vocabulary, and the infill tokens after it where the model has them)."""
        size = max(size or 0, len(self.v.vocab), self.end + 1)
        rules = None  # what the musical rules allow here, where they apply
        if (self.chords or self.cadence or self.peak is not None or
                self.join_from is not None or self.join_to is not None) and \
                state.phase in ("position", "pitch", "duration", "timesig"):
            rules = (self._cadence_bar(state), self._climb_due(state),
                     tuple(self._pitch_ids(state)))
        key = (state.phase, state.position if state.phase in ("timesig", "duration") else -1,
               state.bars >= self.bars, size, rules)
        cached = self._masks.get(key)
        if cached is None:
            import torch

            allowed, bar_to_eos = self.allowed(state)
            flags = torch.zeros(size, dtype=torch.bool)
            flags[allowed] = True
            cached = self._masks[key] = (flags, bar_to_eos)
        return cached
