"""Properties that must hold for every input (hypothesis), where a few examples would let a
one-line mistake through: the music grammar, seam-free tiling and its memory budget, and
project round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Outcomes, examples
from tests.test_upscale_groundwork import _conv_sr

FAST = settings(max_examples=examples(40), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- the music grammar ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocab():
    from plugins.music.grammar import Vocabulary
    from plugins.music.tokens import make_tokenizer

    return Vocabulary(dict(make_tokenizer().vocab))


@FAST
@given(data=st.data(), meter=st.sampled_from(["4/4", "3/4", "2/4", "6/8", "9/8", "2/2"]),
       bars=st.integers(1, 4), mode=st.sampled_from(["major", "minor", "dorian", "x"]),
       strict=st.booleans())
def test_every_walk_of_the_grammar_is_a_valid_piece(vocab, data, meter, bars, mode, strict):
    """Any path through the allowed tokens: positions strictly increase inside a bar, a
    Duration follows each Pitch, EOS comes exactly after the requested bars (Bar's
    probability goes to EOS once the last bar has started), and mask() says what allowed()
    says at every reachable state."""
    import torch

    from plugins.music.grammar import SCALES, Grammar, RowState, positions_per_bar

    grammar = Grammar(vocab, meter, bars, mode, strict_key=strict)
    state, tokens = RowState(), []
    position, bar_count = -1, 0
    for _ in range(400):
        allowed, bar_to_eos = grammar.allowed(state)
        flags, mask_to_eos = grammar.mask(state)
        assert flags.dtype == torch.bool and flags.nonzero().flatten().tolist() == \
            sorted(set(allowed)) and mask_to_eos == bar_to_eos
        assert bar_to_eos == (state.bars >= bars and state.phase in ("timesig", "duration"))
        assert (vocab.eos in allowed) == bar_to_eos
        if state.phase == "done":
            break
        # mostly a later position or a note, sometimes the end of the bar
        token = data.draw(st.sampled_from(sorted(set(allowed))))
        kind, value = vocab.kind[token]
        if kind == "Position":
            assert int(value) > position and int(value) < positions_per_bar(meter)
            position = int(value)
        elif kind == "Bar":
            position, bar_count = -1, bar_count + 1
            assert bar_count <= bars
        elif kind == "Pitch":
            assert tokens and vocab.kind[tokens[-1]][0] in ("Position", "Duration")
            if strict:
                assert int(value) % 12 in SCALES.get(mode, SCALES["major"])
        elif kind == "Duration":
            assert vocab.kind[tokens[-1]][0] == "Pitch"
        elif token == vocab.eos:
            assert bar_count == bars
        tokens.append(token)
        grammar.advance(state, token)
    if state.phase == "done":
        assert tokens[-1] == vocab.eos and tokens.count(vocab.bar) == bars


def test_the_grammar_can_always_finish(vocab):
    """From any state the shortest path ends: the walk that always takes the last allowed
    token (the next bar, or EOS) ends after exactly the requested bars."""
    from plugins.music.grammar import Grammar, RowState

    for bars in (1, 3, 8):
        grammar = Grammar(vocab, "3/4", bars)
        state, steps = RowState(), 0
        while state.phase != "done" and steps < 1000:
            allowed, _ = grammar.allowed(state)
            grammar.advance(state, allowed[-1])
            steps += 1
        assert state.phase == "done" and state.bars == bars


@FAST
@given(data=st.data(), meter=st.sampled_from(["4/4", "3/4", "6/8", "2/2"]),
       bars=st.integers(2, 4), stack=st.booleans(),
       progression=st.lists(st.sampled_from(["C", "Am", "F", "G7", "Dm", "E7", "Bb"]),
                            min_size=1, max_size=4))
def test_every_walk_keeps_the_chords_the_cadence_and_the_climb(vocab, data, meter, bars,
                                                                stack, progression):
    """With chords, a cadence and a theme's peak: a pitch on a strong beat is a tone of the
    chord there; the last bar has one onset, its downbeat, the tonic (or the last chord's
    tone), held at least half the bar (a chorale may stack its chord on it); the climb bar's
    downbeat reaches the peak unless a note already has; top-p applies to pitches only."""
    from plugins.music import chords
    from plugins.music.grammar import POSITIONS_PER_BEAT, Grammar, RowState, positions_per_bar

    numerator, denominator = (int(x) for x in meter.split("/"))
    placed = chords.place([[symbol] for symbol in progression], bars,
                          numerator * 4 / denominator)
    tones = chords.grammar_tones(placed, (numerator, denominator), bars, 0, POSITIONS_PER_BEAT)
    grammar = Grammar(vocab, meter, bars, chords=tones, cadence=True, peak=76,
                      peak_bar=bars - 1, stack=stack)
    state = RowState(counting=True)
    last_chord = tones.get((bars - 1, 0))
    cadence = frozenset({0}) if last_chord is None or 0 in last_chord else last_chord
    high, climbed_at = -1, None
    for _ in range(400):
        allowed, _ = grammar.allowed(state)
        if grammar.nucleus(state):
            assert all(vocab.kind[t][0] == "Pitch" for t in allowed)
        if state.phase == "done":
            break
        token = data.draw(st.sampled_from(sorted(set(allowed))))
        kind, value = vocab.kind[token]
        last_bar = state.bars == bars
        if kind == "Position" and last_bar:
            assert int(value) == 0  # one onset in the last bar: its downbeat
        if kind == "Pitch":
            pitch, where = int(value), (state.bars - 1, state.position)
            if last_bar:
                assert pitch % 12 in (cadence if state.phase == "position" else
                                      (cadence if cadence != {0} else {0, 4, 7}))
                assert stack or state.phase == "position"
            elif where in tones:
                assert pitch % 12 in tones[where]
            if state.bars == bars - 1 and state.position == 0 and high < 74:
                climbed_at = pitch
            high = max(high, pitch)
        if kind == "Duration" and last_bar:
            assert vocab.positions_of[token] >= positions_per_bar(meter) / 2 - 1e-6
        grammar.advance(state, token)
    if climbed_at is not None:  # the climb bar's downbeat, where no note had reached 74
        assert climbed_at >= 74


@FAST
@given(data=st.data(), bars=st.integers(1, 3), before=st.integers(50, 90),
       after=st.integers(50, 90), strict=st.booleans())
def test_every_walk_of_regenerated_bars_joins_both_sides(vocab, data, bars, before, after,
                                                         strict):
    """Regenerate bars' seams: every note of the first onset within JOIN_LEAP of the note
    before, every note of the last bar within JOIN_LEAP of the note after."""
    from plugins.music.grammar import JOIN_LEAP, Grammar, RowState

    grammar = Grammar(vocab, "4/4", bars, strict_key=strict, joins=(before, after))
    state, onsets = RowState(counting=True), 0
    for _ in range(300):
        allowed, _ = grammar.allowed(state)
        if state.phase == "done":
            break
        token = data.draw(st.sampled_from(sorted(set(allowed))))
        kind, value = vocab.kind[token]
        onsets += kind == "Position"
        if kind == "Pitch":
            both = any(abs(p - before) <= JOIN_LEAP and abs(p - after) <= JOIN_LEAP
                       for p in grammar.pitches)  # else the seam before wins
            if onsets == 1:
                assert abs(int(value) - before) <= JOIN_LEAP
            if state.bars == bars and (onsets > 1 or both):
                assert abs(int(value) - after) <= JOIN_LEAP
        grammar.advance(state, token)


def test_masks_are_cached_per_state_and_stay_right(vocab):
    """The mask cache is keyed so that two states with different later positions never
    share a mask (a position could otherwise go backwards inside a bar)."""
    from plugins.music.grammar import Grammar, RowState

    grammar = Grammar(vocab, "4/4", 2)
    early = RowState(phase="duration", position=2, bars=1)
    late = RowState(phase="duration", position=20, bars=1)
    early_flags, _ = grammar.mask(early)
    late_flags, _ = grammar.mask(late)
    assert early_flags[vocab.position[10]] and not late_flags[vocab.position[10]]
    last = RowState(phase="duration", position=20, bars=2)
    flags, to_eos = grammar.mask(last)
    assert to_eos and flags[vocab.eos] and not flags[vocab.bar]
    assert grammar.mask(early)[0] is early_flags  # cached


# -- tiling ---------------------------------------------------------------------------------
def _float(tensor):
    return tensor[0].float().permute(1, 2, 0).numpy()


def test_tiles_with_their_context_equal_the_whole_image():
    seen = Outcomes()

    @settings(max_examples=examples(12), deadline=None, derandomize=True)
    @given(height=st.integers(9, 40), width=st.integers(9, 40), tile=st.integers(4, 24),
           layers=st.integers(1, 4))
    def check(height, width, tile, layers):
        tiles_equal_the_whole(height, width, tile, layers)
        seen["short context seen"] += tile < max(height, width)

    check()
    seen.require("short context seen")


def tiles_equal_the_whole(height, width, tile, layers):
    """A conv network of receptive radius ``layers``: tiles with ``layers`` px of context
    give the whole image's float output (1e-4), one pixel less does not (where any tile
    edge is inside the image)."""
    import numpy as np
    import torch

    from plugins.upscale.tiling import run_tiled

    model = _conv_sr(layers=layers)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
    whole = run_tiled(model, image, 2, tile=10 ** 6, pad=0, convert=_float)
    tiled = run_tiled(model, image, 2, tile=tile, pad=layers, convert=_float)
    assert tiled.dtype == np.float32 and tiled.shape == whole.shape == (2 * height,
                                                                         2 * width, 3)
    assert np.abs(tiled - whole).max() < 1e-4
    if tile < max(height, width):
        short = run_tiled(model, image, 2, tile=tile, pad=layers - 1, convert=_float)
        assert np.abs(short - whole).max() > 1e-3


def test_auto_tile_with_its_context_stays_within_the_budget():
    seen = Outcomes()

    @settings(derandomize=True)
    @given(architecture=st.sampled_from(["RealESRGAN Compact", "ESRGAN", "DAT", "other"]),
           pad=st.integers(0, 64), align=st.sampled_from([1, 8, 16, 32, 64]),
           budget=st.integers(1 << 20, 8 << 30) | st.integers(8 << 30, 64 << 30))
    def check(architecture, pad, align, budget):
        seen[auto_tile_fits(architecture, pad, align, budget)] += 1

    check()
    seen.require("fits, and is the largest that does", "the largest tile", "floor")


def auto_tile_fits(architecture, pad, align, budget) -> str:
    """What was checked of one auto tile: within the budget, and the largest that fits."""
    from plugins.upscale.tiling import (
        BYTES_PER_PIXEL,
        DEFAULT_BYTES_PER_PIXEL,
        MAX_TILE,
        MIN_TILE,
        auto_tile,
    )

    tile = auto_tile(architecture, pad, align, budget=budget)
    per_pixel = BYTES_PER_PIXEL.get(architecture, DEFAULT_BYTES_PER_PIXEL)
    assert MIN_TILE <= tile <= MAX_TILE and tile % max(32, align) == 0 or tile == MIN_TILE
    if tile > MIN_TILE:  # the floor may exceed a tiny budget; anything above it may not
        assert (tile + 2 * pad) ** 2 * per_pixel <= budget
    bigger = tile + max(32, align)
    if tile < MAX_TILE and bigger <= MAX_TILE:  # and it is the largest that fits
        assert (bigger + 2 * pad) ** 2 * per_pixel > budget or tile == MIN_TILE and \
            bigger > math.isqrt(budget // per_pixel)
    if tile == MAX_TILE:
        return "the largest tile"
    if (tile + 2 * pad) ** 2 * per_pixel > budget:
        return "floor"
    return "fits, and is the largest that does"


def test_tiling_leaves_no_cancel_hook_on_the_model():
    """A cancelled job's hooks must not stay on the loaded model: the next job on it would
    be cancelled by the old job's progress."""
    import torch

    from creative_studio.core.errors import Cancelled
    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import run_tiled

    model = _conv_sr(layers=3)
    image = torch.rand(1, 3, 30, 30)
    for tile in (10 ** 6, 8):
        cancelled = Progress()
        cancelled.cancel()
        with pytest.raises(Cancelled):
            run_tiled(model, image, 2, tile=tile, pad=3, progress=cancelled)
        assert all(not m._forward_pre_hooks for m in model.modules())
        run_tiled(model, image, 2, tile=tile, pad=3, progress=Progress())  # not cancelled
        assert all(not m._forward_pre_hooks for m in model.modules())


