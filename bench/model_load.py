"""Text model load time: from the safetensors cache vs the first GGUF conversion, and vs a
bare `from_pretrained` of the same cached folder, in the same run.

    .venv/bin/python bench/model_load.py [--rounds 3] [--cold]

--cold also measures the one-off GGUF → safetensors conversion (about 30 s) in a
throw-away cache folder.
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
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))
os.environ["HF_HUB_OFFLINE"] = "1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from creative_studio.core.progress import Progress
    from creative_studio.core.provenance import weights_sha256
    from creative_studio.plugins import PluginRegistry
    from plugins.text import models
    from plugins.text.generator import TextGenerator

    source = PluginRegistry.discover(entry_points=False).resolve_model("text")
    gguf = source.path
    folder = models.convert_gguf(gguf, weights_sha256(gguf))

    def studio() -> float:
        start = time.perf_counter()
        TextGenerator().load(source, "cpu", Progress())
        return time.perf_counter() - start

    def bare() -> float:
        start = time.perf_counter()
        AutoTokenizer.from_pretrained(folder)
        AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        return time.perf_counter() - start

    studio(), bare()  # warm the OS file cache for both
    times = {"bare": [], "studio": []}
    for _ in range(args.rounds):
        times["bare"].append(bare())
        times["studio"].append(studio())
    s, b = statistics.median(times["studio"]), statistics.median(times["bare"])
    print(f"GGUF {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB), cache {folder}")
    print(f"bare from_pretrained(cache)  median {b:.2f} s  {[round(t, 2) for t in times['bare']]}")
    print(f"studio load from cache       median {s:.2f} s  "
          f"{[round(t, 2) for t in times['studio']]}  (includes weights SHA-256 lookup)")
    print(f"ratio studio / bare: {s / b:.2f}x")
    if args.cold:
        os.environ["CREATIVE_STUDIO_CACHE"] = tempfile.mkdtemp(prefix="bench-cold-")
        start = time.perf_counter()
        models.convert_gguf(gguf, weights_sha256(gguf))
        cold = time.perf_counter() - start
        print(f"first-run GGUF conversion (once per machine): {cold:.1f} s = {cold / s:.0f}x "
              "a cached load")


if __name__ == "__main__":
    main()
