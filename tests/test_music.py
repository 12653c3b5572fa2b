"""The Music plugin with the shipped model: tokens, grammar, generation, continuation, MIDI
files in and out, audio, bad input, and the panel in the real window."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import JobState, Request
from creative_studio.core.progress import Progress
from creative_studio.io.midi import Note, read_notes, recipe_of, render_wav, write_midi
from tests.conftest import prepared, source_of
from tests.helpers import finished_item

pytest.importorskip("miditok")
pytestmark = pytest.mark.model

MODEL = "embedded:music-gpt2"


@pytest.fixture(scope="module")
def generator():
    from plugins.music.generator import MusicGenerator

    g = MusicGenerator()
    g.load(source_of("music", MODEL), "cpu", Progress())
    return g


def melody(bars=4, tonic=0, meter=(4, 4)) -> list[Note]:
    """A scale-wise tune in ``tonic`` major, two notes per beat."""
    steps = (0, 2, 4, 5, 7, 9, 11, 12)
    beats = bars * meter[0] * 4 / meter[1]
    return [Note(i * 0.5, 0.5, 60 + tonic + steps[i % 8 if (i // 8) % 2 == 0 else 7 - i % 8])
            for i in range(int(beats * 2))]


def request(task="generate", seed=7, parents=(), **params):
    """A request as the runner hands it over (declared parameters typed and completed)."""
    return prepared(Request("music", task, params=params, seed=seed, parents=list(parents),
                            model=MODEL))


def test_tokenize_detokenize_round_trip(generator):
    notes = melody(2)
    ids = generator._prompt_ids("folk", "major", notes, 0, (4, 4), 2)
    assert ids[:3] == [generator.vocab.bos, generator.vocab.vocab["Style_folk"],
                       generator.vocab.vocab["Mode_major"]]
    back = generator._decode(ids, 0)
    assert [(n.start, n.duration, n.pitch) for n in back] == \
        [(n.start, n.duration, n.pitch) for n in notes]


def test_generation_honours_bars_meter_key_and_seed(generator):
    from plugins.music.analysis import in_key_share

    first = generator.generate(request(bars=3, time_signature="3/4", tonic=7, mode="major",
                                       strict_key=True), Progress(), {})
    again = generator.generate(request(bars=3, time_signature="3/4", tonic=7, mode="major",
                                       strict_key=True), Progress(), {})
    assert first.assets[0].data == again.assets[0].data  # same seed, same MIDI
    content = read_notes(first.assets[0].data)
    assert content.time_signature == (3, 4)
    assert max(n.start for n in content.notes) < 3 * 3  # three bars of three beats
    assert first.metadata["bars"] == 3 and first.metadata["key"] == "G major"
    assert in_key_share(content.notes, 7, "major") == 1.0  # strict: only the scale
    other = generator.generate(request(seed=8, bars=3, time_signature="3/4"), Progress(), {})
    assert other.assets[0].data != first.assets[0].data
    assert '"seed": 7' in recipe_of(first.assets[0].data)


def test_continuation_keeps_the_prompt_and_its_key(generator):
    prompt = write_midi(melody(4, tonic=2), 90, (4, 4), program=40)  # D major, violin
    inputs = {"p": [_asset(prompt)]}
    result = generator.generate(request("continue", parents=["p"], keep_bars=2, bars=4,
                                        tonic="auto", mode="auto"), Progress(), inputs)
    content = read_notes(result.assets[0].data)
    kept = [n for n in content.notes if n.start < 8]
    original = [n for n in melody(4, tonic=2) if n.start < 8]
    assert [(n.start, n.pitch) for n in kept] == [(n.start, n.pitch) for n in original]
    new = [n for n in content.notes if n.start >= 8]
    assert new and max(n.start for n in new) < 8 + 4 * 4
    assert result.metadata["key"] == "D major" and result.metadata["prompt_notes"] == 16
    assert content.tempo == pytest.approx(90, abs=0.01)  # MIDI stores µs per beat
    # asking to keep more bars than the MIDI has keeps what there is, with no silent gap
    longer = generator.generate(request("continue", parents=["p"], keep_bars=9, bars=2),
                                Progress(), inputs)
    assert longer.metadata["prompt_bars"] == 4
    assert min(n.start for n in read_notes(longer.assets[0].data).notes
               if n.start >= 16) < 16 + 4


def _asset(data: bytes, name="in.mid"):
    from creative_studio.core.jobs import Asset

    return Asset("midi", "audio/midi", data, name)


def _midi_file(format_type: int = 1, drums_only: bool = False, empty: bool = False) -> bytes:
    import mido

    midi = mido.MidiFile(type=format_type)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    if not empty:
        channel = 9 if drums_only else 0
        track.append(mido.Message("note_on", note=36, velocity=90, channel=channel, time=0))
        track.append(mido.Message("note_off", note=36, velocity=0, channel=channel, time=480))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"RIFF....WAVEfmt not midi at all", "not a MIDI file"),
    (lambda: _midi_file(empty=True), "has no notes"),
    (lambda: _midi_file(drums_only=True), "only drums"),
    (lambda: _midi_file(format_type=2), "type-2"),
    (lambda: _midi_file()[:20], "damaged or truncated"),
])
def test_bad_midi_gets_a_clear_message(generator, data, message):
    data = data() if callable(data) else data
    with pytest.raises(BadInput, match=message):
        read_notes(data)
    with pytest.raises(BadInput, match=message):  # the same through a continue job
        generator.generate(request("continue", parents=["p"]), Progress(),
                           {"p": [_asset(data)]})


def test_huge_midi_file_is_refused_without_reading_it(tmp_path):
    from creative_studio.core.project import ProjectStore
    from creative_studio.io.imports import import_midi

    huge = tmp_path / "huge.mid"
    with open(huge, "wb") as f:
        f.write(b"MThd")
        f.truncate(9 * 2**20)
    store = ProjectStore.create(tmp_path / "p.csproj")
    with pytest.raises(BadInput, match="larger than"):
        import_midi(store, "music", huge)
    assert store.count() == 0
    store.close()


def test_audio_render_is_not_silent_with_and_without_fluidsynth(generator, monkeypatch):
    import soundfile

    from creative_studio.io import midi as midi_io

    data = generator.generate(request(bars=2), Progress(), {}).assets[0].data
    wav, engine = render_wav(data)
    samples, rate = soundfile.read(io.BytesIO(wav))
    assert rate == 44100 and np.sqrt(np.mean(samples ** 2)) > 0.01
    if midi_io.soundfont() is not None and shutil.which("fluidsynth"):
        assert engine.startswith("FluidSynth")
    monkeypatch.setattr(midi_io, "SOUNDFONTS", ())
    monkeypatch.delenv("CREATIVE_STUDIO_SOUNDFONT", raising=False)
    wav, engine = render_wav(data)
    samples, _ = soundfile.read(io.BytesIO(wav))
    assert engine.startswith("sine") and np.sqrt(np.mean(samples ** 2)) > 0.01


def test_fast_decoder_matches_transformers(generator):
    import torch

    from plugins.music.decoders import GPT2Decoder, HFDecoder

    tokens = [1, 3, 5] + [generator.vocab.bar] + list(range(20, 60))
    with torch.inference_mode():
        fast, reference = GPT2Decoder(generator.model, 512), HFDecoder(generator.model)
        assert torch.allclose(fast.prefill(tokens), reference.prefill(tokens), atol=1e-4)
        for token in (30, 100, 200, generator.vocab.bar):
            assert torch.allclose(fast.step(token), reference.step(token), atol=1e-4)


def test_a_model_folder_the_user_trained(tmp_path):
    """A GPT-2 saved with save_pretrained + its tokenizer.json loads as a folder model; the
    grammar keeps even an untrained model's output valid."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from creative_studio.core import paths
    from creative_studio.core.errors import ModelError
    from plugins.music.generator import MusicGenerator

    shipped = paths.resources_dir() / "models" / "music-gpt2"
    folder = tmp_path / "my-model"
    GPT2LMHeadModel(GPT2Config(vocab_size=305, n_positions=512, n_embd=32, n_layer=1,
                               n_head=2)).save_pretrained(folder)
    shutil.copy(shipped / "tokenizer.json", folder / "tokenizer.json")
    g = MusicGenerator()
    g.load(source_of("music", str(folder)), "cpu", Progress())
    assert g.identity.source == "local" and g.identity.sha256
    result = g.generate(request(bars=2, time_signature="6/8"), Progress(), {})
    content = read_notes(result.assets[0].data)
    assert content.time_signature == (6, 8) and max(n.start for n in content.notes) < 6
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="tokenizer.json"):
        MusicGenerator().load(source_of("music", str(folder)), "cpu", Progress())
    with pytest.raises(ModelError, match="not found"):
        source_of("music", str(tmp_path / "nothing"))


