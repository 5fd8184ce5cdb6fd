"""Training-step benchmark: convt on torch against torch's own operator, JAX and TensorFlow.

Run: ``python -m benchmarks.torch_train [--case NAME ...] [--impl NAME ...]
[--mode train|forward ...] [--repeat N] [--json PATH] [--markdown PATH] [--tiny]``.

A *training step* is the forward pass plus the gradients for the input and the
kernel, given a fixed random output cotangent; *forward* is the pass alone.
Each implementation reaches Keras's output window its own way:

* ``convt``: ``convt.ops.conv_transpose`` on torch tensors, its kernel in Keras's
  shape stored as ``convt.torch``'s layers store it (``kernel_layout``).
* ``convt_keras``: the same in Keras's default format, channels_last tensors, as
  ``convt.torch``'s layers take them unless told otherwise.
* ``torch``: ``torch.nn.functional.conv_transpose{1,2,3}d`` with the symmetric
  part of the crop as ``padding``, then a slice (and zero pad) to the window:
  the reference formulation a torch user would write.
* ``jax``: ``jax.lax.conv_transpose`` with Keras's explicit padding, jitted
  with ``jax.vjp``, as Keras's JAX backend computes it.
* ``tensorflow``: ``tf.nn.conv_transpose`` with Keras's output shape and a
  ``GradientTape``, as Keras's TensorFlow backend computes it.

The torch implementations take channels_first tensors (torch's own layout),
``convt_keras``, JAX and TensorFlow channels_last (theirs); layout changes are not
timed.
Before timing, every implementation's output and both gradients are checked
against torch's autograd of the reference formulation. Absent frameworks are
reported as absent. Medians of ``--repeat`` samples, a sample being about 10 ms
of back-to-back calls of one implementation after a 0.2 s pause and 0.1 s of
warm-up calls (:mod:`benchmarks.pacing`), the implementations sampled in turns so
that a noisy machine slows them alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks import cpu, stolen_time
from benchmarks.cases import CASES, Case
from benchmarks.pacing import NO_PACING, Pacing, paced_sample, rotated_rounds
from benchmarks.peers import failure
from convt._shapes import AxisPlan, plan_conv_transpose

IMPLS = ("convt", "convt_keras", "torch", "jax", "tensorflow")
OWN = ("convt", "convt_keras", "torch")
"""convt and the reference it is checked against: their failure stops the run."""
MODES = ("train", "forward")


@dataclass
class Runner:
    """One implementation of one case: timed calls and an untimed result for the check."""

    forward: Callable[[], Any]
    train: Callable[[], Any]
    results: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
    """(output, input gradient, kernel gradient), channels_last and Keras layout."""


def axis_plans(case: Case) -> tuple[AxisPlan, ...]:
    args, _ = plan_conv_transpose(case.input_shape, case.kernel_shape, **case.op_kwargs)
    return args.axis_plans(case.input_shape[1:-1])


def _torch_runner(case: Case, x, g, function: Callable, kernel, keras_kernel: Callable,
                  channels_first: bool = True) -> Runner:
    """A Runner for a torch function of (input, kernel as the impl holds it), the input
    channels_first unless told otherwise.

    ``keras_kernel`` maps a tensor shaped as ``kernel`` to Keras's layout.
    """
    import torch

    def laid_out(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(array, -1, 1) if channels_first else array)

    def channels_last(tensor: Any) -> np.ndarray:
        return np.moveaxis(tensor.numpy(), 1, -1) if channels_first else tensor.numpy()

    inputs = torch.from_numpy(laid_out(x)).requires_grad_()
    kernel = kernel.requires_grad_()
    cotangent = torch.from_numpy(laid_out(g))

    def forward() -> Any:
        with torch.no_grad():
            return function(inputs, kernel)

    def train() -> Any:
        out = function(inputs, kernel)
        return out, *torch.autograd.grad(out, (inputs, kernel), cotangent)

    def results() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out, grad_x, grad_w = (t.detach() for t in train())
        return channels_last(out), channels_last(grad_x), keras_kernel(grad_w).numpy()

    return Runner(forward, train, results)


def _convt(case: Case, x, w, g, data_format: str = "channels_first") -> Runner:
    """convt's op, given the kernel as ``convt.torch``'s layers store it (Keras's shape)."""
    import torch

    from convt import ops
    from convt.backends.torch import kernel_layout, laid_out

    channels_first = data_format == "channels_first"
    kwargs = dict(case.op_kwargs, data_format=data_format)
    args, _ = plan_conv_transpose(np.moveaxis(x, -1, 1).shape if channels_first else x.shape,
                                  w.shape, **kwargs)
    kernel = laid_out(torch.from_numpy(w), kernel_layout(args))
    return _torch_runner(case, x, g, lambda a, b: ops.conv_transpose(a, b, **kwargs), kernel,
                         lambda grad: grad, channels_first)


def _convt_keras(case: Case, x, w, g) -> Runner:
    """convt's op on channels_last tensors, Keras's default format."""
    return _convt(case, x, w, g, data_format="channels_last")


def _torch(case: Case, x, w, g) -> Runner:
    import torch
    import torch.nn.functional as F

    plans = axis_plans(case)
    padding = [min(p.crop_left, max(p.crop_right, 0)) for p in plans]
    starts = [p.crop_left - pad for p, pad in zip(plans, padding)]
    conv = getattr(F, f"conv_transpose{case.rank}d")

    def function(a, b):
        out = conv(a, b, stride=case.strides, padding=padding, dilation=case.dilation_rate)
        tails = [max(0, s + p.output_length - n) for s, p, n in zip(starts, plans, out.shape[2:])]
        if any(tails):
            out = F.pad(out, [size for tail in reversed(tails) for size in (0, tail)])
        window = (slice(s, s + p.output_length) for s, p in zip(starts, plans))
        return out[(slice(None), slice(None), *window)]

    rank = case.rank
    kernel = torch.from_numpy(np.ascontiguousarray(w.transpose(rank + 1, rank, *range(rank))))
    return _torch_runner(case, x, g, function, kernel,
                         lambda grad: grad.permute(*range(2, rank + 2), 1, 0))


def _jax(case: Case, x, w, g) -> Runner:
    import jax

    jax.config.update("jax_enable_x64", x.dtype == np.float64)
    spatial = "DHW"[3 - case.rank:]
    numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    # Keras's padding of the stride-dilated input: K - 1 - crop on each side.
    padding = [(p.effective_kernel - 1 - p.crop_left, p.effective_kernel - 1 - p.crop_right)
               for p in axis_plans(case)]

    def conv(a, b):
        return jax.lax.conv_transpose(
            a, b, (case.strides,) * case.rank, padding,
            rhs_dilation=(case.dilation_rate,) * case.rank, dimension_numbers=numbers,
            transpose_kernel=True)

    def step(a, b, c):
        out, pullback = jax.vjp(conv, a, b)
        return out, *pullback(c)

    forward, train = jax.jit(conv), jax.jit(step)
    a, b, c = jax.device_put(x), jax.device_put(w), jax.device_put(g)
    return Runner(
        lambda: forward(a, b).block_until_ready(),
        lambda: jax.block_until_ready(train(a, b, c)),
        lambda: tuple(np.asarray(t) for t in train(a, b, c)),
    )


def _tensorflow(case: Case, x, w, g) -> Runner:
    import tensorflow as tf

    _, output_shape = plan_conv_transpose(x.shape, w.shape, **case.op_kwargs)
    a, b, c = tf.constant(x), tf.Variable(w), tf.constant(g)

    def conv(a, b):
        return tf.nn.conv_transpose(a, b, output_shape, strides=case.strides,
                                    padding=case.padding.upper(), dilations=case.dilation_rate)

    @tf.function
    def step(a, b, c):
        with tf.GradientTape() as tape:
            tape.watch(a)
            out = conv(a, b)
        return out, *tape.gradient(out, [a, b], output_gradients=c)

    forward = tf.function(conv)
    return Runner(lambda: forward(a, b), lambda: step(a, b, c),
                  lambda: tuple(t.numpy() for t in step(a, b, c)))


BUILDERS = {"convt": _convt, "convt_keras": _convt_keras, "torch": _torch, "jax": _jax,
            "tensorflow": _tensorflow}


# A sample is this many seconds of back-to-back calls of one implementation (at least one call).
SAMPLE_SECONDS = 0.01


def _interleaved_medians(calls: dict[Any, Callable[[], Any]], repeat: int,
                         pacing: Pacing) -> dict[Any, float]:
    """Median seconds per call of each implementation, its samples timed in turns.

    A sample is a block of back-to-back calls (as a training loop makes them)
    lasting about ``SAMPLE_SECONDS``, after ``pacing``'s pause and warm-up
    (:mod:`benchmarks.pacing`: without the pause, the implementation sampled
    after TensorFlow's read up to 1.17x slower). The implementations take turns
    sample by sample, so that machine noise hits all alike, each round starting
    one implementation later than the one before. Single calls taken in
    turns were measured to charge the second implementation for the caches and
    allocator state the first one left (a steady 5% on sub-millisecond cases).
    """
    blocks = {}
    for key, call in calls.items():
        call()
        start = time.perf_counter()
        call()
        blocks[key] = max(1, round(SAMPLE_SECONDS / (time.perf_counter() - start)))
    times: dict[Any, list[float]] = {key: [] for key in calls}
    for key in rotated_rounds(list(calls), repeat):
        times[key].append(paced_sample(calls[key], blocks[key], pacing))
    return {key: statistics.median(values) for key, values in times.items()}


def check(reference: Runner, runner: Runner, tolerance: float) -> None:
    """Output and both gradients equal the reference's, or AssertionError."""
    for name, got, expected in zip(("output", "grad_input", "grad_kernel"),
                                   runner.results(), reference.results()):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance,
                                   err_msg=f"{name} differs")


