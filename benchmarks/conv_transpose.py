"""convt's transposed convolution side by side with every peer, on the named cases.

Run ``python -m benchmarks.conv_transpose --help``. Per case, each
implementation is built, warmed up, checked against convt's float64 result
(convt itself against the direct loops of ``tests/reference.py`` when the case
is small enough), then timed in interleaved rounds (one sample of each implementation per round,
so a noisy moment on a shared machine hits all of them alike; each round starts one
implementation later than the one before), each sample
after a pause that lets the previous implementation's thread pool go idle and
a warm-up of its own calls.
The same run measures the machine's float32 GEMM rate and convt's peak extra
memory (``tracemalloc``, to which NumPy reports its allocations).

Thread counts are fixed for everyone before any numeric library is imported.
"""

from __future__ import annotations

import os

THREADS = 2
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "TF_NUM_INTRAOP_THREADS"):
    os.environ.setdefault(_variable, str(THREADS))
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}"
)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field, replace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import cpu, peers, stolen_time  # noqa: E402
from benchmarks.cases import CASES, Case  # noqa: E402
from benchmarks.pacing import NO_PACING, Pacing, paced_sample, rotated_rounds  # noqa: E402
from convt import ops  # noqa: E402
from convt.backends import _fused, _threads  # noqa: E402
from convt.backends import numpy as numpy_backend  # noqa: E402

DIRECT_CHECK_LIMIT = 50_000
"""Largest pixels * taps for which convt is also checked against the direct loops."""

SPOT_CHECKS = 256
"""Output positions checked against the direct gather in larger cases."""

SAMPLE_SECONDS = 0.005
"""Calls are repeated inside one sample until it lasts about this long."""

MEMORY_SLACK_MIB = 64
"""Target: convt's peak extra memory stays below the output size plus this."""

MEMORY_CASES = ("unet_same", "big_2d")
"""Cases (one per algorithm) whose memory is also measured at 1x, 4x and 16x batch."""

MEMORY_BATCH_FACTORS = (1, 4, 16)


@dataclass
class Timing:
    """One implementation on one case."""

    impl: str
    status: str
    """"ok", "absent" (not installed), "failed: ..." or "mismatch: ..."."""
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    gflops: float | None = None
    gemm_fraction: float | None = None
    samples_ms: list[float] = field(default_factory=list)


@dataclass
class CaseResult:
    """Every implementation on one case, plus convt's memory."""

    case: str
    description: str
    useful_flops: int
    channel_product: int
    """C_in * C_out; cases with at least COMPUTE_BOUND_CHANNELS are compute-bound."""
    output_mib: float
    verified: bool
    peak_extra_mib: float | None
    timings: dict[str, Timing]

    def best_peer(self) -> Timing | None:
        """The fastest peer that ran and agreed with convt."""
        ran = [t for name, t in self.timings.items() if name not in peers.OWN and t.status == "ok"]
        return min(ran, key=lambda t: t.median_ms, default=None)

    def ratio(self) -> float | None:
        """convt's median time over the fastest peer's (<= 1 means convt is fastest)."""
        best, own = self.best_peer(), self.timings.get("convt")
        if best is None or own is None or own.status != "ok":
            return None
        return own.median_ms / best.median_ms


def describe(case: Case) -> str:
    """One line: input shape, filters, kernel, stride and the other arguments."""
    extras = "".join(
        f" {name}={value}"
        for name, value in (("output_padding", case.output_padding),
                            ("dilation", case.dilation_rate))
        if value not in (None, 1)
    )
    return (f"{case.input_shape}->{case.filters} k{case.kernel_size} s{case.strides} "
            f"{case.padding}{extras}")


def gemm_rate(repeat: int = 10, size: int = 2048) -> float:
    """The machine's float32 GEMM rate with NumPy, in GFLOP/s: the best of ``repeat``.

    The best, not the median, and the run measures it before and after the
    cases and keeps the higher: on a shared machine a busy moment would
    understate what the machine does and overstate every fraction of it.
    """
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ a
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / min(seconds) / 1e9


def peak_extra_mib(run: Callable[[], Any]) -> float:
    """Peak memory allocated during ``run()`` (its result included), per tracemalloc.

    convt's worker threads keep their scratch buffers between calls; they are
    dropped first, so that the peak counts them.
    """
    _threads.release_scratch()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def memory_by_batch(case: Case, factors: Sequence[int] = MEMORY_BATCH_FACTORS) -> list[dict]:
    """convt's peak extra memory on the case at growing batch sizes.

    Chunking should keep ``peak - output`` flat however large the batch.
    """
    rows = []
    for factor in factors:
        scaled = replace(case, input_shape=(case.input_shape[0] * factor, *case.input_shape[1:]))
        peak = peak_extra_mib(peers.build("convt", scaled, *scaled.arrays())[0].call)
        output = math.prod(scaled.output_shape) * 4 / 2**20
        rows.append({"case": case.name, "batch": scaled.input_shape[0], "output_mib": output,
                     "peak_extra_mib": peak, "within_target": peak <= output + MEMORY_SLACK_MIB})
    return rows


