from __future__ import annotations

import os
import sys
import threading
import time
from multiprocessing import Pipe
from pathlib import Path

import pytest

from creative_studio.core.errors import BadInput, StudioError
from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.project import ProjectStore
from creative_studio.plugins import PluginRegistry
from creative_studio.workers import model_process
from creative_studio.workers.runner import JobRunner
from tests import fake_plugin
from tests.helpers import drop_studio_log, write_plugin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def registry(tmp_path):
    write_plugin(tmp_path, "rev", id="rev")
    return PluginRegistry.discover([tmp_path], entry_points=False)


@pytest.fixture
def runner(registry):
    events = []
    lock = threading.Lock()

    def listener(event):
        with lock:
            events.append((event.kind.value, event.job.id))

    r = JobRunner(registry, listener, device_preference="cpu")
    r.events = events
    yield r
    r.shutdown()


def req(prompt, **params):
    return Request("rev", "generate", prompt=prompt, params=params)


def test_jobs_run_in_submission_order_and_results_are_saved(runner, tmp_path):
    store = ProjectStore.create(tmp_path / "p.csproj")
    jobs = [runner.submit(req(word), store=store) for word in ("abc", "hello", "xyz")]
    assert runner.wait_idle(timeout=30)
    assert [j.state for j in jobs] == [JobState.DONE] * 3
    assert [j.result.assets[0].data for j in jobs] == [b"cba", b"olleh", b"zyx"]
    started = [job_id for event, job_id in runner.events if event == "started"]
    assert started == [j.id for j in jobs]
    items = store.items()
    assert [store.item_text(i) for i in items] == ["cba", "olleh", "zyx"]
    assert items[0].model["name"] == "reverse" and items[0].device == "cpu"
    assert items[0].request.model == "embedded:reverse"  # default model filled in


def test_model_loaded_once_per_worker(runner):
    fake_plugin.LOADS.clear()
    for word in ("one", "two", "three"):
        runner.submit(req(word))
    assert runner.wait_idle(timeout=30)
    assert fake_plugin.LOADS == ["embedded:reverse"]


def on_first(runner, kind: JobEventKind, action) -> list[int]:
    """Run ``action(job id)`` once, from the first event of ``kind`` (a cancel or remove
    from the job's own progress: no race with its speed). The ids it acted on."""
    acted: list[int] = []

    def listener(event):
        if event.kind is kind and not acted:
            acted.append(event.job.id)
            action(event.job.id)

    runner.listener = listener
    return acted


def test_cancel_running_job(runner):
    progressed = on_first(runner, JobEventKind.PROGRESS, runner.cancel)
    job = runner.submit(req("x" * 400, step_seconds=0.01))
    assert runner.wait(job, timeout=30), "the cancelled job did not finish"
    assert progressed == [job.id]
    assert job.state is JobState.CANCELLED
    assert job.result is None and job.progress.fraction < 1


def test_cancel_and_remove_queued_jobs_and_clear(runner):
    first = runner.submit(req("a" * 100, step_seconds=0.02))
    second = runner.submit(req("second"))
    third = runner.submit(req("third"))
    fourth = runner.submit(req("fourth"))
    deadline = time.monotonic() + 30
    while first.state is JobState.QUEUED and time.monotonic() < deadline:
        time.sleep(0.005)  # clear() keeps only the running job: let the first one start
    assert first.state is JobState.RUNNING, "the first job did not start within 30 s"
    runner.cancel(second.id)
    runner.remove(third.id)
    assert second.state is JobState.CANCELLED
    assert third not in runner.jobs
    runner.clear()  # drops queued ones (fourth), keeps the running one
    assert fourth not in runner.jobs and first in runner.jobs
    assert runner.wait(first, timeout=30)
    assert first.state is JobState.DONE
    assert fourth.state is JobState.CANCELLED and fourth.result is None


def test_failures_become_clear_messages(runner, tmp_path):
    missing = runner.submit(Request("rev", "generate", prompt="abc",
                                    model=str(tmp_path / "missing")))
    unknown = runner.submit(Request("rev", "generate", prompt="abc", model="embedded:nope"))
    oom = runner.submit(req("explode"))
    after = runner.submit(req("fine"))
    assert runner.wait_idle(timeout=30)
    assert missing.state is JobState.FAILED and "Model not found" in missing.error
    assert unknown.state is JobState.FAILED and "has no embedded model 'nope'" in unknown.error
    assert oom.state is JobState.FAILED and oom.error.startswith("Out of memory")
    assert after.state is JobState.DONE  # the worker survives failures


def test_bad_requests_are_refused_before_queueing(runner):
    with pytest.raises(BadInput, match="empty prompt"):
        runner.submit(req(""))
    with pytest.raises(KeyError):
        runner.submit(Request("nope", "generate", prompt="x"))
    assert runner.jobs == []


def test_progress_reports_eta(runner):
    etas = []
    runner.listener = lambda e: etas.append(e.eta) if e.kind is JobEventKind.PROGRESS else None
    runner.submit(req("abcdefghij", step_seconds=0.01))
    assert runner.wait_idle(timeout=30)
    assert etas and etas[-1] == 0.0
    assert etas[0] is None  # "estimating…" at the first step: no pace yet, no earlier job
    assert all(e is not None for e in etas[1:])


def test_unload_models_on_demand(runner):
    fake_plugin.LOADS.clear()
    assert runner.wait(runner.submit(req("one")), timeout=30)
    assert runner.loaded_models() == [("cpu", "rev", "embedded:reverse")]
    runner.unload_models()
    deadline = time.monotonic() + 10
    while runner.loaded_models() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.loaded_models() == []
    assert runner.wait(runner.submit(req("two")), timeout=30)
    assert fake_plugin.LOADS == ["embedded:reverse", "embedded:reverse"]


