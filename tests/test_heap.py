"""The model process's C heap (creative_studio/core/heap.py): freed memory reused within a
job instead of faulted in again, given back after a job that left much of it free."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from creative_studio.core import cpu, heap
from creative_studio.core.jobs import Request

glibc = pytest.mark.skipif(heap._libc() is None, reason="the allocator is not glibc's")

# A job's pattern: many blocks below glibc's first mmap threshold (128 KiB) allocated,
# touched and freed, again and again — the heap grows, its top is freed, and glibc gives
# the top back and faults it in again unless the thresholds are set.
ROUNDS = """
import resource, sys
sys.path.insert(0, {root!r})
from creative_studio.core import heap
if {tune}:
    assert heap.tune()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def one_round():
    blocks = [bytearray(96 * 1024) for _ in range(120)]  # ~11 MiB, zero-filled: touched
    del blocks
one_round()
start = faults()
for _ in range(20):
    one_round()
print(faults() - start)
"""


def _faults_in_rounds(tune: bool) -> int:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(ROUNDS.format(
        root=root, tune=tune))], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


@glibc
def test_tuned_heap_reuses_freed_memory_instead_of_faulting_it_in_again():
    untuned = _faults_in_rounds(tune=False)
    tuned = _faults_in_rounds(tune=True)
    # 20 rounds of ~11 MiB: the untuned heap gives the top back each round (~2,800 pages)
    assert untuned > 20 * 1000, untuned
    assert tuned < 200, tuned


def _resident() -> int:
    """This process's resident memory in bytes."""
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc
def test_release_gives_back_a_large_jobs_free_memory_and_keeps_a_small_ones():
    heap.tune()
    blocks = [bytearray(512 * 1024) for _ in range(200)]  # ~100 MiB in the heap
    del blocks[::2]  # ~50 MiB of holes between live blocks: no top to trim, only pages
    free = heap.free_bytes()
    if free is not None:  # glibc ≥ 2.33 says how much is free (older: always trimmed)
        assert free > 45 * heap.MIB
        assert heap.release(keep=1 << 62) is False  # less free than kept: nothing done
    before = _resident()
    assert heap.release(keep=10 * heap.MIB) is True
    assert _resident() < before - 40 * heap.MIB  # the holes' pages went back
    del blocks


def test_without_glibc_nothing_is_set_or_released(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    assert heap.tune() is False
    assert heap.release() is False
    assert heap.free_bytes() is None


def test_every_job_is_tuned_before_and_released_after_even_when_it_fails(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "tune", lambda: calls.append("tune") or True)
    monkeypatch.setattr(heap, "release", lambda: calls.append("release") or False)
    monkeypatch.setattr(cpu.POLICY, "begin", lambda *a, **k: cpu.Decision(1, "test", "test"))

    class Fails:
        def generate(self, request, progress, inputs):
            calls.append("generate")
            raise RuntimeError("the engine broke")

    with pytest.raises(RuntimeError, match="the engine broke"):
        cpu.generate(Fails(), Request("x", "generate"), None, {})
    assert calls == ["tune", "generate", "release"]
    calls.clear()
    cpu.job_threads(Fails())  # a load: tuned too (its allocations follow the same rules)
    assert calls == ["tune"]
