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

import contextlib
import ctypes
import functools
import glob
import math
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from convt.backends import _spin

_OPENBLAS_PREFIXES = ("scipy_openblas_", "openblas_")
_OPENBLAS_SUFFIXES = ("64_", "")

SMALL_GEMM_CORES = frozenset({"SkylakeX"})
"""OpenBLAS's core types whose float32 GEMMs of at most 10^6 multiply-adds run in its
small-matrix kernels, which skip packing the operands (:func:`small_gemm`). Only the
one measured is listed; other cores keep the chunking measured without it."""

SPIN_SECONDS = 0.001
"""How long the calling thread polls for the pool's tasks to finish, after each one that
finishes, before it blocks (:mod:`convt.backends._spin`). 0 blocks at once."""

POOL_SPIN_SECONDS = 50e-6
"""How long a pool thread polls for the next call's work after its tasks, before it blocks.
Long enough that the caller, seeing the count of those tasks, takes the GIL before this
thread needs it again; short, because a thread polling for 1 ms took a core from the BLAS
threads of the caller's next step (a two-thread 512^3 matmul right after a call, 1.23-1.38x
its time). 0 blocks at once."""

SCRATCH_KEEP_BYTES = 16 * 2**20
"""Scratch buffers up to this size are kept per thread and reused by later chunks."""

class _Buffers(dict):
    """One thread's scratch buffers by slot (a dict that can be weakly referenced, so that
    a finished thread's buffers are freed with its thread-local storage)."""

    __hash__ = object.__hash__  # by identity, for the WeakSet of every thread's buffers


class _ThreadState(threading.local):
    """Per thread: its scratch ``buffers``, the ``claims`` on them in flight, and
    ``blas_depth``, its convt calls holding BLAS single-threaded. Class defaults, so that
    reading them is an attribute load, never a call (see :func:`_enter_single_threaded`)."""

    buffers: _Buffers | None = None
    claims = 0
    blas_depth = 0


_scratch_space = _ThreadState()
_every_threads_buffers: weakref.WeakSet[_Buffers] = weakref.WeakSet()
_lock = threading.RLock()  # re-entrant: a signal handler may call convt inside a locked section
_single_threaded_depth = 0
_saved_threads = 1
_restore_pending = False
"""True from the moment convt sets BLAS to one thread until it has put the saved count back:
a call interrupted in between (KeyboardInterrupt) leaves it set, and the next call restores."""


@functools.lru_cache(maxsize=1)
def _openblas() -> tuple[ctypes.CDLL, str, str] | None:
    """(library, prefix, suffix) of the functions of NumPy's bundled OpenBLAS, or None.

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
        for prefix in _OPENBLAS_PREFIXES:
            for suffix in _OPENBLAS_SUFFIXES:
                if hasattr(library, f"{prefix}set_num_threads{suffix}"):
                    return library, prefix, suffix
    return None


def _openblas_function(name: str, restype: object, argtypes: list) -> Callable | None:
    """OpenBLAS's function ``name`` (without its prefix and suffix), or None."""
    found = _openblas()
    if found is None:
        return None
    library, prefix, suffix = found
    function = getattr(library, f"{prefix}{name}{suffix}", None)
    if function is not None:
        function.restype, function.argtypes = restype, argtypes
    return function


@functools.lru_cache(maxsize=1)
def openblas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) of the thread count of NumPy's bundled OpenBLAS, or None."""
    getter = _openblas_function("get_num_threads", ctypes.c_int, [])
    setter = _openblas_function("set_num_threads", None, [ctypes.c_int])
    if getter is None or setter is None:
        return None
    return getter, setter


@functools.lru_cache(maxsize=1)
def small_gemm() -> bool:
    """True when NumPy's OpenBLAS runs small float32 GEMMs without packing their operands.

    Measured on its SkylakeX kernels (AMD EPYC, one thread): a batch of GEMMs
    ``(tiles, C_in) @ (C_in, C_out)`` ran at 108-110 GFLOP/s with at most 10^6
    multiply-adds each, 75-82 above (256 x 128 channels; 16-24 tiles against 32-256).
    """
    return openblas_core() in SMALL_GEMM_CORES


@functools.lru_cache(maxsize=1)
def openblas_core() -> str | None:
    """The core type whose kernels NumPy's bundled OpenBLAS chose on this CPU (``"Haswell"``
    on an AVX2 host, ``"SkylakeX"`` on an AVX-512 one), or None without that library."""
    corename = _openblas_function("get_corename", ctypes.c_char_p, [])
    return None if corename is None else corename().decode()


def workers() -> int:
    """Threads convt may use: the BLAS thread count in force, or 1 without control."""
    controls = openblas_controls()
    if controls is None:
        return 1
    with _lock:
        held = _single_threaded_depth or _restore_pending  # the count in force is convt's 1
        return max(1, _saved_threads if held else controls[0]())


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
    if size > SCRATCH_KEEP_BYTES or _scratch_space.claims > 1:
        return np.empty(shape, dtype)  # too large to keep, or a call nested in another's use
    buffers = _scratch_space.buffers
    if buffers is None:
        buffers = _scratch_space.buffers = _Buffers()
        with _lock:
            _every_threads_buffers.add(buffers)
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
    """Drops every thread's kept scratch buffers (memory is then allocated afresh).

    A thread's buffers also go when the thread ends.
    """
    with _lock:
        for buffers in list(_every_threads_buffers):
            buffers.clear()