def test_progress_messages_reach_the_listener():
    from creative_studio.core.progress import Progress

    seen = []
    progress = Progress(lambda f, eta, preview: seen.append((f, preview)))
    progress.say("Loading model…")
    assert progress.message == "Loading model…" and seen == [(0.0, None)]


def test_eta_is_estimating_then_from_the_pace_after_the_first_step():
    import time as clock

    from creative_studio.core.progress import Progress

    progress = Progress()
    assert progress.eta() is None  # "estimating…": nothing is known
    progress.prior_rate = 0.5  # an earlier job on the same model: half the work a second
    assert progress.eta() == pytest.approx(2.0)
    clock.sleep(0.3)  # loading the model: not counted in the pace
    progress.update(0.1)
    assert progress.eta() == pytest.approx(1.8)  # still the earlier pace (< 5 % done here)
    clock.sleep(0.2)
    progress.update(0.3)
    assert progress.eta() == pytest.approx(0.2 * 0.7 / 0.2, rel=0.3)  # its own pace
    assert progress.measured_rate() == pytest.approx(0.2 / 0.2, rel=0.3)


def test_a_second_job_on_the_same_model_starts_with_an_eta(runner):
    first = runner.submit(req("abcdefghij", step_seconds=0.02))
    assert runner.wait(first, timeout=30)
    second = runner.submit(req("abcdefghij", step_seconds=0.02))
    assert second.progress.prior_rate and second.progress.eta() is not None
    assert runner.wait(second, timeout=30)


# -- failure paths (issue 26) -------------------------------------------------------------
def model_folders(tmp_path, *names):
    folders = []
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "weights.bin").write_bytes(b"w")
        folders.append(str(tmp_path / name))
    return folders


def test_the_least_recently_used_model_is_evicted_at_the_limit(registry, tmp_path):
    first, second, third = model_folders(tmp_path, "m1", "m2", "m3")
    runner = JobRunner(registry, device_preference="cpu", max_loaded=2)
    try:
        fake_plugin.LOADS.clear()
        fake_plugin.UNLOADS.clear()
        for model in (first, second, first, third):  # first used again: second is the oldest
            job = runner.submit(Request("rev", "generate", prompt="ab", model=model))
            assert runner.wait(job, timeout=30) and job.state is JobState.DONE, job.error
        assert sorted(ref for _, _, ref in runner.loaded_models()) == sorted([first, third])
        assert fake_plugin.UNLOADS == [second]
        assert fake_plugin.LOADS == [first, second, third]
    finally:
        runner.shutdown()
    assert fake_plugin.UNLOADS == [second, third, first]  # shutdown frees the rest, newest first


def test_out_of_memory_unloads_every_model(runner, tmp_path):
    (folder,) = model_folders(tmp_path, "big")
    fake_plugin.UNLOADS.clear()
    assert runner.wait(runner.submit(Request("rev", "generate", prompt="a", model=folder)), 30)
    assert runner.wait(runner.submit(req("fine")), timeout=30)
    assert len(runner.loaded_models()) == 2
    oom = runner.submit(req("explode"))
    assert runner.wait(oom, timeout=30) and oom.state is JobState.FAILED
    assert oom.error.startswith("Out of memory")
    assert runner.loaded_models() == []
    assert sorted(fake_plugin.UNLOADS) == sorted([folder, "embedded:reverse"])


def test_a_model_whose_unload_fails_is_still_dropped(registry, tmp_path, caplog):
    models = model_folders(tmp_path, "unload-fails", "other")
    runner = JobRunner(registry, device_preference="cpu", max_loaded=1)
    try:
        for model in models:
            job = runner.submit(Request("rev", "generate", prompt="a", model=model))
            assert runner.wait(job, timeout=30) and job.state is JobState.DONE, job.error
        assert [ref for _, _, ref in runner.loaded_models()] == [models[1]]
        assert "unloading ReverseGenerator failed" in caplog.text
    finally:
        runner.shutdown()


def test_submit_after_shutdown_is_refused(registry):
    runner = JobRunner(registry, device_preference="cpu")
    runner.shutdown()
    with pytest.raises(StudioError, match="shutting down"):
        runner.submit(req("late"))
    assert runner.jobs == []


def test_shutdown_cancels_running_and_queued_jobs(registry):
    runner = JobRunner(registry, device_preference="cpu")
    started = threading.Event()
    runner.listener = lambda e: started.set() if e.kind is JobEventKind.PROGRESS else None
    running = runner.submit(req("x" * 1000, step_seconds=0.01))
    queued = runner.submit(req("queued"))
    assert started.wait(30), "the first job never reported progress"
    runner.shutdown(timeout=30)
    assert running.state is JobState.CANCELLED and queued.state is JobState.CANCELLED
    assert not any(w.is_alive() for w in runner._workers.values())


def test_removing_a_running_job_cancels_it(runner):
    on_first(runner, JobEventKind.PROGRESS, runner.remove)
    job = runner.submit(req("y" * 400, step_seconds=0.01))
    assert runner.wait(job, timeout=30), "the removed job did not stop"
    assert job.state is JobState.CANCELLED and job.result is None
    assert job in runner.jobs  # it stays listed as cancelled until removed again
    runner.remove(job.id)
    assert job not in runner.jobs


def test_a_failing_listener_never_stops_the_worker(registry, caplog):
    calls = []

    def listener(event):
        calls.append(event.kind)
        raise ValueError("a buggy panel")

    runner = JobRunner(registry, listener, device_preference="cpu")
    try:
        jobs = [runner.submit(req(word)) for word in ("ab", "cd")]
        assert runner.wait_idle(timeout=30)
        assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE]
        assert [j.result.assets[0].data for j in jobs] == [b"ba", b"dc"]
    finally:
        runner.shutdown()
    assert JobEventKind.DONE in calls and "job listener failed" in caplog.text


