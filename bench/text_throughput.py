"""Tokens/s through the studio vs a bare transformers `generate` loop, same model, same run.

    .venv/bin/python bench/text_throughput.py [--tokens 128] [--rounds 3]

Both sides use the same weights (the embedded SmolLM2 from the cache), prompt, seed and
sampling settings, so they generate the same tokens. The studio side goes through the
whole path a GUI job takes: JobRunner queue → worker thread → TextGenerator (streamer,
stop criterion) → project file write. Rounds alternate to share the machine's noise.
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

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from creative_studio.core.jobs import Request
    from creative_studio.core.project import ProjectStore
    from creative_studio.core.provenance import weights_sha256
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from plugins.text import models


    gguf = PluginRegistry.discover(entry_points=False).resolve_model("text").path
    folder = models.convert_gguf(gguf, weights_sha256(gguf))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    # the transformers engine on the converted folder (GGUF files go to llama.cpp:
    # bench/llama_speed.py); top-k and min-p off, as in the bare loop
    params = {"max_tokens": args.tokens, "temperature": 0.8, "top_p": 0.95, "top_k": 0,
              "min_p": 0.0}

    def bare() -> tuple[int, float]:
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                               add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        torch.manual_seed(1)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=args.tokens, do_sample=True,
                                 temperature=0.8, top_p=0.95, top_k=0, repetition_penalty=1.1,
                                 pad_token_id=tokenizer.eos_token_id)
        return out.shape[1] - inputs["input_ids"].shape[1], time.perf_counter() - start

    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    runner = JobRunner(PluginRegistry.discover(), device_preference="cpu")
    warm = runner.submit(Request("text", "generate", PROMPT, dict(params), seed=1,
                                 model=str(folder)))
    runner.wait(warm)  # loads the model once, like a user's first job

    def studio() -> tuple[int, float]:
        start = time.perf_counter()
        job = runner.submit(Request("text", "generate", PROMPT, dict(params), seed=1,
                                    model=str(folder)), store=store)
        runner.wait(job)
        assert job.error == "", job.error
        return job.result.metadata["tokens"], time.perf_counter() - start

    bare()  # warm-up
    rows = {"bare": [], "studio": []}
    for _ in range(args.rounds):
        for name, fn in (("bare", bare), ("studio", studio)):
            tokens, seconds = fn()
            rows[name].append((tokens, seconds))
    runner.shutdown()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds of {args.tokens} max new tokens")
    rates = {}
    for name, values in rows.items():
        rates[name] = statistics.median(t / s for t, s in values)
        print(f"{name:<7} tokens {[t for t, _ in values]}  median {rates[name]:6.2f} tok/s")
    print(f"ratio studio / bare (tokens/s): {rates['studio'] / rates['bare']:.3f}  "
          f"(time ratio {rates['bare'] / rates['studio']:.3f}x)")


if __name__ == "__main__":
    main()
