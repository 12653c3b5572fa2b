"""Folk melodies from the ABC books inside music21's wheel → 4-bar event windows (Interpolate).

    .venv/bin/python tools/music/melody_data.py --out .cache/melody-data    # needs abc2midi

The same tunes as the Music model (tools/music/build_dataset.py: O'Neill's 1850, Ryan's
Mammoth, Aird's Airs, miscFolk; converted with Debian's abc2midi), moved to tonic C, put on a
sixteenth-note grid as MusicVAE's melody events (plugins/music/melody_vae.py: rest, hold,
note-on per pitch), and cut into 64-step windows (4 bars of 4/4) starting at every bar.
Split train/validation/test by tune (build_dataset.split_of).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
WINDOW = 64
STRIDE = 16


def events_of(job) -> dict | None:
    """One tune → {"name", "split", "events" (int16 array)} or None."""
    from creative_studio.core.errors import StudioError
    from creative_studio.io.midi import read_notes
    from plugins.music.melody_vae import melody_events
    from plugins.music.tokens import tonic_shift
    from tools.music.build_dataset import convert_folk, split_of

    name, chunk, (tonic, mode), folder = job
    entry = convert_folk((name, chunk, (tonic, mode), folder))
    if entry is None:
        return None
    path = folder / entry["file"]
    try:
        content = read_notes(path.read_bytes(), name)
    except StudioError:
        return None
    finally:
        path.unlink(missing_ok=True)
    events = melody_events(content.notes, tonic_shift(tonic))
    if events is None or len(events) < WINDOW:
        return None
    return {"name": name, "split": split_of(name), "events": events, "mode": mode}


def windows(events: np.ndarray) -> list[np.ndarray]:
    from plugins.music.melody_vae import HOLD, REST

    out = []
    for start in range(0, len(events) - WINDOW + 1, STRIDE):
        window = events[start:start + WINDOW].copy()
        if window[0] == HOLD:  # a window starts with what sounds there, as a note-on
            continue
        if np.mean(window == REST) > 0.5:
            continue
        out.append(window)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".cache/melody-data"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    import music21

    from tools.music.build_dataset import folk_tunes

    corpus = Path(music21.__file__).parent / "corpus"
    folder = Path(tempfile.mkdtemp(prefix="melodies-"))
    jobs = [(name, chunk, key, folder) for name, chunk, key in folk_tunes(corpus)]
    with ProcessPoolExecutor(args.workers) as pool:
        tunes = [t for t in pool.map(events_of, jobs, chunksize=32) if t]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for split in ("train", "validation", "test"):
        chosen = [w for t in tunes if t["split"] == split for w in windows(t["events"])]
        array = np.stack(chosen).astype(np.int16) if chosen else np.zeros((0, WINDOW), np.int16)
        np.savez_compressed(args.out / f"{split}.npz", windows=array)
        summary[split] = {"tunes": sum(t["split"] == split for t in tunes),
                          "windows": len(chosen)}
    (args.out / "summary.json").write_text(json.dumps(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
