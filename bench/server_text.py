"""Text on an OpenAI-compatible server: the studio vs a bare streaming client, same run.

    .venv/bin/python bench/server_text.py [--rounds 5] [--tokens 128] [--url URL --model ID]

Without --url it starts llama-cpp-python's server on 127.0.0.1 with the embedded GGUF (one
thread), as the tests do. Each round sends the same chat request (prompt, seed, max tokens,
temperature) once through a bare httpx SSE loop and once as a studio Text job (runner →
worker → generator → project write), alternating. Prints tokens/s (streamed chunks per
second, from sending to the last chunk), the time from Generate (submit) to the first text
shown, and the studio/bare ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPT = "Write a short story about a robot who learns to paint."


def bare(url: str, model: str, tokens: int, seed: int) -> tuple[int, float, float]:
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": tokens, "temperature": 0.8, "top_p": 0.9, "seed": seed,
            "stream": True}
    start = time.perf_counter()
    first, chunks = None, 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {}).get("content")
            if delta:
                chunks += 1
                if first is None:
                    first = time.perf_counter() - start
    return chunks, time.perf_counter() - start, first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--url", help="an OpenAI-compatible server (default: start one)")
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    from creative_studio.core.jobs import Request
    from creative_studio.core.project import ProjectStore
    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner

    registry = PluginRegistry.discover(entry_points=False)
    server = None
    url = args.url
    if url is None:
        from tools.llama_server import LlamaServer

        server = LlamaServer(registry.resolve_model("text").path, args.model)
        url = server.url
    try:
        settings = Settings(servers=[{"name": "bench", "url": url, "kind": "openai"}])
        seen: dict[int, float] = {}

        def listener(event) -> None:  # the first text shown: what a user sees as "first token"
            if isinstance(event.preview, str) and event.preview:
                seen.setdefault(event.job.id, time.perf_counter())

        runner = JobRunner(registry, listener, settings=settings)
        store = ProjectStore.create(Path(tempfile.mkdtemp()) / "bench.csproj")
        params = {"max_tokens": args.tokens, "temperature": 0.8, "top_p": 0.9}

        def studio(seed: int) -> tuple[int, float, float]:
            start = time.perf_counter()
            job = runner.submit(Request("text", "generate", PROMPT, dict(params), seed=seed,
                                        model=f"server:bench/{args.model}"), store=store)
            runner.wait(job)
            assert job.error == "", job.error
            return job.result.metadata["tokens"], time.perf_counter() - start, \
                seen[job.id] - start

        bare(url, args.model, 8, 0), studio(0)  # warm: the server's cache, the client
        rows: dict[str, list] = {"bare": [], "studio": []}
        for seed in range(1, args.rounds + 1):
            rows["bare"].append(bare(url, args.model, args.tokens, seed))
            rows["studio"].append(studio(seed))
        stops = []
        for seed in range(3):  # Stop: from cancel() to the job being finished
            job = runner.submit(Request("text", "generate", PROMPT, {"max_tokens": 400},
                                        seed=seed, model=f"server:bench/{args.model}"))
            while job.id not in seen and not job.state.finished:
                time.sleep(0.005)
            time.sleep(0.2)
            start = time.perf_counter()
            runner.cancel(job.id)
            runner.wait(job)
            stops.append(time.perf_counter() - start)
        runner.shutdown()
    finally:
        if server is not None:
            server.stop()
    rate, ttft = {}, {}
    for name, values in rows.items():
        rate[name] = statistics.median(n / s for n, s, _ in values)
        ttft[name] = statistics.median(f for _, _, f in values)
        print(f"{name:<7} chunks {[n for n, _, _ in values]}  median {rate[name]:6.2f} tok/s, "
              f"first token {ttft[name] * 1000:6.0f} ms")
    print(f"Stop → job finished: {', '.join(f'{t * 1000:.0f}' for t in stops)} ms "
          "(target ≤ 300 ms)")
    print(f"ratio studio / bare: tokens/s {rate['studio'] / rate['bare']:.3f} (target ≥ 0.95); "
          f"first token {ttft['studio'] / ttft['bare']:.2f}x "
          f"(+{(ttft['studio'] - ttft['bare']) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
