"""A small, real generator used to test the runner and the plugin engine without a model.

It reverses the prompt one character per step (a deterministic "model"), sleeping a little
per step so that jobs can be cancelled mid-way.
"""

from __future__ import annotations

import os
import time

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import Asset, ModelIdentity, Result

LOADS: list[str] = []
UNLOADS: list[str] = []


class ReverseGenerator:
    step_seconds = 0.01

    @staticmethod
    def validate(request):
        if not request.prompt:
            raise BadInput("empty prompt")

    def load(self, source, device, progress):
        if source.ref.endswith("missing"):
            raise ModelError(f"Model not found: {source.ref}")
        LOADS.append(source.ref)
        self.ref, self.device = source.ref, device

    def generate(self, request, progress, inputs):
        if request.prompt == "explode":
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        out = ""
        steps = int(request.params.get("steps", len(request.prompt)))
        for i in range(steps):
            progress.check()
            time.sleep(float(request.params.get("step_seconds", self.step_seconds)))
            out += request.prompt[::-1][i % len(request.prompt)]
            progress.update((i + 1) / steps, out)
        return Result([Asset("text", "text/plain", out.encode())],
                      ModelIdentity("reverse", self.ref, "0" * 64, "embedded"), self.device,
                      title=out[:20])

    def unload(self):
        UNLOADS.append(self.ref)
        if self.ref.endswith("unload-fails"):
            raise RuntimeError("the driver refused to free it")


class BrokenPanel:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this panel is broken on purpose")


class PoolGenerator(ReverseGenerator):
    """A server-engine stand-in: request params ``gone`` and ``lacks`` name (comma-separated)
    the servers that went away or do not have the model (engines/openai's ServerGone /
    NotOnServer)."""

    def load(self, source, device, progress):
        self.server = source.server
        super().load(source, device, progress)

    def generate(self, request, progress, inputs):
        from creative_studio.engines.openai import NotOnServer, ServerGone

        if self.server in request.params.get("gone", "").split(","):
            raise ServerGone(f"{self.server} stopped answering")
        if self.server in request.params.get("lacks", "").split(","):
            raise NotOnServer(f"{self.server} has no such model")
        result = super().generate(request, progress, inputs)
        result.metadata["server"] = self.server
        return result


class ThreadsGenerator(ReverseGenerator):
    """Says in its metadata the threads torch had while it ran (the thread policy's work);
    ``thread_ceiling`` declares one thread, except for the prompt "any"."""

    @staticmethod
    def thread_ceiling(request):
        return None if request.prompt == "any" else \
            (1, "a test engine that runs best on one thread")

    def load(self, source, device, progress):
        import torch  # noqa: F401  (as the real engines: torch is loaded with the model)

        super().load(source, device, progress)

    def generate(self, request, progress, inputs):
        import torch

        result = super().generate(request, progress, inputs)
        result.metadata["torch_threads"] = torch.get_num_threads()
        result.metadata["wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
        return result


class SlowLoadGenerator(ReverseGenerator):
    """Takes ``LOAD_SECONDS`` to load (a model's first load), then runs as the reverser."""

    LOAD_SECONDS = 0.3

    def load(self, source, device, progress):
        time.sleep(self.LOAD_SECONDS)
        super().load(source, device, progress)
