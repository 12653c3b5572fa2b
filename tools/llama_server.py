"""Start and stop llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (tests, benches).

    from tools.llama_server import LlamaServer
    server = LlamaServer(gguf_path, alias="smollm2")   # waits until /v1/models answers
    ... server.url ...
    server.stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def unmeasured() -> dict[str, str]:
    """The environment for a process whose code is not the studio's (another project's
    server, a trainer in tools/): without a coverage run's variables, so it is not traced
    (which would only slow it down)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port of 127.0.0.1 (bounded start-up)."""

    def __init__(self, gguf: Path, alias: str, key: str = "", tmp: Path | None = None,
                 threads: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--model_alias", alias, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "false"]
        if key:
            cmd += ["--api_key", key]
        self.log = (tmp or Path("/tmp")) / f"llama-server-{self.port}.log"
        # llama-cpp-python's server is not the studio's code: not traced by a coverage run
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env=unmeasured())
        import httpx

        deadline = time.monotonic() + 120
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v1/models", headers=headers, timeout=2).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("the llama.cpp server did not start within 120 s")

    def stop(self) -> None:
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """End a server started in its own session (``start_new_session``) and whatever it
    started: ``signum`` to the group, SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signum)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
