"""Threads, signals and fork: values stay right and convt's process state comes back.

Each test makes the race it guards against as likely as it can and checks what must hold
whatever the interleaving, so that none depends on timing to pass.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import threading

import numpy as np
import pytest

import convt
from convt import ops
from convt._shapes import plan_conv_transpose
from convt.backends import _threads
from convt.backends import numpy as numpy_backend

BLAS = pytest.mark.skipif(_threads.openblas_controls() is None,
                          reason="NumPy's BLAS is not OpenBLAS")
RNG = np.random.default_rng(11)


def _blas_state():
    return _threads.openblas_controls()[0](), _threads._single_threaded_depth


def _first_calls_at_once(layer, x, count):
    """``count`` threads call ``layer(x)`` released together; their outputs."""
    start, outputs = threading.Barrier(count), []

    def first_call():
        start.wait()
        outputs.append(layer(x))

    threads = [threading.Thread(target=first_call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outputs


@contextlib.contextmanager
def _toggling(layer, sets):
    """``layer.set_weights`` of each of ``sets`` in turn, on another thread, meanwhile."""
    stop = threading.Event()

    def toggle():
        while not stop.is_set():
            for weights in sets:
                layer.set_weights(weights)

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        yield
    finally:
        stop.set()
        toggler.join()


def test_threads_calling_an_unbuilt_layer_at_once_build_it_once():
    x = RNG.standard_normal((1, 5, 5, 2)).astype(np.float32)
    for _ in range(20):
        layer = convt.Conv2DTranspose(3, 3)
        outputs = _first_calls_at_once(layer, x, 4)
        assert len(layer.get_weights()) == 2
        for out in outputs:
            np.testing.assert_array_equal(out, layer(x))


def test_a_call_beside_set_weights_sees_one_set_of_weights():
    layer = convt.Conv2DTranspose(3, 3, input_shape=(5, 5, 2))
    x = RNG.standard_normal((1, 5, 5, 2)).astype(np.float32)
    sets = [[RNG.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()]
            for _ in range(2)]
    expected = []
    for weights in sets:
        layer.set_weights(weights)
        expected.append(layer(x))
    with _toggling(layer, sets):
        seen = [layer(x) for _ in range(400)]
    for out in seen:
        assert any(np.array_equal(out, e) for e in expected)


@BLAS
def test_interrupts_at_any_moment_leave_a_state_the_next_call_repairs():
    x = RNG.standard_normal((1, 4, 4, 8)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 4, 8)).astype(np.float32)
    expected = ops.conv_transpose(x, w, strides=2, padding="same")
    before = _blas_state()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        for attempt in range(300):  # timers of 1-300 us land all over the calls
            try:
                signal.setitimer(signal.ITIMER_REAL, 1e-6 * (1 + attempt * 7919 % 300))
                while True:
                    ops.conv_transpose(x, w, strides=2, padding="same")
            except KeyboardInterrupt:
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    np.testing.assert_array_equal(ops.conv_transpose(x, w, strides=2, padding="same"), expected)
    assert _blas_state() == before


@BLAS
def test_a_call_from_a_signal_handler_inside_a_call_is_right_on_both_sides():
    x = RNG.standard_normal((2, 12, 12, 16)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 8, 16)).astype(np.float32)
    expected = ops.conv_transpose(x, w, strides=2, padding="same")
    inner = []

    def nested(signum, frame):  # the same shape: the same scratch slots as the outer call
        inner.append(ops.conv_transpose(x, w, strides=2, padding="same"))

    previous = signal.signal(signal.SIGALRM, nested)
    outer = []
    try:
        signal.setitimer(signal.ITIMER_REAL, 2e-3, 2e-3)  # longer than a call: no livelock
        for _ in range(300):
            outer.append(ops.conv_transpose(x, w, strides=2, padding="same"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert inner
    for out in outer + inner:
        np.testing.assert_array_equal(out, expected)
    assert _blas_state()[1] == 0


@BLAS
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_during_calls_on_other_threads_can_compute():
    x = RNG.standard_normal((8, 16, 16, 32)).astype(np.float32)  # a pooled call
    w = RNG.standard_normal((3, 3, 32, 32)).astype(np.float32)
    expected = ops.conv_transpose(x, w, strides=2, padding="same")
    before = _blas_state()
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            ops.conv_transpose(x, w, strides=2, padding="same")

    workers = [threading.Thread(target=busy) for _ in range(2)]
    for thread in workers:
        thread.start()
    try:
        for _ in range(8):
            pid = os.fork()
            if pid == 0:  # the child: compute, compare, and report by exit status only
                signal.alarm(30)  # a hang ends the child rather than the test run
                ok = (np.array_equal(ops.conv_transpose(x, w, strides=2, padding="same"),
                                     expected)
                      and _blas_state() == before)
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        for thread in workers:
            thread.join()


def test_finished_threads_leave_no_scratch_behind():
    x = RNG.standard_normal((4, 16, 16, 32)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 32, 32)).astype(np.float32)
    for _ in range(6):
        thread = threading.Thread(target=ops.conv_transpose, args=(x, w), kwargs={"strides": 2})
        thread.start()
        thread.join()
    gc.collect()
    assert len(_threads._every_threads_buffers) <= threading.active_count()


@BLAS
def test_small_calls_never_wake_the_pool(monkeypatch):
    def no_pool(size):
        raise AssertionError("a call below PARALLEL_MIN_MACS used the pool")

    monkeypatch.setattr(_threads, "_pool", no_pool)
    x = RNG.standard_normal((1, 8, 8, 64)).astype(np.float32)
    w = RNG.standard_normal((5, 5, 64, 64)).astype(np.float32)
    prepared = ops.PreparedKernel(w)  # Winograd: several tasks, one worker's worth of work
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    for algorithm in ("winograd", "phases", "scatter"):
        kernel = prepared if algorithm == "winograd" else w
        numpy_backend.conv_transpose(x, kernel, args, algorithm=algorithm)


def test_weights_argument_is_in_place_before_any_thread_computes():
    x = np.ones((1, 2, 2, 1), np.float32)
    weights = [np.ones((3, 3, 2, 1), np.float32), np.zeros(2, np.float32)]
    expected = convt.Conv2DTranspose(2, 3, weights=weights)(x)
    for _ in range(30):
        layer = convt.Conv2DTranspose(2, 3, kernel_initializer="zeros", weights=weights)
        for out in _first_calls_at_once(layer, x, 3):
            np.testing.assert_array_equal(out, expected)


def test_an_initializer_may_build_another_layer_on_another_thread():
    inner = convt.Conv1DTranspose(1, 2)

    def initializer(shape, dtype=None):
        worker = threading.Thread(target=inner, args=(np.ones((1, 3, 1)),))
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the inner layer's build waited for the outer one"
        return np.ones(shape, dtype)

    convt.Conv1DTranspose(1, 2, kernel_initializer=initializer)(np.ones((1, 3, 1)))
    assert inner.built


def test_get_weights_beside_set_weights_returns_one_set():
    layer = convt.Conv1DTranspose(2, 3, input_shape=(4, 1))
    sets = [[np.full(w.shape, value, np.float32) for w in layer.get_weights()]
            for value in (1.0, 2.0)]
    with _toggling(layer, sets):
        for _ in range(2000):
            kernel, bias = layer.get_weights()
            assert kernel.flat[0] == bias[0]


@BLAS
def test_interrupts_beside_calls_on_other_threads_leave_no_lasting_state():
    x = RNG.standard_normal((4, 12, 12, 16)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 16, 16)).astype(np.float32)
    ops.conv_transpose(x, w, strides=2)  # compile and warm up before any interrupt
    before, stop = _blas_state(), threading.Event()

    def busy():
        while not stop.is_set():
            ops.conv_transpose(x, w, strides=2)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    workers = [threading.Thread(target=busy) for _ in range(2)]
    for thread in workers:
        thread.start()
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        for attempt in range(200):
            try:
                signal.setitimer(signal.ITIMER_REAL, 1e-6 * (1 + attempt * 7919 % 300))
                while True:
                    ops.conv_transpose(x, w, strides=2)
            except KeyboardInterrupt:
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        stop.set()
        for thread in workers:
            thread.join()
    ops.conv_transpose(x, w, strides=2)
    assert _blas_state() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_beside_set_weights_can_call_the_layer():
    layer = convt.Conv1DTranspose(2, 3, input_shape=(4, 1))
    x = np.ones((1, 4, 1), np.float32)
    sets = [layer.get_weights(), [w + 1 for w in layer.get_weights()]]
    with _toggling(layer, sets):
        for _ in range(8):
            pid = os.fork()
            if pid == 0:
                signal.alarm(30)
                layer(x)
                convt.Conv1DTranspose(2, 3)(x)  # a first call: the build lock too
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0


def test_threads_making_the_first_call_to_a_sequential_model_build_it_once():
    x = np.ones((1, 4, 1))
    for _ in range(20):
        model = convt.Sequential([convt.Conv1DTranspose(2, 3), convt.Conv1DTranspose(1, 2)])
        outputs = _first_calls_at_once(model, x, 3)
        assert len(outputs) == 3
        for out in outputs:
            np.testing.assert_array_equal(out, model(x))


@pytest.mark.parametrize(("corename", "expected"), [
    (b"SkylakeX", True), (b"Haswell", False), (b"Zen", False), (None, False),
])
def test_small_gemm_only_on_the_measured_core(monkeypatch, corename, expected):
    def function(name, restype, argtypes):
        assert name == "get_corename"
        return None if corename is None else (lambda: corename)

    monkeypatch.setattr(_threads, "_openblas_function", function)
    _threads.small_gemm.cache_clear()
    _threads.openblas_core.cache_clear()
    try:
        assert _threads.small_gemm() is expected
        assert _threads.openblas_core() == (corename and corename.decode())
    finally:
        _threads.small_gemm.cache_clear()
        _threads.openblas_core.cache_clear()


@BLAS
def test_openblas_functions_are_found_by_their_plain_names():
    """The thread count and the core name come from the same library (64-bit or not)."""
    assert _threads._openblas_function("get_corename", ctypes.c_char_p, []) is not None
    assert _threads._openblas_function("no_such_function", None, []) is None


@contextlib.contextmanager
def _idle_thread():
    """A thread that waits until the block ends; yields its native id."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        yield thread.native_id
    finally:
        done.set()
        thread.join()