def test_cancel_and_remove_of_unknown_or_finished_jobs_do_nothing(runner):
    job = runner.submit(req("ab"))
    assert runner.wait(job, timeout=30) and job.state is JobState.DONE
    runner.cancel(job.id)  # finished: stays DONE
    runner.cancel(10 ** 9)
    runner.remove(10 ** 9)
    assert job.state is JobState.DONE and runner.get(job.id) is job
    assert runner.active() == []


def test_wait_times_out_with_false_on_a_job_that_is_still_running(runner):
    started = threading.Event()
    runner.listener = lambda e: started.set() if e.kind is JobEventKind.PROGRESS else None
    job = runner.submit(req("z" * 1000, step_seconds=0.01))
    assert started.wait(30)
    assert runner.wait(job, timeout=0.01) is False
    assert runner.wait_idle(timeout=0.01) is False
    runner.cancel(job.id)
    assert runner.wait(job, timeout=30) and job.state is JobState.CANCELLED


def test_requests_are_checked_before_they_queue(registry, tmp_path):
    from creative_studio.workers.runner import prepare_request

    with pytest.raises(BadInput, match="has no task 'paint' \\(it has: generate\\)"):
        prepare_request(registry, Request("rev", "paint", prompt="x"))
    with pytest.raises(BadInput, match="seed must be a whole number"):
        prepare_request(registry, Request("rev", "generate", prompt="x", seed=-1))
    with pytest.raises(BadInput, match="seed must be a whole number"):
        prepare_request(registry, Request("rev", "generate", prompt="x", seed=2 ** 31))
    from creative_studio.core.errors import ModelError

    with pytest.raises(ModelError, match="names no model"):
        prepare_request(registry, Request("rev", "generate", prompt="x", model="hub:"))
    request = Request("rev", "generate", prompt="x")
    prepare_request(registry, request)
    assert request.model == "embedded:reverse"  # the default filled in


def test_a_plugin_without_a_default_model_asks_for_one(tmp_path):
    from creative_studio.workers.runner import prepare_request

    root = write_plugin(tmp_path, "nomodel", id="nomodel")
    text = (root / "plugin.toml").read_text()
    (root / "plugin.toml").write_text(text[:text.index("[[models]]")])  # it offers none
    registry = PluginRegistry.discover([tmp_path], entry_points=False)
    with pytest.raises(BadInput, match="Choose a model for Fake"):
        prepare_request(registry, Request("nomodel", "generate", prompt="x"))


def test_a_plugin_whose_generator_cannot_load_refuses_its_requests(tmp_path):
    """Said as a StudioError the first time too (a panel shows it), never an ImportError."""
    write_plugin(tmp_path, "broken", id="broken", generator="tests.no_such_module:Gen")
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False),
                       device_preference="cpu")
    try:
        for _ in range(2):
            with pytest.raises(StudioError, match="could not load generator "
                                                  "'tests.no_such_module:Gen'"):
                runner.submit(Request("broken", "generate", prompt="x"))
        assert runner.jobs == []
    finally:
        runner.shutdown()


def test_a_job_reading_items_needs_a_project(runner):
    job = runner.submit(Request("rev", "generate", prompt="x", parents=["some-item"]))
    assert runner.wait(job, timeout=30) and job.state is JobState.FAILED
    assert job.error == "This job reads project items but has no project."


def test_warm_up_preloads_in_process_and_not_after_shutdown(registry, monkeypatch):
    from creative_studio.workers import runner as runner_mod

    loaded = []
    monkeypatch.setattr("creative_studio.workers.preload.preload",
                        lambda modules, **kw: loaded.append(list(modules)))
    runner = runner_mod.JobRunner(registry, device_preference="cpu")
    try:
        runner.warm_up(["json", "tests.fake_plugin"])
        job = runner.submit(req("ab"))  # queued behind the warm-up
        assert runner.wait(job, timeout=30) and job.state is JobState.DONE
        assert loaded == [["json", "tests.fake_plugin"]]
    finally:
        runner.shutdown()
    runner.warm_up(["json"])  # closing: nothing starts
    assert loaded == [["json", "tests.fake_plugin"]]


POOL_MANIFEST = """
schema_version = 1
id = "pool"
name = "Pool"
modality = "text"
generator = "tests.fake_plugin:PoolGenerator"
panel = "creative_studio.ui.panel:PluginPanel"
servers = ["openai"]

[[tasks]]
id = "generate"
name = "Generate"
prompt = "required"

[[params]]
name = "gone"
type = "str"
default = ""

[[params]]
name = "lacks"
type = "str"
default = ""

[[params]]
name = "step_seconds"
type = "float"
default = 0.0
"""


@pytest.fixture
def pool_runner(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from creative_studio.workers import runner as runner_mod

    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "plugin.toml").write_text(POOL_MANIFEST)
    registry = PluginRegistry.discover([tmp_path], entry_points=False)
    settings = SimpleNamespace(servers=[{"name": n, "url": f"http://127.0.0.1:{port}"}
                                        for n, port in (("a", 9), ("b", 10), ("c", 11))],
                               allow_downloads=False)
    monkeypatch.setattr(runner_mod, "DOWN_S", 30.0)
    runner = JobRunner(registry, settings=settings, device_preference="cpu")
    yield runner
    runner.shutdown()


def pool_job(runner, **params):
    return runner.submit(Request("pool", "generate", prompt="hello", model="server:*/m",
                                 params=params))


