"""The ncnn engine: an ncnn ``.param``/``.bin`` pair run as it is, on a Vulkan GPU (AMD,
Intel, NVIDIA — any the Vulkan loader sees) or on the CPU — the engine Upscayl and the
``*-ncnn-vulkan`` tools use. Beside the PyTorch path (the same pair converted once for
spandrel, plugins/upscale/ncnn_convert.py), with the same tiles, padding, progress and
cancel (between tiles: ncnn cannot stop inside one).

Which engine runs a model is measured, not assumed (``choose``): the first time a model runs
with the engine left on Automatic, both engines upscale the same 128-px tile (after a warm-up)
on this machine, with this many threads; the faster one is kept for that model, device and
thread count (``<cache>/upscale/engines.json``) and the recipe says which ran and the two
times.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path

from creative_studio.core import files, paths
from creative_studio.core.errors import ModelError

log = logging.getLogger(__name__)
PROBE = 128  # px of the tile both engines are timed on (smaller ones favour ncnn's low
# per-call overhead over the per-pixel speed that decides a real picture)


def available() -> bool:
    """Whether the ncnn Python package is installed (looked up without importing it)."""
    return importlib.util.find_spec("ncnn") is not None


def gpus() -> list[str]:
    """The Vulkan GPUs ncnn sees, by index (none without a Vulkan driver)."""
    global _GPUS
    if _GPUS is None:
        import ncnn

        with _quiet_stderr():  # ncnn prints its Vulkan loader's failures to stderr
            try:
                _GPUS = [ncnn.get_gpu_info(i).device_name()
                         for i in range(ncnn.get_gpu_count())]
                _SOFTWARE.update(i for i in range(len(_GPUS))
                                 if ncnn.get_gpu_info(i).type() == CPU_DEVICE)
            except Exception:  # noqa: BLE001 - no Vulkan loader: CPU only
                _GPUS = []
    return list(_GPUS)


def software(gpu: int) -> bool:
    """Whether Vulkan device ``gpu`` is a CPU (Mesa's lavapipe, SwiftShader): usable, but
    slower than ncnn's own CPU path, so never measured for Fastest."""
    gpus()
    return gpu in _SOFTWARE


CPU_DEVICE = 3  # VkPhysicalDeviceType CPU, as ncnn's GpuInfo.type() reports it
_GPUS: list[str] | None = None
_SOFTWARE: set[int] = set()


@contextlib.contextmanager
def _quiet_stderr():
    """The process's stderr (file descriptor 2) sent to /dev/null meanwhile."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _blobs(param: Path) -> tuple[str, str]:
    """The graph's input blob (its first Input layer's output) and output blob (the last
    layer's last output), read from the text .param."""
    lines = param.read_text(encoding="utf-8", errors="replace").split("\n")
    if not lines or lines[0].strip() != "7767517":
        raise ModelError(f"{param.name} is not a text ncnn .param file.")
    layers = [line.split() for line in lines[2:] if line.strip()]
    source = next((f for f in layers if f[0] == "Input" and len(f) >= 5), None)
    if source is None or not layers:
        raise ModelError(f"{param.name} has no Input layer.")
    last = layers[-1]
    try:
        inputs, outputs = int(last[2]), int(last[3])
    except (IndexError, ValueError) as exc:
        raise ModelError(f"{param.name}: its last layer cannot be read.") from exc
    if outputs < 1 or len(last) < 4 + inputs + outputs:
        raise ModelError(f"{param.name}: its last layer has no output.")
    return source[4], last[4 + inputs + outputs - 1]


class NcnnNet:
    """One ncnn graph, called like the PyTorch network: a (1, 3, h, w) float tensor in
    [0, 1] → (1, 3, h·s, w·s)."""

    def __init__(self, param: Path, binary: Path, threads: int, gpu: int = -1,
                 exact: bool = False) -> None:
        import ncnn

        self.input, self.output = _blobs(param)
        found = gpus() if gpu >= 0 else []
        self.gpu = gpu if 0 <= gpu < len(found) else -1
        self.device = f"vulkan:{self.gpu} ({found[self.gpu]})" if self.gpu >= 0 else "cpu"
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = self.gpu >= 0
        if self.gpu >= 0:
            self.net.set_vulkan_device(self.gpu)
        self.net.opt.num_threads = max(1, threads)
        # Fast precision as on the PyTorch path: bfloat16 storage (≈ 1.25× on x86 CPUs,
        # measured in bench/upscale_engines.py); Exact keeps float32
        self.net.opt.use_bf16_storage = not exact
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(binary)) != 0:
            raise ModelError(f"ncnn could not load {param.name} with {binary.name}.")
        self.model = None  # no blocks to hook: the tiler checks for Stop between tiles

    def __call__(self, tile):
        import ncnn
        import numpy as np
        import torch

        # kept in a name while ncnn runs: ncnn.Mat borrows the array's memory, it does not
        # copy it (a temporary would be freed under it)
        array = np.ascontiguousarray(tile[0].detach().float().cpu().numpy())
        extractor = self.net.create_extractor()
        extractor.input(self.input, ncnn.Mat(array))
        status, out = extractor.extract(self.output)
        if status != 0:
            raise ModelError(f"ncnn failed on a tile (status {status}).")
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))[None]


def _timed(run: Callable, tile) -> float:
    import torch

    with torch.inference_mode():
        run(tile)  # warm-up: first-call allocations, kernels picked
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            run(tile)
            best = min(best, time.perf_counter() - started)
    return best


def _choices_file() -> Path:
    return paths.cache_dir() / "upscale" / "engines.json"


def choose(key: str, engines: dict[str, Callable]) -> tuple[str, dict[str, float]]:
    """The faster engine for ``key`` (model, device, threads), measured once on a
    ``PROBE``-px tile and remembered; returns (engine, seconds per engine)."""
    import torch

    store = _choices_file()
    try:
        known = json.loads(store.read_text()) if store.exists() else {}
    except (OSError, ValueError):
        known = {}
    key = f"{key}|{platform.machine()}|{platform.processor() or ''}"
    found = known.get(key) if isinstance(known, dict) else None
    if isinstance(found, dict) and found.get("engine") in engines \
            and isinstance(found.get("seconds"), dict):
        return found["engine"], found["seconds"]
    tile = torch.rand(1, 3, PROBE, PROBE, generator=torch.Generator().manual_seed(0))
    seconds = {name: round(_timed(run, tile), 5) for name, run in engines.items()}
    engine = min(seconds, key=seconds.get)
    known = known if isinstance(known, dict) else {}
    known[key] = {"engine": engine, "seconds": seconds}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        files.atomic_write(store, json.dumps(known, indent=1))
    except OSError as exc:  # measured again next time
        log.info("engine choice not kept: %s", exc)
    return engine, seconds