@contextlib.contextmanager
def scratch_claim() -> Iterator[None]:
    """Marks this thread's scratch as in use by one call, for the call's duration.

    A call nested in another on the same thread (from a signal handler, say)
    gets fresh arrays from :func:`scratch` instead of the buffers the outer
    call is still using.
    """
    _scratch_space.claims += 1
    try:
        yield
    finally:
        _scratch_space.claims -= 1


class _Pool:
    """``size`` threads, each working on the next :class:`_SharedTasks` put in its queue.

    A put is one C call that wakes a waiting thread. ``ThreadPoolExecutor.submit``
    (its future, locks and thread-count check) had taken 57-105 us of a 1 ms call inside
    the benchmark's loop, before the calling thread could start on its own task
    (docs/architecture.md, "Per-call cost inside a loop").

    The threads are kept off the CPU that the calling thread runs on
    (:func:`_keep_off`). Linux often woke the thread on the caller's CPU, where it
    preempted the caller, so that the two tasks ran one after the other while the
    other core idled (58-75% of two-task calls after a pause on a two-core VM;
    docs/architecture.md, "Threads").
    """

    def __init__(self, size: int) -> None:
        # Loaded here, before the threads start: a thread that loaded it itself, as it began
        # to poll, held the GIL for much of the 0.2-0.9 s that took, and the calls made
        # meanwhile ran 2-7x slower, their caller doing every task (iSTFT-like, one process).
        _spin.available()
        self._queue: queue.SimpleQueue[_SharedTasks] = queue.SimpleQueue()
        self._posts = np.zeros(1, np.int64)  # counts puts, for threads polling for work
        self._posting = threading.Lock()
        self._thread_ids: list[int] = []
        self._kept_off: int | None = None
        for number in range(size):
            thread = threading.Thread(target=self._serve, name=f"convt_{number}", daemon=True)
            thread.start()  # returns once the thread runs, its native_id set
            if thread.native_id is not None:
                self._thread_ids.append(thread.native_id)

    def submit(self, shared: _SharedTasks) -> None:
        self._kept_off = _keep_off(self._thread_ids, self._kept_off)
        self._queue.put(shared)
        with self._posting:  # counted after the put: a thread seeing the count finds the work
            self._posts[0] += 1

    def _serve(self) -> None:
        count = (_spin.NO_COUNT, 0)
        while True:
            shared = self._next(count)
            count = (shared.counted, _work_on_pool_thread(shared))

    def _next(self, count: tuple[np.ndarray, int]) -> _SharedTasks:
        """The next tasks put: polled for up to :data:`POOL_SPIN_SECONDS`, then waited for.
        ``count`` (the last tasks' counter and how many this thread ran) is counted first,
        in the call that polls (see :mod:`convt.backends._spin`)."""
        while True:
            seen = int(self._posts[0])
            if not self._queue.empty():
                _spin.wait_while(self._posts, seen, 0, count=count)
                return self._queue.get()  # blocks only if another pool thread took it first
            changed = _spin.wait_while(self._posts, seen, POOL_SPIN_SECONDS, count=count)
            count = (_spin.NO_COUNT, 0)
            if not changed:
                return self._queue.get()


def _keep_off(thread_ids: list[int], kept_off: int | None) -> int | None:
    """Lets the threads ``thread_ids`` run on every CPU the calling thread may use but the one
    it runs on; returns that CPU. Nothing changes when it is ``kept_off`` already, or where
    the CPU or the affinity cannot be read or set (not Linux)."""
    cpu = _current_cpu()
    if cpu is None or cpu == kept_off:
        return kept_off
    with contextlib.suppress(OSError):  # a sandbox refusing the calls, a thread that is gone
        allowed = os.sched_getaffinity(0)
        others = allowed - {cpu} or allowed
        for thread_id in thread_ids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread_id, others)
    return cpu


