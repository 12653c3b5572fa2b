"""The thread policy (creative_studio/core/cpu.py): fake CPU counts, quotas and loads →
threads, with the reason said; the machine read as it is (affinity, cgroups, /proc/stat);
jobs of every runner record it in their recipe. Speeds are bench/threads.py's."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from creative_studio.core import cpu
from creative_studio.core.cpu import Decision, Machine, Sample, decide
from creative_studio.core.jobs import JobState, Request
from creative_studio.core.settings import Settings
from creative_studio.plugins import PluginRegistry
from creative_studio.workers.runner import JobRunner
from tests.helpers import write_plugin


# -- decisions ------------------------------------------------------------------------------
@pytest.mark.parametrize("cores, others, threads", [
    (2, 0.0, 2), (2, 0.3, 2), (2, 0.34, 2), (2, 0.36, 1), (2, 0.5, 1), (2, 1.0, 1),
    (2, 2.0, 1), (1, 0.0, 1), (4, 1.0, 3), (4, 1.4, 2), (16, 2.2, 14), (8, 9.0, 1)])
def test_threads_are_the_cores_other_programs_leave_free(cores, others, threads):
    decision = decide(Machine(cpus=cores, cores=cores, others=others, window=0.5))
    assert decision.threads == threads and decision.source == "measured"


def test_reasons_say_what_was_measured():
    idle = decide(Machine(2, 2, others=0.01, window=0.2))
    assert idle.reason == "2 of 2 cores: the machine is otherwise idle"
    busy = decide(Machine(2, 2, others=1.0, window=0.2))
    assert busy.reason == "1 of 2 cores: other programs use 1 CPU"
    two = decide(Machine(2, 2, others=1.96, window=0.2))
    assert two.reason == "1 of 2 cores: other programs use 2 CPUs"
    unmeasured = decide(Machine(4, 4))
    assert unmeasured == Decision(4, "4 of 4 cores (other programs' use not measurable here)",
                                  "measured")
    one = decide(Machine(1, 1, window=0.2))
    assert one.reason == "1 of 1 core: the machine is otherwise idle"
    assert busy.to_dict() == {"threads": 1, "policy": "measured",
                              "reason": "1 of 2 cores: other programs use 1 CPU"}


def test_hardware_threads_count_as_their_cores():
    # 8 logical CPUs, 4 cores: four threads, whatever the logical count
    assert decide(Machine(cpus=8, cores=4, window=0.2)).threads == 4


@pytest.mark.parametrize("quota, others, threads", [
    (1.5, 0.0, 1), (2.0, 0.0, 2), (2.5, 0.0, 2), (2.7, 0.0, 3), (0.5, 0.0, 1), (3.0, 1.0, 2)])
def test_a_cgroup_quota_caps_the_threads(quota, others, threads):
    decision = decide(Machine(cpus=8, cores=8, quota=quota, others=others, window=0.3))
    assert decision.threads == threads
    assert f"a quota of {cpu._fmt(quota)} CPUs" in decision.reason


def test_a_quota_above_the_cores_is_not_mentioned():
    decision = decide(Machine(cpus=2, cores=2, quota=4.0, window=0.3))
    assert decision.threads == 2 and "quota" not in decision.reason


def test_preferences_and_the_environment_override_the_measurement():
    busy = Machine(2, 2, others=2.0, window=0.3)
    assert decide(busy, preference=4) == Decision(4, "4 (Preferences → CPU threads)",
                                                  "preferences")
    assert decide(busy, preference=3, environment="1").threads == 3  # Preferences first
    env = decide(busy, environment=" 2 ")
    assert env == Decision(2, "2 (OMP_NUM_THREADS=2 in the environment)", "environment")
    assert decide(busy, environment="3,1").threads == 3  # OpenMP's nested list: the first
    for junk in ("", "abc", "0", "-2"):
        assert decide(Machine(2, 2, window=0.3), environment=junk).source == "measured"
    assert decide(busy, preference=-1).source == "measured"


def test_an_engine_ceiling_caps_an_idle_machine_and_says_why():
    idle = Machine(4, 4, window=0.3)
    decision = decide(idle, ceiling=1, ceiling_why="it runs token by token")
    assert decision == Decision(1, "1 of 4 cores: it runs token by token", "measured")
    assert decide(Machine(4, 4, others=3.0, window=0.3), ceiling=2).reason == \
        "1 of 4 cores: other programs use 3 CPUs"  # below the ceiling: the load said it
    assert decide(idle, ceiling=2).reason == "2 of 4 cores: the engine runs best so"
    assert decide(idle, preference=3, ceiling=1).threads == 3  # the user's word wins


# -- reading the machine ----------------------------------------------------------------
HT = "\n\n".join(f"processor\t: {n}\nphysical id\t: 0\ncore id\t\t: {n % 2}\n"
                 for n in range(4))  # 4 hardware threads on 2 cores: 0/2 and 1/3 siblings


def test_physical_cores_among_the_allowed_cpus():
    assert cpu.physical_cores([0, 1, 2, 3], HT) == 2
    assert cpu.physical_cores([0, 2], HT) == 1  # two siblings: one core
    assert cpu.physical_cores([0, 1], HT) == 2
    two_sockets = "\n\n".join(f"processor: {n}\nphysical id: {n // 2}\ncore id: 0"
                              for n in range(4))
    assert cpu.physical_cores([0, 1, 2, 3], two_sockets) == 2
    # no topology (some ARM and VM kernels): psutil's share of the allowed CPUs
    assert 1 <= cpu.physical_cores([0, 1], "processor: 0\n\nprocessor: 1") <= 2


def test_this_machine_is_read():
    cpus = cpu.affinity()
    assert cpus and all(isinstance(n, int) for n in cpus)
    assert 1 <= cpu.physical_cores(cpus) <= len(cpus)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_tightest_of_the_path(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "0::/user.slice/app.scope\n")
    root = tmp_path / "fs"
    write(root / "cpu.max", "max 100000\n")
    write(root / "user.slice" / "cpu.max", "300000 100000\n")
    write(root / "user.slice" / "app.scope" / "cpu.max", "max 100000\n")
    assert cpu.cgroup_quota(str(proc), str(root)) == 3.0
    write(root / "user.slice" / "app.scope" / "cpu.max", "150000 100000\n")
    assert cpu.cgroup_quota(str(proc), str(root)) == 1.5
    write(root / "user.slice" / "app.scope" / "cpu.max", "50000\n")  # no period: 100 ms
    assert cpu.cgroup_quota(str(proc), str(root)) == 0.5


def test_no_quota_and_damaged_cgroup_files_mean_none(tmp_path):
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    assert cpu.cgroup_quota(str(proc), str(root)) is None  # no /proc/self/cgroup
    write(proc, "0::/a\n")
    assert cpu.cgroup_quota(str(proc), str(root)) is None  # no cpu.max anywhere
    write(root / "a" / "cpu.max", "max 100000")
    assert cpu.cgroup_quota(str(proc), str(root)) is None
    for junk in ("x y", "100000 0", "-5 100000", "", "0 100000"):
        write(root / "a" / "cpu.max", junk)
        assert cpu.cgroup_quota(str(proc), str(root)) is None, junk
    write(proc, "garbage\n0::/../../a\n")  # no escape above the root
    write(root / "a" / "cpu.max", "200000 100000")
    assert cpu.cgroup_quota(str(proc), str(root)) == 2.0


def test_cgroup_v1_quota(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "12:memory:/x\n4:cpu,cpuacct:/docker/abc\n")
    folder = tmp_path / "fs" / "cpu,cpuacct" / "docker" / "abc"
    write(folder / "cpu.cfs_quota_us", "250000\n")
    write(folder / "cpu.cfs_period_us", "100000\n")
    assert cpu.cgroup_quota(str(proc), str(tmp_path / "fs")) == 2.5
    write(folder / "cpu.cfs_quota_us", "-1\n")  # unlimited
    assert cpu.cgroup_quota(str(proc), str(tmp_path / "fs")) is None


def test_others_leave_this_process_out():
    first = Sample(0.0, busy=10.0, total=20.0, own=1.0)
    # 1 s on 2 CPUs: 1.6 CPU-s busy, of which 0.6 were this process's
    last = Sample(1.0, busy=11.6, total=22.0, own=1.6)
    assert cpu.others_between(first, last, 2) == pytest.approx(1.0)
    assert cpu.others_between(first, first, 2) == 0.0  # no time passed
    assert cpu.others_between(first, Sample(1.0, 9.0, 22.0, 1.0), 2) == 0.0  # clamped
    assert cpu.others_between(first, Sample(1.0, 20.0, 22.0, 1.0), 2) == 2.0
    assert cpu.others_between(first, last, 0) == 0.0


def _fake_machine(monkeypatch, busy_share=0.5):
    """A clock, sleeps and CPU times under the test's control: of 2 CPUs, ``busy_share`` of
    the time busy with other programs (this process uses none)."""
    clock = [100.0]
    slept = []

    def fake_sample(cpus):
        return Sample(clock[0], busy=clock[0] * 2 * busy_share, total=clock[0] * 2, own=0.0)

    def fake_sleep(seconds):
        slept.append(round(seconds, 3))
        clock[0] += seconds

    monkeypatch.setattr(cpu, "sample", fake_sample)
    monkeypatch.setattr(cpu.time, "sleep", fake_sleep)
    monkeypatch.setattr(cpu, "affinity", lambda: [0, 1])
    monkeypatch.setattr(cpu, "cgroup_quota", lambda: None)
    return clock, slept


def test_a_window_is_at_least_the_minimum_and_forgets_old_samples(monkeypatch):
    clock, slept = _fake_machine(monkeypatch)
    policy = cpu.ThreadPolicy(sampler=False)
    machine = policy.machine()  # nothing measured before: a fresh window
    assert slept == [cpu.MIN_WINDOW] and machine.window == pytest.approx(cpu.MIN_WINDOW)
    assert machine.others == pytest.approx(1.0)  # one of two CPUs busy, not this process
    clock[0] += 1.0  # a job ran for a second: its samples make the window
    machine = policy.machine()
    assert slept == [cpu.MIN_WINDOW] and machine.window == pytest.approx(1.0)
    clock[0] += cpu.MAX_WINDOW + 1  # idle for a while: measured again, not averaged
    machine = policy.machine()
    assert slept == [cpu.MIN_WINDOW] * 2 and machine.window == pytest.approx(cpu.MIN_WINDOW)


def test_the_samplers_samples_make_the_window_the_last_half_second(monkeypatch):
    """A burst of another program a second ago is not "now": with samples every 0.1 s the
    window is the newest one at least WINDOW old, and the job does not wait."""
    clock, slept = _fake_machine(monkeypatch)
    policy = cpu.ThreadPolicy(sampler=False)
    for _ in range(20):  # what the sampler thread keeps: 2 s of samples
        policy._keep(cpu.sample([0, 1]))
        clock[0] += cpu.SAMPLE_EVERY
    machine = policy.machine()
    assert slept == [] and machine.window == pytest.approx(cpu.WINDOW)
    assert len(policy._ring) <= cpu.MAX_WINDOW / cpu.SAMPLE_EVERY + 2  # old ones dropped


def test_the_sampler_thread_starts_with_the_first_job_and_keeps_sampling():
    policy = cpu.ThreadPolicy()
    policy.machine()
    assert policy._thread is not None and policy._thread.daemon
    assert policy._thread.name == "studio-cpu-sampler"
    deadline = time.monotonic() + 5
    while len(policy._ring) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(policy._ring) >= 4
    first = policy._thread
    policy.machine()
    assert policy._thread is first  # one thread


def test_an_unmeasurable_machine_still_decides(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # (set for parallel test workers)
    monkeypatch.setattr(cpu, "sample", lambda cpus: None)
    decision = cpu.ThreadPolicy().begin(preference=0)
    assert decision.threads >= 1 and "not measurable" in decision.reason


def test_a_busy_program_in_another_session_is_seen():
    """The measurement, not a speed: a program spinning in its own session shows up as at
    least most of a CPU used by others (the other test workers can only add to it)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            start_new_session=True)
    try:
        time.sleep(0.3)  # it is running
        policy = cpu.ThreadPolicy()
        policy.machine()
        time.sleep(0.8)
        machine = policy.machine()
    finally:
        busy.kill()
        busy.wait(10)
    assert machine.window >= cpu.WINDOW - 0.05
    assert machine.others >= 0.7, machine