def check_convt(case: Case, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, str | None]:
    """convt's float64 result (the reference every implementation is checked against), and
    None, or what is wrong with it.

    It is checked against the independent references of ``tests/reference.py``:
    the direct loops whole when the case is small, else at ``SPOT_CHECKS``
    random output positions (every filter of each).
    """
    from tests.reference import conv_transpose_at, conv_transpose_loops

    expected = ops.conv_transpose(x.astype(np.float64), w.astype(np.float64), **case.op_kwargs)
    pixels = math.prod(case.input_shape[:-1]) * case.kernel_size**case.rank
    if pixels <= DIRECT_CHECK_LIMIT:
        direct, got = conv_transpose_loops(x, w, **case.op_kwargs), expected
    else:
        rng = np.random.default_rng(0)
        positions = [tuple(int(rng.integers(n)) for n in expected.shape[:-1])
                     for _ in range(SPOT_CHECKS)]
        direct = conv_transpose_at(x, w, positions, **case.op_kwargs)
        got = np.stack([expected[position] for position in positions])
    if got.shape == direct.shape and np.allclose(got, direct, rtol=1e-9, atol=1e-9):
        return expected, None
    return expected, agrees(got, direct) or "differs from the direct reference"


def agrees(got: np.ndarray, expected: np.ndarray) -> str | None:
    """None when float32 ``got`` matches the float64 ``expected``, else what differs."""
    if got.shape != expected.shape:
        return f"shape {got.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    error = float(np.max(np.abs(got.astype(np.float64) - expected), initial=0.0)) / scale
    return None if error <= 1e-4 else f"max error {error:.2e} of max |output|"


def time_case(
    case: Case, impls: Sequence[str], repeat: int, pacing: Pacing = NO_PACING
) -> CaseResult:
    """Builds, checks, warms up and times every implementation on one case."""
    x, w = case.arrays()
    expected, problem = check_convt(case, x, w)
    timings: dict[str, Timing] = {}
    runners: dict[str, peers.Runner] = {}
    for name in impls:
        runner, status = peers.build(name, case, x, w)
        if runner is not None:
            status = _verify(runner, expected)
        if problem is not None:  # nothing can be verified against a wrong reference
            status = f"unverified: convt's float64 reference failed its direct check ({problem})"
        timings[name] = Timing(name, status)
        if status == "ok":
            runners[name] = runner
    calls = {name: _calls_per_sample(runner) for name, runner in runners.items()}
    for name in rotated_rounds(list(runners), repeat):
        timings[name].samples_ms.append(_sample(runners[name], calls[name], pacing))
    for timing in timings.values():
        _summarize(timing, case.useful_flops)
    convt = timings.get("convt")
    memory = None
    if convt is not None and convt.status == "ok":
        memory = peak_extra_mib(runners["convt"].call)
    return CaseResult(
        case=case.name,
        description=describe(case),
        useful_flops=case.useful_flops,
        channel_product=case.input_shape[-1] * case.filters,
        output_mib=math.prod(case.output_shape) * 4 / 2**20,
        verified=convt is not None and convt.status == "ok",
        peak_extra_mib=memory,
        timings=timings,
    )


def _verify(runner: peers.Runner, expected: np.ndarray) -> str:
    try:
        got = runner.fetch(runner.call())
        runner.call()
    except Exception as error:  # a peer that cannot run this case is reported, not fatal
        return peers.failure(error)
    problem = agrees(np.asarray(got), expected)
    return "ok" if problem is None else f"mismatch: {problem}"


def _calls_per_sample(runner: peers.Runner) -> int:
    """How many calls make one sample last about SAMPLE_SECONDS."""
    start = time.perf_counter()
    runner.call()
    once = time.perf_counter() - start
    return max(1, min(1000, int(SAMPLE_SECONDS / max(once, 1e-7))))


def _sample(runner: peers.Runner, calls: int, pacing: Pacing) -> float:
    """One timing in ms: the mean of ``calls`` calls (:func:`benchmarks.pacing.paced_sample`)."""
    return paced_sample(runner.call, calls, pacing) * 1e3


def _summarize(timing: Timing, flops: int) -> None:
    if not timing.samples_ms:
        return
    timing.median_ms = statistics.median(timing.samples_ms)
    timing.min_ms, timing.max_ms = min(timing.samples_ms), max(timing.samples_ms)
    timing.gflops = flops / timing.median_ms / 1e6


def _set_gemm_fractions(results: list[CaseResult], gemm: float) -> None:
    for result in results:
        for timing in result.timings.values():
            if timing.gflops is not None:
                timing.gemm_fraction = timing.gflops / gemm