@functools.cache
def _sched_getcpu() -> Callable[[], int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        function = ctypes.CDLL(None).sched_getcpu
    except (AttributeError, OSError):
        return None
    function.restype, function.argtypes = ctypes.c_int, []
    return function


def _current_cpu() -> int | None:
    """The CPU the calling thread runs on, or None where that cannot be asked."""
    getcpu = _sched_getcpu()
    cpu = getcpu() if getcpu is not None else -1
    return cpu if cpu >= 0 else None


@functools.lru_cache(maxsize=4)
def _pool(size: int) -> _Pool:
    return _Pool(size)


def run(tasks: Iterable[Callable[[], None]], *, parallel: bool = True) -> None:
    """Runs independent tasks, on ``workers()`` threads with single-threaded BLAS.

    The calling thread is one of the workers: it starts on the tasks at once
    while the pool's threads wake up (waking one took ~50 us on a busy two-core
    machine), and every thread takes the next task when it is done with one.
    With one task or ``parallel=False`` (a call too small to share out) they run
    on the calling thread with single-threaded BLAS; with no control over the
    BLAS, on the calling thread with the BLAS's own threads.
    """
    global _single_threaded_depth, _restore_pending
    controls = openblas_controls()
    if controls is None:
        for task in tasks:
            task()
        return
    threads = workers()
    try:  # the tasks are made here too: their set-up's BLAS calls stay on this thread
        _enter_single_threaded(controls)  # inside the try: see its docstring
        tasks = list(tasks)
        if threads <= 1 or len(tasks) <= 1 or not parallel:
            for task in tasks:
                task()
        else:
            shared = _SharedTasks(tasks)
            for _ in range(min(threads, len(tasks)) - 1):
                _pool(threads - 1).submit(shared)
            shared.wait(shared.work())
    finally:  # inlined, not calls: an interrupt at a callee's entry would skip the count
        interrupted = None
        while True:  # take the lock even if an interrupt comes while waiting or just after
            try:
                _lock.acquire()
                break
            except BaseException as error:  # re-raised below, once the count is right
                interrupted = error
                if _lock._is_owned():  # it came after the lock was taken
                    break
        try:
            if _scratch_space.blas_depth > 0:
                _single_threaded_depth -= 1
                _scratch_space.blas_depth -= 1
            if _single_threaded_depth == 0 and _restore_pending:
                controls[1](_saved_threads)
                _restore_pending = False
        finally:
            _lock.release()
        if interrupted is not None:
            raise interrupted


def _work_on_pool_thread(shared: _SharedTasks) -> int:
    with scratch_claim():
        return shared.work()


class _SharedTasks:
    """Tasks that several threads take in turn until none is left."""

    def __init__(self, tasks: list[Callable[[], None]]) -> None:
        self._next = iter(tasks)
        self._total = self._left = len(tasks)
        self.counted = np.zeros(1, np.int64)  # tasks that pool threads ran, once they poll
        self._lock = threading.Lock()
        self._finished = threading.Lock()  # held until the last task finishes (an Event's
        self._finished.acquire()  # Condition costs more to make, in a call's time)
        self._errors: list[BaseException] = []

    def work(self) -> int:
        """Runs tasks until none is left to take (a thread that comes late finds none);
        returns how many it ran."""
        ran = 0
        while (task := self._take()) is not None:
            try:
                task()
            except BaseException as error:  # re-raised on the calling thread by wait()
                self._errors.append(error)
            finally:
                self._finish_one()
                ran += 1
        return ran

    def wait(self, ran: int) -> None:
        """Waits until every task has finished, given that the calling thread ``ran`` of
        them: polls :attr:`counted` for up to :data:`SPIN_SECONDS` after each change, then
        blocks. Raises the first error a task raised."""
        while (counted := int(self.counted[0])) < self._total - ran and _spin.wait_while(
                self.counted, counted, SPIN_SECONDS):
            pass
        self._finished.acquire()
        if self._errors:
            raise self._errors[0]

    def _take(self) -> Callable[[], None] | None:
        with self._lock:
            return next(self._next, None)

    def _finish_one(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._finished.release()


def _enter_single_threaded(controls: tuple[Callable[[], int], Callable[[int], None]]) -> None:
    """Sets BLAS to one thread; nested or concurrent convt calls share one saved count.

    An exception can arrive between any two steps (a KeyboardInterrupt is
    raised where Python checks for signals: at calls and function entries).
    The steps are ordered so that the state left is one :func:`run`'s cleanup
    or the next call repairs: the count is marked for restoring before it is
    set, and the shared and the thread's depth change together, by attribute
    stores with no call between them.
    """
    global _single_threaded_depth, _saved_threads, _restore_pending
    with _lock:
        if _single_threaded_depth == 0:
            if _restore_pending:  # an earlier call was interrupted before restoring
                controls[1](_saved_threads)
            _saved_threads = controls[0]()
            _restore_pending = True
            controls[1](1)
        _single_threaded_depth += 1
        _scratch_space.blas_depth += 1


def _reset_in_forked_child() -> None:
    """After ``fork``: only the forking thread exists. convt's lock may have been held by a
    thread that is gone, its pool's threads are gone, and calls in flight on other threads
    will never leave; so the state starts afresh, with the BLAS count they saved."""
    global _lock, _single_threaded_depth, _restore_pending, _every_threads_buffers
    _lock = threading.RLock()
    if _restore_pending and openblas_controls.cache_info().currsize:
        controls = openblas_controls()
        if controls is not None:
            controls[1](_saved_threads)
    _single_threaded_depth, _restore_pending = 0, False
    _scratch_space.blas_depth = 0
    _pool.cache_clear()
    own = _scratch_space.buffers
    _every_threads_buffers = weakref.WeakSet([own] if own is not None else [])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_forked_child)