# -- project round trips --------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.text(max_size=200), params=st.dictionaries(st.text(min_size=1, max_size=12),
                                                            json_values, max_size=5),
       seed=st.integers(0, 2 ** 31 - 1), data=st.binary(max_size=3000),
       title=st.text(max_size=80), state=json_values)
def test_what_is_written_is_read_back(tmp_path_factory, prompt, params, seed, data, title,
                                      state):
    import hashlib

    from creative_studio.core.jobs import MAX_SEED, Asset, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore

    assert seed <= MAX_SEED  # the runner refuses others; a file's are read as 0
    path = tmp_path_factory.mktemp("round") / "p.csproj"
    store = ProjectStore.create(path)
    parent = store.add_item(Request("text", "generate", "p"), Result(
        [Asset("text", "text/plain", b"x")], ModelIdentity("m", "r"), "cpu"))
    request = Request("image", "generate", prompt, params, seed=seed, parents=[parent])
    item_id = store.add_item(request, Result([Asset("image", "image/png", data, "a.png")],
                                             ModelIdentity("m", "r", "cd" * 32), "cpu",
                                             metadata={"v": state}, title=title))
    store.set_state("panel", state)
    store.close()
    store = ProjectStore.open(path)
    try:
        item = store.item(item_id)
        assert item.request.prompt == prompt and item.request.params == params
        assert item.request.seed == seed and item.parents == [parent]
        assert item.title == title[:500] and item.metadata == {"v": state}
        assert store.asset_bytes(item.assets[0].id) == data
        assert item.assets[0].sha256 == hashlib.sha256(data).hexdigest()
        assert store.get_state("panel") == state
        assert store.damaged == {}
    finally:
        store.close()


