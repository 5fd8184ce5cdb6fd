"""The driver that the fuzz tools share: batches of draws, each batch in a subprocess.

A tool defines ``draw(seed)`` (the arguments of one random call) and ``run_draw(seed)``
(None when the call agrees with its reference, else a message), and hands both to
:func:`main`. A batch that aborts or hangs ends only itself, and is reported with the
draw it was on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

Draw = Callable[[int], dict[str, Any]]
RunDraw = Callable[[int], "str | None"]


def worker(run_draw: RunDraw, first: int, stop: int) -> None:
    """Runs draws ``first .. stop - 1``, printing a line as each starts and each disagrees."""
    for seed in range(first, stop):
        print(f"start {seed}", flush=True)
        message = run_draw(seed)
        if message is not None:
            print(f"wrong {seed} {message}", flush=True)


def main(argv: list[str] | None, tool: str, draw: Draw, run_draw: RunDraw,
         description: str) -> int:
    """Runs ``--draws`` draws of the tool at path ``tool`` in batches; 1 if any was wrong
    or any batch died, else 0."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="the first draw's seed")
    parser.add_argument("--batch", type=int, default=100, help="draws per subprocess")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per batch")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(run_draw, *args.worker)
        return 0
    wrong, died, seed, stop = 0, 0, args.seed, args.seed + args.draws
    while seed < stop:
        end = min(seed + args.batch, stop)
        try:
            done = subprocess.run([sys.executable, tool, "--worker", str(seed), str(end)],
                                  capture_output=True, text=True, timeout=args.timeout)
            output, failed = done.stdout, done.returncode != 0
            why = f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
        except subprocess.TimeoutExpired as expired:
            output, failed, why = (expired.stdout or b"").decode(), True, "timed out"
        for line in output.splitlines():
            if line.startswith("wrong "):
                wrong += 1
                print(line)
        started = [int(line.split()[1]) for line in output.splitlines()
                   if line.startswith("start ")]
        if failed:
            died += 1
            last = started[-1] if started else seed
            print(f"died {last} {json.dumps(draw(last))} ({why})")
            end = last + 1
        seed = end
    print(f"{args.draws} draws from seed {args.seed}: {wrong} wrong, {died} batches died")
    return 1 if wrong or died else 0


def relative_error(result, expected) -> float:
    """The largest error of ``result``, relative to the largest magnitude of ``expected``
    (0 when ``expected`` is empty)."""
    import numpy as np

    if not np.size(expected):
        return 0.0
    result = np.asarray(result, dtype=np.float64)
    scale = max(float(np.abs(expected).max()), 1e-30)
    return float(np.abs(result - expected).max()) / scale
