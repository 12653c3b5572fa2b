"""Models in a child process (workers/model_process.py): every plugin runs there, a native
crash or a kill fails one job with a plain message and the next job works, Stop crosses
over, and the studio's own process never imports torch or llama.cpp."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.progress import Progress
from creative_studio.plugins import PluginRegistry
from creative_studio.plugins.registry import PATH_VARIABLE
from creative_studio.workers.model_process import ModelProcess
from creative_studio.workers.runner import JobRunner

ROOT = Path(__file__).resolve().parents[1]
FIFTH = ROOT / "tests" / "fifth_plugin"
pytestmark = pytest.mark.model


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv(PATH_VARIABLE, str(FIFTH))
    events = []
    r = JobRunner(PluginRegistry.discover(entry_points=False), events.append,
                  device_preference="cpu", isolate=True)
    r.events = events
    yield r
    r.shutdown()


def say(prompt="hello", **params):
    return Request("speech", "say", prompt=prompt, params=params, seed=1)


def finished(runner, job, timeout=120):
    assert runner.wait(job, timeout), f"job {job.id} did not finish in {timeout} s"
    return job


def on_first_token(runner, job, action) -> None:
    """Run ``action`` once, from the event of the job's first streamed text (so the test
    does not race a sleeping job, on a slow CPU or a fast GPU)."""
    done = []

    def listener(event):
        if event.job is job and event.kind is JobEventKind.PROGRESS and event.preview \
                and not done:
            done.append(True)
            action()

    runner.listener = listener


def child_of(runner):
    process = runner._workers["cpu"].process
    assert process.alive()
    return process


def test_every_plugin_loads_and_generates_in_the_model_process(runner):
    jobs = [
        runner.submit(Request("text", "generate", "Say hi.", {"max_tokens": 6}, seed=1)),
        runner.submit(Request("music", "generate", params={"bars": 2}, seed=1)),
        runner.submit(Request("image", "generate", "a red heart", {"steps": 2}, seed=1)),
        runner.submit(say("plugin path")),  # a plugin from a folder outside the studio
    ]
    for job in jobs:
        finished(runner, job, 300)
        assert job.state is JobState.DONE, job.error
        assert job.result.assets and job.result.assets[0].data
    assert jobs[0].result.metadata["engine"] in ("llama.cpp", "transformers")
    # the runner's LRU holds max_loaded models, and the child holds exactly those
    assert len(runner.loaded_models()) == runner.max_loaded
    process = child_of(runner)
    assert process.loaded == {"\0".join((p, r)) for _, p, r in runner.loaded_models()}


def test_a_native_crash_fails_one_job_plainly_and_the_next_job_works(runner):
    first = finished(runner, runner.submit(say("before")))
    pid = child_of(runner).proc.pid
    crashed = finished(runner, runner.submit(say("segfault")))
    assert crashed.state is JobState.FAILED
    assert "The model process stopped unexpectedly (SIGSEGV)" in crashed.error
    assert "your work is safe" in crashed.error
    after = finished(runner, runner.submit(say("after")))
    assert first.state is after.state is JobState.DONE
    assert child_of(runner).proc.pid != pid  # a new child


def test_a_killed_child_says_memory_may_have_run_out(runner):
    finished(runner, runner.submit(say("warm")))
    job = runner.submit(Request("text", "generate", "Write a long story about a ship.",
                                {"max_tokens": 400}, seed=2))
    on_first_token(runner, job, lambda: os.kill(runner._workers["cpu"].process.proc.pid,
                                                signal.SIGKILL))
    finished(runner, job)
    assert job.state is JobState.FAILED
    assert "(SIGKILL)" in job.error and "out of memory" in job.error


def test_a_child_killed_while_idle_is_restarted_for_the_next_job(runner):
    finished(runner, runner.submit(say("one")))
    process = child_of(runner)
    process.proc.kill()
    process.proc.wait(10)
    again = finished(runner, runner.submit(say("two")))
    assert again.state is JobState.DONE, again.error


def test_out_of_memory_in_the_child_unloads_every_model(runner):
    finished(runner, runner.submit(Request("music", "generate", params={"bars": 1}, seed=1)),
             300)
    finished(runner, runner.submit(say("loaded")))
    assert len(runner.loaded_models()) == 2
    job = finished(runner, runner.submit(say("out of memory")))
    assert job.state is JobState.FAILED and "Out of memory" in job.error
    assert runner.loaded_models() == [] and child_of(runner).loaded == set()


def test_stop_on_the_first_streamed_token_and_before_the_job_runs(runner):
    job = runner.submit(Request("text", "generate", "Write a long story about a dragon.",
                                {"max_tokens": 400}, seed=5))
    on_first_token(runner, job, lambda: runner.cancel(job.id))
    finished(runner, job)
    assert job.state is JobState.DONE and job.result.metadata["finish_reason"] == "stopped"
    assert job.result.metadata["tokens"] < 40
    blocker = runner.submit(Request("text", "generate", "Write a long story.",
                                    {"max_tokens": 400}, seed=6))
    queued = runner.submit(say("never"))
    runner.cancel(queued.id)  # one worker: it is still waiting behind the blocker
    assert queued.state is JobState.CANCELLED
    runner.cancel(blocker.id)
    finished(runner, blocker)
    assert blocker.state in (JobState.DONE, JobState.CANCELLED)
    assert queued.result is None


def test_a_late_stop_never_reaches_the_next_call():
    """Stop is numbered by call: a Stop that arrives after its job ended is ignored."""
    process = ModelProcess("cpu")
    try:
        from creative_studio.plugins import PluginRegistry as Registry

        source = Registry.discover(entry_points=False).resolve_model("music")
        progress = Progress()
        process.call(("load", "m", "plugins.music.generator:MusicGenerator", None, source,
                      "cpu"), progress, "loading")
        process.cancel(1)  # the load's number: long finished
        request = Request("music", "generate", params={"bars": 1}, seed=3)
        from tests.conftest import prepared

        result = process.call(("generate", "m", prepared(request), {}), Progress(), "running")
        assert result.assets
    finally:
        process.stop()


def test_the_child_quits_when_the_studio_goes_away():
    process = ModelProcess("cpu")
    process.preload([])
    proc = process.proc
    assert proc.poll() is None
    process.conn.close()  # as when the studio's process dies: its end of the socket closes
    assert proc.wait(20) == 0


@pytest.mark.gui
def test_a_crash_while_the_window_streams_keeps_the_window_and_the_draft(qtbot, make_window):
    window = make_window()
    panel = window.panels["text"]
    window.tabs.setCurrentWidget(panel)
    panel.editor.setPlainText("My draft, kept whatever happens.")
    panel.instruction.setPlainText("Write a long story about a lighthouse keeper.")
    panel.max_tokens.setValue(400)
    crashed = []

    def crash_on_first_token(event):
        if event.kind is JobEventKind.PROGRESS and event.preview and not crashed:
            crashed.append(True)
            os.kill(window.runner._workers[event.job.device].process.proc.pid,
                    signal.SIGSEGV)

    window.events.event.connect(crash_on_first_token)
    panel.generate()
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    assert crashed and job.state is JobState.FAILED and "SIGSEGV" in job.error
    assert window.isVisible()
    qtbot.waitUntil(lambda: panel.editor.toPlainText() == "My draft, kept whatever happens.",
                    timeout=5000)
    assert any("SIGSEGV" in message for message in window.errors)
    window.events.event.disconnect(crash_on_first_token)
    panel.max_tokens.setValue(8)
    panel.generate()
    again = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: again.state.finished, timeout=120_000)
    assert again.state is JobState.DONE, again.error
    assert "My draft, kept whatever happens." in panel.editor.toPlainText()


def test_the_window_generates_text_without_torch_or_llama_cpp_in_its_process(tmp_path):
    script = textwrap.dedent("""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from creative_studio.core.settings import Settings
        from creative_studio.plugins import PluginRegistry
        from creative_studio.ui.main_window import MainWindow
        window = MainWindow(PluginRegistry.discover(entry_points=False), Settings())
        window.show()
        panel = window.panels["text"]
        panel.instruction.setPlainText("Say hello.")
        panel.max_tokens.setValue(6)
        panel.generate()
        job = window.runner.jobs[-1]
        while not job.state.finished:
            app.processEvents()
            window.runner.wait(job, 0.02)
        app.processEvents()
        print("STATE", job.state.value, job.result.metadata.get("engine") if job.result else job.error)
        print("HEAVY", sorted(m for m in ("torch", "llama_cpp", "transformers") if m in sys.modules))
        window.runner.shutdown()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CREATIVE_STUDIO_HOME=str(tmp_path),
               PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "STATE done" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "HEAVY []" in out.stdout
