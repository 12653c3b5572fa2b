"""Train the Interpolate model (plugins/music/melody_vae.py) on folk melodies, resumably.

    .venv/bin/python tools/music/melody_data.py --out .cache/melody-data     # once
    nohup .venv/bin/python tools/music/vae_train.py --minutes 90 --threads 1 > vae.log &

Loss: reconstruction (cross-entropy of each event, teacher forcing) + β · max(KL − free
bits, 0), β raised linearly to ``--beta`` over ``--anneal`` steps, so the decoder learns to
use the latent before the KL term pulls it toward the prior; ``--word-dropout`` hides a share
of the decoder's teacher-forced inputs so it cannot rely on them alone. Melodies are moved by a random
-3…+3 semitones while training (they are stored in C). Every ``--save-minutes``: a
checkpoint (``<run>/checkpoint.pt``, committed so a new machine resumes), an export to
``--export`` (``model.safetensors`` + ``config.json``) and the validation figures: events
reconstructed right from the mean latent (greedy), and notes right (note-ons).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def shifted(windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each window moved by -3…+3 semitones where it stays in range (REST/HOLD unchanged)."""
    from plugins.music.melody_vae import EVENTS

    out = windows.astype(np.int64).copy()
    for row in out:
        notes = row[row >= 2]
        shift = int(rng.integers(-3, 4))
        if notes.size and 2 <= notes.min() + shift and notes.max() + shift < EVENTS:
            row[row >= 2] += shift
    return out


def reconstruction(model, windows: np.ndarray) -> tuple[float, float]:
    """(share of events right, share of note-ons right) decoding each mean latent greedily."""
    import torch

    model.eval()
    with torch.inference_mode():
        events = torch.from_numpy(windows.astype(np.int64))
        mu, _ = model.encode(events)
        decoded = model.decode(mu, events.shape[1])
    model.train()
    right = decoded == events
    onsets = events >= 2
    return float(right.float().mean()), float(right[onsets].float().mean())


def main() -> None:
    from tools.music.runs import arguments

    parser = arguments("interpolate", "melody-data", "music-vae", batch=64)
    parser.add_argument("--beta", type=float, default=0.2)
    parser.add_argument("--anneal", type=int, default=4000)
    parser.add_argument("--free-bits", type=float, default=16.0, help="nats per melody")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM width")
    parser.add_argument("--arch", choices=("lstm", "bars"), default="lstm")
    parser.add_argument("--width", type=int, default=256, help="bars: convolution width")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=0, help="steps of linear lr warm-up")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="without a checkpoint in --run: start from these exported "
                             "weights (e.g. resources/models/music-vae)")
    parser.add_argument("--no-feedback", action="store_true",
                        help="a decoder that never reads the events it wrote (all from the "
                             "latent); a new run (its checkpoint cannot resume the other)")
    parser.add_argument("--word-dropout", type=float, default=0.0,
                        help="share of the decoder's teacher-forced inputs replaced by the "
                             "start token, so that it leans on the latent (Bowman et al.)")
    args = parser.parse_args()
    import torch

    from plugins.music.melody_vae import build, build_bars
    from tools.music.runs import Budget, export, resume, save, torch_setup

    bf16 = torch_setup(args)  # 0.73 → 0.29 s a step with AMX
    train = np.load(args.data / "train.npz")["windows"]
    validation = np.load(args.data / "validation.npz")["windows"][:256]
    if args.arch == "bars":
        model = build_bars(args.width, args.hidden, args.latent, not args.no_feedback)
    else:
        model = build(hidden=args.hidden, latent=args.latent, feedback=not args.no_feedback)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, seed = resume(model, optimizer, args.run, args.lr, args.init_from)
    rng = np.random.default_rng(2000 + seed)
    print(f"{len(train):,} train windows; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters; bf16 {bf16}", flush=True)
    budget, saved = Budget(args, step), time.monotonic()
    history: list[tuple[float, float]] = []
    model.train()
    while budget.running(step):
        rows = rng.integers(len(train), size=args.batch)
        events = torch.from_numpy(shifted(train[rows], rng))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, mu, logvar = model(events, word_dropout=args.word_dropout)
        logits, mu, logvar = logits.float(), mu.float(), logvar.float()
        recon = torch.nn.functional.cross_entropy(logits.transpose(1, 2), events,
                                                  reduction="none").sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        beta = args.beta * min(1.0, step / max(1, args.anneal))
        loss = recon + beta * torch.clamp(kl - args.free_bits, min=0)
        if args.warmup:
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        history.append((float(recon.detach()), float(kl.detach())))
        if step % 50 == 0:
            r, k = np.mean(history[-50:], axis=0)
            print(f"step {step} recon {r:.3f} kl {k:.2f} beta {beta:.3f}", flush=True)
        if time.monotonic() - saved > args.save_minutes * 60 or not budget.running(step):
            events_right, notes_right = reconstruction(model, validation)
            figures = {"validation_events_right": round(events_right, 4),
                       "validation_notes_right": round(notes_right, 4)}
            save(model, optimizer, args.run, step, seed)
            export(model, args.export, step, figures)
            print(f"step {step}: validation events right {events_right:.3f}, note-ons right "
                  f"{notes_right:.3f}; saved", flush=True)
            saved = time.monotonic()


if __name__ == "__main__":
    main()
