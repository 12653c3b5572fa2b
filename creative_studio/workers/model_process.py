"""Models in a child process: a native crash ends one job, never the window.

The runner's worker thread for a device (``JobRunner(isolate=True)``) drives one child,
``python -m creative_studio.workers.model_process``, over a private socket pair (nothing to
connect to from outside; the messages are pickles between the studio and its own child,
never bytes from a user file). The child loads and runs any plugin's generator by its
``module:attr`` (built-in, plugin-path and entry-point plugins alike) and keeps the loaded
models; the worker keeps a :class:`ProcessGenerator` per model, which the runner's LRU
treats like any generator.

Parent → child: ``("preload", modules)``, ``("load", seq, key, spec, root, source, device)``,
``("generate", seq, key, request, inputs)``, ``("unload", key)``, ``("cancel", seq)`` (seq
numbers the calls, so a Stop that arrives late never touches the next job).
Child → parent: ``("progress", fraction, preview, message)`` at most every 30 ms (the last
one always), ``("ok", value)``, ``("cancelled",)``, ``("error", exception class name,
message, oom)``.

A child that dies (segfault, abort, killed for memory) fails the job it was running with a
plain message; the next job starts a new child. The child quits when the studio goes away
(its end of the socket closes) and stops the job it was running.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ..core import cpu
from ..core.errors import (
    BadInput,
    Cancelled,
    ModelError,
    OutOfMemory,
    ProjectError,
    StudioError,
    describe,
    is_out_of_memory,
)
from ..core.jobs import Inputs, Request, Result
from ..core.progress import Progress

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.03  # seconds between two progress messages from the child
START_TIMEOUT = 60.0  # seconds for a new child to say it is ready
_ERRORS = {cls.__name__: cls for cls in (StudioError, BadInput, ModelError, ProjectError,
                                         OutOfMemory)}


class ModelProcessDied(StudioError):
    """The model process stopped (crash, kill) while it held or ran a model."""


def _signal_name(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class ModelProcess:
    """The parent's handle on one child (per device). Used from the worker thread only;
    ``cancel`` may come from any thread."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self.loaded: set[str] = set()  # keys of the models the child holds
        self._send_lock = threading.Lock()
        self._seq = 0

    # -- life ----------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.stop()
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "creative_studio.workers.model_process",
                 str(child.fileno()), self.device],
                # the same session as the studio: a new one would be its own scheduling
                # group (autogroup), halving its CPU share beside any busy program
                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.loaded = set()
        log.info("model process %s started for %s", self.proc.pid, self.device)

    def stop(self, timeout: float = 5.0) -> None:
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        self.loaded = set()
        if conn is not None:
            conn.close()  # the child sees the end of its socket and quits
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def _ensure(self) -> Connection:
        if not self.alive() or self.conn is None:
            self.start()
        assert self.conn is not None
        return self.conn

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            conn = self._ensure()
            conn.send(message)

    # -- calls -----------------------------------------------------------------------
    def preload(self, modules: list[str]) -> None:
        """Import ``modules`` in the child in the background (the first job starts sooner)."""
        self._send(("preload", list(modules)))

    def cancel(self, seq: int) -> None:
        conn = self.conn
        if conn is not None and self.alive():
            try:
                with self._send_lock:
                    conn.send(("cancel", seq))
            except OSError:
                pass

    def unload(self, key: str) -> None:
        self.loaded.discard(key)
        if self.alive():
            try:
                self._send(("unload", key))
            except OSError:
                pass

    def call(self, message: tuple, progress: Progress, what: str) -> Any:
        """Send a command (without its seq) and wait for its answer, relaying progress and
        Stop."""
        self._seq += 1
        seq = self._seq
        try:
            self._send((message[0], seq, *message[1:]))
        except OSError:  # it died between the look and the send
            if self.proc is None:
                raise
            self._died(self.proc, what)
        conn = self.conn
        proc = self.proc
        assert conn is not None and proc is not None
        cancel_sent = False
        while True:
            if progress.cancelled and not cancel_sent:
                self.cancel(seq)
                cancel_sent = True
            try:
                ready = conn.poll(0.05)
                reply = conn.recv() if ready else None
            except (EOFError, OSError):
                reply = None
                ready = True
            if reply is None:
                if ready or proc.poll() is not None:
                    self._died(proc, what)
                continue
            kind = reply[0]
            if kind == "progress":
                _, fraction, preview, message_text = reply
                if message_text is not None:
                    progress.message = message_text
                progress.update(fraction, preview)
                continue
            if kind == "ok":
                return reply[1]
            if kind == "cancelled":
                raise Cancelled()
            if kind != "error":
                raise StudioError(f"The model process answered something unknown ({kind!r}).")
            _, error_kind, text, oom = reply
            if oom:
                self.loaded = set()  # the child has unloaded everything
                raise OutOfMemory(text)
            raise _ERRORS.get(error_kind, StudioError)(text)

    def _died(self, proc: subprocess.Popen, what: str) -> None:
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(5)
        self.stop()
        how = _signal_name(code)
        hint = (" It may have run out of memory: try a smaller model or close other "
                "programs.") if code == -signal.SIGKILL else ""
        log.error("model process %s stopped (%s) while %s", proc.pid, how, what)
        raise ModelProcessDied(f"The model process stopped unexpectedly ({how}) while "
                               f"{what}; your work is safe and the engine starts again with "
                               f"the next job.{hint}")