def run_case(case: Case, impls: Sequence[str], modes: Sequence[str], repeat: int,
             dtype: str, pacing: Pacing = NO_PACING) -> list[dict]:
    """Checks then times each implementation of one case; one record per (impl, mode)."""
    x, w = case.arrays(dtype=dtype)
    _, output_shape = plan_conv_transpose(case.input_shape, case.kernel_shape, **case.op_kwargs)
    g = np.random.default_rng(1).standard_normal(output_shape).astype(dtype)
    reference = _torch(case, x, w, g)
    tolerance = 1e-9 if dtype == "float64" else 2e-3
    records, runners = [], {}
    for impl in impls:
        try:
            runners[impl] = BUILDERS[impl](case, x, w, g)
        except ImportError:
            records += [dict(case=case.name, impl=impl, mode=m, status="absent") for m in modes]
            continue
        try:
            check(reference, runners[impl], tolerance)
        except Exception as error:  # a peer that cannot run this case is reported
            if impl in OWN:
                raise
            del runners[impl]
            records += [dict(case=case.name, impl=impl, mode=m, status=failure(error))
                        for m in modes]
    calls = {(impl, mode): getattr(runner, mode) for impl, runner in runners.items()
             for mode in modes}
    for (impl, mode), seconds in _interleaved_medians(calls, repeat, pacing).items():
        flops = case.useful_flops * (3 if mode == "train" else 1)
        records.append(dict(case=case.name, impl=impl, mode=mode, status="ok",
                            seconds=seconds, gflops=flops / seconds / 1e9))
    return records