def test_to_uint8_saturates_and_rounds():
    import numpy as np
    import torch

    from plugins.upscale.tiling import to_uint8

    tensor = torch.tensor([[-0.5, 0.0, 0.5, 1.0, 1.5, 0.2]]).reshape(1, 1, 2, 3)
    out = to_uint8(tensor)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 1)
    assert out[..., 0].tolist() == [[0, 0, 128], [255, 255, 51]]


def test_the_memory_a_tile_may_use(monkeypatch):
    import sys
    import types

    import psutil

    from plugins.upscale import tiling

    monkeypatch.setattr(psutil, "virtual_memory",
                        lambda: types.SimpleNamespace(available=2 << 30))
    assert tiling.available_memory() == 512 << 20  # a quarter of what is free
    monkeypatch.setattr(psutil, "virtual_memory",
                        lambda: types.SimpleNamespace(available=(64 << 30) + 3))
    assert tiling.available_memory("cpu") == tiling.CPU_BUDGET  # never above the cap
    monkeypatch.setattr(psutil, "virtual_memory",
                        lambda: types.SimpleNamespace(available=(1 << 30) + 7))
    assert tiling.available_memory() == ((1 << 30) + 7) // 4
    assert isinstance(tiling.available_memory(), int)
    monkeypatch.setitem(sys.modules, "psutil", None)  # a broken install: 4 GiB assumed
    assert tiling.available_memory() == 1 << 30
    asked_cuda = []
    fake_cuda = types.SimpleNamespace(
        mem_get_info=lambda device: asked_cuda.append(device) or (10 << 30, 24 << 30))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(
        cuda=fake_cuda, device=lambda name: ("device", name)))
    assert tiling.available_memory("cuda:1") == int((10 << 30) * 0.6)
    assert asked_cuda == [("device", "cuda:1")]  # that GPU's memory, not the current one
    asked = []
    monkeypatch.setattr(tiling, "available_memory",
                        lambda device: asked.append(device) or 200 << 20)
    assert tiling.auto_tile("DAT", 0) == tiling.auto_tile("DAT", 0, budget=200 << 20)
    assert asked == ["cpu"]