def test_a_pool_job_moves_on_from_servers_that_went_away_or_lack_the_model(pool_runner):
    job = pool_job(pool_runner, gone="a", lacks="b")
    assert pool_runner.wait(job, timeout=30) and job.state is JobState.DONE, job.error
    # whichever server's worker took it first, only c could finish it
    assert job.result.metadata["server"] == "c" and set(job.tried) <= {"a", "b"}
    assert job.device == "server:c" and job.result.assets[0].data == b"olleh"


def test_a_server_that_went_away_rests_while_others_can_work(pool_runner):
    for _ in range(10):  # until a's worker is the one that took the job first
        job = pool_job(pool_runner, gone="a")
        assert pool_runner.wait(job, timeout=30) and job.state is JobState.DONE, job.error
        assert job.result.metadata["server"] in ("b", "c")
        if job.tried == ["a"]:
            break
    else:
        pytest.skip("a's worker never took a job first")
    for _ in range(4):  # a rests for DOWN_S: b and c take the pool's jobs
        later = pool_job(pool_runner)
        assert pool_runner.wait(later, timeout=30) and later.state is JobState.DONE
        assert later.result.metadata["server"] in ("b", "c") and later.tried == []


def test_a_pool_job_fails_plainly_when_no_server_can_take_it(pool_runner):
    job = pool_job(pool_runner, gone="a,b", lacks="c")
    assert pool_runner.wait(job, timeout=30) and job.state is JobState.FAILED
    assert sorted(job.tried) == ["a", "b", "c"]
    # the last server's reason, whichever it was
    assert job.error in ("a stopped answering", "b stopped answering", "c has no such model")


def test_a_pool_needs_a_server(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "plugin.toml").write_text(POOL_MANIFEST)
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False),
                       settings=SimpleNamespace(servers=[]), device_preference="cpu")
    try:
        with pytest.raises(BadInput, match="no server to run this on"):
            pool_job(runner)
    finally:
        runner.shutdown()


def test_a_cancelled_pool_job_is_not_handed_on(pool_runner):
    on_first(pool_runner, JobEventKind.STARTED, pool_runner.cancel)
    job = pool_job(pool_runner, gone="a,b,c")
    assert pool_runner.wait(job, timeout=30)
    assert job.state in (JobState.CANCELLED, JobState.FAILED) and len(job.tried) <= 1


def test_requeue_hands_on_only_what_another_server_can_take(pool_runner, caplog):
    """The hand-on rule itself, without racing worker threads."""
    import logging
    import time as clock

    from creative_studio.core.jobs import Job
    from creative_studio.engines.openai import NotOnServer, ServerGone
    from creative_studio.workers import runner as runner_mod

    caplog.set_level(logging.INFO, logger="creative_studio.workers.runner")
    events = []
    pool_runner.listener = lambda e: events.append((e.kind, e.job.device))

    def job(*tried):
        made = Job(Request("pool", "generate", "x"), device="server:a", pool=("a", "b"))
        made.state, made.tried = JobState.RUNNING, list(tried)
        return made

    before = clock.monotonic()
    gone = job()
    assert pool_runner._requeue(gone, "a", ServerGone("lost")) is True
    assert gone.state is JobState.QUEUED and gone.device == "server:*" and gone.tried == ["a"]
    assert before + runner_mod.DOWN_S <= pool_runner._down_until["a"] \
        <= clock.monotonic() + runner_mod.DOWN_S
    assert events == [(JobEventKind.QUEUED, "server:*")]
    assert gone.progress.message == "a went away; trying another server…"
    assert f"job {gone.id}: a cannot run it (lost); queued again for the other servers" \
        in caplog.messages
    lacks = job()
    assert pool_runner._requeue(lacks, "b", NotOnServer("no model")) is True
    assert "b" not in pool_runner._down_until  # lacking a model is no reason to rest
    assert lacks.progress.message == "b does not have the model; trying another server…"
    assert pool_runner._requeue(job(), "a", ValueError("a bug")) is False  # not a server's
    last = job("b")
    assert pool_runner._requeue(last, "a", ServerGone("lost")) is False  # none left to try
    assert last.tried == ["b", "a"] and last.state is JobState.RUNNING
    cancelled = job()
    cancelled.progress.cancel()
    assert pool_runner._requeue(cancelled, "a", ServerGone("lost")) is False
    pool_runner._closing = True
    assert pool_runner._requeue(job(), "a", ServerGone("lost")) is False
    pool_runner._closing = False


def test_downloads_follow_the_users_current_choice(registry):
    from types import SimpleNamespace

    settings = SimpleNamespace(allow_downloads=False)
    runner = JobRunner(registry, settings=settings, device_preference="cpu")
    try:
        assert runner.downloads_allowed() is False
        settings.allow_downloads = True  # Preferences changed: read at the next load
        assert runner.downloads_allowed() is True
        settings.allow_downloads = 1
        assert runner.downloads_allowed() is True
        runner.settings = SimpleNamespace()  # an older settings object: off
        assert runner.downloads_allowed() is False
        runner.settings = None
        assert runner.downloads_allowed() is False
    finally:
        runner.shutdown()


# -- the model process's protocol, both ends in this process --------------------------------------
# (tests/test_model_process.py runs the real child with every plugin; here the child's loop
# runs on a thread over a pipe, so each message and failure is checked in milliseconds)
SPEC = "tests.fake_plugin:ReverseGenerator"


class FakeChildProcess:
    """What ModelProcess needs of the child's Popen: alive until the test says it ended."""

    pid = 4242

    def __init__(self):
        self.returncode = None
        self.killed = False
        self.waits = []

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        self.waits.append(timeout)
        if self.returncode is None:
            import subprocess

            raise subprocess.TimeoutExpired("model process", timeout)
        return self.returncode

    def kill(self):
        self.killed = True
        self.returncode = -9


