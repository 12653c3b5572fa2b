"""Train the Music model (a small GPT-2 over REMI tokens) with checkpoints and resume.

    nohup .venv/bin/python tools/music/train.py --data .cache/music-data \
        --run .cache/music-train --minutes 60 > .cache/music-train.log 2>&1 &

Resumes from ``<run>/checkpoint.pt`` when present (loaded with weights_only=True). Every
``--eval-every`` steps it logs the validation loss to ``<run>/log.jsonl`` and keeps the best
model as a transformers folder (safetensors) in ``<run>/best``. ``--export DIR`` copies the
best model and the tokenizer to DIR (what the studio ships) and reports the test loss.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from plugins.music.tokens import make_tokenizer  # noqa: E402

CONTEXT = 512


def load_split(data: Path, split: str):
    arrays = np.load(data / f"{split}.npz")
    tokens = torch.from_numpy(arrays["tokens"].astype(np.int64))
    lengths = arrays["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return tokens, starts, lengths


def batches(tokens, starts, batch: int, generator: np.random.Generator):
    """Windows of CONTEXT+1 tokens; half start at a piece start (so conditioning is seen)."""
    total = len(tokens) - CONTEXT - 1
    while True:
        begin = np.where(generator.random(batch) < 0.5,
                         starts[generator.integers(0, len(starts), batch)],
                         generator.integers(0, total, batch))
        begin = np.minimum(begin, total)
        yield torch.stack([tokens[b:b + CONTEXT + 1] for b in begin])


@torch.no_grad()
def evaluate(model, tokens, max_windows: int = 64) -> float:
    """Mean next-token loss (nats) over consecutive windows of the split."""
    model.eval()
    losses, counts = 0.0, 0
    n = min(max_windows, (len(tokens) - 1) // CONTEXT)
    for i in range(0, n, 8):
        chunk = torch.stack([tokens[j * CONTEXT:(j + 1) * CONTEXT + 1]
                             for j in range(i, min(n, i + 8))])
        out = model(input_ids=chunk[:, :-1], labels=chunk[:, :-1])
        # HF shifts labels itself; pass input as labels → loss over CONTEXT-1 predictions
        losses += out.loss.item() * chunk.shape[0]
        counts += chunk.shape[0]
    model.train()
    return losses / max(1, counts)


def make_model(vocab: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab, n_positions=1024, n_embd=256, n_layer=6, n_head=4,
                        bos_token_id=1, eos_token_id=2, pad_token_id=0,
                        resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
    return GPT2LMHeadModel(config)


def warm_model(folder: Path, vocab: int, load: bool = True):
    """A model sized for ``folder``'s vocabulary where it has more rows than ``vocab`` (the
    shipped model's infill tokens stay), with the folder's weights when ``load`` (a run
    that resumes takes its checkpoint's instead)."""
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    model = make_model(max(vocab, int(config.get("vocab_size", vocab))))
    if isinstance(config.get("infill_tokens"), dict):
        model.config.infill_tokens = config["infill_tokens"]
    if load and weights.exists():
        model.load_state_dict(load_file(weights), strict=False)
        print(f"warm start from {folder} (optimizer state reset)", flush=True)
    return model


def main() -> None:
    from tools.training_args import training_parser

    shipped = Path(__file__).resolve().parents[2] / "resources" / "models" / "music-gpt2"
    parser = training_parser("music", batch=8, lr=1e-3, warm_start=shipped)
    parser.add_argument("--total-steps", type=int, default=30000, help="cosine schedule length")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--export", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    train, starts, _ = load_split(args.data, "train")
    val, _, _ = load_split(args.data, "validation")
    model = warm_model(args.warm_start, len(make_tokenizer()),
                       load=not (args.run / "checkpoint.pt").exists())
    checkpoint = args.run / "checkpoint.pt"
    optimizer, (step, best, seen) = resume(model, args, checkpoint)
    if args.export:
        export(args, val)
        return
    rng = np.random.default_rng(step)
    stream = batches(train, starts, args.batch, rng)
    params = sum(p.numel() for p in model.parameters())
    print(f"model {params / 1e6:.2f}M params, train {len(train):,} tokens", flush=True)

    def validate() -> tuple[float, dict]:
        loss = evaluate(model, val)
        print(f"== validation loss {loss:.3f}", flush=True)
        return loss, {"val_loss": loss}

    def next_batch():
        batch = next(stream)
        return batch, batch

    step, best, seen = train_steps(model, optimizer, args, checkpoint, (step, best, seen),
                                   next_batch, validate, warmup=300, log_every=50)
    print(f"stopped at step {step}, best validation loss {best:.3f}", flush=True)


def resume(model, args, checkpoint: Path):
    """(the AdamW optimizer, (step, best, tokens seen)): where ``checkpoint`` left them
    (``torch.load(weights_only=True)``), else a fresh start."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05,
                                  betas=(0.9, 0.95))
    if not checkpoint.exists():
        return optimizer, (0, math.inf, 0)
    state = torch.load(checkpoint, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    step, best, seen = int(state["step"]), float(state["best"]), int(state["seen"])
    print(f"resumed at step {step} (best validation {best:.3f}, {seen:,} tokens seen)",
          flush=True)
    return optimizer, (step, best, seen)


def train_steps(model, optimizer, args, checkpoint: Path, state: tuple[int, float, int],
                next_batch, validate, warmup: int, log_every: int) -> tuple[int, float, int]:
    """The loop both music trainers run until ``args.minutes`` have passed: the learning rate
    warmed up over ``warmup`` steps, then a cosine to 10 % at ``args.total_steps``; a step
    per ``next_batch()`` → (input ids, labels); a log line every ``log_every`` steps; every
    ``args.eval_every`` steps ``validate()`` → (the loss that picks the best, the fields
    logged to ``<run>/log.jsonl``), the best weights in ``<run>/best``; the checkpoint
    (weights, optimizer, step, best, tokens seen) then, every ``args.save_minutes`` and at
    the end. ``state`` and the answer: (step, best, tokens seen)."""
    step, best, seen = state
    started = last_save = time.monotonic()
    model.train()

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "step": step, "best": best, "seen": seen}, tmp)
        tmp.replace(checkpoint)

    while time.monotonic() - started < args.minutes * 60:
        warm = min(1.0, (step + 1) / warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.total_steps)))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm * (0.1 + 0.9 * cosine)
        ids, labels = next_batch()
        out = model(input_ids=ids[:, :-1], labels=labels[:, :-1])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += ids.numel()
        if step % log_every == 0:
            print(f"step {step} loss {out.loss.item():.3f} lr {optimizer.param_groups[0]['lr']:.2e}"
                  f" tokens {seen:,} {time.monotonic() - started:.0f}s", flush=True)
        if step % args.eval_every == 0:
            score, fields = validate()
            with open(checkpoint.parent / "log.jsonl", "a") as log:
                log.write(json.dumps({"step": step, **fields, "tokens": seen,
                                      "time": time.time()}) + "\n")
            if score < best:
                best = score
                model.save_pretrained(checkpoint.parent / "best")
            save()
            last_save = time.monotonic()
        elif time.monotonic() - last_save > args.save_minutes * 60:
            save()
            last_save = time.monotonic()
    save()
    return step, best, seen


def export(args, val) -> None:
    from transformers import GPT2LMHeadModel

    best = GPT2LMHeadModel.from_pretrained(args.run / "best")
    test, _, _ = load_split(args.data, "test")
    print(f"best model: validation {evaluate(best, val, 10**6):.3f}, "
          f"test {evaluate(best, test, 10**6):.3f} nats/token")
    args.export.mkdir(parents=True, exist_ok=True)
    best.save_pretrained(args.export)
    shutil.copy(args.data / "tokenizer.json", args.export / "tokenizer.json")


if __name__ == "__main__":
    main()