def test_progress_inside_tiles_counts_the_networks_blocks():
    """Progress inside a tile: one step per top-level block (and block of a block) of the
    network, counted on the first tile, never past 0.99 of the tile; each tile's span."""
    import torch

    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import run_tiled

    model = _conv_sr(layers=3)  # 6 top-level modules: conv, PReLU, conv, PReLU, conv, shuffle
    seen = []
    progress = Progress(lambda f, eta, preview: seen.append(round(f, 6)))
    run_tiled(model, torch.rand(1, 3, 12, 12), 2, tile=10 ** 6, pad=0, progress=progress)
    assert seen == [round(i / 6, 6) for i in range(1, 6)] + [0.99, 1.0]
    seen.clear()
    nested = torch.nn.Sequential(model, torch.nn.Identity())  # 2 children, 6 grandchildren
    run_tiled(nested, torch.rand(1, 3, 12, 24), 2, tile=12, pad=3, progress=Progress(
        lambda f, eta, preview: seen.append(round(f, 6))))
    per_tile = 8
    first = [round(0.5 * min(0.99, i / per_tile), 6) for i in range(1, per_tile + 1)]
    second = [round(0.5 + 0.5 * min(0.99, i / per_tile), 6) for i in range(1, per_tile + 1)]
    # "Tile 1 of 2" said at 0, the blocks, the tile's end, "Tile 2 of 2", its blocks, the end
    assert seen == [0.0] + first + [0.5, 0.5] + second + [1.0]
    assert all(not m._forward_pre_hooks for m in nested.modules())


def test_aligned_tiles_round_their_context_up():
    """Window-attention models need tile corners on multiples of ``align``: the context is
    rounded up to a multiple too, so the output still equals the whole image's."""
    import numpy as np
    import torch

    from plugins.upscale.tiling import run_tiled

    model = _conv_sr(layers=3)
    image = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    whole = run_tiled(model, image, 2, tile=10 ** 6, pad=0, convert=_float)
    aligned = run_tiled(model, image, 2, tile=8, pad=3, align=4, convert=_float)
    assert np.abs(aligned - whole).max() < 1e-4


