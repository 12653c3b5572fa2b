"""Harmonize, interpolate and vary (issue "Music beyond Magenta Studio", models in training):
the structure of what they write, through the CLI and the Music panel, with the shipped
weights. Quality figures are bench/music_reworks.py's, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creative_studio.core import paths
from creative_studio.io.midi import Note, read_notes, write_midi
from tests.helpers import finished_item

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model
for folder in ("music-harmonize", "music-vae"):
    if not (paths.resources_dir() / "models" / folder / "model.safetensors").is_file():
        pytest.skip(f"resources/models/{folder} is not there yet (tools/music/README.md)",
                    allow_module_level=True)
SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def melody(path: Path, base: int = 60, tempo: float = 90) -> list[Note]:
    notes = [Note(i * 1.0, 1.0, base + SCALE[i % 8 if (i // 8) % 2 == 0 else 7 - i % 8])
             for i in range(16)]
    path.write_bytes(write_midi(notes, tempo, (4, 4)))
    return notes


def cli(*args):
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ})


def test_harmonize_keeps_the_melody_and_writes_four_named_tracks(tmp_path):
    import mido

    source = melody(tmp_path / "tune.mid")
    project, out = tmp_path / "h.csproj", tmp_path / "satb.mid"
    made = cli("generate", "music", "--task", "harmonize", str(tmp_path / "tune.mid"),
               "--project", str(project), "--seed", "3", "--iterations", "8", "--out",
               str(out), "--bass-program", "32")
    assert made.returncode == 0, made.stderr
    content = read_notes(out.read_bytes())
    soprano = [(n.start, n.duration, n.pitch) for n in content.notes if n.voice == 0]
    assert soprano == [(n.start, n.duration, n.pitch) for n in source]  # exactly as given
    by_step = {}
    for note in content.notes:  # alto and tenor never above the soprano
        for step in range(int(note.start * 4), int((note.start + note.duration) * 4)):
            by_step.setdefault(step, {})[note.voice] = note.pitch
    assert all(v.get(1, 0) <= v[0] and v.get(2, 0) <= v[0] for v in by_step.values() if 0 in v)
    assert {n.voice for n in content.notes} == {0, 1, 2, 3}
    midi = mido.MidiFile(str(out))
    names = [m.name for t in midi.tracks[1:] for m in t if m.type == "track_name"]
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    programs = [m.program for t in midi.tracks[1:] for m in t if m.type == "program_change"]
    assert programs == [0, 0, 0, 32]
    (item,) = json.loads(cli("list", "--project", str(project), "--json").stdout)[1:]
    assert item["request"]["model"] == "embedded:music-harmonize"
    assert item["result"]["in_ranges"] == 1.0 and item["result"]["voices"] == 4
    again = cli("generate", "music", "--task", "harmonize", str(tmp_path / "tune.mid"),
                "--project", str(project), "--seed", "3", "--iterations", "8", "--voices",
                "3", "--out", str(tmp_path / "satb3.mid"))
    assert again.returncode == 0, again.stderr
    assert {n.voice for n in read_notes((tmp_path / "satb3.mid").read_bytes()).notes} == \
        {0, 1, 2}


def test_interpolate_and_vary_lay_out_their_melodies(tmp_path):
    melody(tmp_path / "a.mid", 60)
    melody(tmp_path / "b.mid", 67)
    project = tmp_path / "i.csproj"
    made = cli("generate", "music", "--task", "interpolate", str(tmp_path / "a.mid"),
               str(tmp_path / "b.mid"), "--project", str(project), "--steps", "3",
               "--out", str(tmp_path / "between.mid"))
    assert made.returncode == 0, made.stderr
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    result = items[-1]["result"]
    assert result["sections"] == ["first", "step 1", "step 2", "step 3", "second"]
    assert result["out_of_key"] == 6.0  # weighed, not masked
    strict = cli("generate", "music", "--task", "interpolate", str(tmp_path / "a.mid"),
                 str(tmp_path / "b.mid"), "--project", str(project), "--steps", "2",
                 "--strict-key", "--out", str(tmp_path / "strict.mid"))
    assert strict.returncode == 0, strict.stderr
    masked = json.loads(cli("list", "--project", str(project), "--json").stdout)[-1]["result"]
    assert masked["out_of_key"] == "masked" and masked["in_key"] == 1.0
    assert len(items[-1]["parents"]) == 2
    content = read_notes((tmp_path / "between.mid").read_bytes())
    section = result["section_quarters"]
    first = [(n.start, n.pitch) for n in content.notes if n.start < section]
    assert first == [(float(i), 60 + SCALE[i % 8 if i < 8 else 7 - i % 8]) for i in range(16)]
    # the second melody as the user gave it (in G major: not moved into the first's C)
    second = [(n.start - 4 * section, n.duration, n.pitch) for n in content.notes
              if n.start >= 4 * section]
    assert second == [(float(i), 1.0, 67 + SCALE[i % 8 if i < 8 else 7 - i % 8])
                      for i in range(16)]
    assert max(n.start for n in content.notes) < 5 * section
    one = cli("generate", "music", "--task", "interpolate", str(tmp_path / "a.mid"),
              "--project", str(project))
    assert one.returncode == 2 and "reads 2 files together" in one.stderr
    vary = cli("generate", "music", "--task", "vary", str(tmp_path / "a.mid"), "--project",
               str(project), "-n", "2", "--spread", "0.8", "--seed", "5")
    assert vary.returncode == 0, vary.stderr
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    assert [i["request"]["seed"] for i in items[-2:]] == [5, 6]
    assert all(i["result"]["sections"] == ["step 1"] for i in items[-2:])


@pytest.mark.gui
def test_harmonize_and_interpolate_in_the_music_panel(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["music"]
    melody(tmp_path / "a.mid", 60)
    melody(tmp_path / "b.mid", 64)
    panel.task.setCurrentIndex(panel.task.findData("harmonize"))
    window.tabs.setCurrentWidget(panel)
    assert not panel.param_widget("voices").isHidden() and panel.bars.isHidden()
    assert panel.generate() == [] and "Open a MIDI file to harmonize" in panel.message.text()
    assert panel.open_midi(tmp_path / "a.mid")
    assert panel.task.currentData() == "harmonize"  # opening a MIDI keeps the mode
    panel.param_widget("iterations").setValue(6)
    item = finished_item(qtbot, window, panel, *panel.generate())
    assert item.request.task == "harmonize" and item.parents == [panel.prompt_item]
    assert {n.voice for n in panel.roll.notes} == {0, 1, 2, 3}  # coloured by voice
    panel.task.setCurrentIndex(panel.task.findData("interpolate"))
    assert not panel.second_button.isHidden()
    assert panel.generate() == [] and "second MIDI" in panel.message.text()
    assert panel.open_second(tmp_path / "b.mid")
    panel.param_widget("steps").setValue(2)
    item = finished_item(qtbot, window, panel, *panel.generate())
    assert panel.roll.sections == ["first", "step 1", "step 2", "second"]
    assert item.model["name"].startswith("Studio melody VAE")
    panel.task.setCurrentIndex(panel.task.findData("generate"))
    assert panel.model.currentData() == "embedded:music-gpt2"  # New idea keeps its model


def test_harmonize_in_a_set_key_with_only_its_notes(tmp_path):
    melody(tmp_path / "tune.mid", 67)  # G major scale
    out = tmp_path / "g.mid"
    made = cli("generate", "music", "--task", "harmonize", str(tmp_path / "tune.mid"),
               "--project", str(tmp_path / "g.csproj"), "--key", "G", "--mode", "major",
               "--strict-key", "--iterations", "6", "--seed", "1", "--out", str(out))
    assert made.returncode == 0, made.stderr
    g_major = {(7 + s) % 12 for s in SCALE}
    lower = [n for n in read_notes(out.read_bytes()).notes if n.voice > 0]
    assert lower and all(n.pitch % 12 in g_major for n in lower)
    assert "G major" in made.stdout


def test_steps_weigh_notes_outside_the_first_melodys_key():
    """The key weighing of Interpolate's decoding: notes of the first melody's scale and the
    notes it has itself are free, others lose the weight (masked: -inf)."""
    import numpy as np
    import torch

    from plugins.music.melody_vae import EVENTS, LOW, key_bias
    from plugins.music.reworks import OUT_OF_KEY, steps_key

    def event(pitch):
        return 2 + pitch - LOW

    first = np.array([event(60), 1, event(66), 0])  # C and an F# of its own, in C major
    bias = steps_key(first, "major")
    assert bias.shape == (EVENTS,) and bias[0] == bias[1] == 0  # rest and hold are free
    free = {pc for pc in range(12) if bias[event(60 + pc)] == 0}
    assert free == {0, 2, 4, 5, 6, 7, 9, 11}  # C major and the melody's F#
    assert bias[event(61)] == -OUT_OF_KEY and bias[event(73)] == -OUT_OF_KEY  # any octave
    assert {pc for pc in range(12) if steps_key(first[:1], "minor")[event(60 + pc)] == 0} \
        == {0, 2, 3, 5, 7, 8, 10, 11}
    masked = key_bias({0, 4, 7}, float("inf"))
    logits = torch.zeros(EVENTS) + masked
    assert torch.softmax(logits, -1)[event(62)] == 0 and torch.softmax(logits, -1)[0] > 0


@pytest.mark.parametrize("damage", ["truncated", "flipped", "no width", "width text"])
def test_a_damaged_music_model_folder_is_refused_plainly(tmp_path, damage):
    """Damaged weights or config of a VAE folder: ModelError in plain words, the files
    untouched."""
    import shutil

    from creative_studio.core.errors import ModelError
    from plugins.music.reworks import kind_of, load

    folder = tmp_path / "vae"
    shutil.copytree(paths.resources_dir() / "models" / "music-vae", folder)
    weights, config = folder / "model.safetensors", folder / "config.json"
    data, settings = weights.read_bytes(), json.loads(config.read_text())
    if damage == "truncated":
        weights.write_bytes(data[:len(data) // 2])
    elif damage == "flipped":
        weights.write_bytes(data[:3] + bytes([data[3] ^ 0xFF]) + data[4:])
    elif damage == "no width":
        config.write_text(json.dumps({k: v for k, v in settings.items() if k != "width"}))
    else:
        config.write_text(json.dumps({**settings, "width": "wide"}))
    before = (weights.read_bytes(), config.read_text())
    with pytest.raises(ModelError, match="vae is not a usable vae model"):
        load(folder, kind_of(folder), "cpu")
    assert (weights.read_bytes(), config.read_text()) == before


def test_interpolate_keeps_a_second_tune_that_key_finding_misreads_as_it_is(tmp_path):
    """A C-major tune on E, G and B reads as E minor to key finding; it is not moved a third
    down (issue 36): the last section is the MIDI as given, and it is read in C."""
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import write_midi
    from plugins.music.analysis import detect_key
    from plugins.music.generator import MusicGenerator
    from tests.conftest import prepared, source_of

    pitches = [64, 67, 71, 76, 71, 67, 64, 62, 60, 64, 67, 71, 74, 71, 67, 64]
    second = [Note(i * 1.0, 1.0, p, 77) for i, p in enumerate(pitches)]
    assert detect_key(second) == (4, "minor")
    first = melody(tmp_path / "a.mid", 60)
    generator = MusicGenerator()
    generator.load(source_of("music", "embedded:music-vae"), "cpu", Progress())
    request = prepared(Request("music", "interpolate", params={"steps": 2}, seed=1,
                               parents=["a", "b"], model="embedded:music-vae"))
    inputs = {"a": [Asset("midi", "audio/midi", write_midi(first, 90, (4, 4)), "a.mid")],
              "b": [Asset("midi", "audio/midi", write_midi(second, 90, (4, 4)), "b.mid")]}
    result = generator.generate(request, Progress(), inputs)
    content = read_notes(result.assets[0].data)
    section = result.metadata["section_quarters"]
    last = [(n.start - 3 * section, n.duration, n.pitch, n.velocity) for n in content.notes
            if n.start >= 3 * section]
    assert last == [(n.start, n.duration, n.pitch, n.velocity) for n in second]
    assert result.metadata["key"] == "C major"


def revoice_request(seed=5, **params):
    from creative_studio.core.jobs import Request
    from tests.conftest import prepared

    return prepared(Request("music", "revoice", params={"iterations": 8, **params}, seed=seed,
                            parents=["satb"], model="embedded:music-harmonize"))


@pytest.fixture(scope="module")
def harmonizer():
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator
    from tests.conftest import source_of

    g = MusicGenerator()
    g.load(source_of("music", "embedded:music-harmonize"), "cpu", Progress())
    return g


def satb_of(harmonizer, tmp_path):
    """A 4-bar harmonization made by the studio (its MIDI bytes)."""
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from tests.conftest import prepared

    melody(tmp_path / "tune.mid")
    request = prepared(Request("music", "harmonize", params={"iterations": 8}, seed=1,
                               parents=["tune"], model="embedded:music-harmonize"))
    tune = Asset("midi", "audio/midi", (tmp_path / "tune.mid").read_bytes(), "tune.mid")
    return harmonizer.generate(request, Progress(), {"tune": [tune]}).assets[0].data


@pytest.mark.parametrize(("which", "first", "last"), [("t", 2, 3), ("atb", 1, 1), ("ab", 4, 4)])
def test_regenerate_voices_keeps_every_other_note(harmonizer, tmp_path, which, first, last):
    from creative_studio.core.jobs import Asset
    from creative_studio.core.progress import Progress
    from plugins.music.reworks import REVOICE

    data = satb_of(harmonizer, tmp_path)
    inputs = {"satb": [Asset("midi", "audio/midi", data, "satb.mid")]}
    result = harmonizer.generate(revoice_request(which_voices=which, from_bar=first,
                                                 to_bar=last), Progress(), inputs)
    before, after = read_notes(data).notes, read_notes(result.assets[0].data).notes
    lo, hi = (first - 1) * 4.0, last * 4.0
    chosen = REVOICE[which]

    def kept(notes):  # every note of an unchosen voice, and chosen voices' notes outside
        return sorted((n.voice, n.start, min(n.duration, lo - n.start) if n.start < lo
                       else n.duration, n.pitch) for n in notes
                      if n.voice not in chosen or n.start < lo or n.start >= hi)

    assert kept(after) == kept(before)
    inside = [n for n in after if n.voice in chosen and lo <= n.start < hi]
    assert inside and all(n.start + n.duration <= hi + 1e-9 for n in inside)
    assert result.metadata["from_bar"] == first and result.metadata["new_notes"] == len(inside)
    assert result.title.startswith("Regenerated ")
    other = harmonizer.generate(revoice_request(seed=6, which_voices=which, from_bar=first,
                                                to_bar=last), Progress(), inputs)
    assert other.assets[0].data != result.assets[0].data


def test_regenerate_voices_needs_a_harmonization(harmonizer, tmp_path):
    from creative_studio.core.errors import BadInput
    from creative_studio.core.jobs import Asset
    from creative_studio.core.progress import Progress

    melody(tmp_path / "tune.mid")
    inputs = {"satb": [Asset("midi", "audio/midi", (tmp_path / "tune.mid").read_bytes(),
                             "tune.mid")]}
    with pytest.raises(BadInput, match="a track per voice"):
        harmonizer.generate(revoice_request(from_bar=1, to_bar=2), Progress(), inputs)
    data = satb_of(harmonizer, tmp_path)
    inputs = {"satb": [Asset("midi", "audio/midi", data, "satb.mid")]}
    with pytest.raises(BadInput, match="not all in it"):
        harmonizer.generate(revoice_request(from_bar=3, to_bar=9), Progress(), inputs)


def test_bars_chosen_on_a_harmonization_set_up_regenerate_voices(qtbot, make_window, tmp_path):
    from PySide6.QtCore import QPoint, Qt

    window = make_window()
    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    (tmp_path / "satb.mid").write_bytes(satb_of(harmonizer_of(), tmp_path))
    assert panel.open_midi(tmp_path / "satb.mid")
    roll = panel.roll
    tenor = next(i for i, n in enumerate(roll.edit.notes) if n.voice == 2)
    roll.edit.select(tenor)
    y = roll.height() - 5
    qtbot.mousePress(roll, Qt.MouseButton.LeftButton, pos=QPoint(round(roll._x(4.5)), y))
    qtbot.mouseRelease(roll, Qt.MouseButton.LeftButton, pos=QPoint(round(roll._x(4.5)), y))
    assert panel.task.currentData() == "revoice"
    params = panel.param_values("revoice")
    assert (params["from_bar"], params["to_bar"], params["which_voices"]) == (2, 2, "t")
    assert "tenor anew" in panel.message.text()


def harmonizer_of():
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator
    from tests.conftest import source_of

    g = MusicGenerator()
    g.load(source_of("music", "embedded:music-harmonize"), "cpu", Progress())
    return g
