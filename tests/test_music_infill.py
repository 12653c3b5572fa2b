"""The infill training examples (tools/music/infill_train.py): what the model reads and
what it learns to write."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from plugins.music.infill import split_bars

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "music"))
import infill_train  # noqa: E402

BAR, EOS, BOS = 4, 2, 1
SPECIAL = {"suffix": 900, "middle": 901, "end": 902}


def piece(bar_sizes: list[int], ends: bool = True) -> list[int]:
    """BOS Style Mode, then bars (Bar + n tokens numbered by bar), then EOS."""
    ids = [BOS, 10, 20]
    for number, size in enumerate(bar_sizes):
        ids += [BAR] + [100 + number] * size
    return ids + ([EOS] if ends else [])


def bars_of(tokens: list[int]) -> list[int]:
    return [t - 100 for t in tokens if 100 <= t < 200 and t != BAR]


def test_bars_split_at_their_bar_tokens():
    assert split_bars([BAR, 7, 8, BAR, BAR, 9], BAR) == [[BAR, 7, 8], [BAR],
                                                                       [BAR, 9]]


def test_an_example_is_before_suffix_after_middle_the_bars_end():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = list(rng.integers(1, 6, rng.integers(2, 12)))
        tokens, start = infill_train.infill_example(piece(sizes), BAR, EOS, SPECIAL, rng)
        assert tokens[:3] == [BOS, 10, 20]
        assert tokens[start - 1] == SPECIAL["middle"] and tokens[-1] == SPECIAL["end"]
        cut = tokens.index(SPECIAL["suffix"])
        before, after = tokens[3:cut], tokens[cut + 1:start - 1]
        middle = tokens[start:-1]
        # the middle is 1–4 whole bars, the bars around it are the piece's own, in order
        wrote = sorted(set(bars_of(middle)))
        assert 1 <= len(wrote) <= 4 and wrote == list(range(wrote[0], wrote[-1] + 1))
        assert middle.count(BAR) == len(wrote) and middle[0] == BAR
        assert bars_of(before) == [b for b in range(wrote[0]) for _ in range(sizes[b])]
        rest = range(wrote[-1] + 1, len(sizes))
        assert bars_of(after) == [b for b in rest for _ in range(sizes[b])]
        assert after[-1:] == [EOS]  # the whole piece fits: the bars after end it


def test_the_nearest_bars_are_kept_when_the_piece_does_not_fit():
    rng = np.random.default_rng(1)
    seen_cut = 0
    for _ in range(100):
        found = infill_train.infill_example(piece([30] * 40), BAR, EOS, SPECIAL, rng,
                                            context=200)
        tokens, start = found
        assert len(tokens) <= 201
        cut = tokens.index(SPECIAL["suffix"])
        before, after = bars_of(tokens[3:cut]), bars_of(tokens[cut + 1:start - 1])
        wrote = sorted(set(bars_of(tokens[start:-1])))
        # contiguous with the middle on both sides
        assert not before or max(before) == wrote[0] - 1
        assert not after or min(after) == wrote[-1] + 1
        assert sorted(set(before)) == list(range(min(before, default=wrote[0]), wrote[0]))
        if after and max(after) < 39:
            seen_cut += 1
            assert EOS not in tokens  # the piece's end was not reached: no EOS
    assert seen_cut > 50


def test_too_few_bars_or_a_middle_too_long_gives_nothing():
    rng = np.random.default_rng(2)
    assert infill_train.infill_example(piece([5]), BAR, EOS, SPECIAL, rng) is None
    assert infill_train.infill_example(piece([400, 400]), BAR, EOS, SPECIAL, rng,
                                       context=100) is None


def test_batches_pad_and_leave_padding_and_the_sides_out_of_the_loss():
    import torch

    pieces = [piece([3, 4, 5, 2]), piece([6, 6, 6])]
    flat = torch.tensor([t for p in pieces for t in p])
    lengths = np.array([len(p) for p in pieces])
    starts = np.array([0, lengths[0]])
    vocab = {"Bar_None": BAR, "EOS_None": EOS, "PAD_None": 0}
    rng = np.random.default_rng(3)
    ids, labels = infill_train.infill_batch(flat, starts, lengths, 4, vocab, SPECIAL, rng,
                                            middle_only=True)
    assert ids.shape == labels.shape == (4, infill_train.CONTEXT + 1)
    for row, label in zip(ids.tolist(), labels.tolist(), strict=True):
        end = row.index(SPECIAL["end"])
        start = row.index(SPECIAL["middle"]) + 1
        assert set(row[end + 1:]) == {0}
        assert set(label[:start]) == {infill_train.IGNORE}
        assert label[start:end + 1] == row[start:end + 1]
        assert set(label[end + 1:]) == {infill_train.IGNORE}


def test_new_rows_start_as_the_mean_embedding():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=12, n_positions=16, n_embd=8, n_layer=1,
                                       n_head=2))
    old = model.get_input_embeddings().weight.detach().clone()
    infill_train.grow_embeddings(model, 3)
    weight = model.get_input_embeddings().weight
    assert weight.shape == (15, 8)
    assert torch.equal(weight[:12], old)
    assert torch.allclose(weight[12:], old.mean(0).expand(3, 8))
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # tied


# -- the studio's infill (plugins/music/generator.py, infill.py) -----------------------------


@pytest.fixture(scope="module")
def infill_generator(tmp_path_factory):
    """A small untrained GPT-2 with the three infill tokens, saved as a user's folder: the
    grammar keeps its output valid, so every rule of the task can be checked on it."""
    import shutil

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from creative_studio.core import paths
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator
    from plugins.music.infill import infill_ids
    from tests.conftest import source_of

    torch.manual_seed(0)  # the same random weights whichever test runs first
    shipped = paths.resources_dir() / "models" / "music-gpt2"
    folder = tmp_path_factory.mktemp("infill-model")
    config = GPT2Config(vocab_size=308, n_positions=512, n_embd=32, n_layer=1, n_head=2)
    config.infill_tokens = infill_ids(305)
    GPT2LMHeadModel(config).save_pretrained(folder)
    shutil.copy(shipped / "tokenizer.json", folder / "tokenizer.json")
    generator = MusicGenerator()
    generator.load(source_of("music", str(folder)), "cpu", Progress())
    return generator


def tune(bars: int = 8) -> list:
    from creative_studio.io.midi import Note

    steps = (0, 4, 7, 12, 7, 4, 2, 0)  # D major, plainly: the triad and back
    return [Note(i * 0.5, 0.5, 62 + steps[i % 8], 80 + i % 7) for i in range(bars * 8)]


def infill_request(seed=3, **params):
    from creative_studio.core.jobs import Request
    from tests.conftest import prepared

    return prepared(Request("music", "infill", params=params, seed=seed, parents=["tune"],
                            model="embedded:music-gpt2"))


def midi_inputs(notes, meter=(4, 4), tempo=132.0):
    from creative_studio.core.jobs import Asset
    from creative_studio.io.midi import write_midi

    return {"tune": [Asset("midi", "audio/midi", write_midi(notes, tempo, meter), "t.mid")]}


def key_of(note):
    return (round(note.start * 480), round(note.duration * 480), note.pitch, note.velocity)


@pytest.mark.parametrize(("first", "last"), [(3, 4), (1, 1), (8, 8), (2, 5)])
def test_infill_keeps_every_note_outside_the_selection(infill_generator, first, last):
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes

    notes = tune()
    result = infill_generator.generate(infill_request(from_bar=first, to_bar=last),
                                       Progress(), midi_inputs(notes))
    content = read_notes(result.assets[0].data)
    start, end = (first - 1) * 4.0, last * 4.0
    outside = [key_of(n) for n in content.notes if not start <= n.start < end]
    assert outside == [key_of(n) for n in notes if not start <= n.start < end]
    inside = [n for n in content.notes if start <= n.start < end]
    assert inside and all(n.start + n.duration <= end + 1e-6 for n in inside)
    assert content.time_signature == (4, 4) and content.tempo == pytest.approx(132.0, abs=0.01)  # µs per beat
    meta = result.metadata
    assert (meta["from_bar"], meta["to_bar"], meta["bars"]) == (first, last, 8)
    assert meta["notes"] == len(inside) and meta["key"] == "D major"  # found from the tune
    assert len(meta["joins"]) == (first > 1) + (last < 8)
    assert result.title.startswith("Regenerated bar" + ("s" if last > first else ""))


def test_infill_is_seeded_and_another_seed_writes_another_middle(infill_generator):
    from creative_studio.core.progress import Progress

    inputs = midi_inputs(tune())
    one = infill_generator.generate(infill_request(from_bar=4, to_bar=5), Progress(), inputs)
    again = infill_generator.generate(infill_request(from_bar=4, to_bar=5), Progress(), inputs)
    other = infill_generator.generate(infill_request(seed=4, from_bar=4, to_bar=5),
                                      Progress(), inputs)
    assert one.assets[0].data == again.assets[0].data
    assert one.assets[0].data != other.assets[0].data


@pytest.mark.parametrize(("first", "last", "message"), [
    (5, 4, "ends .bar 4. before it starts"),
    (7, 9, "The MIDI has 8 bars"),
    (1, 9, "The MIDI has 8 bars"),
])
def test_a_selection_outside_the_midi_is_said(infill_generator, first, last, message):
    from creative_studio.core.errors import BadInput
    from creative_studio.core.progress import Progress

    with pytest.raises(BadInput, match=message):
        infill_generator.generate(infill_request(from_bar=first, to_bar=last), Progress(),
                                  midi_inputs(tune()))


def test_more_than_eight_bars_at_once_is_refused(infill_generator):
    from creative_studio.core.errors import BadInput
    from creative_studio.core.progress import Progress

    with pytest.raises(BadInput, match="at most 8 bars"):
        infill_generator.generate(infill_request(from_bar=2, to_bar=11), Progress(),
                                  midi_inputs(tune(12)))


def test_a_model_without_infill_tokens_says_it_cannot(tmp_path):
    import shutil

    from transformers import GPT2Config, GPT2LMHeadModel

    from creative_studio.core import paths
    from creative_studio.core.errors import BadInput
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator
    from tests.conftest import source_of

    folder = tmp_path / "plain"
    GPT2LMHeadModel(GPT2Config(vocab_size=305, n_positions=512, n_embd=16, n_layer=1,
                               n_head=2)).save_pretrained(folder)
    shutil.copy(paths.resources_dir() / "models" / "music-gpt2" / "tokenizer.json", folder)
    generator = MusicGenerator()
    generator.load(source_of("music", str(folder)), "cpu", Progress())
    with pytest.raises(BadInput, match="cannot regenerate bars"):
        generator.generate(infill_request(from_bar=1, to_bar=2), Progress(),
                           midi_inputs(tune()))


def test_a_declared_but_impossible_token_list_is_no_infill_model():
    from types import SimpleNamespace

    from plugins.music.infill import model_infill_ids

    def model(tokens, size=308):
        return SimpleNamespace(config=SimpleNamespace(infill_tokens=tokens, vocab_size=size))

    assert model_infill_ids(model({"suffix": 305, "middle": 306, "end": 307})) == {
        "suffix": 305, "middle": 306, "end": 307}
    assert model_infill_ids(model({"suffix": 305, "middle": 306, "end": 308})) is None
    assert model_infill_ids(model({"suffix": 305, "middle": 306})) is None
    assert model_infill_ids(model("305")) is None
    assert model_infill_ids(SimpleNamespace()) is None


def test_merge_and_joins():
    from creative_studio.io.midi import Note
    from plugins.music.infill import joins, merge

    old = [Note(0, 1, 60), Note(3.5, 2, 62), Note(4, 1, 64), Note(8, 1, 67), Note(9, 1, 65)]
    new = [Note(4, 1, 70), Note(7, 3, 72), Note(8, 1, 99)]  # the last starts outside
    merged = merge(old, new, 4.0, 8.0)
    assert merged == [Note(0, 1, 60), Note(3.5, 2, 62), Note(4, 1, 70), Note(7, 1, 72),
                      Note(8, 1, 67), Note(9, 1, 65)]
    assert joins(merged, 4.0, 8.0) == [70 - 62, 72 - 67]
    assert joins(merge(old, [], 4.0, 8.0), 4.0, 8.0) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_seams_of_regenerated_bars_are_no_wider_than_a_bar_lines(infill_generator, seed):
    """Even an untrained model's notes join both sides within JOIN_LEAP semitones: the
    first onset's notes near the note before, the last bar's near the note after."""
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes
    from plugins.music.grammar import JOIN_LEAP
    from plugins.music.infill import edges

    notes = tune()
    result = infill_generator.generate(infill_request(seed=seed, from_bar=3, to_bar=4),
                                       Progress(), midi_inputs(notes))
    joins = result.metadata["joins"]
    assert len(joins) == 2 and max(joins) <= JOIN_LEAP
    content = read_notes(result.assets[0].data)
    before, after = edges(notes, 8.0, 16.0)
    last_bar = [n.pitch for n in content.notes if 12.0 <= n.start < 16.0]
    assert all(abs(p - after) <= JOIN_LEAP for p in last_bar)
    onset = min(n.start for n in content.notes if 8.0 <= n.start < 16.0)
    assert all(abs(n.pitch - before) <= JOIN_LEAP for n in content.notes if n.start == onset)


@pytest.mark.model
def test_the_embedded_model_regenerates_bars(tmp_path):
    """The shipped Music model has the infill tokens: Regenerate bars with it keeps every
    note outside the selection, writes in the tune's key and joins within JOIN_LEAP."""
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes
    from plugins.music.analysis import in_key_share
    from plugins.music.generator import MusicGenerator
    from plugins.music.grammar import JOIN_LEAP
    from tests.conftest import source_of

    generator = MusicGenerator()
    generator.load(source_of("music", "embedded:music-gpt2"), "cpu", Progress())
    notes = tune()
    result = generator.generate(infill_request(seed=4, from_bar=4, to_bar=5), Progress(),
                                midi_inputs(notes))
    content = read_notes(result.assets[0].data)
    outside = [key_of(n) for n in content.notes if not 12.0 <= n.start < 20.0]
    assert outside == [key_of(n) for n in notes if not 12.0 <= n.start < 20.0]
    inside = [n for n in content.notes if 12.0 <= n.start < 20.0]
    assert inside and in_key_share(inside, 2, "major") >= 0.9
    assert max(result.metadata["joins"]) <= JOIN_LEAP