def machine() -> dict[str, str]:
    """The processor (:mod:`benchmarks.cpu`), cores, Python, NumPy and its BLAS."""
    info = {"cpu": cpu.summary(cpu.describe()), "cores": str(os.cpu_count())}
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info.update(
        python=platform.python_version(),
        numpy=np.__version__,
        blas=f"{blas.get('name')} {blas.get('version')}",
        threads=str(THREADS),
        accelerator=_accelerator(),
    )
    return info


def _accelerator() -> str:
    """The compiled helper convt's overlap-add uses, as ``numba <version>``, or ``none``."""
    if numpy_backend.ACCELERATE and _fused.available():
        import numba

        return f"numba {numba.__version__}"
    return "none"


def summary(results: list[CaseResult]) -> dict[str, Any]:
    """Geometric mean of (fastest peer / convt) and the cases where convt is not fastest."""
    ratios = [r.ratio() for r in results if r.ratio() is not None]
    return {
        "memory_within_target": all(
            r.peak_extra_mib <= r.output_mib + MEMORY_SLACK_MIB
            for r in results if r.peak_extra_mib is not None),
        "geomean_speedup": math.exp(-statistics.fmean(map(math.log, ratios))) if ratios else None,
        "cases_convt_not_fastest": [r.case for r in results if (r.ratio() or 0) > 1.0],
        "cases_verified": sum(r.verified for r in results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status (1 when convt failed a check)."""
    parser = _parser()
    options = parser.parse_args(argv)
    for option in ("json", "markdown", "plot"):
        problem = _unwritable(getattr(options, option))
        if problem:
            parser.error(f"--{option} {problem}. Received: --{option}={getattr(options, option)!r}")
    names = options.case or list(CASES)
    impls = options.impl or list(peers.IMPLEMENTATIONS)
    pacing = NO_PACING if options.tiny else Pacing()
    steal_before = stolen_time.counters()
    gemm_before = gemm_rate()
    print(f"float32 GEMM 2048^3 (best of 10): {gemm_before:.1f} GFLOP/s", flush=True)
    results = []
    for name in names:
        case = CASES[name].tiny() if options.tiny else CASES[name]
        result = time_case(case, impls, options.repeat, pacing)
        results.append(result)
        print(_progress_line(result), flush=True)
    gemm = max(gemm_before, gemm_rate())
    stolen = stolen_time.stolen_share(steal_before, stolen_time.counters())
    print(f"float32 GEMM 2048^3, best before and after: {gemm:.1f} GFLOP/s; "
          f"{stolen_time.describe(stolen)}", flush=True)
    _set_gemm_fractions(results, gemm)
    memory = [row for name in MEMORY_CASES if "convt" in impls
              for row in memory_by_batch(CASES[name].tiny() if options.tiny else CASES[name])]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.conv_transpose " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "gemm_gflops": gemm,
        "stolen_share": stolen,
        "tiny": options.tiny,
        "repeat": options.repeat,
        "pacing": asdict(pacing),
        "keras_backend": peers.keras_backend_name() if "keras" in impls else None,
        "summary": summary(results),
        "results": [asdict(r) for r in results],
        "memory_by_batch": memory,
    }
    print(json.dumps(report["summary"]))
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(report, handle, indent=1)
    if options.markdown:
        from benchmarks.report import write_markdown

        write_markdown(report, options.markdown)
    if options.plot:
        from benchmarks.report import write_plot

        write_plot(report, options.plot)
    return 0 if all(r.verified for r in results) or "convt" not in impls else 1


def _progress_line(result: CaseResult) -> str:
    parts = [f"{result.case:14s}"]
    for name, timing in result.timings.items():
        shown = f"{timing.median_ms:.3f}ms" if timing.median_ms is not None else timing.status
        parts.append(f"{name}={shown}")
    ratio = result.ratio()
    if ratio is not None:
        parts.append(f"ratio={ratio:.2f}")
    return " ".join(parts)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1. Received: {value}")
    return value


def _unwritable(path: str | None) -> str | None:
    """Why an output file cannot be written at ``path``, checked before the run; None if it can."""
    if path is None:
        return None
    if os.path.isdir(path):
        return "names a directory"
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return "is in a directory that does not exist"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.conv_transpose", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="a case to run (repeatable; default all)")
    parser.add_argument("--impl", action="append", choices=list(peers.IMPLEMENTATIONS),
                        help="an implementation to run (repeatable; default all)")
    parser.add_argument("--repeat", type=_positive_int, default=15,
                        help="timed samples per implementation (at least 1)")
    parser.add_argument("--tiny", action="store_true", help="every case at its tiny size")
    parser.add_argument("--json", help="write every number to this JSON file")
    parser.add_argument("--markdown", help="write the table to this markdown file")
    parser.add_argument("--plot", help="write a PNG of the time ratios to this file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
