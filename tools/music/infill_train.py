"""Teach the Music model to fill chosen bars (infill): the shipped GPT-2 fine-tuned on
fill-in-the-middle sequences, with checkpoints and resume.

    nohup .venv/bin/python tools/music/infill_train.py --data .cache/music-data \
        --run .cache/music-infill --minutes 90 --threads 1 > .cache/music-infill.log 2>&1 &
    .venv/bin/python tools/music/infill_train.py --run .cache/music-infill --export DIR

A piece's bars are cut in three: before, the bars to write (1–4), after. The model reads

    BOS Style Mode <bars before> Infill_Suffix <bars after> [EOS] Infill_Middle <bars> Infill_End

and learns to write the middle knowing both sides (EOS after the bars after when they end the
piece: the middle then leads to the ending). When the three do not fit the context, the bars
nearest the middle are kept — plugins/music/infill.py's ``arrange``, which the studio's
infill uses too. The three tokens are new: they follow the REMI vocabulary
(``len(tokenizer)`` + 0, 1, 2), and the model's ``config.json`` names them
(``infill_tokens``). Half of each batch stays plain left-to-right windows, so the same model
still writes new ideas and continuations; both losses are logged (``--eval-every``).

Warm start: the shipped ``resources/models/music-gpt2`` when the run has no checkpoint (a
model without the three tokens yet gets three new embedding rows, each the mean of the
others); ``<run>/checkpoint.pt`` (``torch.load(weights_only=True)``) resumes exactly.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import (  # noqa: E402
    CONTEXT,
    batches,
    evaluate,
    load_split,
    resume,
    train_steps,
    warm_model,
)

from plugins.music.infill import arrange, infill_ids, split_bars  # noqa: E402
from plugins.music.tokens import make_tokenizer  # noqa: E402

MAX_MIDDLE_BARS = 4
IGNORE = -100  # label of a position with no loss


def infill_example(piece: list[int], bar: int, eos: int, special: dict[str, int],
                   rng: np.random.Generator, context: int = CONTEXT
                   ) -> tuple[list[int], int] | None:
    """(tokens, index where the middle starts) for one cut of ``piece``; None when the piece
    has too few bars or its middle alone does not fit."""
    head, body = piece[:3], piece[3:]
    ends = bool(body) and body[-1] == eos
    if ends:
        body = body[:-1]
    bars = split_bars(body, bar)
    if len(bars) < 2:
        return None
    size = int(rng.integers(1, min(MAX_MIDDLE_BARS, len(bars) - 1) + 1))
    first = int(rng.integers(0, len(bars) - size + 1))
    middle = [t for b in bars[first:first + size] for t in b]
    budget = context + 1 - len(head) - 3 - len(middle) - 1  # 3 infill tokens, EOS
    if budget < 0:
        return None
    tokens = arrange(head, bars[:first], bars[first + size:], budget, special, eos, ends)
    return tokens + middle + [special["end"]], len(tokens)


def infill_batch(tokens: torch.Tensor, starts: np.ndarray, lengths: np.ndarray, batch: int,
                 vocab: dict[str, int], special: dict[str, int], rng: np.random.Generator,
                 middle_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, labels) of ``batch`` infill examples, padded to CONTEXT + 1; labels
    leave out padding (and, with ``middle_only``, everything before the middle)."""
    rows, labels = [], []
    while len(rows) < batch:
        piece = int(rng.integers(0, len(starts)))
        ids = tokens[starts[piece]:starts[piece] + lengths[piece]].tolist()
        found = infill_example(ids, vocab["Bar_None"], vocab["EOS_None"], special, rng)
        if found is None:
            continue
        example, middle = found
        pad = CONTEXT + 1 - len(example)
        row = torch.tensor(example + [vocab["PAD_None"]] * pad)
        label = row.clone()
        label[len(example):] = IGNORE
        if middle_only:
            label[:middle] = IGNORE
        rows.append(row)
        labels.append(label)
    return torch.stack(rows), torch.stack(labels)


def grow_embeddings(model, extra: int) -> None:
    """``extra`` new token rows, each the mean of the existing ones (tied output too)."""
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(old + extra)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[old:] = weight[:old].mean(0, keepdim=True)


