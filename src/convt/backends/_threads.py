"""convt's own parallelism: chunks on worker threads, NumPy's BLAS single-threaded inside.

Also each thread's reusable scratch buffers (:func:`scratch`).

A multi-threaded BLAS call parallelizes only the GEMM, and its threads meet
at every call: on a busy two-core machine a call then waits for a descheduled
worker (medians of 8 ms for a 0.1 ms call were measured). Running whole chunks
(gather, GEMM, store) on ``workers()`` threads keeps both cores busy in the
memory-bound passes too, and each BLAS call stays on its thread. NumPy releases
the GIL in BLAS calls and array copies, so the threads run in parallel.

The number of workers is the BLAS thread count in force when convt is called
(``OPENBLAS_NUM_THREADS`` and friends), so convt uses the cores it is given.
Only NumPy's bundled OpenBLAS can be switched this way; with any other BLAS
the chunks run on the calling thread and the BLAS threads itself.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import math
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_OPENBLAS_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)

SCRATCH_KEEP_BYTES = 16 * 2**20
"""Scratch buffers up to this size are kept per thread and reused by later chunks."""

_scratch_space = threading.local()
_every_threads_buffers: list[dict[int, np.ndarray]] = []
_lock = threading.Lock()
_single_threaded_depth = 0
_saved_threads = 1


@functools.lru_cache(maxsize=1)
def openblas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) of the thread count of NumPy's bundled OpenBLAS, or None.

    Looked up on first use (not at import), in the libraries NumPy's wheel ships.
    """
    root = os.path.dirname(os.path.dirname(np.__file__))
    libraries = glob.glob(os.path.join(root, "numpy.libs", "*openblas*")) + glob.glob(
        os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*")
    )
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_SYMBOLS:
            if hasattr(library, get_name) and hasattr(library, set_name):
                getter, setter = getattr(library, get_name), getattr(library, set_name)
                getter.restype, getter.argtypes = ctypes.c_int, []
                setter.restype, setter.argtypes = None, [ctypes.c_int]
                return getter, setter
    return None


def workers() -> int:
    """Threads convt may use: the BLAS thread count in force, or 1 without control."""
    controls = openblas_controls()
    if controls is None:
        return 1
    with _lock:
        return max(1, _saved_threads if _single_threaded_depth else controls[0]())


def scratch(slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized array in this thread's reusable buffer number ``slot``.

    A fresh allocation of a few MiB is new memory from the OS every time, and
    its page faults cost as much as the work (outpad on one thread: 2.7 ms
    with fresh 3 MiB buffers, 1.1 ms without). Each thread keeps its buffers
    (at most :data:`SCRATCH_KEEP_BYTES` each), so concurrent chunks never
    share one; the caller must be done with a slot's array before asking for
    the same slot again.
    """
    size = math.prod(shape) * dtype.itemsize
    if size > SCRATCH_KEEP_BYTES:
        return np.empty(shape, dtype)
    buffers = getattr(_scratch_space, "buffers", None)
    if buffers is None:
        buffers = _scratch_space.buffers = {}
        with _lock:
            _every_threads_buffers.append(buffers)
    buffer = buffers.get(slot)
    if buffer is None or buffer.size < size:
        buffer = buffers[slot] = np.empty(size, np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def even_slices(length: int, count: int) -> list[slice]:
    """``range(length)`` cut into ``min(count, length)`` slices differing in size by one at most
    (the chunks that workers share out)."""
    count = min(count, length)
    return [slice(length * i // count, length * (i + 1) // count) for i in range(count)]


def release_scratch() -> None:
    """Drops every thread's kept scratch buffers (memory is then allocated afresh)."""
    with _lock:
        for buffers in _every_threads_buffers:
            buffers.clear()


@functools.lru_cache(maxsize=8)
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="convt")


def run(tasks: Iterable[Callable[[], None]]) -> None:
    """Runs independent tasks, on ``workers()`` threads with single-threaded BLAS.

    The calling thread is one of the workers: it starts on the tasks at once
    while the pool's threads wake up (waking one took ~50 us on a busy two-core
    machine), and every thread takes the next task when it is done with one.
    With one task, or no control over the BLAS, they run on the calling thread
    (single-threaded BLAS in the first case, the BLAS's own threads otherwise).
    """
    controls = openblas_controls()
    if controls is None:
        for task in tasks:
            task()
        return
    threads = workers()
    _enter_single_threaded(controls)
    try:  # the tasks are made here too: their set-up's BLAS calls stay on this thread
        tasks = list(tasks)
        size = min(threads, len(tasks))
        if size <= 1:
            for task in tasks:
                task()
        else:
            shared = _SharedTasks(tasks)
            for _ in range(size - 1):
                _pool(size - 1).submit(shared.work)
            shared.work()
            shared.wait()
    finally:
        _leave_single_threaded(controls)


class _SharedTasks:
    """Tasks that several threads take in turn until none is left."""

    def __init__(self, tasks: list[Callable[[], None]]) -> None:
        self._next = iter(tasks)
        self._left = len(tasks)
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._errors: list[BaseException] = []

    def work(self) -> None:
        """Runs tasks until none is left to take (a thread that comes late finds none)."""
        while (task := self._take()) is not None:
            try:
                task()
            except BaseException as error:  # re-raised on the calling thread by wait()
                self._errors.append(error)
            finally:
                self._finish_one()

    def wait(self) -> None:
        """Blocks until every task has finished; raises the first error a task raised."""
        self._finished.wait()
        if self._errors:
            raise self._errors[0]

    def _take(self) -> Callable[[], None] | None:
        with self._lock:
            return next(self._next, None)

    def _finish_one(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._finished.set()


def _enter_single_threaded(controls: tuple[Callable[[], int], Callable[[int], None]]) -> None:
    """Sets BLAS to one thread; nested or concurrent convt calls share one saved count."""
    global _single_threaded_depth, _saved_threads
    with _lock:
        if _single_threaded_depth == 0:
            _saved_threads = controls[0]()
            controls[1](1)
        _single_threaded_depth += 1


def _leave_single_threaded(controls: tuple[Callable[[], int], Callable[[int], None]]) -> None:
    """Restores the BLAS thread count when the last convt call in flight leaves."""
    global _single_threaded_depth
    with _lock:
        _single_threaded_depth -= 1
        if _single_threaded_depth == 0:
            controls[1](_saved_threads)
