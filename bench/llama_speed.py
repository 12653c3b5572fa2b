"""Text on llama.cpp: the studio vs a bare llama-cpp-python loop, same GGUF, threads, prompt.

    .venv/bin/python bench/llama_speed.py [--runs 5] [--tokens 128] [--gguf FILE] [--no-busy]

Each run starts fresh processes, alternating the two sides:

- **bare**: ``Llama(gguf, n_ctx=8192, n_threads=T)``, the prompt rendered by the GGUF's
  chat template, ``llm.generate`` greedy for at most N tokens (timed from the prompt's
  evaluation to the last token), CPU time of the process over the same span;
- **studio**: a Text job through ``JobRunner(isolate=True)`` (the window's and the CLI's
  path: worker thread → model process → LlamaEngine), after a first job that loads the
  model; timed from submit to the job's end in the studio's process, CPU time of the model
  process over the same span, its RSS afterwards.

Rows: 1 and 2 threads, on an idle machine and beside one busy process (a Python loop), unless
``--no-busy``. Printed: medians of tokens/s and CPU-s per token, the ratios studio/bare
(target tokens/s >= 0.95, CPU-s/token bare/studio >= 0.95), the model process's RSS against
the budget GGUF size + KV cache + 150 MB, and a second Continue on a 2,000+-token document
(time to first token, then again with two more words).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."

BARE = textwrap.dedent("""
    import json, resource, sys, time
    from llama_cpp import Llama, llama_chat_format as chat
    path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    llm = Llama(path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    m = llm._model
    if template:
        fmt = chat.Jinja2ChatFormatter(template, m.token_get_text(llm.token_eos()),
                                       m.token_get_text(llm.token_bos()))
        out = fmt(messages=[{"role": "user", "content": sys.argv[4]}])
        ids = llm.tokenize(out.prompt.encode(), add_bos=not out.added_special, special=True)
    else:
        out = chat.format_gemma(messages=[{"role": "user", "content": sys.argv[4]}])
        ids = llm.tokenize(out.prompt.encode(), add_bos=True, special=True)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = 0
    for token in llm.generate(ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        if llm.token_eos() == token or n >= tokens:
            break
        n += 1
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"tokens": n, "seconds": wall, "cpu": cpu}))
""")

STUDIO = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[5])
    from creative_studio.core.jobs import Request
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    ref, tokens, prompt = sys.argv[1], int(sys.argv[3]), sys.argv[4]
    runner = JobRunner(PluginRegistry.discover(entry_points=False), isolate=True,
                       device_preference="cpu")
    params = {"max_tokens": tokens, "temperature": 0.0, "top_k": 0, "top_p": 1.0,
              "min_p": 0.0, "repetition_penalty": 1.0}
    warm = runner.submit(Request("text", "generate", "Hi.", dict(params, max_tokens=2),
                                 model=ref, seed=1))
    runner.wait(warm)
    assert warm.state.value == "done", warm.error
    pid = runner._workers["cpu"].process.proc.pid
    def cpu_of(pid):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")
    def rss_of(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    cpu0, t0 = cpu_of(pid), time.perf_counter()
    job = runner.submit(Request("text", "generate", prompt, params, model=ref, seed=1))
    runner.wait(job)
    wall = time.perf_counter() - t0
    cpu = cpu_of(pid) - cpu0
    assert job.state.value == "done", job.error
    meta = job.result.metadata
    out = {"tokens": meta["tokens"], "seconds": wall, "cpu": cpu, "rss": rss_of(pid),
           "threads": meta.get("threads"), "engine": meta.get("engine")}
    if len(sys.argv) > 6:  # the long-document Continue twice
        doc = " ".join(f"Day {i}: the river ran past the old mill, and the children counted "
                       "the boats until the bell rang." for i in range(110))
        cont = dict(params, max_tokens=8)
        firsts = []
        for text in (doc, doc + " And then"):
            j = runner.submit(Request("text", "continue", "", dict(cont, context=text),
                                      model=ref, seed=1))
            runner.wait(j)
            firsts.append((j.result.metadata["first_token_s"], j.result.metadata["prompt_tokens"],
                           j.result.metadata["cached_tokens"]))
        out["continue"] = firsts
        stops = []
        for seed in range(3):  # Stop on the 10th token → the job finished, in this process
            marks = {}
            def listener(event, marks=marks):
                if event.kind.value == "progress" and event.preview and "t" not in marks \
                        and len(str(event.preview).split()) >= 8:
                    marks["t"] = time.perf_counter()
                    runner.cancel(event.job.id)
            runner.listener = listener
            j = runner.submit(Request("text", "generate", prompt, dict(params, max_tokens=400),
                                      model=ref, seed=seed))
            runner.wait(j)
            stops.append(time.perf_counter() - marks["t"])
            runner.listener = None
        out["stops"] = stops
    print(json.dumps(out))
""")


