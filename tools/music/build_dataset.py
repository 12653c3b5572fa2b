"""Build the Music model's training data from the corpus that ships inside music21's wheel.

    .venv/bin/python tools/music/build_dataset.py --out .cache/music-data [--no-chorales]

Folk tunes (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, miscFolk; public-domain tunes) are
split out of their ABC books and converted with Debian's `abc2midi` (accompaniment chords
off); Bach chorales are converted with music21. Essen folk songs are left out on purpose:
their licence is non-commercial only.

Every piece is transposed so that its tonic is C (keeping its mode: major, minor, dorian,
mixolydian), merged into one track and tokenized with miditok REMI. The model learns
"C-tonic music in a mode"; the studio reaches the requested key by transposing the output.
Pieces are split train/validation/test by piece (a fixed hash of the piece's name), so test
pieces never reach training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FOLK = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MODES = {"": "major", "maj": "major", "major": "major", "ion": "major", "ionian": "major",
         "m": "minor", "min": "minor", "minor": "minor", "aeo": "minor", "aeolian": "minor",
         "dor": "dorian", "dorian": "dorian", "mix": "mixolydian", "mixolydian": "mixolydian"}
_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b]?)\s*([A-Za-z]*)")


def parse_key(text: str) -> tuple[int, str] | None:
    """ABC K: field → (tonic pitch class, mode), or None for modes we do not model."""
    match = _KEY.match(text)
    if not match:
        return None
    letter, accidental, mode = match.groups()
    mode = MODES.get(mode.lower()[:10]) if mode.lower() in MODES else MODES.get(mode.lower()[:3])
    if mode is None:
        return None
    pc = (PC[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return pc, mode


def split_of(name: str) -> str:
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < 5 else "validation" if bucket < 10 else "train"


def folk_tunes(corpus: Path):
    for collection in FOLK:
        for book in sorted((corpus / collection).glob("*.abc")):
            text = book.read_text(encoding="latin-1")
            chunks = re.split(r"(?m)^(?=X:)", text)
            for chunk in chunks:
                if not chunk.startswith("X:"):
                    continue
                key_line = re.search(r"(?m)^K:(.*)$", chunk)
                if not key_line:
                    continue
                key = parse_key(key_line.group(1))
                if key is None:
                    continue
                number = chunk.split("\n", 1)[0][2:].strip()
                yield f"{collection}/{book.stem}/{number}", chunk, key


def convert_folk(job) -> dict | None:
    name, chunk, (pc, mode), out_dir = job
    body = re.sub(r"(?m)^(K:.*)$", r"\1\n%%MIDI gchordoff\n%%MIDI drumoff", chunk, count=1)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.abc"
        src.write_text(body, encoding="latin-1")
        dst = Path(tmp) / "t.mid"
        subprocess.run(["abc2midi", str(src), "-o", str(dst), "-silent"], capture_output=True,
                       timeout=30)
        if not dst.exists() or dst.stat().st_size < 40:
            return None
        target = out_dir / (hashlib.sha1(name.encode()).hexdigest()[:16] + ".mid")
        shutil.copy(dst, target)
    return {"name": name, "file": target.name, "style": "folk", "tonic": pc, "mode": mode}


def convert_chorale(job) -> dict | None:
    path, out_dir = job
    from music21 import converter

    try:
        score = converter.parse(str(path))
        key = score.analyze("key")
    except Exception:
        return None
    mode = key.mode if key.mode in ("major", "minor") else None
    if mode is None:
        return None
    name = f"bach/{path.stem}"
    target = out_dir / (hashlib.sha1(name.encode()).hexdigest()[:16] + ".mid")
    try:
        score.write("midi", fp=str(target))
    except Exception:
        return None
    return {"name": name, "file": target.name, "style": "chorale",
            "tonic": key.tonic.pitchClass, "mode": mode}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".cache/music-data"))
    parser.add_argument("--no-chorales", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import music21

    corpus = Path(music21.__file__).parent / "corpus"
    midi_dir = args.out / "midi"
    midi_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(name, chunk, key, midi_dir) for name, chunk, key in folk_tunes(corpus)]
    print(f"{len(jobs)} folk tunes with a usable key", flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        entries = [e for e in pool.map(convert_folk, jobs, chunksize=64) if e]
        print(f"{len(entries)} folk tunes converted", flush=True)
        if not args.no_chorales:
            chorales = sorted((corpus / "bach").glob("bwv*.mxl"))
            done = [e for e in pool.map(convert_chorale, [(p, midi_dir) for p in chorales],
                                        chunksize=8) if e]
            print(f"{len(done)} chorales converted", flush=True)
            entries += done
    for entry in entries:
        entry["split"] = split_of(entry["name"])
    (args.out / "manifest.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    tokenize(args.out, entries)


def tokenize(out: Path, entries: list[dict]) -> None:
    from plugins.music.tokens import encode_piece, make_tokenizer

    tokenizer = make_tokenizer()
    tokenizer.save(out / "tokenizer.json")
    from symusic import Score

    arrays: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    skipped = 0
    for entry in entries:
        try:
            score = Score(str(out / "midi" / entry["file"]))
            ids = encode_piece(tokenizer, score, entry["style"], entry["mode"],
                               tonic=entry["tonic"])
        except Exception:
            skipped += 1
            continue
        if len(ids) < 16:
            skipped += 1
            continue
        arrays[entry["split"]].append(np.asarray(ids, dtype=np.int16))
    for split, pieces in arrays.items():
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        np.savez(out / f"{split}.npz", tokens=np.concatenate(pieces), lengths=lengths)
        print(f"{split}: {len(pieces)} pieces, {lengths.sum():,} tokens", flush=True)
    print(f"skipped {skipped}")


if __name__ == "__main__":
    main()