def test_export_midi_and_wav_with_recipe(generator, tmp_path):
    from creative_studio.core.project import ProjectStore
    from creative_studio.io.export import export_item

    store = ProjectStore.create(tmp_path / "p.csproj")
    req = request(bars=2)
    item_id = store.add_item(req, generator.generate(req, Progress(), {}))
    item = store.item(item_id)
    (mid,) = export_item(store, item, tmp_path / "idea.mid")
    assert item_id in recipe_of(mid.read_bytes())
    assert len(read_notes(mid.read_bytes()).notes) == item.metadata["notes"]
    wav, recipe = export_item(store, item, tmp_path / "idea.wav")
    assert wav.read_bytes()[:4] == b"RIFF" and recipe.suffix == ".json"
    store.close()


@pytest.mark.gui
def test_music_through_the_window(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["music"]
    # bad files: a message, nothing imported
    (tmp_path / "notes.mid").write_bytes(b"hello")
    assert panel.open_midi(tmp_path / "notes.mid") is None
    assert "not a MIDI file" in panel.message.text() and window.store.count() == 0
    # two variations of a new idea
    panel.bars.setValue(4)
    panel.variations.setValue(2)
    panel.time_signature.setCurrentText("6/8")
    jobs = panel.generate()
    qtbot.waitUntil(lambda: all(j.state.finished for j in jobs) and not panel.jobs,
                    timeout=60_000)
    assert [j.state for j in jobs] == [JobState.DONE] * 2, [j.error for j in jobs]
    assert panel.results.count() == 2 and panel.roll.notes
    assert read_notes(window.store.asset_bytes(window.store.item(jobs[0].item_id)
                                               .assets[0].id)).time_signature == (6, 8)
    dragged = panel.midi_file_for_drag()
    assert dragged.suffix == ".mid" and panel.current.id in recipe_of(dragged.read_bytes())
    # continue a MIDI file: the prompt item is the parent of the continuation
    source = tmp_path / "tune.mid"
    source.write_bytes(write_midi(melody(4), 110, (4, 4)))
    prompt_id = panel.open_midi(source)
    assert prompt_id and "key found: C major" in panel.prompt_label.text()
    assert panel.task.currentData() == "continue"
    panel.variations.setValue(1)
    panel.keep_bars.setValue(2)
    item = finished_item(qtbot, window, panel, *panel.generate())
    assert item.parents == [prompt_id] and item.metadata["prompt_bars"] == 2
    assert panel.roll.prompt_end == 8
    # Send to → Music from the History for a MIDI item
    window.history.select(jobs[0].item_id)
    (send,) = [a for a in window.history.send_button.menu().actions() if a.text() == "Music"]
    send.trigger()
    assert panel.prompt_item == jobs[0].item_id
    assert panel.export(panel.current, tmp_path / "out.mid") and (tmp_path / "out.mid").exists()
    # results and the MIDI being continued come back with the saved project
    results = panel.results.count()
    panel.task.setCurrentIndex(panel.task.findData("continue"))
    saved = tmp_path / "tunes.csproj"
    assert window.save_as(saved)
    window.new_project()
    assert window.open_project(saved)
    assert panel.results.count() == results and panel.prompt_item == jobs[0].item_id
    # another project: nothing in the panels points into the previous one
    window.new_project()
    assert panel.results.count() == 0 and panel.current is None and panel.prompt_item is None
    assert window.panels["upscale"].sources.count() == 0
    assert window.panels["image"].gallery.count() == 0
