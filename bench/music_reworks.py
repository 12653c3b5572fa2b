"""Figures of Harmonize and Interpolate on held-out music (test chorales and melodies never
trained on), with the shipped weights, in one run.

    .venv/bin/python tools/music/harmonize_data.py --out .cache/harmonize-data   # once
    .venv/bin/python tools/music/melody_data.py --out .cache/melody-data         # once
    .venv/bin/python bench/music_reworks.py [--chorales 17] [--melodies 200]

Harmonize, on each test chorale's first 8 bars: the model's NLL of the real alto, tenor and
bass given the soprano (nats per cell, one shot); then the voices it draws under the
soprano (seed 0): share of notes in the chorale's key, parallel fifths and octaves per 100
voice-pair moves beside Bach's own rate on the same bars, cells inside the voice ranges,
cells above the soprano, seconds for 8 bars. Interpolate, on test melodies (4-bar
windows): note-ons reconstructed right from the mean latent; 5 steps between pairs: is each
step closer (note overlap) to its neighbours than to the far end, share in key, seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def short_share(rolls: np.ndarray) -> tuple[int, int, int]:
    """(lower-voice notes shorter than an eighth, notes off the eighth grid — starting on or
    lasting an odd number of sixteenths: 0.25, 0.75, 1.25… beats —, all lower-voice notes)
    of a (4, T) roll."""
    from plugins.music.reworks import _notes_of_row

    notes = [n for voice in (1, 2, 3) for n in _notes_of_row(rolls[voice].astype(np.int16),
                                                               voice)]
    odd = sum(round(n.start * 4) % 2 or round(n.duration * 4) % 2 for n in notes)
    return sum(n.duration < 0.5 - 1e-9 for n in notes), odd, len(notes)


def harmonize_figures(data: Path, count: int, parallel_penalty: float = 8.0,
                      out_of_key: float = 2.0, pairs: bool = True) -> None:
    import torch

    from plugins.music.analysis import detect_key
    from plugins.music.coconet import masked_nll, to_index
    from plugins.music.grammar import SCALES
    from plugins.music.harmonize import harmonize, in_ranges, parallels
    from plugins.music.reworks import _notes_of_row, load

    model = load(ROOT / "resources" / "models" / "music-harmonize", "harmonize", "cpu")
    arrays = np.load(data / "test.npz")
    info = json.loads((data / "test.json").read_text())
    rolls, lengths = arrays["rolls"], arrays["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nll, in_key, ours, bachs, ranges, above, seconds = [], [], [], [], [], [], []
    short_ours, short_bach = [], []
    for index in range(min(count, len(lengths))):
        real = rolls[:, starts[index]:starts[index] + min(128, lengths[index])].astype(np.int64)
        hidden = torch.zeros((1, 4, real.shape[1]), dtype=torch.long)
        hidden[:, 1:] = 1
        with torch.inference_mode():
            cells = to_index(torch.from_numpy(real))[None]
            nll.append(float(masked_nll(model(cells, hidden), cells, hidden)))
        start = time.perf_counter()
        bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        # as the panel does: the key found in the melody weighs against other notes
        found = detect_key(_notes_of_row(real[0].astype(np.int16), 0))
        key = {(found[0] + s) % 12 for s in SCALES[found[1]]}
        torch.set_num_threads(1)  # the studio's thread policy gives one beside a busy program
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            drawn = harmonize(model, real[0].astype(np.int16), iterations=32, seed=0,
                              key=key, parallel_penalty=parallel_penalty,
                              out_of_key=out_of_key, pairs=pairs)
        seconds.append((time.perf_counter() - start) * 128 / real.shape[1])
        tonic = info[index]["tonic"]
        scale = {(tonic + s) % 12 for s in SCALES.get(info[index]["mode"], SCALES["major"])}
        lower = drawn[1:][drawn[1:] >= 0]
        in_key.append(float(np.isin(lower % 12, list(scale)).mean()) if lower.size else 1.0)
        for source, out in ((drawn, ours), (real, bachs)):
            found, moves = parallels(source)
            out.append((found, moves))
        ranges.append(in_ranges(drawn))
        short_ours.append(short_share(drawn))
        short_bach.append(short_share(real))
        soprano = drawn[0]
        above.append(int(sum(((drawn[v] > soprano) & (soprano >= 0)).sum() for v in (1, 2))))
    rate = lambda pairs: 100 * sum(f for f, _ in pairs) / max(1, sum(m for _, m in pairs))  # noqa: E731
    print(f"Harmonize, {len(nll)} test chorales (first 8 bars; parallel penalty "
          f"{parallel_penalty:g}, out of key {out_of_key:g} nats):")
    print(f"  NLL of A, T, B given S: {statistics.mean(nll):.3f} nats per cell "
          f"({statistics.mean(nll) / np.log(2):.3f} bits)")
    print(f"  lower-voice notes in the chorale's key: {statistics.mean(in_key) * 100:.1f}% "
          "(target ≥ 95%)")
    print(f"  parallel fifths/octaves per 100 voice-pair moves: ours {rate(ours):.2f}, Bach's "
          f"{rate(bachs):.2f} on the same bars (target ≤ 2× Bach's)")
    print(f"  cells inside the voice ranges: {statistics.mean(ranges) * 100:.1f}% (≥ 98%); "
          f"alto/tenor cells above the soprano: {sum(above)}")
    share = lambda rows, i: 100 * sum(r[i] for r in rows) / max(1, sum(r[2] for r in rows))  # noqa: E731
    print(f"  lower-voice notes shorter than an eighth: ours {share(short_ours, 0):.1f}% "
          f"({'eighth pairs' if pairs else 'sixteenths'}), Bach's {share(short_bach, 0):.1f}% "
          "on the same bars (target ≤ Bach's + 5 points)")
    print(f"  lower-voice notes off the eighth grid (0.25, 0.75, 1.25… beats): ours "
          f"{share(short_ours, 1):.1f}%, Bach's {share(short_bach, 1):.1f}%")
    print(f"  8 bars: median {statistics.median(seconds):.2f} s (target ≤ 5 s)")


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of sixteenths where two event rows sound the same pitch (or both rest)."""
    from plugins.music.melody_vae import HOLD

    def sounding(row):
        out, current = [], 0
        for event in row:
            current = current if event == HOLD else int(event)
            out.append(current)
        return np.array(out)

    return float((sounding(a) == sounding(b)).mean())