def engine_alone(ref: str, threads: int, tokens: int, rounds: int = 8) -> tuple[float, float]:
    """Median tokens/s of the studio's LlamaEngine and of a bare ``llm.generate`` loop on
    the same loaded model, alternated in this process (no process-to-process noise)."""
    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.text.llama_engine import LlamaEngine

    registry = PluginRegistry.discover(entry_points=False)
    engine = LlamaEngine(registry.resolve_model("text", ref), threads=threads)
    request = Request("text", "generate", PROMPT, {
        "max_tokens": tokens, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
        "repetition_penalty": 1.0}, seed=1, model=ref)
    prepare_request(registry, request)
    llm, ids = engine.llm, engine.prompt(request)[0]
    studio, bare = [], []
    for _ in range(rounds):
        llm.reset()
        engine._whole = 0
        t0 = time.perf_counter()
        result = engine.generate(request, Progress(lambda *_: None))
        studio.append(result.metadata["tokens"] / (time.perf_counter() - t0))
        llm.reset()
        t0, n = time.perf_counter(), 0
        for token in llm.generate(ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0,
                                  repeat_penalty=1.0):
            if token == llm.token_eos() or n >= tokens:
                break
            n += 1
        bare.append(n / (time.perf_counter() - t0))
    engine.close()
    return statistics.median(studio), statistics.median(bare)


def run_side(code: str, args: list[str], home: str) -> dict:
    env = dict(os.environ, CREATIVE_STUDIO_HOME=home, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--gguf", help="another GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--no-busy", action="store_true")
    parser.add_argument("--threads", default="1,2", help="thread counts of the rows")
    parser.add_argument("--busy-only", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from creative_studio.plugins import PluginRegistry

    if args.gguf:
        path, ref = Path(args.gguf).resolve(), str(Path(args.gguf).resolve())
    else:
        source = PluginRegistry.discover(entry_points=False).resolve_model("text")
        path, ref = source.path, source.ref
    loads = [False] if args.no_busy else [True] if args.busy_only else [False, True]
    rows = [(int(t), busy) for busy in loads for t in args.threads.split(",")]
    print(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB), {args.tokens} greedy tokens, "
          f"{args.runs} runs of fresh processes per side and row\n")
    print(f"{'row':<18}{'bare tok/s':>11}{'studio':>9}{'ratio':>7}"
          f"{'bare CPU-s/tok':>16}{'studio':>9}{'ratio':>7}")
    rss = []
    for threads, busy in rows:
        home = tempfile.mkdtemp(prefix="bench-home-")
        Path(home, "config").mkdir(parents=True, exist_ok=True)
        Path(home, "config", "settings.json").write_text(json.dumps(
            {"version": 4, "cpu_threads": threads}))
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            bare, studio = [], []
            for _ in range(args.runs):
                bare.append(run_side(BARE, [str(path), str(threads), str(args.tokens),
                                            PROMPT], home))
                studio.append(run_side(STUDIO, [ref, str(threads), str(args.tokens), PROMPT,
                                                str(ROOT)], home))
        finally:
            if hog is not None:
                hog.kill()
        assert all(s["threads"] == threads and s["engine"] == "llama.cpp" for s in studio), \
            studio
        rss += [s["rss"] for s in studio]
        b_tps = statistics.median(r["tokens"] / r["seconds"] for r in bare)
        s_tps = statistics.median(r["tokens"] / r["seconds"] for r in studio)
        b_cpu = statistics.median(r["cpu"] / max(1, r["tokens"]) for r in bare)
        s_cpu = statistics.median(r["cpu"] / max(1, r["tokens"]) for r in studio)
        name = f"{'busy' if busy else 'idle'}, {threads} thread{'s' if threads > 1 else ''}"
        print(f"{name:<18}{b_tps:>11.1f}{s_tps:>9.1f}{s_tps / b_tps:>7.3f}"
              f"{b_cpu:>16.4f}{s_cpu:>9.4f}{b_cpu / s_cpu:>7.3f}", flush=True)
    for threads in sorted({t for t, _ in rows}):
        engine, loop = engine_alone(ref, threads, args.tokens)
        print(f"engine alone, {threads} thread(s), one process, 8 alternated rounds: "
              f"{engine:.1f} vs bare {loop:.1f} tok/s, ratio {engine / loop:.3f}", flush=True)
    from llama_cpp import Llama

    probe = Llama(str(path), vocab_only=True, verbose=False)
    meta = probe.metadata
    arch = meta.get("general.architecture", "llama")
    layers = int(meta.get(f"{arch}.block_count", 0))
    heads_kv = int(meta.get(f"{arch}.attention.head_count_kv",
                            meta.get(f"{arch}.attention.head_count", 0)))
    width = int(meta.get(f"{arch}.attention.key_length", 0)) or \
        int(meta.get(f"{arch}.embedding_length", 0)) // max(1, int(meta.get(
            f"{arch}.attention.head_count", 1)))
    ctx = min(8192, int(meta.get(f"{arch}.context_length", 8192)))
    kv = ctx * 2 * 2 * layers * heads_kv * width
    budget = path.stat().st_size + kv + 150e6
    print(f"\nmodel process RSS: median {statistics.median(rss) / 1e6:.0f} MB; budget "
          f"{path.stat().st_size / 1e6:.0f} MB GGUF + {kv / 1e6:.0f} MB KV cache ({ctx} tokens, "
          f"f16) + 150 MB = {budget / 1e6:.0f} MB")
    home = tempfile.mkdtemp(prefix="bench-home-")
    long = run_side(STUDIO, [ref, "0", "8", PROMPT, str(ROOT), "continue"], home)
    (t1, n1, c1), (t2, n2, c2) = long["continue"]
    print(f"Continue on a {n1:,}-token document: first token {t1:.2f} s; again with two more "
          f"words {t2:.2f} s ({c2:,} of {n2:,} tokens from the cache; ratio {t2 / t1:.3f})")
    print("Stop → job finished (through the model process): "
          + ", ".join(f"{s * 1000:.0f} ms" for s in long["stops"]) + " (target <= 300 ms)")


if __name__ == "__main__":
    main()
