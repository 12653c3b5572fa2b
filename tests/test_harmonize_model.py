"""The Harmonize network (plugins/music/coconet.py) and its trainer, on a few steps of
synthetic four-voice rolls: shapes, masking, the loss going down, checkpoint and export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.llama_server import unmeasured

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def test_known_cells_are_given_and_hidden_ones_predicted():
    from plugins.music.coconet import REST, Coconet, masked_nll, to_index, to_pitch

    pitches = torch.tensor([[[72, 74, -1, 76], [64, 65, 67, 67], [55, 57, 59, 60],
                             [48, 41, 43, 36]]])
    index = to_index(pitches)
    assert index[0, 0, 2] == REST and torch.equal(to_pitch(index), pitches)
    model = Coconet(blocks=2, channels=8).eval()
    hidden = torch.zeros_like(index)
    hidden[:, 1:] = 1
    logits = model(index, hidden)
    assert logits.shape == (1, 4, 4, REST + 1)
    changed = index.clone()
    changed[0, 1:] = 0  # what the hidden cells hold must not matter
    assert torch.allclose(model(changed, hidden), logits)
    assert float(masked_nll(logits, index, hidden).detach()) > 0


def test_the_trainer_learns_checkpoints_and_exports(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 6), ("validation", 2)):  # scales in four voices
        pieces = []
        for _ in range(count):
            steps = np.arange(64)
            soprano = 72 + (steps // 4) % 8
            pieces.append(np.stack([soprano, soprano - 4, soprano - 9, soprano - 24]))
        rolls = np.concatenate(pieces, axis=1).astype(np.int8)
        np.savez(data / f"{split}.npz", rolls=rolls, lengths=np.array([64] * count))
    run, export = tmp_path / "run", tmp_path / "export"
    cmd = [sys.executable, "tools/music/harmonize_train.py", "--data", str(data), "--run",
           str(run), "--export", str(export), "--minutes", "5", "--steps", "150", "--save-minutes", "5",
           "--batch", "8", "--blocks", "2", "--channels", "16", "--lr", "3e-3"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env=unmeasured())
    assert first.returncode == 0, first.stderr
    losses = [float(line.split()[-1]) for line in first.stdout.splitlines()
              if line.startswith("step ") and " loss " in line]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    config = json.loads((export / "config.json").read_text())
    assert config["blocks"] == 2 and config["step"] >= 100
    from safetensors.torch import load_file

    from plugins.music.coconet import Coconet

    model = Coconet(blocks=2, channels=16)
    model.load_state_dict(load_file(str(export / "model.safetensors")))
    assert config["step"] == 150  # --steps ends the session before --minutes
    cmd[cmd.index("--steps") + 1] = "1"
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env=unmeasured())
    assert again.returncode == 0 and f"resumed at step {config['step']}" in again.stdout
    assert json.loads((export / "config.json").read_text())["step"] == 151


def marks_at(rolls):
    """leading_penalties() read at each lower-voice cell's own pitch."""
    import torch

    from plugins.music.coconet import LOW, PITCHES
    from plugins.music.harmonize import leading_penalties

    pitches = torch.from_numpy(rolls.astype(np.int64))
    marks = leading_penalties(pitches, torch.arange(PITCHES - 1) + LOW)
    found = []
    for voice in range(1, 4):
        for t, pitch in enumerate(rolls[voice]):
            if pitch >= 0 and marks[voice, t, pitch - LOW] > 0:
                found.append((voice, t))
    return found


def test_a_parallel_fifth_with_the_soprano_is_marked_and_a_sixth_is_not():
    rest = [-1, -1]
    rolls = np.array([[72, 74], [65, 67], rest, rest], dtype=np.int16)  # C5→D5 over F4→G4
    assert marks_at(rolls) == [(1, 0), (1, 1)]  # the move out of t=0 and into t=1
    rolls[1] = [65, 69]  # F4→A4: a fifth, then a fourth below
    assert marks_at(rolls) == []
    rolls[1] = [60, 62]  # C4→D4: parallel octaves
    assert marks_at(rolls) == [(1, 0), (1, 1)]
    rolls[1] = [60, 50]  # octave → contrary motion: fine
    assert marks_at(rolls) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.integers(36, 81) | st.just(-1)] * 4), min_size=2, max_size=8))
def test_penalties_see_exactly_the_parallels_the_figure_counts(columns):
    """No mark at any cell's own pitch ⟺ parallels() finds none (any voices, any rests)."""
    from plugins.music.harmonize import parallels

    rolls = np.array(columns, dtype=np.int16).T
    assert (parallels(rolls)[0] == 0) == (marks_at(rolls) == [])
