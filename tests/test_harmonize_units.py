"""The harmonizer's sampler (plugins/music/harmonize.py) on its own: what its masks, its
weights against notes outside the key and against parallels, its seed and its progress do,
with a model whose every choice is equally likely (so that what comes out is the sampler's
doing alone) and one that is sure of one note. The shipped model is exercised end to end in
test_music_reworks.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.progress import Cancelled, Progress
from creative_studio.io.midi import Note
from plugins.music.harmonize import (
    RANGES,
    REPAIRS,
    allowed,
    harmonize,
    in_ranges,
    leading_penalties,
    parallels,
    soprano_roll,
)
from tests.helpers import Outcomes, examples

torch = pytest.importorskip("torch")

from plugins.music.coconet import LOW, PITCHES, REST  # noqa: E402 (needs torch)

C_MAJOR = {0, 2, 4, 5, 7, 9, 11}
# a 16-bar melody in C with two rests: long enough for the shares below to be steady
TUNE = [72, 74, 76, 77, 79, 77, 76, 74, -1, 72, 71, 72, 74, 76, 74, 72] * 4


def roll(pitches=TUNE, step: int = 4) -> np.ndarray:
    """Each pitch held for ``step`` sixteenths."""
    return np.repeat(np.array(pitches, dtype=np.int16), step)


class Uniform(torch.nn.Module):
    """Every row equally likely everywhere; keeps what it was asked to predict."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: list[torch.Tensor] = []

    def forward(self, rolls, hidden):
        self.hidden.append(hidden[0].clone())
        return torch.zeros((1, 4, rolls.shape[-1], PITCHES))


class Sure(torch.nn.Module):
    """Sure of one pitch for every lower-voice cell (by ``margin`` nats)."""

    def __init__(self, pitch: int, margin: float = 30.0) -> None:
        super().__init__()
        self.pitch, self.margin = pitch, margin

    def forward(self, rolls, hidden):
        logits = torch.zeros((1, 4, rolls.shape[-1], PITCHES))
        logits[0, :, :, self.pitch - LOW] = self.margin
        return logits


def lower_notes(rolls: np.ndarray, voices: int = 4) -> np.ndarray:
    notes = rolls[1:voices]
    return notes[notes >= 0]


def in_key(rolls: np.ndarray, key=C_MAJOR) -> float:
    notes = lower_notes(rolls)
    return float(np.isin(notes % 12, list(key)).mean())


# -- the soprano roll -----------------------------------------------------------------------
def test_a_melody_becomes_a_pitch_per_sixteenth_with_rests_and_the_highest_note_on_top():
    notes = [Note(0, 1, 60), Note(1, 0.5, 62), Note(2.5, 0.5, 64), Note(2.5, 0.25, 67),
             Note(3, 0.01, 65)]
    out = soprano_roll(notes)
    assert out.dtype == np.int16
    assert out.tolist() == [60] * 4 + [62] * 2 + [-1] * 4 + [67, 64] + [65]
    assert soprano_roll([Note(0, 1, 60)], steps_per_quarter=2).tolist() == [60, 60]


# -- what each cell may take -------------------------------------------------------------------
def test_allowed_keeps_ranges_the_soprano_on_top_and_rests_with_the_soprano():
    soprano = np.array([72, 72, -1, 50], dtype=np.int16)
    ok = allowed(soprano)
    assert ok.shape == (4, 4, PITCHES) and ok.dtype == torch.bool
    pitch = np.arange(PITCHES - 1) + LOW
    for voice, (low, high) in enumerate(RANGES):
        rows = ok[voice, 0, :REST].numpy()
        cap = 72 if voice in (1, 2) else high  # alto and tenor never above the soprano
        assert rows.tolist() == ((pitch >= low) & (pitch <= min(high, cap))).tolist()
    assert ok[2, 3, :REST].numpy().tolist() == ((pitch >= 48) & (pitch <= 50)).tolist()
    assert ok[3, 3, 55 - LOW]  # the bass is not held under the soprano, only in its range
    # where the soprano rests, every voice rests; elsewhere none may
    assert ok[:, 2, REST].all() and not ok[1:, 2, :REST].any()  # (the soprano is given)
    assert not ok[:, [0, 1, 3], REST].any()


