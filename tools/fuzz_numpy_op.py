"""Fuzz convt's NumPy backend against an independent reference, on every path it has.

The test suite checks each algorithm on small, chosen geometries; this draws calls large
enough to be cut into chunks, shared by two workers, split by kernel parts and sent to
Winograd's tiles, with the knobs that choose those paths set at random. Run it after a
change to the NumPy backend, and on a new kind of host::

    .venv/bin/python tools/fuzz_numpy_op.py --draws 2000 --seed 0

Each draw is a random call: rank 1-3 (1-D kernels up to 40 taps and strides up to 16),
both data formats, strides, dilations, paddings, ``output_padding`` (up to the stride),
1-256 channels, 1-128 filters, contiguous, sliced or Fortran-ordered inputs, float32
(most draws), float64 or float16 (the kernel in another of them one time in ten). It runs
through ``convt.ops.conv_transpose`` (the rule picks) or with one algorithm forced, with a
plain kernel, a :class:`PreparedKernel`, the same plain kernel three times (recognized
from the second call), or with its values changed in place before the third call (which
must not be answered from the copy kept of it); with overlap-add's compiled passes on or
off, one or two workers, the pool used even for small calls, a random memory budget (many
chunks), Winograd's splits at small sizes, and sometimes from two threads at once. The
output and scratch buffers arrive full of NaN, so an element left unwritten shows. Each
result must equal ``tests/reference.py``'s tap-at-a-time scatter in float64 (from the
rounded inputs), in shape, dtype (NumPy's promotion) and value, and the inputs must be left
as they were. Calls that take more than 5 * 10^7 multiply-adds are shrunk first.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fuzzing

ROOT = Path(__file__).resolve().parent.parent
TOLERANCES = {"float32": 2e-4, "float64": 1e-10, "float16": 2e-3}
"""Largest error allowed per dtype, relative to the largest magnitude of the reference
(float16 is computed in float32 and rounded once at the end)."""
ALGORITHMS = (None, "phases", "scatter", "rows", "winograd")
"""None: the op's rule; else forced in the backend (Winograd on float32 only, as the rule)."""
MAX_MACS = 5 * 10**7
LIMITS = {1: (300, 40, 16), 2: (40, 7, 5), 3: (12, 5, 3)}
"""Per rank: longest spatial axis, kernel and stride drawn."""
WINOGRAD_SPLITS = {"CHUNK_BYTES": 2**14, "MIN_CHUNK_TILES": 4, "MEMBER_SPLIT_MIN_BYTES": 0,
                   "KERNEL_SPLIT_TAPS": 0}
"""Winograd's thresholds in the draws that set ``winograd_splits``: many chunks of tiles,
and members and kernel transforms shared out among the workers, at the fuzz's sizes."""


