"""Story notes: does a fact given only in a note reach the text? With the note vs without.

    .venv/bin/python bench/story_notes.py [--seeds 10] [--gguf NAME=FILE ...]

The fact: "Mara has amber eyes" (a colour a model rarely picks by chance), given only in a
story note (keyword "Mara"), never in the document or the instruction. Two ways a writer
meets it, each run with and without the note, same seeds, the Text panel's defaults:

- **continue**: the document ends "…and for the first time he saw that her eyes were";
- **reply**: "Describe Mara's face in two sentences." (a chat reply).

Counted: continuations that mention the character (her eyes, or Mara) and, of those, the
ones that give the note's colour. Printed per model: recall with the note / without, the
issue's goal being ≥ 80 % with it. The embedded model alone without ``--gguf``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOTE = {"notes": [{"title": "Mara", "text": "Mara has amber eyes and a thin scar on her chin.",
                   "kind": "character"}]}
DOCUMENT = ("The inn was nearly empty when Mara came in from the rain. She took the table by "
            "the fire and pushed back her hood, and the innkeeper, bringing her a cup of "
            "tea, looked at her face for the first time and saw that her eyes were")
TASKS = [("continue", "", {"context": DOCUMENT, "max_tokens": 30}),
         ("generate", "Describe Mara's face in two sentences.", {"max_tokens": 80})]


def run_model(name: str, ref: str, seeds: int) -> dict:
    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.text.generator import TextGenerator
    from plugins.text.llama_engine import LlamaEngine

    registry = PluginRegistry.discover(entry_points=False)
    generator = TextGenerator()
    generator.engine = LlamaEngine(registry.resolve_model("text", ref))
    out = {}
    for task, prompt, params in TASKS:
        for noted in (True, False):
            hits = counted = 0
            for seed in range(1, seeds + 1):
                story = {"story": json.dumps(NOTE)} if noted else {}
                request = Request("text", task, prompt, params={**params, **story}, seed=seed)
                prepare_request(registry, request)
                text = generator.generate(request, Progress(), None).assets[0].data.decode()
                if task == "generate" and not re.search(r"\b(?:eyes?|Mara)\b", text, re.I):
                    continue  # the reply does not describe her: not counted
                counted += 1
                hits += "amber" in text.lower()
            out[f"{task} {'with' if noted else 'without'} the note"] = (hits, counted)
            print(f"  {name:>18} {task:<8} {'with' if noted else 'without':<7} "
                  f"{hits}/{counted}", flush=True)
    generator.unload()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--gguf", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    models = [("SmolLM2-135M", "embedded:smollm2-135m-instruct")] + [tuple(item.split("=", 1)) for item in args.gguf]
    results = {name: run_model(name, ref, args.seeds) for name, ref in models}
    print("\nthe note's fact (amber eyes) in the text that describes her:")
    for name, rows in results.items():
        for what, (hits, counted) in rows.items():
            share = f"{100 * hits / counted:.0f} %" if counted else "-"
            print(f"  {name:<18} {what:<28} {hits:>2}/{counted:<2} {share:>5}")
        hits = sum(h for w, (h, _) in rows.items() if "with the" in w)
        total = sum(c for w, (_, c) in rows.items() if "with the" in w)
        print(f"  {name:<18} {'all, with the note':<28} {hits:>2}/{total:<2} "
              f"{100 * hits / max(1, total):>4.0f} % (goal ≥ 80 %)")


if __name__ == "__main__":
    main()