class Unsendable(fake_plugin.ReverseGenerator):
    def load(self, source, device, progress):
        progress.say("Reading the weights…")
        progress.update(0.5)
        super().load(source, device, progress)

    def generate(self, request, progress, inputs):
        if request.prompt == "inputs":
            result = super().generate(request, progress, inputs)
            result.metadata["inputs"] = sorted(inputs)
            return result
        if request.prompt == "lock":
            result = super().generate(request, progress, inputs)
            result.metadata["lock"] = threading.Lock()  # cannot be pickled
            return result
        if request.prompt == "bad":
            raise BadInput("the prompt says no")
        if request.prompt == "disk":
            raise OSError(28, "No space left on device")
        if request.prompt == "interrupt":
            raise KeyboardInterrupt
        if request.prompt == "env":  # what the process it runs in was given
            import json

            from creative_studio.core.jobs import Asset, ModelIdentity, Result

            seen = {k: os.environ.get(k) for k in ("PYTHONUNBUFFERED", "PYTHONPATH")}
            return Result([Asset("text", "text/plain", json.dumps(seen).encode())],
                          ModelIdentity("env", "env"), "cpu")
        if request.prompt == "quiet":  # works a long while without a word, heeding Stop
            for _ in range(3000):
                progress.check()
                time.sleep(0.01)
        return super().generate(request, progress, inputs)


class ThreadModelProcess(model_process.ModelProcess):
    """A model process whose child loop runs on a thread of this process over a pipe (the
    real protocol, no interpreter to start)."""

    def start(self):
        self.stop()
        ours, theirs = Pipe()
        self.child = model_process._Child(theirs, self.device)
        self.thread = threading.Thread(target=self.child.run, daemon=True)
        self.thread.start()
        self.proc, self.conn, self.loaded = FakeChildProcess(), ours, set()


@pytest.fixture
def child_pair():
    """(ModelProcess, _Child): the parent's handle wired to a child loop on a thread."""
    process = ThreadModelProcess("cpu")
    process.start()
    thread, ours = process.thread, process.conn
    yield process, process.child
    ours.close()  # (a test may have stopped the process already)
    thread.join(10)
    assert not thread.is_alive(), "the child's loop did not end when its socket closed"


def source(ref="fake-model"):
    from creative_studio.core.models import ModelSource

    return ModelSource(ref, "embedded", ref)


def test_the_model_process_loads_generates_relays_progress_and_unloads(child_pair):
    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ProcessGenerator

    process, child = child_pair
    seen = []
    progress = Progress(lambda fraction, eta, preview: seen.append((fraction, preview)))
    generator = ProcessGenerator(process, "k1", SPEC, None)
    generator.validate(req("x"))  # nothing: validation runs on the real class
    generator.load(source(), "auto", progress)
    assert process.loaded == {"k1"} and list(child.models) == ["k1"]
    assert child.models["k1"].device == "cpu"  # the child resolves the device
    progress = Progress(lambda fraction, eta, preview: seen.append((fraction, preview)))
    result = generator.generate(req("abcdef", step_seconds=0.05), progress, {})
    assert result.assets[0].data == b"fedcba" and result.device == "cpu"
    assert seen[-1] == (1.0, "fedcba") and progress.fraction == 1.0
    # at most one message per 30 ms, and the last one always
    quick = []
    progress = Progress(lambda fraction, eta, preview: quick.append(fraction))
    generator.generate(req("ab", steps=400, step_seconds=0), progress, {})
    assert quick[-1] == 1.0 and len(quick) < 100
    assert child.current is None
    generator.unload()
    assert process.loaded == set()
    deadline = time.monotonic() + 10
    while "k1" in child.models and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.models == {} and fake_plugin.UNLOADS[-1] == "fake-model"
    process.unload("never-loaded")  # nothing to do, nothing fails
    generator.load(source(), "cpu", Progress())  # and the child still answers
    assert list(child.models) == ["k1"]


def test_the_child_resolves_the_device_and_logs_a_failed_unload(child_pair, monkeypatch,
                                                                 caplog):
    from creative_studio.core import devices
    from creative_studio.core.progress import Progress

    process, child = child_pair
    monkeypatch.setattr(devices, "resolve", lambda preference: f"resolved {preference}")
    process.call(("load", "k", SPEC, None, source("x-unload-fails"), "cuda"), Progress(),
                 "loading")
    assert child.models["k"].device == "resolved cuda"
    process.unload("k")
    process.call(("load", "k2", SPEC, None, source(), "cpu"), Progress(), "loading")  # after
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == "unloading k failed" and record.exc_info


