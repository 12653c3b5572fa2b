"""The Interpolate model (plugins/music/melody_vae.py): events, the network, slerp, and the
trainer on a few steps of synthetic melodies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.llama_server import unmeasured

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def test_events_round_trip_notes():
    from creative_studio.io.midi import Note
    from plugins.music.melody_vae import HOLD, LOW, REST, events_to_notes, melody_events

    notes = [Note(0.0, 1.0, 60), Note(1.0, 0.5, 62), Note(2.0, 2.0, 64)]
    events = melody_events(notes, shift=2)
    assert list(events[:6]) == [2 + 62 - LOW, HOLD, HOLD, HOLD, 2 + 64 - LOW, HOLD]
    assert events[6] == REST
    assert events_to_notes(events) == [(0.0, 1.0, 62), (1.0, 0.5, 64), (2.0, 2.0, 66)]
    assert melody_events([]) is None


def test_network_shapes_slerp_and_seeded_decoding():
    from plugins.music.melody_vae import EVENTS, LATENT, build, slerp

    model = build(hidden=32, embed=16).eval()
    events = torch.randint(0, EVENTS, (3, 16))
    logits, mu, logvar = model(events)
    assert logits.shape == (3, 16, EVENTS) and mu.shape == logvar.shape == (3, LATENT)
    a, b = torch.randn(LATENT), torch.randn(LATENT)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    middle = slerp(a, b, 0.5)
    assert abs(float(middle.norm()) - float((a.norm() + b.norm()) / 2)) < 0.5 * float(a.norm())
    one = model.decode(mu, 16, 1.0, torch.Generator().manual_seed(3))
    two = model.decode(mu, 16, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(one, two) and one.shape == (3, 16)


def test_the_trainer_learns_checkpoints_and_exports(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(64):  # arpeggios on a grid: easy to learn
        base = int(rng.integers(26, 40))
        rows.append(np.array([base + (i // 4) % 3 * 2 if i % 4 == 0 else 1
                              for i in range(64)]))
    windows = np.stack(rows).astype(np.int16)
    for split in ("train", "validation"):
        np.savez(data / f"{split}.npz", windows=windows)
    run, export = tmp_path / "run", tmp_path / "export"
    cmd = [sys.executable, "tools/music/vae_train.py", "--data", str(data), "--run", str(run),
           "--export", str(export), "--minutes", "5", "--steps", "150", "--save-minutes", "5",
           "--batch", "16",
           "--arch", "bars", "--width", "16", "--hidden", "32", "--latent", "8",
           "--anneal", "50", "--word-dropout", "0.3", "--warmup", "5", "--threads", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env=unmeasured())
    assert first.returncode == 0, first.stderr
    recon = [float(line.split()[3]) for line in first.stdout.splitlines()
             if line.startswith("step ") and " recon " in line]
    assert len(recon) >= 2 and recon[-1] < recon[0]
    config = json.loads((export / "config.json").read_text())
    assert config["arch"] == "bars" and config["hidden"] == 32 and config["latent"] == 8
    assert 0 <= config["validation_notes_right"] <= 1
    from plugins.music.reworks import kind_of, load

    assert kind_of(export) == "vae" and load(export, "vae", "cpu").config == {
        k: v for k, v in config.items() if k in load(export, "vae", "cpu").config}
    assert config["step"] == 150  # --steps ends the session before --minutes
    cmd[cmd.index("--steps") + 1] = "1"
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env=unmeasured())
    assert again.returncode == 0 and f"resumed at step {config['step']}" in again.stdout
    # a new machine without the checkpoint: the exported (shipped) weights are the start
    cmd[cmd.index("--run") + 1] = str(tmp_path / "fresh-run")
    fresh = subprocess.run(cmd + ["--init-from", str(export)], capture_output=True, text=True,
                           cwd=ROOT, timeout=300, env=unmeasured())
    assert fresh.returncode == 0, fresh.stderr
    assert f"started from {export} at step" in fresh.stdout


def test_the_bars_network_is_causal_and_decodes_what_it_scores():
    """The shipped architecture: the encoder folds sixteenths into beats; the decoder's GRU
    reads the latent's context for each step and the events before it (never after), and
    greedy decoding one step at a time writes what the teacher-forced pass scores best."""
    from plugins.music.melody_vae import EVENTS, STEPS, build_bars, from_config

    torch.manual_seed(0)
    model = build_bars(width=16, hidden=24, latent=8).eval()
    events = torch.randint(0, EVENTS, (2, STEPS))
    with torch.no_grad():
        logits, mu, logvar = model(events)
        assert logits.shape == (2, STEPS, EVENTS) and mu.shape == logvar.shape == (2, 8)
        changed = events.clone()
        changed[:, 10:] = (changed[:, 10:] + 1) % EVENTS
        later, *_ = model(changed, z=mu)
        assert torch.equal(later[:, :11], logits[:, :11])  # step t reads events before t
        assert not torch.equal(later[:, 11:], logits[:, 11:])  # …and does read them
        decoded = model.decode(mu)
        scored, *_ = model(decoded, z=mu)
        assert decoded.shape == (2, STEPS)
        assert torch.equal(scored.argmax(-1), decoded)
        other = model.decode(mu + 3.0)
        assert not torch.equal(other, decoded)  # the latent decides what is written
    twin = from_config(json.loads(json.dumps(model.config)))
    twin.load_state_dict(model.state_dict())
    assert twin.config == model.config and twin.config["arch"] == "bars"
    twin.eval()
    with torch.no_grad():
        assert torch.equal(twin.decode(mu), decoded)
    silent = build_bars(width=16, hidden=24, latent=8, feedback=False).eval()
    with torch.no_grad():
        a, *_ = silent(events, z=mu)
        b, *_ = silent(changed, z=mu)
    assert torch.equal(a, b) and silent.config["feedback"] is False


def test_a_decoder_without_feedback_writes_from_the_latent_alone():
    """feedback=False: what the decoder wrote before never changes what it writes next, in
    training (teacher forcing) and in decoding alike."""
    from plugins.music.melody_vae import EVENTS, build

    torch.manual_seed(0)
    model = build(hidden=32, embed=8, latent=4, feedback=False).eval()
    assert model.config["feedback"] is False
    z = torch.randn(1, 4)
    a = torch.randint(0, EVENTS, (1, 16))
    b = torch.randint(0, EVENTS, (1, 16))
    with torch.no_grad():
        logits_a, *_ = model(a, z=z)
        logits_b, *_ = model(b, z=z)
        decoded = model.decode(z, 16)
    assert torch.equal(logits_a, logits_b)
    assert torch.equal(decoded[0], logits_a[0].argmax(-1))
    with_feedback = build(hidden=32, embed=8, latent=4).eval()
    with torch.no_grad():
        assert not torch.equal(with_feedback(a, z=z)[0], with_feedback(b, z=z)[0])