def test_tiles_count_the_blocks_that_run_see_aligned_inputs_and_say_where_they_are():
    """A spandrel-style descriptor (the network is its ``.model``) with a block that is
    registered but never runs: the first tile counts the blocks that ran, the next tiles use
    that count; every input the network sees is aligned and no larger than a tile and its
    context; each tile is said by number."""
    import torch

    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import plan, run_tiled

    shapes = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Conv2d(3, 12, 3, padding=1)
            self.spare = torch.nn.Conv2d(3, 3, 1)  # registered, never called
            self.shuffle = torch.nn.PixelShuffle(2)

        def forward(self, x):
            shapes.append(tuple(x.shape[2:]))
            return self.shuffle(self.used(x))

    class Descriptor:  # what spandrel loads
        def __init__(self, net):
            self.model = net

        def __call__(self, x):
            return self.model(x)

    seen = []
    progress = Progress(lambda f, eta, preview: seen.append((round(f, 6), progress.message)))
    run_tiled(Descriptor(Net()), torch.rand(1, 3, 10, 21), 2, tile=10, pad=3, align=4,
              progress=progress)
    boxes = plan(10, 21, 10, 4)  # tiles of 8: the largest multiple of 4 in 10
    n = len(boxes)
    expected = []
    for k in range(n):
        base, span = k / n, 1 / n
        inside = [1 / 3, 2 / 3] if k == 0 else [1 / 2, 0.99]  # 3 registered, 2 run
        expected += [(round(base, 6), f"Tile {k + 1} of {n}")]
        expected += [(round(base + span * f, 6), f"Tile {k + 1} of {n}") for f in inside]
        expected += [(round((k + 1) / n, 6), f"Tile {k + 1} of {n}")]
    assert seen == expected
    # each tile with its context: 3 px rounded up to 4, cut at the picture's edges
    assert shapes == [(min(10, y1 + 4) - max(0, y0 - 4), min(21, x1 + 4) - max(0, x0 - 4))
                      for y0, y1, x0, x1 in boxes]
    assert plan(10, 21, 7) == [(y, min(10, y + 7), x, min(21, x + 7))
                               for y in (0, 7) for x in (0, 7, 14)]  # no alignment asked


@pytest.mark.parametrize("depth, blocks", [(1, 1), (70, 64)])
def test_progress_counts_at_most_64_blocks_of_a_level(depth, blocks):
    """One block: its end is 0.99 of the image; 70 blocks: the first 64 are counted."""
    import torch

    from creative_studio.core.progress import Progress
    from plugins.upscale.tiling import run_tiled

    net = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 1) for _ in range(depth)])
    for model, count in ((net, blocks), (torch.nn.Sequential(net), 1 + blocks)):
        seen: list[float] = []
        run_tiled(model, torch.rand(1, 3, 6, 6), 1, tile=64, pad=0,
                  progress=Progress(lambda f, eta, preview, seen=seen: seen.append(round(f, 6))))
        assert seen == [round(min(0.99, i / count), 6) for i in range(1, count + 1)] + [1.0]


def test_the_vocabulary_and_a_grammar_as_made(vocab):
    """The token groups read from miditok's vocabulary; a grammar that is not told to keep
    to the key allows every pitch in range; notes are counted one per Pitch."""
    from plugins.music.grammar import Grammar, RowState, positions_per_bar

    assert sorted(vocab.position)[:4] == [0, 1, 2, 3]
    assert len(vocab.position) >= positions_per_bar("4/4")
    free = Grammar(vocab, "4/4", 2, "major")
    strict = Grammar(vocab, "4/4", 2, "major", strict_key=True)
    assert len(free.pitch_ids) > len(strict.pitch_ids) and vocab.pitch[61] in free.pitch_ids
    ranged = Grammar(vocab, "4/4", 2, "major", strict_key=True, pitch_range=(60, 72))
    assert sorted(ranged.pitch_ids) == sorted(vocab.pitch[p] for p in
                                              (60, 62, 64, 65, 67, 69, 71, 72))  # both ends
    state = RowState()
    for token in (vocab.bar, vocab.timesig["4/4"], vocab.position[0], vocab.pitch[60],
                  vocab.duration[0], vocab.pitch[64], vocab.duration[0]):
        free.advance(state, token)
    assert state.notes == 2 and state.bars == 1 and state.phase == "duration"