def test_the_model_process_says_what_failed_in_the_parent(child_pair, caplog):
    import logging

    from creative_studio.core.errors import Cancelled, ModelError, OutOfMemory
    from creative_studio.core.progress import Progress

    caplog.set_level(logging.INFO, logger="creative_studio.workers.model_process")
    process, child = child_pair
    with pytest.raises(ModelError, match="^Model not found: gone-missing$"):
        process.call(("load", "gone", SPEC, None, source("gone-missing"), "cpu"), Progress(),
                     "loading")
    assert "gone" not in child.models
    with pytest.raises(ModelError, match=r"^The model is not loaded in the model process; "
                                         r"run the job again\.$"):
        process.call(("generate", "gone", req("x"), {}), Progress(), "running")
    spec = "tests.test_runner:Unsendable"
    loading = Progress()
    process.call(("load", "u", spec, None, source("u"), "cpu"), loading, "loading")
    assert loading.message == "Reading the weights…" and loading.fraction == 0.5
    process.loaded.add("u")
    result = process.call(("generate", "u", req("inputs"), {"a": [], "b": []}), Progress(),
                          "running")
    assert result.metadata["inputs"] == ["a", "b"]
    caplog.clear()
    with pytest.raises(BadInput, match="^the prompt says no$"):
        process.call(("generate", "u", req("bad"), {}), Progress(), "running")
    with pytest.raises(StudioError, match="^The disk is full: free some space") as info:
        process.call(("generate", "u", req("disk"), {}), Progress(), "running")
    assert type(info.value) is StudioError
    assert caplog.messages == ["model process: the prompt says no",
                               "model process: The disk is full: free some space and try again."]
    with pytest.raises(StudioError, match=r"^The plugin's result cannot be sent back \("):
        process.call(("generate", "u", req("lock"), {}), Progress(), "running")
    with pytest.raises(StudioError) as info:
        process.call(("generate", "u", req("interrupt"), {}), Progress(), "running")
    assert type(info.value) is StudioError
    failed = [r for r in caplog.records if r.getMessage() == "model process: a job failed"]
    assert len(failed) == 1 and failed[0].exc_info  # an unexpected error, with its traceback
    assert process.call(("generate", "u", req("ok"), {}), Progress(), "running").assets
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        process.call(("generate", "u", req("ok"), {}), progress, "running")
    with pytest.raises(OutOfMemory, match="^Out of memory while running the model"):
        process.call(("generate", "u", req("explode"), {}), Progress(), "running")
    assert process.loaded == set() and child.models == {}  # both ends dropped every model
    assert list(child.cancelled) == [process._seq - 1]


def test_stop_reaches_the_running_call_and_never_the_next(child_pair):
    from creative_studio.core.errors import Cancelled
    from creative_studio.core.progress import Progress

    process, child = child_pair
    process.call(("load", "k", SPEC, None, source(), "cpu"), Progress(), "loading")
    progress = Progress(lambda fraction, eta, preview: progress.cancel())  # Stop on the first
    with pytest.raises(Cancelled):
        process.call(("generate", "k", req("abcdefghij", step_seconds=0.05), {}), progress,
                     "running")
    assert child.cancelled == {process._seq}
    process.cancel(process._seq)  # a late Stop of the finished call
    process.cancel(999)  # and one of a call not sent yet: only that call would stop
    result = process.call(("generate", "k", req("abc"), {}), Progress(), "running")
    assert result.assets[0].data == b"cba"
    with pytest.raises(Cancelled):  # the call numbered 999 is stopped before it runs
        process._seq = 998
        process.call(("generate", "k", req("abc"), {}), Progress(), "running")


def test_a_child_that_dies_mid_call_fails_it_plainly(child_pair, caplog):
    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ModelProcessDied

    process, child = child_pair
    process.call(("load", "k", SPEC, None, source(), "cpu"), Progress(), "loading")
    proc = process.proc

    def killed(fraction, eta, preview):  # as if the kernel killed it for memory
        if proc.returncode is None:
            proc.returncode = -9
            child.conn.close()

    progress = Progress(killed)
    with pytest.raises(ModelProcessDied) as info:
        process.call(("generate", "k", req("abcdefgh", step_seconds=0.05), {}), progress,
                     "running this job")
    assert str(info.value) == (
        "The model process stopped unexpectedly (SIGKILL) while running this job; your work "
        "is safe and the engine starts again with the next job. It may have run out of "
        "memory: try a smaller model or close other programs.")
    assert process.proc is None and process.conn is None and process.loaded == set()
    assert caplog.messages[-1] == "model process 4242 stopped (SIGKILL) while running this job"
    assert not process.alive()
    process.cancel(1)  # nothing to stop: no child, no error


def test_a_child_that_ended_before_the_call_is_said_too(child_pair):
    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import (
        ModelProcessDied,
        ProcessGenerator,
        _signal_name,
    )

    process, child = child_pair
    proc = FakeChildProcess()
    proc.returncode = -11
    process.proc = proc  # dead: the call would start a new child...
    def start():  # ...which is dead too
        from multiprocessing import Pipe

        ours, theirs = Pipe()
        theirs.close()
        process.proc, process.conn = proc, ours

    process.start = start
    process.conn.close()
    with pytest.raises(ModelProcessDied, match=r"\(SIGSEGV\) while loading the model; "
                       r"your work is safe and the engine starts again with the next job\.$"):
        process.call(("load", "k", SPEC, None, source(), "cpu"), Progress(),
                     "loading the model")
    generator = ProcessGenerator(process, "k", SPEC, None)
    with pytest.raises(ModelProcessDied, match=r"\(SIGSEGV\) while running this job; "):
        generator.generate(req("x"), Progress(), {})
    with pytest.raises(ModelProcessDied, match=r"\(SIGSEGV\) while loading the model; "):
        generator.load(source(), "cpu", Progress())
    assert _signal_name(None) == "no exit status"
    assert _signal_name(-9) == "SIGKILL" and _signal_name(-200) == "signal 200"
    assert _signal_name(3) == "exit status 3" and _signal_name(0) == "exit status 0"


def test_the_child_stops_its_job_and_unloads_when_the_studio_goes_away(child_pair):
    from creative_studio.core.progress import Progress

    process, child = child_pair
    process.preload(["colorsys"])
    process.call(("load", "k", SPEC, None, source("leaving"), "cpu"), Progress(), "loading")
    started = threading.Event()
    progress = Progress(lambda fraction, eta, preview: started.set())
    errors = []

    def run():
        try:
            process.call(("generate", "k", req("abcdefghij" * 100, step_seconds=0.05), {}),
                         progress, "running")  # 50 s unless it is stopped
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    assert started.wait(10)
    process.conn.close()  # the studio's end closes: the job in the child is stopped
    process.thread.join(10)
    assert not process.thread.is_alive()
    assert child.models == {} and fake_plugin.UNLOADS[-1] == "leaving"
    caller.join(10)
    assert errors and "colorsys" in sys.modules


