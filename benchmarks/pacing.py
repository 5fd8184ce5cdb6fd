"""How both benchmark programs take their timed samples: in rounds that each start one
implementation later, each sample after a pause and a warm-up.

The pause lets the previous implementation's worker threads stop spinning. On two
cores, an idle OpenMP, BLAS or Eigen pool that still busy-waits steals a core from
the implementation being timed. Without it, in ``benchmarks.torch_train``'s rounds,
whichever implementation came first after TensorFlow's sample read 1.03-1.17x slower
than the other on ``dcgan_s1`` and ``conv_ae``: convt when it went first, torch when the
order was swapped (2026-11-23, docs/benchmarks_torch.md). After any pause, though, this machine
runs slowly for some tens of ms (a 4.5 ms call took 8 ms right after 0.2 s idle, and
4.5 ms again after 0.1 s of calls), so calls run for ``warm_seconds`` before the timed
ones. Rounds that start one implementation later each time spread whatever the
previous sample leaves behind (caches, allocator state, threads) over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Key = TypeVar("Key")


@dataclass(frozen=True)
class Pacing:
    """Before each sample: a pause, then calls for a while (see :func:`paced_sample`)."""

    settle_seconds: float = 0.2
    warm_seconds: float = 0.1


NO_PACING = Pacing(0.0, 0.0)
"""For --tiny runs, which check values and do not compare times."""


def paced_sample(call: Callable[[], Any], calls: int, pacing: Pacing) -> float:
    """Seconds per call: the mean of ``calls`` calls, after ``pacing``'s pause and warm-up.

    Example:
        >>> paced_sample(lambda: sum(range(100)), 10, NO_PACING) < 1.0
        True
    """
    time.sleep(pacing.settle_seconds)
    warm_until = time.perf_counter() + pacing.warm_seconds
    call()
    while time.perf_counter() < warm_until:
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def rotated_rounds(keys: Sequence[Key], repeat: int) -> Iterator[Key]:
    """Each key once per round, for ``repeat`` rounds, each round starting one key later.

    Example:
        >>> " ".join(rotated_rounds("abc", 4))
        'a b c b c a c a b a b c'
    """
    for turn in range(repeat if keys else 0):
        shift = turn % len(keys)
        yield from keys[shift:]
        yield from keys[:shift]