def test_a_scale_masks_the_lower_voices_only():
    ok = allowed(np.array([73, 73], dtype=np.int16), scale=C_MAJOR)
    sounding = np.arange(PITCHES - 1) + LOW
    for voice in (1, 2, 3):
        chosen = sounding[ok[voice, 0, :REST].numpy()]
        assert len(chosen) and set(chosen % 12) <= C_MAJOR
    assert ok[0, 0, 73 - LOW]  # the soprano's own C# stays possible


# -- the sampler ------------------------------------------------------------------------------
def test_the_melody_is_kept_and_every_lower_note_obeys_the_masks():
    soprano = roll()
    out = harmonize(Uniform(), soprano, iterations=6, seed=3)
    assert out.shape == (4, len(soprano)) and out.dtype == np.int16
    assert out[0].tolist() == soprano.tolist()
    resting = soprano < 0
    assert (out[1:, resting] == -1).all() and (out[1:, ~resting] >= 0).all()
    assert in_ranges(out) == 1.0
    assert (out[1:3, ~resting] <= soprano[~resting]).all()


def test_three_voices_leave_the_bass_silent_and_never_draw_it():
    model = Uniform()
    out = harmonize(model, roll(), iterations=4, seed=1, voices=3)
    assert (out[3] == -1).all() and (out[1:3][:, roll() >= 0] >= 0).all()
    assert all(not hidden[3].any() and not hidden[0].any() for hidden in model.hidden)


def test_the_first_pass_draws_every_lower_cell_and_later_ones_fewer():
    model = Uniform()
    harmonize(model, roll(), iterations=8, seed=2, parallel_penalty=0.0)
    assert len(model.hidden) <= 8
    first, last = model.hidden[0], model.hidden[-1]
    assert first[1:].all() and not first[0].any()  # every lower cell, never the soprano
    assert last.sum() < first.sum() / 4  # the share falls to 5 %


def test_a_seed_repeats_its_harmony_and_another_seed_changes_it():
    one = harmonize(Uniform(), roll(), iterations=5, seed=7)
    assert np.array_equal(one, harmonize(Uniform(), roll(), iterations=5, seed=7))
    assert not np.array_equal(one, harmonize(Uniform(), roll(), iterations=5, seed=8))


def test_a_strict_scale_gives_only_its_notes():
    out = harmonize(Uniform(), roll(), iterations=5, seed=4, scale=C_MAJOR)
    assert in_key(out) == 1.0


def test_the_default_weighs_against_notes_outside_the_key_without_forbidding_them():
    """Harmonize's default (not strict): ``key`` takes ``out_of_key`` nats from each note
    outside it. A uniform model gives 7 of 12 pitch classes ≈ 58 % in key; 2 nats make it
    7e² / (7e² + 5) ≈ 91 %."""
    plain = in_key(harmonize(Uniform(), roll(), iterations=5, seed=5, parallel_penalty=0.0))
    weighed = harmonize(Uniform(), roll(), iterations=5, seed=5, key=C_MAJOR,
                        parallel_penalty=0.0)
    share = in_key(weighed)
    assert 0.45 < plain < 0.7
    assert 0.85 < share < 0.97  # weighed, not masked: some chromatic notes remain
    heavier = in_key(harmonize(Uniform(), roll(), iterations=5, seed=5, key=C_MAJOR,
                               out_of_key=6.0, parallel_penalty=0.0))
    assert heavier > share
    unweighed = harmonize(Uniform(), roll(), iterations=5, seed=5, key=C_MAJOR,
                          out_of_key=0.0, parallel_penalty=0.0)
    assert 0.45 < in_key(unweighed) < 0.7