def test_a_real_child_process_starts_answers_and_quits(tmp_path, monkeypatch, caplog):
    import json
    import logging

    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ModelProcess

    caplog.set_level(logging.INFO, logger="creative_studio.workers.model_process")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    process = ModelProcess("cpu")
    try:
        process.call(("load", "k", "tests.test_runner:Unsendable", None, source(), "cpu"),
                     Progress(), "loading")
        proc = process.proc
        assert process.alive() and proc.args[1:3] == ["-m",
                                                      "creative_studio.workers.model_process"]
        assert f"model process {proc.pid} started for cpu" in caplog.messages
        result = process.call(("generate", "k", req("abc"), {}), Progress(), "running")
        assert result.assets[0].data == b"cba"
        env = json.loads(process.call(("generate", "k", req("env"), {}), Progress(),
                                      "running").assets[0].data)
        # unbuffered output; the studio's folder first on the path, the user's after it
        assert env == {"PYTHONUNBUFFERED": "1",
                       "PYTHONPATH": os.pathsep.join((str(ROOT), str(tmp_path)))}
    finally:
        process.stop()
    assert proc.returncode == 0 and process.proc is None


def test_the_childs_main_serves_its_socket_until_the_studio_closes_it(studio_home):
    import signal
    import socket
    from multiprocessing.connection import Connection

    from creative_studio.workers import model_process

    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    replies = []

    def studio():
        conn.send(("load", 1, "k", SPEC, None, source(), "cpu"))
        replies.append(conn.recv())
        conn.send(("generate", 2, "k", req("abc"), {}))
        while (reply := conn.recv())[0] == "progress":
            pass
        replies.append(reply)
        conn.close()

    thread = threading.Thread(target=studio, daemon=True)
    thread.start()
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert model_process.main([str(theirs.detach()), "cuda:7"]) == 0
        # Ctrl+C in the studio's terminal is the studio's: the child ignores it
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
        drop_studio_log()
    thread.join(10)
    assert replies[0] == ("ok", None)
    assert replies[1][0] == "ok" and replies[1][1].assets[0].data == b"cba"
    log = (studio_home / "data" / "logs" / "models.log").read_text()
    assert f"model process {os.getpid()} ready for cuda:7" in log


def test_a_child_that_hangs_after_its_socket_closed_is_killed():
    from multiprocessing import Pipe

    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ModelProcess, ModelProcessDied

    ours, theirs = Pipe()
    theirs.close()  # its end of the socket is gone, but it never exits by itself
    process = ModelProcess("cpu")
    proc = FakeChildProcess()
    process.proc, process.conn = proc, ours
    with pytest.raises(ModelProcessDied, match=r"\(SIGKILL\) while loading"):
        process.call(("load", "k", SPEC, None, source(), "cpu"), Progress(), "loading")
    assert proc.killed and proc.waits[:2] == [5, 5] and None not in proc.waits  # bounded
    process.proc, process.conn = FakeChildProcess(), None
    process.cancel(3)  # alive but not connected: nothing to send, nothing fails


def test_the_child_adds_a_plugin_folder_and_refuses_unknown_commands(child_pair, tmp_path):
    from creative_studio.core.errors import StudioError
    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ProcessGenerator

    process, child = child_pair
    folder = tmp_path / "my-plugins"
    generator = ProcessGenerator(process, "k", SPEC, str(folder))
    try:
        generator.load(source(), "cpu", Progress())
        assert sys.path.count(str(folder)) == 1
        generator.load(source(), "cpu", Progress())  # once, however many loads
        assert sys.path.count(str(folder)) == 1
    finally:
        while str(folder) in sys.path:
            sys.path.remove(str(folder))
    with pytest.raises(StudioError, match=r"^The model process does not know the command "
                                          r"'train'\.$"):
        process.call(("train", "k", req("x"), {}), Progress(), "training")


def test_warm_up_in_a_model_process_and_when_it_cannot_start(registry, caplog):
    from creative_studio.workers.runner import _Worker

    runner = JobRunner(registry, device_preference="cpu", isolate=True)
    try:
        worker = _Worker(runner, "cpu")
        sent = []

        class Process:
            def preload(self, modules):
                sent.append(modules)
                if modules == ["fails"]:
                    raise OSError(11, "Resource temporarily unavailable")

        worker.process = Process()
        worker._warm_up(["json", "colorsys"])
        assert sent == [["json", "colorsys"]]
        worker._warm_up(["fails"])
        record = caplog.records[-1]
        assert record.getMessage() == "the model process could not be started"
        assert record.exc_info is not None and record.levelname == "ERROR"
        assert runner.get("no-such-job") is None
    finally:
        runner.shutdown()


def test_the_parent_refuses_answers_it_does_not_know():
    from multiprocessing import Pipe

    from creative_studio.core.errors import StudioError
    from creative_studio.core.progress import Progress
    from creative_studio.workers.model_process import ModelProcess

    ours, theirs = Pipe()
    process = ModelProcess("cpu")
    process.proc, process.conn = FakeChildProcess(), ours
    theirs.send(("mystery", 1))
    with pytest.raises(StudioError, match=r"^The model process answered something unknown "
                                          r"\('mystery'\)\.$"):
        process.call(("generate", "k", req("x"), {}), Progress(), "running")
    assert theirs.recv()[0] == "generate"
    theirs.send(("error", "KeyError", "KeyError: 'x'", False))  # a class it does not map
    with pytest.raises(StudioError, match=r"^KeyError: 'x'$") as info:
        process.call(("generate", "k", req("x"), {}), Progress(), "running")
    assert type(info.value) is StudioError