@torch.no_grad()
def evaluate_infill(model, tokens, starts, lengths, vocab, special, examples: int = 64,
                    seed: int = 0) -> float:
    """Mean loss (nats) of the middle tokens of a fixed set of cuts of the split."""
    model.eval()
    rng = np.random.default_rng(seed)
    total = count = 0.0
    for _ in range(0, examples, 8):
        ids, labels = infill_batch(tokens, starts, lengths, 8, vocab, special, rng,
                                   middle_only=True)
        out = model(input_ids=ids[:, :-1], labels=labels[:, :-1])
        n = int((labels[:, 1:-1] != IGNORE).sum())
        total += out.loss.item() * n
        count += n
    model.train()
    return total / max(1.0, count)


def main() -> None:
    from tools.training_args import training_parser

    shipped = ROOT / "resources" / "models" / "music-gpt2"
    parser = training_parser("music", batch=8, lr=3e-4, warm_start=shipped)
    parser.set_defaults(run=Path(".cache/music-infill"))
    parser.add_argument("--total-steps", type=int, default=6000, help="cosine schedule length")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--infill-share", type=float, default=0.5,
                        help="share of each batch that is infill examples")
    parser.add_argument("--export", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer()
    vocab = dict(tokenizer.vocab)
    special = infill_ids(len(tokenizer))
    train, starts, lengths = load_split(args.data, "train")
    val, val_starts, val_lengths = load_split(args.data, "validation")
    checkpoint = args.run / "checkpoint.pt"
    model = warm_model(args.warm_start, len(tokenizer), load=not checkpoint.exists())
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer) + len(special):  # a model without the infill tokens yet
        grow_embeddings(model, len(tokenizer) + len(special) - rows)
    model.config.infill_tokens = special
    optimizer, (step, best, seen) = resume(model, args, checkpoint)
    if args.export:
        export(args, val, val_starts, val_lengths, vocab, special)
        return
    rng = np.random.default_rng(1000 + step)
    infill_rows = max(1, round(args.batch * args.infill_share))
    plain = batches(train, starts, args.batch - infill_rows, rng)
    if step == 0:  # where the warm start stands
        plain_loss = evaluate(model, val)
        infill_loss = evaluate_infill(model, val, val_starts, val_lengths, vocab, special)
        print(f"== step 0 validation: plain {plain_loss:.3f}, infill middle "
              f"{infill_loss:.3f}", flush=True)

    def next_batch():
        ids, labels = infill_batch(train, starts, lengths, infill_rows, vocab, special, rng)
        if args.batch > infill_rows:
            window = next(plain)
            ids, labels = torch.cat([ids, window]), torch.cat([labels, window])
        return ids, labels

    def validate() -> tuple[float, dict]:
        plain_loss = evaluate(model, val)
        infill_loss = evaluate_infill(model, val, val_starts, val_lengths, vocab, special)
        print(f"== validation: plain {plain_loss:.3f}, infill middle {infill_loss:.3f}",
              flush=True)
        return infill_loss, {"plain": plain_loss, "infill": infill_loss}

    step, best, seen = train_steps(model, optimizer, args, checkpoint, (step, best, seen),
                                   next_batch, validate, warmup=200, log_every=25)
    print(f"stopped at step {step}, best infill validation {best:.3f}", flush=True)


def export(args, val, val_starts, val_lengths, vocab, special) -> None:
    from transformers import GPT2LMHeadModel

    best = GPT2LMHeadModel.from_pretrained(args.run / "best")
    test, test_starts, test_lengths = load_split(args.data, "test")
    print(f"best model: plain validation {evaluate(best, val, 10**6):.3f}, test "
          f"{evaluate(best, test, 10**6):.3f}; infill middle test "
          f"{evaluate_infill(best, test, test_starts, test_lengths, vocab, special, 256):.3f}"
          " nats/token")
    args.export.mkdir(parents=True, exist_ok=True)
    best.save_pretrained(args.export)
    shutil.copy(args.data / "tokenizer.json", args.export / "tokenizer.json")


if __name__ == "__main__":
    main()