def _others(cpu):
    allowed = os.sched_getaffinity(0)
    return allowed - {cpu} or allowed


def test_pool_threads_are_kept_off_the_calling_threads_cpu():
    with _idle_thread() as thread_id:
        cpu = _threads._keep_off([thread_id], None)
        if cpu is None:  # no sched_getcpu or affinity here: nothing is changed
            assert not hasattr(os, "sched_setaffinity") or _threads._sched_getcpu() is None
            return
        assert os.sched_getaffinity(thread_id) == _others(cpu)
        os.sched_setaffinity(thread_id, os.sched_getaffinity(0))
        assert _threads._keep_off([thread_id], cpu) == cpu  # kept off it already: no call
        assert os.sched_getaffinity(thread_id) == os.sched_getaffinity(0)
        assert _threads._keep_off([thread_id + 10**9], None) is not None  # a thread gone


def test_a_caller_allowed_one_cpu_leaves_the_pool_on_it():
    if _threads._current_cpu() is None:
        assert _threads._keep_off([threading.get_native_id()], 7) == 7
        return
    kept_on = {}

    def restricted_caller(thread_id):
        os.sched_setaffinity(0, {_threads._current_cpu()})
        kept_on["cpu"] = _threads._keep_off([thread_id], None)

    with _idle_thread() as thread_id:
        caller = threading.Thread(target=restricted_caller, args=(thread_id,))
        caller.start()
        caller.join()
        assert os.sched_getaffinity(thread_id) == {kept_on["cpu"]}