def interpolate_figures(data: Path, count: int, folder: Path) -> None:
    import torch

    from plugins.music.grammar import SCALES
    from plugins.music.melody_vae import slerp
    from plugins.music.reworks import OUT_OF_KEY, load, steps_key

    config = json.loads((folder / "config.json").read_text())
    model = load(folder, "vae", "cpu")  # as the studio loads it (either architecture)
    torch.set_num_threads(1)  # the studio's thread policy gives one beside a busy program
    windows = np.load(data / "test.npz")["windows"][:count].astype(np.int64)
    with torch.inference_mode():
        events = torch.from_numpy(windows)
        mu, _ = model.encode(events)
        decoded = model.decode(mu, events.shape[1])
    onsets = events >= 2
    print(f"Interpolate, {len(windows)} test melodies (4-bar windows), "
          f"{config.get('arch', 'lstm')} VAE at step {config.get('step')}:")
    print(f"  note-ons reconstructed right: "
          f"{float((decoded == events)[onsets].float().mean()) * 100:.1f}% (target ≥ 90%); "
          f"all events {float((decoded == events).float().mean()) * 100:.1f}%")
    for weight, what in ((OUT_OF_KEY, f"the studio's key weighing ({OUT_OF_KEY:g} nats off "
                                      "notes outside the first melody's key)"),
                         (0.0, "no weighing (the model alone)")):
        closer, in_key, seconds = [], [], []
        rng = np.random.default_rng(0)
        for _ in range(20):
            a, b = rng.choice(len(windows), 2, replace=False)
            start = time.perf_counter()
            # the windows are already in C (moved by their tune's key, as the studio moves
            # each melody by the key it finds): the major scale and a's own notes are free
            bias = steps_key(windows[a], "major", weight)
            with torch.inference_mode():
                za, zb = mu[a], mu[b]
                steps = [model.decode(slerp(za, zb, t)[None], 64, bias=bias)[0].numpy()
                         for t in np.linspace(0, 1, 7)[1:-1]]
            seconds.append(time.perf_counter() - start)
            path = [windows[a], *steps, windows[b]]
            for i in range(1, len(path) - 1):
                near = max(overlap(path[i], path[i - 1]), overlap(path[i], path[i + 1]))
                far = min(overlap(path[i], path[0]), overlap(path[i], path[-1]))
                closer.append(near >= far)
            notes = np.concatenate([s[s >= 2] for s in steps]) - 2 + 36
            in_key.append(float(np.isin(notes % 12, SCALES["major"] + (10,)).mean())
                          if notes.size else 1.0)
        print(f"  with {what}:")
        print(f"    each step closer to a neighbour than to the far end: "
              f"{np.mean(closer) * 100:.0f}% of steps")
        print(f"    step notes in C (the melodies' tonic; major or mixolydian scale): "
              f"{statistics.mean(in_key) * 100:.1f}% (target ≥ 95%)")
        print(f"    5 steps of 4 bars: median {statistics.median(seconds):.2f} s "
              "(target ≤ 2 s)")



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chorales", type=int, default=17)
    parser.add_argument("--melodies", type=int, default=200)
    parser.add_argument("--harmonize-data", type=Path,
                        default=ROOT / ".cache" / "harmonize-data")
    parser.add_argument("--melody-data", type=Path, default=ROOT / ".cache" / "melody-data")
    parser.add_argument("--vae", type=Path, default=ROOT / "resources" / "models" / "music-vae",
                        help="the Interpolate model folder to measure (default: the shipped)")
    parser.add_argument("--parallel-penalty", type=float, default=8.0,
                        help="nats off a note that makes parallel fifths/octaves (0: none)")
    parser.add_argument("--out-of-key", type=float, default=2.0,
                        help="nats off a note outside the melody's key (0: none)")
    parser.add_argument("--sixteenths", action="store_true",
                        help="lower voices drawn per sixteenth (before issue 36), not in pairs")
    args = parser.parse_args()
    if args.chorales:
        harmonize_figures(args.harmonize_data, args.chorales, args.parallel_penalty,
                          args.out_of_key, pairs=not args.sixteenths)
    if args.melodies:
        interpolate_figures(args.melody_data, args.melodies, args.vae)


if __name__ == "__main__":
    main()
