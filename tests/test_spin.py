"""The pool's polling hand-offs (``backends/_spin.py``): what each side sees, whatever the
timing; with polling, without it, and with waits that run out and fall back to blocking."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from convt import ops
from convt.backends import _spin, _threads

POLLING = pytest.mark.skipif(not _spin.available(), reason="no compiled polling loop (numba)")
BLAS = pytest.mark.skipif(_threads.openblas_controls() is None,
                          reason="NumPy's BLAS is not OpenBLAS")
RNG = np.random.default_rng(5)


def _set_later(word, value, delay):
    def write():
        time.sleep(delay)
        word[0] = value

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@POLLING
def test_a_wait_sees_another_threads_write():
    word = np.zeros(1, np.int64)
    writer = _set_later(word, 7, 0.01)
    assert _spin.wait_while(word, 0, 60.0)  # returns at the write, long before the minute
    writer.join()
    assert word[0] == 7


@POLLING
def test_a_wait_on_a_word_that_never_changes_runs_out():
    assert not _spin.wait_while(np.zeros(1, np.int64), 0, 0.001)


@POLLING
def test_a_wait_on_a_word_already_changed_returns_at_once():
    assert _spin.wait_while(np.full(1, 3, np.int64), 0, 0.0)


def test_the_count_is_added_before_the_wait():
    counter = np.full(1, 2, np.int64)
    _spin.wait_while(np.zeros(1, np.int64), 1, 0.001, count=(counter, 3))
    assert counter[0] == 5


def test_without_the_compiled_loop_nothing_polls(monkeypatch):
    monkeypatch.setattr(_spin, "_loop", lambda: None)
    counter = np.zeros(1, np.int64)
    word = np.ones(1, np.int64)
    assert not _spin.wait_while(word, 0, 60.0, count=(counter, 4))  # even though it changed
    assert counter[0] == 4
    assert not _spin.available()


@POLLING
def test_telling_whether_it_polls_loads_and_times_the_loop_on_the_calling_thread():
    _spin._polls_per_second.cache_clear()
    assert _spin.available()
    assert _spin._polls_per_second.cache_info().currsize == 1


def test_a_new_pool_loads_the_loop_before_its_threads_start(monkeypatch):
    """Loaded by a pool thread as it began to poll, it slowed the calls made meanwhile."""
    events = []
    monkeypatch.setattr(_spin, "available", lambda: events.append("loaded") or True)
    monkeypatch.setattr(threading.Thread, "start", lambda thread: events.append("started"))
    _threads._Pool(2)
    assert events == ["loaded", "started", "started"]


@POLLING
def test_counts_added_from_many_threads_at_once_all_arrive():
    counter = np.zeros(1, np.int64)
    word = np.ones(1, np.int64)
    start = threading.Barrier(4)

    def add_many():
        start.wait()
        for _ in range(2000):
            _spin.wait_while(word, 0, 0.0, count=(counter, 1))

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter[0] == 8000


@BLAS
@pytest.mark.parametrize("seconds", [0.0, 1e-6, 0.001, 2.0])
def test_calls_back_to_back_and_after_pauses_run_every_task(monkeypatch, seconds):
    """The pool thread finds each call's work whether it still polls, has run out, or
    blocks from the start; the caller waits for all of it, polling or blocked."""
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    monkeypatch.setattr(_threads, "SPIN_SECONDS", seconds)
    monkeypatch.setattr(_threads, "POOL_SPIN_SECONDS", seconds)
    for pause in (0.0, 0.0, 0.003, 0.0, 0.02, 0.0):
        time.sleep(pause)
        ran, meeting = [], threading.Barrier(2, timeout=10)

        def meet(ran=ran, meeting=meeting):
            ran.append(threading.get_ident())
            meeting.wait()  # the two first tasks run at once, so the pool took one

        slow = [lambda ran=ran: (time.sleep(0.005), ran.append(0))] * 3
        _threads.run([meet, meet, *slow])
        assert len(ran) == 5 and len(set(ran) - {0}) == 2


@BLAS
def test_the_caller_stops_polling_and_blocks_for_a_long_task(monkeypatch):
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    monkeypatch.setattr(_threads, "SPIN_SECONDS", 1e-4)
    done = []
    started = threading.Event()

    def long_task():
        started.set()
        time.sleep(0.05)
        done.append("long")

    def short_task():
        started.wait(10)  # the other thread took the long one
        done.append("short")

    _threads.run([long_task, short_task])
    assert sorted(done) == ["long", "short"]


@BLAS
@pytest.mark.parametrize("seconds", [0.0, 0.001])
def test_parallel_op_calls_in_a_loop_are_right_with_and_without_polling(monkeypatch, seconds):
    monkeypatch.setattr(_threads, "SPIN_SECONDS", seconds)
    monkeypatch.setattr(_threads, "POOL_SPIN_SECONDS", seconds)
    x = RNG.standard_normal((8, 15, 15, 64), dtype=np.float32)
    w = RNG.standard_normal((3, 3, 32, 64), dtype=np.float32)
    kwargs = dict(strides=2, padding="valid", output_padding=1)
    with monkeypatch.context() as blocking:
        blocking.setattr(_threads, "SPIN_SECONDS", 0.0)
        blocking.setattr(_threads, "POOL_SPIN_SECONDS", 0.0)
        expected = ops.conv_transpose(x, w, **kwargs)
    for _ in range(20):
        np.testing.assert_array_equal(ops.conv_transpose(x, w, **kwargs), expected)


@POLLING
@BLAS
def test_the_caller_sees_the_pools_count_rather_than_running_out(monkeypatch):
    """The pool thread counts its tasks in the call that polls for the next work: a caller
    polling for them sees the count arrive and never waits its polling time out."""
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    monkeypatch.setattr(_threads, "SPIN_SECONDS", 2.0)
    caller, outcomes = threading.get_ident(), []
    polled = _spin.wait_while

    def recorded(*args, **kwargs):
        changed = polled(*args, **kwargs)
        if threading.get_ident() == caller:
            outcomes.append(changed)
        return changed

    monkeypatch.setattr(_spin, "wait_while", recorded)
    for _ in range(5):
        started = threading.Event()
        _threads.run([lambda started=started: (started.set(), time.sleep(0.01)),
                      lambda started=started: started.wait(10)])
    assert False not in outcomes