def test_a_silent_job_stops_when_the_studio_goes_away(child_pair):
    from creative_studio.core.progress import Progress

    process, child = child_pair
    process.call(("load", "q", "tests.test_runner:Unsendable", None, source("q"), "cpu"),
                 Progress(), "loading")
    ended = []

    def run():
        try:
            process.call(("generate", "q", req("quiet"), {}), Progress(), "running")
        except (OSError, StudioError) as exc:  # the socket closed under it
            ended.append(exc)

    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    deadline = time.monotonic() + 10
    while child.current is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.current is not None, "the job did not start"
    process.conn.close()  # 30 s of work left, no progress to send: only Stop ends it
    process.thread.join(10)
    assert not process.thread.is_alive() and child.models == {}
    caller.join(10)
    assert ended and not caller.is_alive()


@pytest.fixture
def thread_child(monkeypatch):
    """Runners made with isolate=True get a model process whose child loop runs on a thread
    of this process; the list holds each one started."""
    started = []

    class Recorded(ThreadModelProcess):
        def start(self):
            super().start()
            started.append(self)

    monkeypatch.setattr(model_process, "ModelProcess", Recorded)
    return started


def test_isolated_jobs_load_once_and_again_after_the_child_died(registry, thread_child, caplog):
    fake_plugin.LOADS.clear()
    runner = JobRunner(registry, device_preference="cpu", isolate=True)
    try:
        first = runner.submit(req("ab"))
        assert runner.wait(first, timeout=30) and first.state is JobState.DONE, first.error
        assert first.result.assets[0].data == b"ba"
        [process] = thread_child
        assert process.loaded == {"rev\0embedded:reverse"}
        second = runner.submit(req("cd"))
        assert runner.wait(second, timeout=30) and second.state is JobState.DONE
        assert len(fake_plugin.LOADS) == 1  # the child kept the model
        process.proc.returncode = -9  # the child died between two jobs
        process.conn.close()
        third = runner.submit(req("ef"))
        assert runner.wait(third, timeout=30) and third.state is JobState.DONE, third.error
        assert len(thread_child) == 2 and len(fake_plugin.LOADS) == 2  # a new child loads it
        oom = runner.submit(req("explode"))
        assert runner.wait(oom, timeout=30) and oom.state is JobState.FAILED
        assert f"job {oom.id} ran out of memory: unloading every model" in caplog.messages
        assert thread_child[-1].loaded == set()
    finally:
        runner.shutdown()


def test_devices_are_resolved_from_the_preference_without_torch_when_isolated(registry,
                                                                             monkeypatch):
    from creative_studio.core import devices

    asked = []
    monkeypatch.setattr(devices, "resolve",
                        lambda preference, probe=True: asked.append((preference, probe)) or "cpu")
    for isolate in (False, True):
        runner = JobRunner(registry, device_preference="mps", isolate=isolate)
        for requested in ("", "auto", "cuda"):
            runner._device(requested)
        runner.shutdown()
    assert asked == [("mps", True), ("mps", True), ("cuda", True),
                     ("mps", False), ("mps", False), ("cuda", False)]


def test_a_rerun_says_whether_it_made_the_same_output(runner, tmp_path, caplog):
    store = ProjectStore.create(tmp_path / "p.csproj")
    first = runner.submit(req("abc"), store=store)
    assert runner.wait(first, timeout=30) and first.state is JobState.DONE
    same = runner.submit(req("abc", rerun_of=first.item_id), store=store)
    other = runner.submit(req("xyz", rerun_of=first.item_id), store=store)
    gone = runner.submit(req("abc", rerun_of="no-such-item"), store=store)
    odd = runner.submit(req("abc", rerun_of=7), store=store)
    alone = runner.submit(req("abc", rerun_of=first.item_id))  # no project
    for job in (same, other, gone, odd, alone):
        assert runner.wait(job, timeout=30) and job.state is JobState.DONE, job.error
    assert same.result.metadata["rerun_matches"] is True
    assert other.result.metadata["rerun_matches"] is False
    for job in (gone, odd, alone):
        assert "rerun_matches" not in job.result.metadata


def test_a_job_reads_the_assets_of_its_parent_items(registry, tmp_path, caplog):
    write_plugin(tmp_path, "echo", id="echo", generator="tests.test_runner:Unsendable")
    registry = PluginRegistry.discover([tmp_path], entry_points=False)
    runner = JobRunner(registry, device_preference="cpu")
    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        parent = runner.submit(Request("echo", "generate", prompt="ab"), store=store)
        assert runner.wait(parent, timeout=30) and parent.state is JobState.DONE
        child = runner.submit(Request("echo", "generate", prompt="inputs",
                                      parents=[parent.item_id]), store=store)
        assert runner.wait(child, timeout=30) and child.state is JobState.DONE, child.error
        assert child.result.metadata["inputs"] == [parent.item_id]
        inputs = runner._workers["cpu"]._inputs(child)
        [asset] = inputs[parent.item_id]
        assert (asset.role, asset.mime, asset.data) == ("text", "text/plain", b"ba")
        failing = runner.submit(Request("echo", "generate", prompt="bad"), store=store)
        assert runner.wait(failing, timeout=30) and failing.state is JobState.FAILED
        # a library that raises KeyboardInterrupt or SystemExit fails its job, not the worker
        broken = runner.submit(Request("echo", "generate", prompt="interrupt"), store=store)
        assert runner.wait(broken, timeout=30) and broken.state is JobState.FAILED
        after = runner.submit(Request("echo", "generate", prompt="ok"), store=store)
        assert runner.wait(after, timeout=30) and after.state is JobState.DONE
        assert f"job {broken.id} (echo) failed" in caplog.messages
    finally:
        runner.shutdown()
        store.close()
