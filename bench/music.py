"""Music figures (issue 4): test loss, key, continuation, validity, density, speed.

    .venv/bin/python bench/music.py [--runs 100] [--pieces 60] [--data .cache/music-data]

- Test loss (nats/token) of the shipped model on the held-out test pieces (needs the dataset:
  tools/music/README.md builds it in ~1.5 min), vs the pilot's 1.79.
- New ideas, ``--runs`` fixed seeds cycling over modes, meters and styles (8 bars, temperature
  1.0, top-p 0.95, no scale mask): share of notes in the requested key, notes per bar, pitch
  range, and how many outputs were empty or invalid (unreadable MIDI, wrong meter, wrong
  number of bars).
- Continuation of test pieces: the first 4 bars kept, 8 bars added, key found from the kept
  bars; share of new notes in the piece's own key (from the dataset), key-finding accuracy.
- Speed: 16 bars of 4/4 folk through the studio (JobRunner → worker → generator → project
  write) vs the same decoder in a bare loop, and vs transformers' ``generate`` for the same
  number of tokens (no grammar), all in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))

MODEL = "embedded:music-gpt2"


def prepared(request):
    """Declared parameters typed and completed, as the runner hands a request over."""
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request

    prepare_request(PluginRegistry.discover(entry_points=False), request)
    return request


def model_source():
    from creative_studio.plugins import PluginRegistry

    return PluginRegistry.discover(entry_points=False).resolve_model("music", MODEL)
METERS = ("6/8", "4/4", "3/4", "2/4", "2/2", "9/8")
MODE_CYCLE = ("major", "minor", "dorian", "mixolydian")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"median {statistics.median(ordered):.1f} (5–95%: {pick(0.05):.1f}–{pick(0.95):.1f})"


def test_loss(data: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from creative_studio.core import paths
    from tools.music.train import evaluate, load_split

    if not (data / "test.npz").is_file():
        print(f"test loss: skipped ({data}/test.npz missing: see tools/music/README.md)")
        return
    model = AutoModelForCausalLM.from_pretrained(paths.resources_dir() / "models" /
                                                 "music-gpt2")
    tokens, _, _ = load_split(data, "test")
    with torch.inference_mode():
        loss = evaluate(model, tokens, 10**6)
    print(f"test loss: {loss:.3f} nats/token over all {len(tokens):,} test tokens "
          f"(pilot 1.79; target ≤ 1.3)")


def data_density(data: Path) -> dict:
    """Notes per bar and pitch range of the test pieces (tonic moved to C, as generated)."""
    import numpy as np
    from miditok import REMI

    tokenizer = REMI(params=data / "tokenizer.json")
    names = {i: k for k, i in tokenizer.vocab.items()}
    arrays = np.load(data / "test.npz")
    per_bar, pitches, count, style = [], [], 0, ""
    for token in arrays["tokens"]:
        name = names[int(token)]
        if name.startswith("Style_"):
            style = name[6:]
        elif name == "Bar_None":
            if count:
                per_bar.append((style, count))
            count = 0
        elif name.startswith("Pitch_"):
            count += 1
            pitches.append(int(name[6:]))
    return {"per_bar": per_bar, "pitches": pitches}


def new_ideas(generator, runs: int) -> dict:
    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes
    from plugins.music.analysis import bar_length, in_key_share
    from plugins.music.tokens import tonic_shift

    shares: dict[str, list[float]] = {m: [] for m in MODE_CYCLE}
    per_bar: dict[str, list[float]] = {"folk": [], "chorale": []}
    low, high, invalid, empty = 128, 0, [], 0
    for run in range(runs):
        mode = MODE_CYCLE[run % 4]
        style = "chorale" if run % 5 == 4 else "folk"
        meter = "4/4" if style == "chorale" else METERS[run % len(METERS)]
        tonic = (run * 5) % 12
        request = Request("music", "generate", seed=1000 + run, model=MODEL, params={
            "bars": 8, "time_signature": meter, "mode": mode, "tonic": tonic, "style": style})
        try:
            result = generator.generate(prepared(request), Progress(), {})
            content = read_notes(result.assets[0].data)
        except Exception as exc:  # counted, never hidden
            invalid.append(f"seed {1000 + run}: {exc}")
            continue
        signature = tuple(int(x) for x in meter.split("/"))
        bars_used = max(n.start for n in content.notes) // bar_length(signature) + 1
        if content.time_signature != signature or bars_used > 8:
            invalid.append(f"seed {1000 + run}: meter {content.time_signature}, "
                           f"{bars_used:.0f} bars")
        if not content.notes:
            empty += 1
        shares[mode].append(in_key_share(content.notes, tonic, mode))
        per_bar[style].append(result.metadata["notes_per_bar"])
        shift = tonic_shift(tonic)  # back to the model's tonic C, as the data are
        low = min(low, min(n.pitch + shift for n in content.notes))
        high = max(high, max(n.pitch + shift for n in content.notes))
    return {"shares": shares, "per_bar": per_bar, "range": (low, high), "invalid": invalid,
            "empty": empty}


def continuations(generator, data: Path, pieces: int) -> dict:
    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.io.midi import read_notes
    from plugins.music.analysis import detect_key, in_key_share

    manifest = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    test = [e for e in manifest if e["split"] == "test"][:pieces]
    shares, found, skipped = [], 0, 0
    for index, entry in enumerate(test):
        midi = (data / "midi" / entry["file"]).read_bytes()
        try:
            content = read_notes(midi)
            request = Request("music", "continue", seed=index, parents=["p"], model=MODEL,
                              params={"keep_bars": 4, "bars": 8, "style": entry["style"],
                                      "tonic": "auto", "mode": "auto"})
            result = generator.generate(prepared(request), Progress(),
                                        {"p": [Asset("midi", "audio/midi", midi, "p.mid")]})
        except Exception:
            skipped += 1  # meters the model does not write (e.g. 3/2), empty first bars
            continue
        prompt = [n for n in content.notes if n.start < 4 * 4 * content.time_signature[0]
                  / content.time_signature[1]]
        found += detect_key(prompt) == (entry["tonic"], entry["mode"])
        new = read_notes(result.assets[0].data).notes[result.metadata["prompt_notes"]:]
        mode = entry["mode"] if entry["mode"] in ("major", "minor", "dorian", "mixolydian") \
            else "major"
        shares.append(in_key_share(new, entry["tonic"], mode))
    return {"shares": shares, "found": found, "skipped": skipped}


def speed(rounds: int) -> None:
    import torch

    from creative_studio.core.jobs import JobState, Request
    from creative_studio.core.progress import Progress
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from plugins.music.generator import Grammar, MusicGenerator, sample

    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
    bare = MusicGenerator()
    bare.load(model_source(), "cpu", Progress())
    params = {"bars": 16, "time_signature": "4/4", "mode": "major", "style": "folk"}
    studio_s, bare_s, hf_s, tokens = [], [], [], []
    for seed in range(rounds + 1):
        job = runner.submit(Request("music", "generate", params=params, seed=seed,
                                    model=MODEL), store=store)
        start = time.perf_counter()
        runner.wait(job)
        elapsed = time.perf_counter() - start
        assert job.state is JobState.DONE, job.error
        count = job.result.metadata["tokens"]
        grammar = Grammar(bare.vocab, "4/4", 16, "major")
        prompt = [bare.vocab.bos, bare.vocab.vocab["Style_folk"], bare.vocab.vocab["Mode_major"]]
        grammar.start([prompt])
        torch.set_num_threads(1)  # the studio's thread policy gives one beside a busy program
        start = time.perf_counter()
        sample(bare.model, prompt, grammar, 1.0, 0.95, seed, Progress())
        bare_elapsed = time.perf_counter() - start
        start = time.perf_counter()
        with torch.inference_mode():
            bare.model.generate(torch.tensor([prompt]), do_sample=True, top_p=0.95, top_k=0,
                                max_new_tokens=count, min_new_tokens=count, pad_token_id=0)
        hf_elapsed = time.perf_counter() - start
        if seed:  # the first round warms up
            studio_s.append(elapsed)
            bare_s.append(bare_elapsed)
            hf_s.append(hf_elapsed)
            tokens.append(count)
    s, b, h = (statistics.median(x) for x in (studio_s, bare_s, hf_s))
    print(f"16 bars of 4/4 folk ({statistics.median(tokens):.0f} tokens): studio {s:.2f} s "
          f"(target ≤ 2 s); same decoder in a bare loop {b:.2f} s → ratio {s / b:.3f} "
          f"(target ≤ 1.05); transformers generate, same token count {h:.2f} s "
          f"({h / s:.2f}× the studio's time)")
    runner.shutdown()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--pieces", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "music-data")
    args = parser.parse_args()
    from creative_studio.core.progress import Progress
    from plugins.music.generator import MusicGenerator

    test_loss(args.data)
    generator = MusicGenerator()
    generator.load(model_source(), "cpu", Progress())
    ideas = new_ideas(generator, args.runs)
    all_shares = [x for v in ideas["shares"].values() for x in v]
    print(f"\nnew ideas, {args.runs} runs (8 bars, seeds 1000+): in key "
          f"{statistics.mean(all_shares) * 100:.1f}% of notes overall (target ≥ 90%); "
          + ", ".join(f"{m} {statistics.mean(v) * 100:.1f}%" for m, v in
                      ideas["shares"].items() if v))
    print(f"  empty outputs {ideas['empty']}, invalid {len(ideas['invalid'])} "
          f"(target 0){': ' + '; '.join(ideas['invalid'][:5]) if ideas['invalid'] else ''}")
    low, high = ideas["range"]
    print(f"  pitch range, moved to tonic C: {low}–{high}")
    if (args.data / "test.npz").is_file():
        density = data_density(args.data)
        for style in ("folk", "chorale"):
            data_values = [c for s, c in density["per_bar"] if s == style]
            if ideas["per_bar"][style] and data_values:
                print(f"  notes per bar, {style}: generated "
                      f"{percentiles(ideas['per_bar'][style])}; test data "
                      f"{percentiles(data_values)}")
        print(f"  test data pitch range (tonic C): {min(density['pitches'])}–"
              f"{max(density['pitches'])}")
        cont = continuations(generator, args.data, args.pieces)
        if cont["shares"]:
            good = sum(s >= 0.85 for s in cont["shares"])
            print(f"\ncontinuations of {len(cont['shares'])} test pieces (4 bars kept, 8 "
                  f"added; {cont['skipped']} skipped): new notes in the piece's key "
                  f"{statistics.mean(cont['shares']) * 100:.1f}% (target ≥ 85%); pieces ≥ 85%: "
                  f"{good}/{len(cont['shares'])}; key found from 4 bars: "
                  f"{cont['found']}/{len(cont['shares'])}")
    print()
    speed(args.rounds)


if __name__ == "__main__":
    main()