class ProcessGenerator:
    """A plugin's generator living in the model process (what the worker's LRU holds)."""

    def __init__(self, process: ModelProcess, key: str, spec: str, root: str | None) -> None:
        self.process = process
        self.key = key
        self.spec = spec
        self.root = root

    @staticmethod
    def validate(request: Request) -> None:  # validation runs on the real class, before
        pass

    def load(self, source: Any, device: str, progress: Progress) -> None:
        self.process.call(("load", self.key, self.spec, self.root, source, device), progress,
                          "loading the model")
        self.process.loaded.add(self.key)

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        return self.process.call(("generate", self.key, request, inputs), progress,
                                 "running this job")

    def unload(self) -> None:
        self.process.unload(self.key)


# ------------------------------------------------------------------------------------------
# the child


class _Child:
    def __init__(self, conn: Connection, device: str) -> None:
        self.conn = conn
        self.device = device
        self.models: dict[str, Any] = {}
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.current: tuple[int, Progress] | None = None
        self.cancelled: set[int] = set()  # seqs Stopped before or while they ran
        self.send_lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self.send_lock:
            self.conn.send(message)

    def read(self) -> None:
        """The reader thread: Stop takes effect at once; the studio's end closing ends all."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                current = self.current
                if current is not None:
                    current[1].cancel()
                self.commands.put(None)
                return
            if message[0] == "cancel":
                self.cancelled.add(message[1])
                current = self.current
                if current is not None and current[0] == message[1]:
                    current[1].cancel()
                continue
            self.commands.put(message)

    def progress(self) -> tuple[Progress, list[Any]]:
        """A job's Progress, sending at most every PROGRESS_INTERVAL, and the list holding
        the update not sent yet (flushed before the answer)."""
        last = [0.0]
        pending: list[Any] = []

        def listener(fraction: float, eta: float | None, preview: Any) -> None:
            now = time.monotonic()
            pending[:] = [(fraction, preview, progress.message)]
            if now - last[0] >= PROGRESS_INTERVAL:  # (the last one: flushed with the answer)
                last[0] = now
                self.flush(pending)

        progress = Progress(listener)
        return progress, pending

    def flush(self, pending: list[Any]) -> None:
        if pending:
            fraction, preview, message = pending.pop()
            self.send(("progress", fraction, preview, message))

    def run(self) -> None:
        from . import preload as preload_mod

        log.info("model process %s ready for %s", os.getpid(), self.device)
        threading.Thread(target=self.read, name="model-process-reader", daemon=True).start()
        try:
            self._serve(preload_mod)
        except (EOFError, OSError):  # the studio went away while the child answered
            pass
        finally:  # the models are let go however the studio went
            for key in list(self.models):
                self._unload(key)

    def _serve(self, preload_mod: Any) -> None:
        while True:
            message = self.commands.get()
            if message is None:
                break
            kind = message[0]
            if kind == "preload":
                preload_mod.preload(message[1], force=True)
                continue
            if kind == "unload":
                self._unload(message[1])
                continue
            progress, pending = self.progress()
            seq = message[1]
            self.current = (seq, progress)
            if seq in self.cancelled:
                progress.cancel()
            try:
                value = self._do(message, progress)
            except BaseException as exc:  # every failure becomes a message to the parent
                self.current = None
                self._fail(exc)
                continue
            self.current = None
            self.flush(pending)
            try:
                self.send(("ok", value))
            except (TypeError, AttributeError, ValueError) as exc:  # not picklable
                self._fail(StudioError(f"The plugin's result cannot be sent back ({exc})."))

    def _do(self, message: tuple, progress: Progress) -> Any:
        from ..core import devices
        from ..plugins.registry import load_attr
        from .preload import IMPORT_LOCK

        if message[0] == "load":
            _, _, key, spec, root, source, device = message
            if root and root not in sys.path:
                sys.path.append(root)
            with IMPORT_LOCK:
                cls = load_attr(spec)
                generator = cls()
                cpu.job_threads(generator)  # loading computes too (dequantizing, tracing)
                generator.load(source, devices.resolve(device), progress)
            self.models[key] = generator
            return None
        if message[0] != "generate":
            raise StudioError(f"The model process does not know the command {message[0]!r}.")
        _, _, key, request, inputs = message
        generator = self.models.get(key)
        if generator is None:
            raise ModelError("The model is not loaded in the model process; run the job "
                             "again.")
        progress.check()
        return cpu.generate(generator, request, progress, inputs)

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self.send(("cancelled",))
            return
        oom = is_out_of_memory(exc)
        if oom:
            for key in list(self.models):
                self._unload(key)
        if isinstance(exc, StudioError | OSError):
            log.info("model process: %s", describe(exc))
        else:
            log.exception("model process: a job failed")
        self.send(("error", type(exc).__name__, describe(exc), oom))  # the parent maps it

    def _unload(self, key: str) -> None:
        generator = self.models.pop(key, None)
        if generator is None:
            return
        try:
            generator.unload()
        except Exception:
            log.exception("unloading %s failed", key)


def main(argv: list[str]) -> int:
    from ..core import logs

    fd, device = int(argv[0]), argv[1]
    # Ctrl+C in the studio's terminal is the studio's to handle (it stops the jobs); the
    # model process goes away when the studio does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.setup(name="models.log")
    conn = Connection(fd)
    child = _Child(conn, device)
    try:
        child.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
