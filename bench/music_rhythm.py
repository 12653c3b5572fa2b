"""Rhythm of new music ideas vs the held-out tunes they should resemble (issue 36).

    .venv/bin/python bench/music_rhythm.py [--ideas 100] [--data .cache/music-data]
        [--temperature 1.0] [--top-p 0.95] [--model DIR] [--continue]

For each of ``--ideas`` held-out folk tunes of the test split (pieces the training never
saw; cycling when there are fewer), the first 8 bars are measured, and the Music model
writes a new 8-bar idea in the same meter and mode (tonic C, as the data; seeds 2000…), or
with ``--continue`` continues the tune's first 4 bars by 4 (only the new bars measured, and
whether they reach the theme's range — within two semitones of its highest note — and end
on the tonic; the tune's own bars 5–8 are measured alike; ``--plain``: without the End on the
tonic and Reach the theme's range rules).
Per piece (plugins/music/analysis.rhythm): the share of notes on the most common duration,
the duration entropy in bits, and syncopation; the table gives the means over pieces and
how many pieces have more than 90 % on one duration, for the corpus and the model. The goal:
the model's means within ±0.1 of the corpus's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))

FIGURES = ("top_share", "entropy", "syncopation")


def held_out(data: Path, count: int, bars: int = 8) -> list[dict]:
    """The test split's folk tunes: meter, mode and their first ``bars`` bars as notes."""
    import numpy as np
    from miditok import REMI, TokSequence

    from creative_studio.io.midi import Note
    from plugins.music.grammar import TIME_SIGNATURES

    tokenizer = REMI(params=data / "tokenizer.json")
    names = {i: k for k, i in tokenizer.vocab.items()}
    arrays = np.load(data / "test.npz")
    tokens, lengths = arrays["tokens"], arrays["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pieces = []
    for start, length in zip(starts, lengths, strict=True):
        ids = [int(t) for t in tokens[start:start + length]]
        style, mode = names[ids[1]][6:], names[ids[2]][5:]
        if style != "folk":
            continue
        body = ids[3:-1]
        bar_starts = [i for i, t in enumerate(body) if names[t] == "Bar_None"]
        if len(bar_starts) < bars:
            continue
        cut = bar_starts[bars] if len(bar_starts) > bars else len(body)
        meter = next((names[t][8:] for t in body if names[t].startswith("TimeSig_")), "4/4")
        if meter not in TIME_SIGNATURES:  # those the studio writes in
            continue
        score = tokenizer.decode([TokSequence(ids=body[:cut])])
        tpq = score.ticks_per_quarter
        notes = [Note(n.time / tpq, n.duration / tpq, int(n.pitch), 90)
                 for track in score.tracks for n in track.notes]
        pieces.append({"meter": meter, "mode": mode, "notes": notes, "tonic": 0})  # in C
        if len(pieces) >= count:
            break
    return pieces


def shape(theme: list, notes: list, tonic: int) -> dict:
    """Whether new ``notes`` reach within two semitones of the ``theme``'s highest note, and
    whether the last of them (its highest at the last onset) is the tonic."""
    last = max(notes, key=lambda n: (n.start, n.pitch))
    reaches = bool(theme) and max(n.pitch for n in notes) >= max(n.pitch for n in theme) - 2
    return {"reaches": float(reaches), "tonic_end": float((last.pitch - tonic) % 12 == 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ideas", type=int, default=100)
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "music-data")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--model", default="embedded:music-gpt2",
                        help="a model reference (a folder path for a trained run's export)")
    parser.add_argument("--continue", dest="continuing", action="store_true")
    parser.add_argument("--plain", action="store_true",
                        help="without End on the tonic and Reach the theme's range (before)")
    args = parser.parse_args()
    if not (args.data / "test.npz").is_file():
        raise SystemExit(f"{args.data}/test.npz is missing: tools/music/README.md builds it")

    import torch

    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes, write_midi
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.music.analysis import bar_length, rhythm

    torch.set_num_threads(1)
    corpus = held_out(args.data, 10**6)
    if not corpus:
        raise SystemExit("the test split has no folk tune of 8 bars")
    registry = PluginRegistry.discover(entry_points=False)
    generator = registry.get("music").load("generator")()
    generator.load(registry.resolve_model("music", args.model), "cpu", Progress())
    measured: dict[str, list[dict]] = {"corpus": [], "model": []}
    meters: list[str] = []
    failures = 0
    for index in range(args.ideas):
        piece = corpus[index % len(corpus)]
        meter = tuple(int(x) for x in piece["meter"].split("/"))
        params = {"bars": 8, "time_signature": piece["meter"], "mode": piece["mode"],
                  "tonic": 0, "style": "folk"}
        if args.temperature is not None:
            params["temperature"] = args.temperature
        if args.top_p is not None:
            params["top_p"] = args.top_p
        if args.plain:
            params["end_on_tonic"] = False
            if args.continuing:
                params["develop"] = False
        inputs = {}
        parents = []
        start = 0.0
        prompt = []
        corpus_notes = piece["notes"]
        if args.continuing:
            params.update(bars=4, keep_bars=4)  # the tune's own key (C, its mode)
            del params["time_signature"]
            start = 4 * bar_length(meter)
            prompt = [n for n in piece["notes"] if n.start < start]
            corpus_notes = [n for n in piece["notes"] if n.start >= start]
            inputs = {"tune": [Asset("midi", "audio/midi",
                                     write_midi(prompt, 120, meter), "tune.mid")]}
            parents = ["tune"]
        request = Request("music", "continue" if args.continuing else "generate",
                          seed=2000 + index, model=args.model, params=params,
                          parents=parents)
        prepare_request(registry, request)
        try:
            result = generator.generate(request, Progress(), inputs)
        except Exception as exc:  # counted, never hidden
            failures += 1
            print(f"idea {index}: {exc}", file=sys.stderr)
            continue
        notes = [n for n in read_notes(result.assets[0].data).notes if n.start >= start - 1e-6]
        meters.append(piece["meter"])
        measured["model"].append({**rhythm(notes, meter), **shape(
            prompt if args.continuing else [], notes, result.metadata["tonic"])})
        measured["corpus"].append({**rhythm(corpus_notes, meter), **shape(
            prompt if args.continuing else [], corpus_notes, piece["tonic"])})
    print(f"{args.ideas} {'continuations' if args.continuing else 'new ideas'} "
          f"(model {args.model}, temperature {args.temperature or 'default'}, top-p "
          f"{args.top_p or 'default'}) vs {len(corpus)} held-out folk tunes' "
          f"{'bars 5–8' if args.continuing else 'first 8 bars'}; {failures} failed")
    shown = FIGURES + (("reaches", "tonic_end") if args.continuing else ("tonic_end",))
    print(f"{'':8}" + "".join(f"{f:>13}" for f in shown) + f"{'>90 % one':>11}")
    for name, rows in measured.items():
        means = [statistics.fmean(r[f] for r in rows) for f in shown]
        over = sum(r["top_share"] > 0.9 for r in rows)
        print(f"{name:8}" + "".join(f"{m:>13.3f}" for m in means) + f"{over:>7}/{len(rows)}")
    print("by meter (pieces: top share corpus → model, entropy corpus → model):")
    for meter in sorted(set(meters)):
        rows = [i for i, m in enumerate(meters) if m == meter]
        pair = [statistics.fmean(measured[k][i][f] for i in rows)
                for f in ("top_share", "entropy") for k in ("corpus", "model")]
        print(f"  {meter:5} {len(rows):3}: {pair[0]:.2f} → {pair[1]:.2f}, "
              f"{pair[2]:.2f} → {pair[3]:.2f}")
    gaps = [statistics.fmean(r[f] for r in measured["model"])
            - statistics.fmean(r[f] for r in measured["corpus"]) for f in FIGURES]
    print("model − corpus " + ", ".join(f"{f} {g:+.3f}" for f, g in zip(FIGURES, gaps,
                                                                          strict=True)))


if __name__ == "__main__":
    main()