def draw(seed: int) -> dict[str, Any]:
    """The arguments of draw ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 4))
    longest, kernel, stride = LIMITS[rank]
    strides = [int(rng.integers(1, stride + 1)) for _ in range(rank)]
    dtype = str(rng.choice(list(TOLERANCES), p=[0.7, 0.2, 0.1]))
    kernel_dtype = dtype if rng.random() < 0.9 else str(rng.choice(list(TOLERANCES)))
    algorithm = ALGORITHMS[int(rng.choice(5, p=[0.4, 0.15, 0.15, 0.15, 0.15]))]
    args = {
        "batch": int(rng.integers(1, 6)),
        "spatial": [int(rng.integers(1, longest + 1)) for _ in range(rank)],
        "channels": int(rng.choice([1, 2, 3, 5, 8, 16, 31, 64, 130, 256])),
        "filters": int(rng.choice([1, 2, 3, 4, 5, 7, 8, 16, 33, 64, 128])),
        "kernel": [int(rng.integers(1, kernel + 1)) for _ in range(rank)],
        "strides": strides,
        "dilation_rate": [1] * rank if rng.random() < 0.6 else [
            int(rng.integers(1, 4)) for _ in range(rank)],
        "padding": str(rng.choice(["valid", "same"])),
        "output_padding": None if rng.random() < 0.6 else [
            int(rng.integers(0, s + 1)) for s in strides],
        "data_format": str(rng.choice(["channels_last", "channels_first"])),
        "layout": str(rng.choice(["contiguous", "sliced", "fortran"])),
        "dtype": dtype,
        "kernel_dtype": kernel_dtype,
        "algorithm": "scatter" if algorithm == "winograd" and (dtype, kernel_dtype) != (
            "float32", "float32") else algorithm,
        "kernel_use": str(rng.choice(["plain", "prepared", "repeated", "changed"])),
        "accelerate": bool(rng.random() < 0.75),
        "workers": int(rng.integers(1, 3)),
        "pool_always": bool(rng.random() < 0.3),
        "memory_budget": None if rng.random() < 0.5 else 2 ** int(rng.integers(10, 23)),
        "winograd_splits": bool(rng.random() < 0.3),
        "threads": 2 if rng.random() < 0.15 else 1,
    }
    if args["kernel_use"] == "changed":
        args["threads"] = 1  # one thread changes the kernel; another would race with it
    _shrink(args)
    return args


def _shrink(args: dict[str, Any]) -> None:
    """Halves the longest spatial axis (then the batch, then the channels) until the call
    takes at most :data:`MAX_MACS` multiply-adds."""
    import math

    def macs() -> int:
        return (args["batch"] * args["channels"] * args["filters"]
                * math.prod(args["spatial"]) * math.prod(args["kernel"]))

    while macs() > MAX_MACS:
        spatial = args["spatial"]
        longest = max(range(len(spatial)), key=spatial.__getitem__)
        if spatial[longest] > 4:
            spatial[longest] //= 2
        elif args["batch"] > 1:
            args["batch"] //= 2
        else:
            args["channels"] = max(1, args["channels"] // 2)


def run_draw(seed: int) -> str | None:
    """None when draw ``seed`` agrees with the reference (or is refused), else a message."""
    import numpy as np

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the reference lives in the checkout's tests/
    import convt
    from tests import reference

    args = draw(seed)
    call = {key: args[key] for key in
            ("strides", "padding", "output_padding", "data_format", "dilation_rate")}
    x, w = _arrays(args, seed)
    try:
        convt.ops.conv_transpose_output_shape(x.shape, w.shape, **call)
    except ValueError:
        return None  # arguments the op refuses (the reference has no checks)
    kernels = [w.copy(), *([_changed(w)] if args["kernel_use"] == "changed" else [])]
    expected = [reference.conv_transpose_taps(x, kernel, **call) for kernel in kernels]
    x_before = x.copy()
    try:
        with configured(args):
            results = _results(x, w, kernels[-1], call, args)
    except Exception as error:  # an accepted call must compute
        return f"{json.dumps(args)} raised {error!r}"
    problems = [_problem(result, expected[version], args) for result, version in results]
    if not (np.array_equal(x, x_before) and np.array_equal(w, kernels[results[-1][1]])):
        problems.append("an input was written to")
    problems = [p for p in problems if p]
    return None if not problems else f"{json.dumps(args)} {problems}"


def _changed(w):
    """``w`` with its middle element one larger: enough to move the output far beyond the
    tolerance, so a result computed from a stale copy of the kernel shows."""
    changed = w.copy()
    changed.reshape(-1)[w.size // 2] += 1
    return changed


def _arrays(args: dict[str, Any], seed: int):
    """The input (in the draw's format, memory layout and dtype) and kernel (in its own)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spatial, channels = args["spatial"], args["channels"]
    shape = ((args["batch"], *spatial, channels) if args["data_format"] == "channels_last"
             else (args["batch"], channels, *spatial))
    x = rng.standard_normal(shape).astype(args["dtype"])
    w = rng.standard_normal((*args["kernel"], args["filters"], channels)).astype(
        args["kernel_dtype"])
    if args["layout"] == "sliced":
        x = np.stack([x, -x], axis=-1)[..., 0]
    elif args["layout"] == "fortran":
        x = np.asfortranarray(x)
    return x, w


@contextlib.contextmanager
def configured(args: dict[str, Any]) -> Iterator[None]:
    """The NumPy backend set up for draw ``args``, and put back afterwards.

    Its switches and the BLAS thread count (the workers) as drawn; its output and scratch
    buffers arriving full of NaN (as ``tests/conftest.py`` poisons the output), so that
    an element left unwritten, or scratch read before it is written, shows.
    """
    import numpy as np

    from convt.backends import _recipes, _threads, _winograd
    from convt.backends import numpy as backend

    names = ("ACCELERATE", "MEMORY_BUDGET", "PARALLEL_MIN_MACS", "uninitialized")
    saved = {name: getattr(backend, name) for name in names}
    saved_winograd = {name: getattr(_winograd, name) for name in WINOGRAD_SPLITS}
    scratch, controls = _threads.scratch, _threads.openblas_controls()
    threads = controls[0]() if controls else None

    def poisoned_scratch(slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        buffer = scratch(slot, shape, dtype)
        buffer.fill(np.nan)
        return buffer

    backend.ACCELERATE = args["accelerate"]
    backend.MEMORY_BUDGET = args["memory_budget"] or saved["MEMORY_BUDGET"]
    backend.PARALLEL_MIN_MACS = 0 if args["pool_always"] else saved["PARALLEL_MIN_MACS"]
    backend.uninitialized = lambda shape, dtype: np.full(shape, np.nan, dtype)
    _threads.scratch = poisoned_scratch
    if args["winograd_splits"]:
        for name, value in WINOGRAD_SPLITS.items():
            setattr(_winograd, name, value)
    if controls:
        controls[1](args["workers"])
    _recipes.forget()
    try:
        yield
    finally:
        _recipes.forget()
        for name, value in saved.items():
            setattr(backend, name, value)
        for name, value in saved_winograd.items():
            setattr(_winograd, name, value)
        _threads.scratch = scratch
        if controls:
            controls[1](threads)


def _results(x, w, changed, call: dict[str, Any], args: dict[str, Any]) -> list:
    """Every result of the draw's calls: from each of its threads, each repeat."""
    outcomes: list = []

    def calls() -> None:
        try:
            outcomes.extend(_calls(x, w, changed, call, args))
        except BaseException as error:  # reported by the caller
            outcomes.append(error)

    threads = [threading.Thread(target=calls) for _ in range(args["threads"] - 1)]
    for thread in threads:
        thread.start()
    calls()
    for thread in threads:
        thread.join()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


def _calls(x, w, changed, call: dict[str, Any], args: dict[str, Any]) -> list:
    """``(result, kernel version)`` of the draw's kernel use: one call; three with the same
    plain array; or three with its values set to ``changed`` in place before the third
    (version 1), which must not be answered from the copy recognized before."""
    import convt
    from convt._shapes import plan_conv_transpose
    from convt.backends import numpy as backend

    use = args["kernel_use"]
    kernel = convt.ops.PreparedKernel(w) if use == "prepared" else w
    if args["algorithm"] is None:
        def run():
            return convt.ops.conv_transpose(x, kernel, **call)
    else:
        normalized, _ = plan_conv_transpose(x.shape, w.shape, **call)

        def run():
            return backend.conv_transpose(x, kernel, normalized, algorithm=args["algorithm"])
    results = [(run(), 0) for _ in range(1 if use in ("plain", "prepared") else 2)]
    if use == "repeated":
        results.append((run(), 0))
    elif use == "changed":
        w[...] = changed
        results.append((run(), 1))
    return results


def _problem(result, expected, args: dict[str, Any]) -> str | None:
    """What is wrong with one result, or None."""
    import numpy as np

    if result.shape != expected.shape:
        return f"shape {result.shape}, expected {expected.shape}"
    dtype = np.result_type(args["dtype"], args["kernel_dtype"])  # NumPy's promotion
    if result.dtype != dtype:
        return f"dtype {result.dtype}, expected {dtype}"
    error = fuzzing.relative_error(result, expected)
    return None if error <= TOLERANCES[dtype.name] else f"error {error:.3g}"


def main(argv: list[str] | None = None) -> int:
    return fuzzing.main(argv, __file__, draw, run_draw, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
