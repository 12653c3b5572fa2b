"""Model discovery: a folder of 200 GGUF files listed by their headers (issue 39: ≤ 2 s).

    .venv/bin/python bench/model_discovery.py [--files 200] [--vocab 32000]

Each file has a real header — general.* keys, a tokenizer vocabulary of ``--vocab`` strings
(as real models do, after the general keys) and a tensor — written with the gguf package.
Measured: ``core.discover.scan`` over the folder (names, quantization, architecture, context,
the quick hash for copies), against the reference in the same run: ``gguf.GGUFReader`` on
the first 10 files (what reading a header with the gguf package costs; it parses every
vocabulary string, ~0.5 s a file here, so it is timed on 10 and compared per file). Files
are in the page cache for both (a first pass warms it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make(folder: Path, count: int, vocab: int) -> None:
    import gguf

    tokens = [f"tok{i}" for i in range(vocab)]
    for index in range(count):
        writer = gguf.GGUFWriter(str(folder / f"model-{index:03d}.Q4_K_M.gguf"), "llama")
        writer.add_name(f"Model {index}")
        writer.add_file_type(15)
        writer.add_context_length(4096)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_tensor("t", np.full((16, 16), index, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import gguf

    from creative_studio.core import discover

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        make(folder, args.files, args.vocab)
        print(f"{args.files} GGUFs, vocabulary {args.vocab:,}: made in "
              f"{time.perf_counter() - started:.1f} s, "
              f"{sum(p.stat().st_size for p in folder.iterdir()) / 2**20:.0f} MiB")
        studio, reference = [], []
        for _ in range(args.rounds + 1):
            t0 = time.perf_counter()
            found = discover.scan([("folder", folder)])
            studio.append(time.perf_counter() - t0)
        sample = sorted(folder.iterdir())[:10]
        for _ in range(2):
            t0 = time.perf_counter()
            for path in sample:
                reader = gguf.GGUFReader(str(path))
                str(reader.fields["general.name"].contents())
            reference.append((time.perf_counter() - t0) / len(sample) * args.files)
        studio, reference = studio[1:], reference[1:]  # the first pass warms the cache
        listed = [m for m in found if not m.error]
        assert len(listed) == args.files, len(listed)
        s, r = statistics.median(studio), statistics.median(reference)
        print(f"studio scan:        {s:.3f} s ({s / args.files * 1000:.2f} ms a file), "
              f"{len(listed)} listed, e.g. {listed[0].label}")
        print(f"gguf.GGUFReader:    {r / args.files * 1000:.2f} ms a file "
              f"(≈ {r:.1f} s for {args.files}, from {len(sample)} files)")
        print(f"ratio reference / studio: {r / s:.1f}x   goal: {args.files} files ≤ 2 s")


if __name__ == "__main__":
    main()
