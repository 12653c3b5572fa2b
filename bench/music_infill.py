"""Regenerate bars (infill) on held-out tunes: what stays, what is written, how it joins.

    .venv/bin/python bench/music_infill.py [--pieces 60] [--data .cache/music-data]
        [--model embedded:music-gpt2]

For each of ``--pieces`` held-out folk tunes of the test split (never trained on; their
first 16 bars), a seeded selection of 1–4 bars (never the first or last bar, so both sides
exist) is written anew by the studio's infill (plugins/music/generator.py, the model's own
key found from the tune). Figures:

- notes outside the selection identical to the tune's (start, length, pitch, velocity; the
  goal: 100 %);
- notes inside in the tune's key (the dataset's mode, tonic C; goal ≥ 95 %);
- the joins: semitones from the last note before the selection to the first inside, and
  from the last inside to the first after — against the 95th percentile of the same
  interval across every bar line of the same tunes (goal: no wider);
- seconds per infill.

The seams are held within grammar.JOIN_LEAP semitones (the tunes' 95th percentile);
``--free-seams`` measures the model alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def bar_line_intervals(notes, bar: float) -> list[int]:
    """Semitones between the top notes on either side of every bar line (the infill's
    ``joins`` of an empty selection at that line: the step into the next bar)."""
    from plugins.music.infill import joins

    end = max(n.start + n.duration for n in notes)
    found = []
    line = bar
    while line < end - 1e-6:
        found += joins(notes, line, line + bar)[:1]
        line += bar
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=60)
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "music-data")
    parser.add_argument("--model", default="embedded:music-gpt2")
    parser.add_argument("--free-seams", action="store_true",
                        help="without the seam rule (grammar.JOIN_LEAP): the model alone")
    args = parser.parse_args()
    if args.free_seams:
        from plugins.music import grammar

        grammar.JOIN_LEAP = 127
    if not (args.data / "test.npz").is_file():
        raise SystemExit(f"{args.data}/test.npz is missing: tools/music/README.md builds it")

    import numpy as np
    import torch
    from music_rhythm import held_out

    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes, write_midi
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.music.analysis import bar_length, in_key_share

    torch.set_num_threads(1)
    tunes = held_out(args.data, args.pieces, bars=16)
    registry = PluginRegistry.discover(entry_points=False)
    generator = registry.get("music").load("generator")()
    generator.load(registry.resolve_model("music", args.model), "cpu", Progress())
    rng = np.random.default_rng(36)
    kept = kept_same = inside_notes = failures = 0
    in_key: list[float] = []
    joins: list[int] = []
    corpus: list[int] = []
    seconds: list[float] = []
    for index, piece in enumerate(tunes):
        meter = tuple(int(x) for x in piece["meter"].split("/"))
        length = bar_length(meter)
        notes = piece["notes"]
        corpus += bar_line_intervals(notes, length)
        size = int(rng.integers(1, 5))
        first = int(rng.integers(2, 16 - size + 1))
        last = first + size - 1
        data = write_midi(notes, 120, meter)
        request = Request("music", "infill", seed=3600 + index, model=args.model,
                          parents=["tune"], params={"from_bar": first, "to_bar": last,
                                                    "tonic": 0, "mode": piece["mode"]})
        prepare_request(registry, request)
        started = time.perf_counter()
        try:
            result = generator.generate(request, Progress(),
                                        {"tune": [Asset("midi", "audio/midi", data, "t.mid")]})
        except Exception as exc:  # counted, never hidden
            failures += 1
            print(f"tune {index}: {exc}", file=sys.stderr)
            continue
        seconds.append(time.perf_counter() - started)
        start, end = (first - 1) * length, last * length
        source = read_notes(data).notes  # as the studio read it (the file's ticks)
        out = read_notes(result.assets[0].data).notes

        def key(n):
            return (round(n.start * 480), round(n.duration * 480), n.pitch, n.velocity)

        outside = [key(n) for n in source if not start - 1e-6 <= n.start < end - 1e-6]
        written = [key(n) for n in out if not start - 1e-6 <= n.start < end - 1e-6]
        kept += len(outside)
        kept_same += sum(a == b for a, b in zip(outside, written, strict=False)) \
            if len(outside) == len(written) else 0
        inside = [n for n in out if start - 1e-6 <= n.start < end - 1e-6]
        inside_notes += len(inside)
        in_key.append(in_key_share(inside, 0, piece["mode"]))
        joins += result.metadata["joins"]
    limit = percentile(corpus, 0.95)
    print(f"{len(tunes)} held-out tunes (first 16 bars), 1–4 bars each written anew by "
          f"{args.model}; {failures} failed")
    print(f"notes outside the selection identical: {kept_same}/{kept} "
          f"({kept_same / max(1, kept):.1%})")
    print(f"notes inside in the tune's key: mean {statistics.fmean(in_key):.1%} per "
          f"selection, {inside_notes} notes")
    wide = sum(j > limit for j in joins)
    print(f"joins: median {statistics.median(joins):.0f} semitones, 95th percentile "
          f"{percentile(joins, 0.95):.0f}; the tunes' own bar-line intervals: median "
          f"{statistics.median(corpus):.0f}, 95th percentile {limit:.0f}; wider than that: "
          f"{wide}/{len(joins)}")
    print(f"seconds per infill: median {statistics.median(seconds):.2f}")


if __name__ == "__main__":
    main()