def _ratios(records: list[dict]) -> None:
    """Adds each record's time relative to torch's operator on the same case and mode."""
    torch_times = {(r["case"], r["mode"]): r["seconds"] for r in records
                   if r["impl"] == "torch" and r["status"] == "ok"}
    for record in records:
        base = torch_times.get((record["case"], record["mode"]))
        if record["status"] == "ok" and base:
            record["vs_torch"] = record["seconds"] / base


def markdown_table(records: list[dict]) -> str:
    """Per case, each implementation's median ms and its time over torch's, forward and train."""
    impls = [i for i in IMPLS if any(r["impl"] == i for r in records)]
    by_key = {(r["case"], r["impl"], r["mode"]): r for r in records}
    columns = [(impl, mode) for mode in ("forward", "train") for impl in impls]
    lines = ["| case | " + " | ".join(f"{impl} {mode}" for impl, mode in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for case in dict.fromkeys(r["case"] for r in records):
        cells = []
        for impl, mode in columns:
            record = by_key.get((case, impl, mode))
            if record is None or record["status"] != "ok":
                cells.append(record["status"].split(":")[0] if record else "")
            elif impl == "torch":
                cells.append(f"{record['seconds'] * 1e3:.2f} ms")
            else:
                cells.append(f"{record.get('vs_torch', float('nan')):.2f}x")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def machine() -> dict:
    """The processor (:mod:`benchmarks.cpu`), torch's build and the instructions its
    kernels use here, Python and the thread count."""
    import torch

    return dict(python=platform.python_version(), cpu=cpu.summary(cpu.describe()),
                torch=torch.__version__, torch_cpu=torch.backends.cpu.get_cpu_capability(),
                threads=torch.get_num_threads())


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch_train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="a case to run (repeatable; default: all)")
    parser.add_argument("--impl", action="append", choices=IMPLS,
                        help="an implementation (repeatable; default: all)")
    parser.add_argument("--mode", action="append", choices=MODES,
                        help="train and/or forward (default: both)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--json", help="also write the records to this file")
    parser.add_argument("--markdown", help="also write the table (torch in ms, others as "
                        "their time over torch's) to this file")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny float64 versions of the cases (a correctness run)")
    args = parser.parse_args(argv)
    cases = [CASES[name] for name in (args.case or CASES)]
    if args.tiny:
        cases = [case.tiny() for case in cases]
    records = []
    pacing = NO_PACING if args.tiny else Pacing()
    steal_before = stolen_time.counters()
    for case in cases:
        records += run_case(case, args.impl or IMPLS, args.mode or MODES, args.repeat,
                            "float64" if args.tiny else "float32", pacing)
    stolen = stolen_time.stolen_share(steal_before, stolen_time.counters())
    _ratios(records)
    print(f"{'case':<14}{'impl':<12}{'mode':<9}{'median ms':>11}{'GFLOP/s':>9}{'vs torch':>10}")
    for r in records:
        if r["status"] != "ok":
            print(f"{r['case']:<14}{r['impl']:<12}{r['mode']:<9}{r['status']:>11}")
            continue
        print(f"{r['case']:<14}{r['impl']:<12}{r['mode']:<9}{r['seconds'] * 1e3:>11.3f}"
              f"{r['gflops']:>9.2f}{r.get('vs_torch', float('nan')):>10.3f}")
    about = machine()
    measured_on = (f"Measured on {about['cpu']}, torch's kernels for {about['torch_cpu']}, "
                   f"{about['threads']} threads; during the run, "
                   f"{stolen_time.describe(stolen)}.")
    print(measured_on)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(f"{markdown_table(records)}\n{measured_on}\n")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"machine": about, "stolen_share": stolen, "pacing": asdict(pacing),
                       "records": records}, file, indent=1)
    return records


if __name__ == "__main__":
    main()