def test_the_parallel_penalty_and_its_repairs_take_out_parallels():
    free = weighed = moves = 0
    for seed in range(4):
        count, moved = parallels(harmonize(Uniform(), roll(), iterations=8, seed=seed,
                                           parallel_penalty=0.0))
        free, moves = free + count, moves + moved
        weighed += parallels(harmonize(Uniform(), roll(), iterations=8, seed=seed))[0]
    assert moves > 1500 and free >= 10  # a uniform draw makes some
    assert weighed == 0


class Parallel(torch.nn.Module):
    """Wants every lower voice to double the soprano (an octave, a twelfth, two octaves
    below): parallels everywhere, by ``margin`` nats."""

    def __init__(self, margin: float) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, rolls, hidden):
        soprano, steps = rolls[0, 0], rolls.shape[-1]
        logits = torch.zeros((1, 4, steps, PITCHES))
        for voice, below in ((1, 12), (2, 19), (3, 24)):
            logits[0, voice, torch.arange(steps), (soprano - below).clamp(0, REST - 1)] = \
                self.margin
        return logits


def test_a_model_that_wants_parallels_gets_none_after_the_repairs():
    """The weights make parallels rare during the blocked passes; the repair passes, a voice
    at a time until every voice is clean, take out the rest."""
    free = weighed = 0
    for seed in range(4):
        free += parallels(harmonize(Parallel(6.0), roll(), iterations=8, seed=seed,
                                    parallel_penalty=0.0))[0]
        weighed += parallels(harmonize(Parallel(6.0), roll(), iterations=8, seed=seed))[0]
    assert free > 500 and weighed == 0


