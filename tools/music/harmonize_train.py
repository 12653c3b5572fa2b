"""Train the Harmonize model (plugins/music/coconet.py) on the Bach chorales, resumably.

    .venv/bin/python tools/music/harmonize_data.py --out .cache/harmonize-data   # once
    nohup .venv/bin/python tools/music/harmonize_train.py --minutes 120 > harmonize.log &

Each step takes random 2-bar crops (32 sixteenths) of training chorales, moves each to a
random key that keeps every voice inside 36–81, and hides cells with an orderless mask (a
share drawn uniformly, then cells at random; one batch item in four hides the three lower
voices under a known soprano, the Harmonize case). The loss is the mean negative
log-likelihood of the hidden cells. Every ``--save-minutes`` the run writes
``<run>/checkpoint.pt`` (weights, optimizer, step; ``torch.load(weights_only=True)``) and
exports ``--export`` (``model.safetensors`` + ``config.json``, what the studio loads), and
prints the validation NLL of alto, tenor and bass given the soprano. Interrupt any time:
``--run`` resumes from the checkpoint.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CROP = 32


def load_split(data: Path, split: str) -> list[np.ndarray]:
    arrays = np.load(data / f"{split}.npz")
    rolls, lengths = arrays["rolls"], arrays["lengths"]
    pieces, start = [], 0
    for length in lengths:
        pieces.append(rolls[:, start:start + length])
        start += length
    return [p for p in pieces if p.shape[1] >= CROP]


def batch(pieces: list[np.ndarray], size: int, rng: np.random.Generator,
          transpose: bool = True) -> np.ndarray:
    """(size, 4, CROP) MIDI pitches (-1 rest): crops moved to random keys in range."""
    from plugins.music.coconet import HIGH, LOW

    out = np.empty((size, 4, CROP), dtype=np.int16)
    for row in range(size):
        piece = pieces[rng.integers(len(pieces))]
        start = rng.integers(piece.shape[1] - CROP + 1)
        crop = piece[:, start:start + CROP].astype(np.int16)
        sounding = crop[crop >= 0]
        shift = 0
        if transpose and sounding.size:
            low, high = LOW - sounding.min(), HIGH - sounding.max()
            if low <= high:
                shift = int(rng.integers(max(low, -6), min(high, 6) + 1)) \
                    if max(low, -6) <= min(high, 6) else 0
        out[row] = np.where(crop >= 0, crop + shift, -1)
    return out


def masks(size: int, rng: np.random.Generator, harmonize_share: float = 0.25) -> np.ndarray:
    """(size, 4, CROP) 1 = hidden: orderless masks, and some 'soprano given' ones."""
    out = np.zeros((size, 4, CROP), dtype=np.int64)
    for row in range(size):
        if rng.random() < harmonize_share:
            out[row, 1:] = 1
        else:
            share = rng.random()
            out[row] = rng.random((4, CROP)) < share
            if not out[row].any():
                out[row, rng.integers(4), rng.integers(CROP)] = 1
    return out


def validation_nll(model, pieces: list[np.ndarray], seed: int = 0, count: int = 256) -> float:
    """Mean NLL (nats) of alto, tenor and bass given the soprano, fixed crops (no transposing)."""
    import torch

    from plugins.music.coconet import masked_nll, to_index

    rng = np.random.default_rng(seed)
    rolls = torch.from_numpy(batch(pieces, count, rng, transpose=False))
    hidden = torch.zeros_like(rolls, dtype=torch.long)
    hidden[:, 1:] = 1
    model.eval()
    with torch.inference_mode():
        total = 0.0
        for start in range(0, count, 64):
            index = to_index(rolls[start:start + 64])
            total += float(masked_nll(model(index, hidden[start:start + 64]), index,
                                      hidden[start:start + 64])) * len(index)
    model.train()
    return total / count


def main() -> None:
    from tools.music.runs import Budget, arguments

    parser = arguments("harmonize", "harmonize-data", "music-harmonize", batch=24)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args()
    import torch

    from plugins.music.coconet import Coconet, masked_nll, to_index
    from tools.music.runs import export, resume, save, torch_setup

    bf16 = torch_setup(args)  # 1.78 → 0.35 s a step with AMX
    train, validation = load_split(args.data, "train"), load_split(args.data, "validation")
    model = Coconet(args.blocks, args.channels).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, seed = resume(model, optimizer, args.run, args.lr)
    rng = np.random.default_rng(1000 + seed)
    print(f"{len(train)} train / {len(validation)} validation chorales; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; bf16 {bf16}",
          flush=True)
    budget = Budget(args, step)
    saved = time.monotonic()
    losses: list[float] = []
    model.train()
    while budget.running(step):
        rolls = to_index(torch.from_numpy(batch(train, args.batch, rng)))
        hidden = torch.from_numpy(masks(args.batch, rng))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(rolls, hidden)
        loss = masked_nll(logits.float(), rolls, hidden)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.4f}", flush=True)
        if time.monotonic() - saved > args.save_minutes * 60 or not budget.running(step):
            nll = validation_nll(model, validation)
            save(model, optimizer, args.run, step, seed)
            export(model, args.export, step, {"validation_nll_atb_given_s": round(nll, 4),
                                              "crop": CROP, "steps_per_quarter": 4})
            print(f"step {step}: validation NLL (A, T, B given S) {nll:.4f} nats/cell "
                  f"= {nll / math.log(2):.3f} bits; saved", flush=True)
            saved = time.monotonic()


if __name__ == "__main__":
    main()