def test_begin_applies_the_threads_to_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setattr(cpu, "sample", lambda cpus: None)
    policy = cpu.ThreadPolicy()
    try:
        decision = policy.begin(preference=1)
        assert torch.get_num_threads() == 1 and policy.current is decision
        assert policy.threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_preference_is_read_from_the_settings(studio_home, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu, "sample", lambda cpus: None)
    Settings(cpu_threads=3).save()
    assert cpu.ThreadPolicy().begin() == Decision(3, "3 (Preferences → CPU threads)",
                                                  "preferences")


def test_a_ceiling_is_per_job_and_never_at_load(monkeypatch):
    from creative_studio.core.jobs import Request
    from plugins.music.generator import MusicGenerator
    from tests.fake_plugin import ThreadsGenerator

    asked = []
    monkeypatch.setattr(cpu.POLICY, "begin", lambda most, why: asked.append((most, why)))
    cpu.job_threads(ThreadsGenerator())  # a load: no request, no ceiling
    cpu.job_threads(ThreadsGenerator(), Request("thr", "generate", "abc"))
    cpu.job_threads(ThreadsGenerator(), Request("thr", "generate", "any"))
    cpu.job_threads(object(), Request("thr", "generate", "abc"))  # declares nothing
    assert asked == [(None, ""), (1, "a test engine that runs best on one thread"),
                     (None, ""), (None, "")]
    melody = (1, "the melody models write one token at a time")
    for task, ceiling in (("generate", melody), ("continue", melody),
                          ("interpolate", melody), ("vary", melody), ("harmonize", None)):
        assert MusicGenerator.thread_ceiling(Request("music", task)) == ceiling