def test_the_repairs_draw_again_only_the_cells_in_parallels():
    """After the blocked passes, each repair pass hides some cells of one lower voice (those
    still making parallels), never the soprano."""
    model = Uniform()
    harmonize(model, roll(), iterations=3, seed=9)
    repairs = model.hidden[3:]
    assert len(repairs) <= REPAIRS
    for hidden in repairs:
        voices = [v for v in range(4) if hidden[v].any()]
        assert len(voices) == 1 and voices[0] in (1, 2, 3)
        cells = hidden[voices[0]].nonzero().flatten()
        eighths = torch.unique(cells // 2)  # drawn as whole eighths (pairs)
        assert torch.equal(torch.unique(torch.cat([eighths * 2, eighths * 2 + 1])), cells)
        assert (eighths[1:] - eighths[:-1] > 1).all()  # never two neighbours at once


def test_a_sure_model_at_a_low_temperature_is_followed():
    out = harmonize(Sure(60), roll([72, 74, 76, 77]), iterations=3, seed=0, temperature=0.1,
                    parallel_penalty=0.0)
    assert (out[1:3] == 60).all()
    assert (out[3] == 60).all()  # the bass too: 60 is inside its range


def test_progress_rises_to_the_end_and_a_stop_ends_the_draw():
    seen = []

    class Watch(Progress):
        def update(self, fraction, message=None):
            seen.append(fraction)
            super().update(fraction, message)

    harmonize(Uniform(), roll(), iterations=6, seed=1, progress=Watch())
    assert len(seen) == 6 and seen == sorted(seen) and seen[-1] <= 1.0
    assert seen[-1] == pytest.approx(6 / (6 + REPAIRS))

    progress = Progress()
    model = Uniform()
    progress.cancel()
    with pytest.raises(Cancelled):
        harmonize(model, roll(), iterations=6, seed=1, progress=progress)
    assert len(model.hidden) == 1  # stopped after the first pass


def test_in_ranges_counts_the_lower_voices_only():
    rolls = np.array([[100, 100, -1], [60, 90, -1], [50, 55, -1], [-1, -1, -1]], dtype=np.int16)
    assert in_ranges(rolls) == pytest.approx(3 / 4)
    assert in_ranges(np.full((4, 3), -1, dtype=np.int16)) == 1.0


def parallel_between(rolls: np.ndarray, a: int, b: int, t: int) -> bool:
    """Voices ``a`` and ``b`` make a parallel fifth or octave from step t-1 to t (the
    figure's definition: both sound and move, the same way, keeping a perfect interval
    measured from the upper voice down)."""
    upper, lower = min(a, b), max(a, b)
    u0, u1, l0, l1 = (int(rolls[upper, t - 1]), int(rolls[upper, t]),
                      int(rolls[lower, t - 1]), int(rolls[lower, t]))
    if min(u0, u1, l0, l1) < 0 or u0 == u1 or l0 == l1:
        return False
    return (u0 - l0) % 12 == (u1 - l1) % 12 in (0, 7) and (u1 - u0) * (l1 - l0) > 0


CELL = st.sampled_from([-1, 48, 53, 55, 60, 62, 65, 67, 72, 74, 79])


def test_each_cell_is_marked_with_exactly_the_parallels_it_takes_part_in():
    """leading_penalties() at a lower-voice cell's own pitch = the parallels that cell
    makes with any other voice, moving into it and out of it (the pitches drawn make many
    fifths and octaves, up and down)."""
    seen = Outcomes()

    @settings(max_examples=examples(300, least=100), deadline=None, derandomize=True)
    @given(st.lists(st.tuples(CELL, CELL, CELL, CELL), min_size=2, max_size=7))
    def check(columns):
        check_marks(np.array(columns, dtype=np.int16).T, seen)

    check()
    seen.require("marked", "clean")


def check_marks(rolls: np.ndarray, seen: Outcomes) -> None:
    """Every sounding lower-voice cell's mark against the parallels counted by hand."""
    steps = rolls.shape[1]
    marks = leading_penalties(torch.from_numpy(rolls.astype(np.int64)),
                              torch.arange(PITCHES - 1) + LOW)
    for voice in (1, 2, 3):
        for t in range(steps):
            pitch = int(rolls[voice, t])
            if pitch < 0:
                continue
            expected = sum(parallel_between(rolls, voice, other, step)
                           for other in range(4) if other != voice
                           for step in (t, t + 1) if 1 <= step < steps)
            assert marks[voice, t, pitch - LOW] == expected, (voice, t)
            seen["marked" if expected else "clean"] += 1


def test_pair_any_sets_both_sixteenths_of_an_eighth():
    import torch

    from plugins.music.harmonize import pair_any

    mask = torch.zeros((4, 7), dtype=torch.bool)
    mask[1, 1] = mask[2, 4] = mask[3, 6] = True
    expected = torch.zeros((4, 7), dtype=torch.bool)
    expected[1, 0:2] = expected[2, 4:6] = expected[3, 6] = True
    assert torch.equal(pair_any(mask), expected)


def test_apart_keeps_no_two_neighbouring_units():
    import torch

    from plugins.music.harmonize import apart

    cells = torch.tensor([0, 1, 1, 0, 0, 0, 1, 0, 1], dtype=torch.bool)
    assert apart(cells, 1).int().tolist() == [0, 1, 0, 0, 0, 0, 1, 0, 1]
    # eighths: (0,1) set, (2,3) its neighbour, (4,5) clear, (6,7) set, (8) its neighbour
    assert apart(cells, 2).int().tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0]


class Pairs(torch.nn.Module):
    """Wants row 10 on every even step and row 12 on every odd one, by 2 nats."""

    def forward(self, rolls, hidden):
        logits = torch.zeros((1, 4, rolls.shape[-1], PITCHES))
        logits[0, :, 0::2, 10] = logits[0, :, 1::2, 12] = 2.0
        return logits


