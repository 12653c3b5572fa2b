"""Melodies over chord progressions (issue 36): how many of the melody's notes on strong
beats are tones of the chord there, with the chords rule and without it (the same model and
seeds, the progression only written to the file).

    .venv/bin/python bench/music_chords.py [--seeds 10] [--model embedded:music-gpt2]

Progressions (a bar each unless split by ``|``), each written by ``--seeds`` seeds (3000…)
as 8 bars in the key of its first chord: the share of strong-beat notes that are chord tones
(the goal: ≥ 90 %), the share over all notes, notes in key, and the rhythm figures
(plugins/music/analysis.rhythm) — the rule must not flatten the rhythm.
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

PROGRESSIONS = (  # (meter, tonic, mode, progression)
    ("4/4", 0, "major", "C Am F G"),
    ("4/4", 7, "major", "G | D | Em | C"),
    ("3/4", 9, "minor", "Am | Dm | E7 | Am"),
    ("6/8", 2, "major", "D | G A | D | A7 D"),
    ("4/4", 5, "major", "Gm7 C7 | F | Dm | Bb C"),
    ("2/4", 4, "minor", "Em | B7"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--model", default="embedded:music-gpt2")
    args = parser.parse_args()

    import torch

    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.music import chords
    from plugins.music.analysis import bar_length, in_key_share, rhythm

    torch.set_num_threads(1)
    registry = PluginRegistry.discover(entry_points=False)
    generator = registry.get("music").load("generator")()
    generator.load(registry.resolve_model("music", args.model), "cpu", Progress())
    rows = {"with the chords rule": [], "without (chords only written)": []}
    for meter_text, tonic, mode, progression in PROGRESSIONS:
        meter = tuple(int(x) for x in meter_text.split("/"))
        placed = chords.place(chords.parse_progression(progression), 8, bar_length(meter))
        for seed in range(3000, 3000 + args.seeds):
            for name, typed in (("with the chords rule", progression),
                                ("without (chords only written)", "")):
                request = Request("music", "generate", seed=seed, model=args.model,
                                  params={"bars": 8, "time_signature": meter_text,
                                          "tonic": tonic, "mode": mode, "chords": typed})
                prepare_request(registry, request)
                result = generator.generate(request, Progress(), {})
                notes = read_notes(result.assets[0].data).notes
                strong, judged = chords.chord_tone_share(notes, placed, meter)
                every = sum(n.pitch % 12 in chords.at(placed, n.start).tones
                            for n in notes) / len(notes)
                rows[name].append({"strong": strong, "judged": judged, "all": every,
                                   "in_key": in_key_share(notes, tonic, mode),
                                   **rhythm(notes, meter)})
    count = len(PROGRESSIONS) * args.seeds
    print(f"{count} ideas of 8 bars ({len(PROGRESSIONS)} progressions × {args.seeds} seeds, "
          f"model {args.model})")
    print(f"{'':32}{'strong beats':>13}{'all notes':>11}{'in key':>8}{'top share':>11}"
          f"{'entropy':>9}")
    for name, measured in rows.items():
        strong = sum(r["strong"] * r["judged"] for r in measured) / max(
            1, sum(r["judged"] for r in measured))
        means = [statistics.fmean(r[f] for r in measured)
                 for f in ("all", "in_key", "top_share", "entropy")]
        print(f"{name:32}{strong:>13.3f}{means[0]:>11.3f}{means[1]:>8.3f}{means[2]:>11.3f}"
              f"{means[3]:>9.3f}")


if __name__ == "__main__":
    main()
