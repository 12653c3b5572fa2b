"""Bach chorales from the corpus inside music21's wheel → four-voice piano rolls (Harmonize).

    .venv/bin/python tools/music/harmonize_data.py --out .cache/harmonize-data

Each four-part chorale (soprano, alto, tenor, bass) becomes a (4, T) int8 array of MIDI
pitches on a sixteenth-note grid (-1 = rest), with its key (tonic pitch class, mode) and
meter. Chorales are split train/validation/test by a fixed hash of their name
(tools/music/build_dataset.split_of), so test chorales never reach training. Transposition
to every key happens while training (tools/music/harmonize_train.py), within the voices'
ranges.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

STEPS_PER_QUARTER = 4
VOICES = ("soprano", "alto", "tenor", "bass")
MAX_STEPS = 1024


def roll_of(path: str) -> dict | None:
    """One chorale as {"name", "roll" (4, T), "tonic", "mode", "meter"}, or None."""
    from music21 import converter

    try:
        score = converter.parse(path)
    except Exception:
        return None
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    length = int(round(score.highestTime * STEPS_PER_QUARTER))
    if not 16 <= length <= MAX_STEPS:
        return None
    roll = np.full((4, length), -1, dtype=np.int8)
    for voice, part in enumerate(parts):
        for note in part.flatten().notes:
            if note.isChord:
                pitch = max(p.midi for p in note.pitches) if voice == 0 else \
                    min(p.midi for p in note.pitches)
            else:
                pitch = note.pitch.midi
            start = int(round(float(note.offset) * STEPS_PER_QUARTER))
            end = int(round(float(note.offset + note.quarterLength) * STEPS_PER_QUARTER))
            roll[voice, start:max(start + 1, end)] = pitch
    try:
        key = score.analyze("key")
        tonic, mode = key.tonic.pitchClass, key.mode
    except Exception:
        return None
    meters = score.recurse().getElementsByClass("TimeSignature")
    meter = meters[0].ratioString if meters else "4/4"
    return {"name": Path(path).stem, "roll": roll, "tonic": int(tonic), "mode": mode,
            "meter": meter}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".cache/harmonize-data"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from music21 import corpus

    from tools.music.build_dataset import split_of

    paths = [str(p) for p in corpus.getComposer("bach")]
    with ProcessPoolExecutor(args.workers) as pool:
        pieces = [p for p in pool.map(roll_of, paths, chunksize=8) if p is not None]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for split in ("train", "validation", "test"):
        chosen = [p for p in pieces if split_of(p["name"]) == split]
        lengths = np.array([p["roll"].shape[1] for p in chosen], dtype=np.int32)
        rolls = np.concatenate([p["roll"] for p in chosen], axis=1) if chosen else \
            np.zeros((4, 0), np.int8)
        np.savez_compressed(args.out / f"{split}.npz", rolls=rolls, lengths=lengths,
                            tonics=np.array([p["tonic"] for p in chosen], np.int8),
                            minor=np.array([p["mode"] == "minor" for p in chosen]))
        (args.out / f"{split}.json").write_text(json.dumps(
            [{k: p[k] for k in ("name", "tonic", "mode", "meter")} for p in chosen], indent=1))
        summary[split] = {"chorales": len(chosen), "steps": int(lengths.sum())}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