def test_a_pair_is_drawn_once_from_both_cells_and_weighs_both_cells_parallels():
    from plugins.music.harmonize import draw

    steps = 6
    logits = Pairs()(torch.zeros((1, 4, steps)), None)[0]
    ok = torch.ones((4, steps, PITCHES), dtype=torch.bool)
    ok[2, 3, :] = False
    ok[2, 3, 12] = True  # the second cell of voice 2's second eighth may only take row 12
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(PITCHES)
    for _ in range(400):
        drawn = draw(logits, None, 8.0, ok, 1.0, generator, pairs=True)
        assert (drawn[1:, 1::2] == drawn[1:, 0::2]).all()  # one note per eighth
        counts += torch.bincount(drawn[1, 0::2], minlength=PITCHES)
    # the mean of the two cells: rows 10 and 12 weigh 1 nat each, the other rows 0
    share = (counts[10] + counts[12]) / counts.sum()
    expected = 2 * math.e / (2 * math.e + PITCHES - 2)
    assert abs(share - expected) < 0.04 and abs(counts[10] - counts[12]) < 0.4 * counts[10]
    drawn = draw(logits, None, 8.0, ok, 1.0, generator, pairs=True)
    assert drawn[2, 2] == drawn[2, 3] == 12  # the only row the pair shares
    marks = torch.zeros((4, steps, REST))
    marks[3, 5, 7] = 1.0  # row 7 would make a parallel out of the third eighth's second cell
    logits[3, 4:6, 7] = 7.0  # and the model wants it by 7 nats on both cells
    picked = sum(int(draw(logits, marks, 8.0, ok, 1.0, generator, pairs=True)[3, 4] == 7)
                 for _ in range(200))
    assert picked < 20  # 7 - 8 = -1 nat: rare; unpaired it would weigh 7 on the first cell
    unpaired = sum(int(draw(logits, marks, 8.0, ok, 1.0, generator, pairs=False)[3, 4] == 7)
                   for _ in range(200))
    assert unpaired > 150


def test_harmonize_in_pairs_moves_the_lower_voices_on_eighths():
    from creative_studio.core import paths
    from plugins.music.harmonize import harmonize
    from plugins.music.reworks import load

    folder = paths.resources_dir() / "models" / "music-harmonize"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("the harmonize model is not there")
    model = load(folder, "harmonize", "cpu")
    soprano = np.array([72, 72, 74, 74, 76, 76, 76, 76, 77, 79, 77, 76, 74, 74, 72, 72] * 2,
                       dtype=np.int16)  # sixteenths in the melody too
    rolls = harmonize(model, soprano, iterations=6, seed=2)
    for voice in (1, 2, 3):
        assert (rolls[voice, 1::2] == rolls[voice, 0::2]).all()
    assert (rolls[0] == soprano).all()
    free = harmonize(model, soprano, iterations=6, seed=2, pairs=False)
    assert any((free[v, 1::2] != free[v, 0::2]).any() for v in (1, 2, 3))


def test_only_the_free_cells_are_drawn_and_the_model_hears_the_rest():
    from plugins.music.harmonize import harmonize

    soprano = np.array([72] * 16, dtype=np.int16)
    start = np.array([[72] * 16, [67] * 16, [64] * 16, [48] * 16], dtype=np.int16)
    free = np.zeros((4, 16), dtype=bool)
    free[2, 4:8] = True  # the tenor's second beat
    model = Uniform()
    out = harmonize(model, soprano, iterations=4, seed=3, start=start, free=free)
    keep = ~free
    assert (out[keep] == start[keep]).all()
    assert (out[2, 4:8] != 64).any()  # drawn anew (a uniform draw: rarely the same)
    assert (out[2, 4:6] == out[2, 4]).all() and (out[2, 6:8] == out[2, 6]).all()  # eighths
    for hidden in model.hidden:  # never a cell outside the free ones
        assert not (hidden.bool() & torch.from_numpy(keep)).any()