@BLAS
def test_a_parallel_call_keeps_the_pool_off_the_callers_cpu(monkeypatch):
    cpu = _threads._current_cpu()
    if cpu is not None:  # the CPU it is on is fixed, so that the call keeps the pool off it
        cpu = min(os.sched_getaffinity(0))
        monkeypatch.setattr(_threads, "_current_cpu", lambda: cpu)
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    x = RNG.standard_normal((4, 16, 16, 64)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 64, 64)).astype(np.float32)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    numpy_backend.conv_transpose(x, w, args, algorithm="scatter")
    pool = _threads._pool(1)
    assert pool._kept_off == cpu
    if cpu is not None:
        assert [os.sched_getaffinity(thread) for thread in pool._thread_ids] == [_others(cpu)]


@pytest.mark.parametrize("refused", ["sched_getaffinity", "sched_setaffinity"])
def test_a_sandbox_refusing_affinity_calls_leaves_calls_working(monkeypatch, refused):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_threads, "_current_cpu", lambda: 0)
    monkeypatch.setattr(os, refused, refuse, raising=False)
    assert _threads._keep_off([threading.get_native_id()], None) == 0
    monkeypatch.setattr(_threads, "workers", lambda: 2)
    x = RNG.standard_normal((4, 16, 16, 64)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 64, 64)).astype(np.float32)
    args, _ = plan_conv_transpose(x.shape, w.shape, strides=2, padding="same")
    expected = numpy_backend.conv_transpose(x.astype(np.float64), w, args)
    monkeypatch.setattr(_threads._pool(1), "_kept_off", None)
    got = numpy_backend.conv_transpose(x, w, args, algorithm="scatter")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
