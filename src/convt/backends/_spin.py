"""Waiting for another thread by polling, without the GIL: the pool's hand-offs.

A thread blocked on a lock or a queue sleeps, and on a virtual machine its
CPU halts: waking it took 50-110 us here, against a few microseconds for a
thread that polls a word in memory. :mod:`convt.backends._threads` therefore
lets the calling thread poll for the pool's tasks to finish
(:data:`~convt.backends._threads.SPIN_SECONDS`), and its pool's threads poll
briefly for the next call's work
(:data:`~convt.backends._threads.POOL_SPIN_SECONDS`), before either blocks as
usual.

The polling is a compiled loop (numba) that holds no GIL, so that the threads
doing work run beside it at full speed. A thread that has finished tasks adds
their count to the word its caller polls in that same GIL-free call: by the
time the caller sees the count, the GIL is free for it to take (had it been
counted before the thread's last Python steps, the caller would have slept on
the GIL as long as on a lock).

Without numba, or off x86-64 (the loop's ``pause``), nothing polls: the count
is added and :func:`wait_while` returns False at once.
"""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable

import numpy as np

CALIBRATION_POLLS = 2**16
"""Polls timed once to convert seconds to polls (about 2 ms on the CPUs measured)."""

NO_COUNT = np.zeros(1, np.int64)
"""The counter of a wait that counts nothing (zero is added to it)."""


def wait_while(
    word: np.ndarray, value: int, seconds: float, *, count: tuple[np.ndarray, int] = (NO_COUNT, 0)
) -> bool:
    """Polls ``word[0]`` (a one-element int64 array) for up to ``seconds`` while it equals
    ``value``, without the GIL; True when it changed, False when the time ran out or
    polling is unavailable (the caller then blocks instead).

    ``count``, ``(counter, amount)``: ``amount`` is first added to ``counter[0]``,
    atomically and in the same GIL-free call.
    """
    counter, amount = count
    loop = _loop()
    if loop is None:
        counter[0] += amount  # without polling, no other thread reads it meanwhile
        return False
    polls = max(0, int(seconds * _polls_per_second()))
    return loop(word, value, polls, counter, amount)


def available() -> bool:
    """True when the compiled polling loop can run here (numba, x86-64).

    Loads the loop and times it (once), on the calling thread: a few hundred
    milliseconds the first time, with numba's import.
    """
    return _loop() is not None and _polls_per_second() > 0


@functools.cache
def _loop() -> Callable[[np.ndarray, int, int, np.ndarray, int], bool] | None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        from convt.backends import _spin_loops
    except ImportError:  # no numba
        return None
    except Exception:  # noqa: BLE001 - a numba or LLVM that cannot build the loop:
        return None  # the threads then block, as they do without numba
    return _spin_loops.wait_while


@functools.cache
def _polls_per_second() -> float:
    """Polls of the loop in a second on this CPU (a ``pause`` each: about 30 ns on AMD's
    Zen 3, up to 140 cycles on Intel's cores since Skylake), timed once."""
    loop = _loop()
    word = np.zeros(1, np.int64)
    loop(word, 0, 1, NO_COUNT, 0)  # loaded from numba's cache before the timing
    start = time.perf_counter()
    loop(word, 0, CALIBRATION_POLLS, NO_COUNT, 0)
    return CALIBRATION_POLLS / max(time.perf_counter() - start, 1e-6)