def test_record_keeps_an_engines_own_and_ignores_results_without_metadata():
    decision = Decision(2, "2 of 2 cores: the machine is otherwise idle", "measured")

    class R:
        metadata = {"cpu": "the engine's"}

    assert cpu.record(R(), decision).metadata == {"cpu": "the engine's"}
    assert cpu.record(None, decision) is None


# -- jobs record it ---------------------------------------------------------------------------
@pytest.fixture
def threads_registry(tmp_path):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()  # in-process jobs set this process's threads
    yield from _registry(tmp_path)
    torch.set_num_threads(before)


def _registry(tmp_path):
    write_plugin(tmp_path, "thr", id="thr", generator="tests.fake_plugin:ThreadsGenerator")
    yield PluginRegistry.discover([tmp_path], entry_points=False)


def _one_job(registry, isolate: bool):
    runner = JobRunner(registry, device_preference="cpu", isolate=isolate)
    try:
        job = runner.submit(Request("thr", "generate", prompt="abc"))
        assert runner.wait(job, timeout=120) and job.state is JobState.DONE, job.error
    finally:
        runner.shutdown()
    return job


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "model-process"])
def test_jobs_record_the_policy_and_run_with_its_threads(threads_registry, isolate,
                                                        monkeypatch):
    """In the studio's process and in a real model process alike: the engine's ceiling
    (one thread) holds while the job runs, and the recipe says why."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    meta = _one_job(threads_registry, isolate).result.metadata
    assert meta["torch_threads"] == 1
    assert meta["cpu"]["threads"] == 1 and meta["cpu"]["policy"] == "measured"
    if cpu.physical_cores(cpu.affinity()) > 1:
        assert meta["cpu"]["reason"].endswith(": a test engine that runs best on one thread") \
            or "other programs use" in meta["cpu"]["reason"]
    assert meta["wait_policy"] is None  # the libraries' own waiting (measured faster)


def test_preferences_reach_the_model_process(threads_registry, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    Settings(cpu_threads=2).save()
    job = _one_job(threads_registry, isolate=True)
    assert job.result.metadata["torch_threads"] == 2
    assert job.result.metadata["cpu"] == {"threads": 2, "policy": "preferences",
                                          "reason": "2 (Preferences → CPU threads)"}
