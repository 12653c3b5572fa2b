"""Harmonize a melody: alto, tenor and bass under a fixed soprano by blocked Gibbs sampling
with the Coconet-style model (plugins/music/coconet.py), and the figures that judge a
four-part result (voice ranges, parallel fifths and octaves). No Qt; torch imported lazily.

Sampling (Huang et al. 2017, blocked Gibbs): start with every lower-voice cell unknown; at
each of ``iterations`` steps hide a share of the lower-voice cells that falls from 100 % to
5 %, let the model predict them all at once, and draw the hidden ones from its distribution
(``temperature``). The soprano is never touched. Each voice is kept inside its range and the
alto and tenor never above the soprano, by masking the model's choices before drawing.

Voice leading, as a chorale teacher marks it, weighs on each draw (not a hard mask: a
choice the model is sure of may still win): a note that would make parallel fifths or
octaves with another voice, against the notes around it at that moment, loses
``parallel_penalty`` nats; with ``key`` (the melody's key, found or set), a note outside it
loses ``out_of_key`` nats (passing chromatic notes stay possible; ``scale`` masks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# SATB ranges (MIDI), as hymnals give them, a step wider: what the chorales use
RANGES = ((60, 81), (53, 74), (48, 69), (36, 64))
PERFECT = (0, 7)  # octave/unison and fifth, as interval classes
REPAIRS = 12  # passes that draw again the cells still in parallels (harmonize)


def soprano_roll(notes, steps_per_quarter: int = 4) -> np.ndarray:
    """A monophonic melody (core io.midi.Note) → MIDI pitch per sixteenth (-1 = rest); the
    highest note wins where notes overlap."""
    spans = []
    for note in notes:
        start = int(round(note.start * steps_per_quarter))
        stop = int(round((note.start + note.duration) * steps_per_quarter))
        spans.append((note.pitch, start, max(start + 1, stop)))  # at least one step
    roll = np.full(max(stop for _pitch, _start, stop in spans), -1, dtype=np.int16)
    for pitch, start, stop in sorted(spans):  # the highest pitch is written last: it wins
        roll[start:stop] = pitch
    return roll


def allowed(soprano: np.ndarray, scale: set[int] | None = None, chords=None):
    """(4, T, P) bool: which rows each cell may take (range; not above the soprano; rests
    only where the soprano rests; with ``scale``, lower voices on its pitch classes only;
    with ``chords`` — per step the chord's pitch classes, or None — lower voices on the
    chord's tones there)."""
    import torch

    from .coconet import LOW, PITCHES, REST

    steps = len(soprano)
    pitch = torch.arange(PITCHES - 1) + LOW
    ok = torch.zeros((4, steps, PITCHES), dtype=torch.bool)
    top = torch.from_numpy(soprano.astype(np.int64))
    resting = top < 0
    in_scale = torch.tensor([int(p) % 12 in scale for p in pitch]) if scale else None
    for voice, (low, high) in enumerate(RANGES):
        in_range = (pitch >= low) & (pitch <= high)
        if in_scale is not None and voice:
            in_range &= in_scale
        ok[voice, :, :REST] = in_range
        if voice in (1, 2):  # alto and tenor never above the soprano
            ok[voice, :, :REST] &= (pitch[None, :] <= top[:, None]) | resting[:, None]
    ok[:, :, REST] = resting  # a rest with the soprano's rests, nowhere else
    ok[1:, resting, :REST] = False
    if chords is not None:
        classes = pitch % 12
        for step, tones in enumerate(chords[:steps]):
            if tones:
                ok[1:, step, :REST] &= torch.isin(classes, torch.tensor(sorted(tones)))
    return ok


def leading_penalties(pitches, candidates, voices: int = 4) -> torch.Tensor:
    """(4, T, P) how many parallel fifths/octaves each candidate pitch of each lower-voice
    cell would make with the other voices' current ``pitches`` (4, T; -1 = rest), counting
    the move into the cell and the move out of it."""
    import torch

    steps = pitches.shape[1]
    out = torch.zeros((4, steps, candidates.numel()), dtype=torch.float32)
    if steps < 2:
        return out
    cand = candidates[None, :]
    perfect = torch.tensor(PERFECT)
    for v in range(1, voices):
        for u in range(voices):
            if u == v:
                continue
            up = 1 if v < u else -1  # intervals from the upper voice down, as parallels() does
            # into the cell at t (t ≥ 1): from a0 (this voice at t-1), the other b0 → b1
            a0, b0, b1 = pitches[v, :-1, None], pitches[u, :-1, None], pitches[u, 1:, None]
            before = (up * (a0 - b0)) % 12
            valid = (a0 >= 0) & (b0 >= 0) & (b1 >= 0) & (b0 != b1) & \
                torch.isin(before, perfect)
            same = ((up * (cand - b1)) % 12 == before) & (cand != a0) & \
                (torch.sign(cand - a0) == torch.sign(b1 - b0))
            out[v, 1:] += (valid & same).float()
            # out of the cell at t (t ≤ T-2): to a2 (this voice at t+1), the other b1 → b2
            a2, b1, b2 = pitches[v, 1:, None], pitches[u, :-1, None], pitches[u, 1:, None]
            after = (up * (a2 - b2)) % 12
            valid = (a2 >= 0) & (b1 >= 0) & (b2 >= 0) & (b1 != b2) & \
                torch.isin(after, perfect)
            same = ((up * (cand - b1)) % 12 == after) & (cand != a2) & \
                (torch.sign(a2 - cand) == torch.sign(b2 - b1))
            out[v, :-1] += (valid & same).float()
    return out


def harmonize(model, soprano: np.ndarray, *, temperature: float = 0.8, iterations: int = 48,
              seed: int = 0, voices: int = 4, scale: set[int] | None = None,
              key: set[int] | None = None, parallel_penalty: float = 8.0,
              out_of_key: float = 2.0, progress=None, pairs: bool = True,
              chords=None, bass_root: float = 1.5, start: np.ndarray | None = None,
              free: np.ndarray | None = None) -> np.ndarray:
    """(4, T) MIDI pitches: the soprano as given and the lower voices drawn under it (with
    ``voices`` = 3 the bass is left silent). ``scale`` masks notes outside it; ``key``
    weighs against them (module docstring). With ``pairs`` the lower voices move on
    eighths: each pair of sixteenths is hidden together and drawn as one note (``draw``), as
    a chorale's inner voices move (quarters and eighths, no sixteenth figures), unless the
    soprano rests on one of the two."""
    import torch

    from .coconet import LOW, PITCHES, REST, to_index, to_pitch

    generator = torch.Generator().manual_seed(int(seed))
    steps = len(soprano)
    ok = allowed(soprano, scale, None if chords is None else
                 [chord[0] if chord else None for chord in chords])
    candidates = torch.arange(PITCHES - 1) + LOW
    bias = torch.zeros((4, steps, PITCHES))
    if key:
        outside = torch.tensor([int(p) % 12 not in key for p in candidates])
        bias[1:, :, :REST] -= out_of_key * outside.float()
    for step, chord in enumerate(chords or ()):
        if chord and step < steps:  # the bass leans to the chord's bass note
            bias[3, step, :REST] += bass_root * (candidates % 12 == chord[1]).float()
    rolls = torch.full((1, 4, steps), REST, dtype=torch.long)
    lower = torch.zeros((4, steps), dtype=torch.bool)
    lower[1:voices] = True
    if start is not None:
        rolls[0] = to_index(torch.from_numpy(start[:, :steps].astype(np.int64)))
        lower &= torch.from_numpy(np.asarray(free, dtype=bool)[:, :steps])
    rolls[0, 0] = to_index(torch.from_numpy(soprano.astype(np.int64)))
    hidden = lower.clone()
    model.eval()
    with torch.inference_mode():
        for iteration in range(iterations):
            share = max(0.05, 1.0 - iteration / max(1, iterations - 1) * 0.95)
            if iteration:
                hidden = lower & (torch.rand((4, steps), generator=generator) < share)
                if pairs:
                    hidden = pair_any(hidden) & lower
                if not hidden.any():
                    continue
            logits = model(rolls, hidden[None].long())[0].float() + bias  # (4, T, P)
            marks = None
            if parallel_penalty and iteration:  # against the voices as they stand now
                marks = leading_penalties(to_pitch(rolls[0]), candidates, voices)
            drawn = draw(logits, marks, parallel_penalty, ok, temperature, generator, pairs)
            rolls[0] = torch.where(hidden, drawn, rolls[0])
            if progress is not None:
                progress.update((iteration + 1) / (iterations + REPAIRS))
                progress.check()
        clean = 0  # voices in a row found without parallels
        if parallel_penalty:  # blocked draws change both notes of a parallel at once: the
            for repair in range(REPAIRS):  # cells still in one are drawn again, a voice a time
                voice = 1 + repair % max(1, voices - 1)
                if clean >= voices - 1:
                    break
                pitches = to_pitch(rolls[0])
                current = rolls[0].clamp(max=REST - 1)  # rests: any index (not faulty)
                marks = leading_penalties(pitches, candidates, voices)
                faulty = marks[voice].gather(1, current[voice][:, None]).squeeze(1) > 0
                faulty &= (pitches[voice] >= 0) & lower[voice]
                faulty = apart(faulty, 2 if pairs else 1)  # never two neighbours at once:
                # each is weighed against the other as it stands
                if not faulty.any():
                    clean += 1
                    continue
                clean = 0
                hidden = torch.zeros((4, steps), dtype=torch.bool)
                hidden[voice] = faulty & lower[voice]  # whole eighths inside the free cells
                if not hidden.any():
                    clean += 1
                    continue
                logits = model(rolls, hidden[None].long())[0].float() + bias
                drawn = draw(logits, marks, parallel_penalty, ok, min(temperature, 0.5),
                             generator, pairs)
                rolls[0] = torch.where(hidden, drawn, rolls[0])
    out = to_pitch(rolls[0]).numpy().astype(np.int16)
    out[voices:] = -1
    return out


def pair_any(mask: torch.Tensor) -> torch.Tensor:
    """(4, T) bool: a cell is set where either sixteenth of its eighth (steps 2k, 2k+1) is."""
    import torch

    steps = mask.shape[-1]
    padded = torch.cat([mask, mask.new_zeros((mask.shape[0], steps % 2))], dim=1)
    both = padded.reshape(mask.shape[0], -1, 2).any(-1, keepdim=True)
    return both.expand(-1, -1, 2).reshape(mask.shape[0], -1)[:, :steps]


def apart(cells: torch.Tensor, unit: int) -> torch.Tensor:
    """(T,) bool, by units of ``unit`` steps (2: eighths): a unit is set where any of its
    cells is, unless the unit before it was; a set unit's cells are all set."""
    import torch

    steps = cells.shape[0]
    units = torch.cat([cells, cells.new_zeros((-steps) % unit)]).reshape(-1, unit).any(-1)
    units[1:] &= ~units[:-1].clone()
    return units.repeat_interleave(unit)[:steps]


def draw(logits, marks, penalty: float, ok, temperature: float, generator,
         pairs: bool) -> torch.Tensor:
    """(4, T) rows drawn from the model's ``logits`` (4, T, P, the key's bias added), each
    parallel that ``marks`` (4, T, P-1, or None) counts costing ``penalty`` nats, rows
    outside ``ok`` forbidden. With ``pairs`` each lower voice's eighth (steps 2k, 2k+1) is
    one note: drawn once from the mean of its two cells' logits less both cells' parallels
    (the move into the eighth and the move out of it), and both cells take it; two cells
    that share no allowed row (the soprano rests on one) are drawn apart."""
    import torch

    from .coconet import PITCHES, REST

    masked = logits.masked_fill(~ok, float("-inf"))
    cost = torch.zeros_like(masked)
    if marks is not None:
        cost[:, :, :REST] = penalty * marks
    scores = masked - cost
    shared = None
    if pairs:
        end = scores.shape[1] // 2 * 2
        first, second = slice(0, end, 2), slice(1, end, 2)
        joint = (masked[1:, first] + masked[1:, second]) / 2 - \
            (cost[1:, first] + cost[1:, second])
        shared = torch.isfinite(joint).any(-1)  # (3, T/2)
        scores[1:, first] = torch.where(shared[..., None], joint, scores[1:, first])
    probs = torch.softmax(scores / max(temperature, 1e-3), dim=-1).reshape(-1, PITCHES)
    drawn = torch.multinomial(probs, 1, generator=generator).reshape(ok.shape[:2])
    if shared is not None:
        drawn[1:, second] = torch.where(shared, drawn[1:, first], drawn[1:, second])
    return drawn


def parallels(rolls: np.ndarray) -> tuple[int, int]:
    """(parallel fifths and octaves, voice-pair moves) over every pair of voices: a move is
    a step where both voices of the pair change pitch; a parallel keeps a perfect fifth or
    octave while both move the same way."""
    count = moves = 0
    voices = [v for v in range(rolls.shape[0]) if (rolls[v] >= 0).any()]
    for a_index, a in enumerate(voices):
        for b in voices[a_index + 1:]:
            for t in range(1, rolls.shape[1]):
                a0, a1, b0, b1 = rolls[a, t - 1], rolls[a, t], rolls[b, t - 1], rolls[b, t]
                if min(a0, a1, b0, b1) < 0 or a0 == a1 or b0 == b1:
                    continue
                moves += 1
                before, after = (a0 - b0) % 12, (a1 - b1) % 12
                if before == after and before in PERFECT and (a1 - a0) * (b1 - b0) > 0:
                    count += 1
    return count, moves


def in_ranges(rolls: np.ndarray) -> float:
    """Share of sounding lower-voice cells inside their voice's range."""
    inside = total = 0
    for voice in range(1, rolls.shape[0]):
        low, high = RANGES[voice]
        sounding = rolls[voice][rolls[voice] >= 0]
        inside += int(((sounding >= low) & (sounding <= high)).sum())
        total += sounding.size
    return inside / total if total else 1.0
