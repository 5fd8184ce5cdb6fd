"""The NumPy kernels of transposed convolution.

Three algorithms, each doing at most ``N * prod(in_spatial) * C_in * C_out *
prod(kernel)`` multiply-adds in BLAS, each chunked so that its scratch stays
under :data:`MEMORY_BUDGET` bytes whatever the input size:

``"phases"`` (sub-pixel): output indices ``o`` with the same ``o % stride``
per axis form a phase, and each phase is a stride-1 correlation of the input
with a subset of the taps. A phase is cut into blocks that receive the same
taps everywhere; per block and chunk, the input windows are copied into
``(pixels, taps * C_in)`` columns and one GEMM with the block's weights writes
every output element of the block once, straight into its strided place, so
products with a missing input (what ``"same"`` crops) are not computed. Its
scratch grows with ``C_in``.

``"scatter"`` (overlap-add): one GEMM turns every input pixel into its
contributions for all taps (``(pixels, C_in) @ (C_in, taps * C_out)``); the
taps are added, a group of taps at a time, into a canvas laid out as rows of
``stride`` elements, and Keras's window of the canvas is added to the output.
Its scratch grows with ``C_out``. When ``kernel == stride`` (no dilation) the
taps tile the output, so the columns are only re-laid out (depth-to-space).
For inputs with few pixels the workers share out the taps of the first axis
instead of the input's rows, each part a kernel of its own.

``"rows"`` (tap rows): overlap-add without a canvas, per chunk of output
rows. For each tap of the first axis, only the input rows whose products land
inside Keras's window go through the GEMM, and each tap of the other axes is
added straight into the output. Input rows are laid out samples-innermost so
that a row range of every sample is one matrix.

With numba, float32 shapes may instead run in Winograd's tiles
(:mod:`convt.backends._winograd`), which make fewer multiply-adds.

:func:`choose_algorithm` picks one per call; ``docs/architecture.md`` gives the rule.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from convt._shapes import AxisPlan, ConvTransposeArgs, TapGroup
from convt.backends import _fused, _threads, _winograd
from convt.prepared import RECOGNIZED_MAX_BYTES, PreparedKernel, recognize

Task = Callable[[], None]
Taps = tuple[tuple[int, int], ...]
"""``(tap, offset)`` pairs of one axis (see :meth:`AxisPlan.phase_taps`)."""
Block = tuple[tuple[int, int, Taps], ...]
"""One ``(first, stop, taps)`` segment per axis (see :meth:`AxisPlan.phase_segments`)."""

MEMORY_BUDGET = 4 * 2**20
"""Upper bound, in bytes, on the scratch buffers of one chunk.

Small on purpose: a chunk's columns are still in the CPU cache when the GEMM
reads them (measured: 1-4 MiB chunks beat 32 MiB ones by up to 1.5x).
"""

SCATTER_CHANNEL_RATIO = 2
"""Overlap-add is chosen when ``in_channels >= SCATTER_CHANNEL_RATIO * filters``."""

PARALLEL_MIN_MACS = 2**23
"""Calls with at least this many multiply-adds are cut into one chunk per worker thread."""

PLANAR_MAX_FILTERS = 4
"""Overlap-add lays its GEMM out tap-major when there are fewer filters than this."""

PLANE_MAX_ADDS = 64
"""Overlap-add adds each tap's plane straight into the output when ``taps * C_out`` is at most this.

One strided add per tap and filter beats a canvas whose inner loop is a few
filters long (one-filter 5x5 DCGAN output: 0.78 -> 0.50 ms), but not when a long
kernel would make it thousands of calls (iSTFT-like, 1024 taps: 3.6 -> 12.5 ms).
"""

PHASE_MAX_SEGMENTS = 3
"""An axis of a phase is cut where its taps change only into at most this many segments.

An interior and one edge on each side (a ``"same"`` border of one row) gives
exact blocks whose columns are one strided copy (3x3 stride-1 "same":
4.5 -> 4.0 ms). A wider ragged edge (dilation, long kernels) would give many
small blocks, which cost more calls than the products they skip (dilated
3x3: 1.06 ms whole, 1.45 in its five segments per axis), so such an axis
stays whole and its columns are gathered tap by tap with zeros.
"""

ROWS_MIN_FILTERS = 16
"""Overlap-add runs in tap rows, not on a canvas, from this many filters on, when the input
has two or more spatial axes, every stride is 1 and the window crops the first axis.

Measured against the canvas (interleaved, 2 threads): 0.80-1.08x on 25 stride-1
``"same"`` 2-D shapes with 32-128 filters (geometric mean 0.92; DCGAN 7x7 5x5
256 -> 128: 8.5 -> 6.5 ms), 0.80-0.87x on four 3-D ones. It lost with 1-7
filters (1.06-3.2x: the canvas's planes path), was mixed with 8 filters and on
1-D inputs, and lost on most shapes with a stride above 1 (up to 1.7x: the
canvas then adds whole groups of taps at once).
"""

TAP_SPLIT_MAX_PIXELS = 512
"""Overlap-add shares out the first axis's taps among the workers for inputs of at most this
many pixels (all samples), when the taps divide evenly among them and do not tile the output.

Chunks of rows then give each worker a GEMM of only a few rows against the
whole kernel. Measured on 21 such shapes (1-D k4-k16, 2-D and 3-D k4, 49-512
pixels; interleaved, two workers), kernel parts against chunks of rows:
0.59-1.03x, geometric mean 0.88 (MelGAN's 200-step upsampler 6.1 -> 5.3 ms).
Uneven parts (a 3- or 5-tap axis) lost 1.06-1.13x.
"""

ACCELERATE = True
"""With numba installed, overlap-add on 2-D and 3-D inputs runs its passes in compiled loops
(:mod:`convt.backends._fused`), and takes every such shape but kernels twice the stride
from phases. On 1-D inputs only some passes are compiled (:data:`COMPILED_1D_MAX_KERNEL`),
and the choice of algorithm is unchanged.

One loop sums each output's landing taps (``"sums"``); with fewer than
:data:`PLANAR_MAX_FILTERS` filters another adds each tap's plane in place
(``"planes"``). Measured as whole calls (interleaved, two workers), when the
sums loop still walked the outputs (it now walks the inputs, see
docs/architecture.md: the loop alone 0.36-0.91x, whole calls 0.89-0.97x):

- against the NumPy canvas on 23 strided 2-D and 3-D shapes: 0.62-0.99x,
  geometric mean 0.79 (``"sums"``, before its unit axes were moved first,
  which took another 16-24% off the loop alone);
- ``"planes"`` against NumPy's per-tap adds and canvas with 1-3 filters:
  0.61-0.80x (DCGAN's one-filter output 0.46 -> 0.37 ms);
- ``"sums"`` against phases on 20 2-D and 3-D shapes with ``C_in`` close to
  ``C_out`` (strides 1-2, kernels 3-5, 32-256 channels): 0.55-1.00x, geometric
  mean 0.77; on dilated or ragged shapes, 0.34-0.84x. Kernels twice the stride
  stay with phases, whose blocks are then exact: ``"sums"`` took 1.00-1.10x
  their time on single 64-128 pixel images with kernel 4, stride 2 (``big_2d``
  1.07-1.11x), 0.86-0.98x on batches of smaller ones.
"""

ROWS_MIN_FILTERS_COMPILED = 128
""":data:`ROWS_MIN_FILTERS` when overlap-add's passes are compiled (:data:`ACCELERATE`).

The compiled loop beat tap rows on 14 stride-1 ``"same"`` shapes with 16-64
filters (0.57-1.13x, geometric mean 0.82); with 128-256 filters it was
mixed (0.89-1.20x; DCGAN 7x7 5x5 256 -> 128 kept tap rows).
"""

COMPILED_1D_MAX_KERNEL = 4
"""On 1-D inputs, overlap-add's passes are compiled (:data:`ACCELERATE`) for kernels of at most
this many taps, and where NumPy would add each tap's plane of each filter on its own
(``taps * C_out`` at most :data:`PLANE_MAX_ADDS`); longer kernels keep NumPy's canvas.

Both replace many short NumPy calls with one loop. Measured on 78 one-dimensional
"same" shapes (batches 1 and 8, 64 and 512 steps, strides 1-16, kernels 3 and twice the
stride, 1-128 filters; interleaved, two workers), whole calls against NumPy's passes:

- per-tap planes replaced: 0.27-1.10x (16 filters, kernel 4: 159 -> 43 us);
- canvases of 3-4 taps: 0.70-0.98x;
- canvases of 8-32 taps: 0.82-2.0x. A canvas row of a long kernel is a long run of
  the stride's outputs, which NumPy adds at full speed.
"""

WINOGRAD_MIN_GAIN = 0.9
"""Winograd (:mod:`convt.backends._winograd`) is chosen for float32 inputs, with numba
(:data:`ACCELERATE`), when the direct products that land in the window are at least this
many times its estimated work (:func:`_winograd.cost`).

On 55 1-D, 2-D and 3-D shapes measured against the algorithm chosen otherwise
(interleaved, two workers), the 32 whose estimate was at least 0.9 ran in 0.48-0.90
of its time (the one at 0.90: 0.90-0.96 over three runs); of the 23 below, the 21 at
most 0.76 ran in 1.16-8 of it, two at 0.77 and 0.86 in 0.80-0.83
(``docs/architecture.md``, "Winograd").

With a :class:`~convt.prepared.PreparedKernel` the kernel transform is not counted. On
the same 55 shapes, with the transformed taps kept, the 38 then picked ran in 0.38-0.95
of the other algorithm's time, except the one-filter iSTFT-like layer (256 phases, 1026
channels): 3.9x, its per-phase GEMMs being GEMVs that stream the shared tiles from
memory once per phase, so one-filter layers are never sent to Winograd. Of the 16 below
the threshold, 13 ran in 1.05-2.9 of the time, three (estimates 0.77-0.80) in 0.72-0.97."""

WINOGRAD_MIN_GAIN_NARROWING = 1.45
""":data:`WINOGRAD_MIN_GAIN` for strided calls with more channels than filters, where NumPy's
OpenBLAS has no small-matrix kernels (:func:`convt.backends._threads.small_gemm`; its Haswell
kernels on an AVX2 host).

Measured there (AMD EPYC, family 25/1; plain kernels; whole calls by the rule with Winograd
and without it, interleaved in blocks, two workers, 9 medians each): of the 16 such shapes
with estimates of 0.96-1.44, 14 took 1.00-1.97x the other algorithm's time with Winograd,
1.13x at the geometric mean of all 16. Among them, (4, 8, 8, 256) -> 128 and
(16, 4, 4, 256) -> 128, kernel 4, stride 2, took 1.90 and 1.97x, and ``dcgan_s2`` 1.08x
and then 0.92x. Two ran faster with it: (32, 7, 7, 256) -> 128, kernel 5, stride 2,
estimate 1.26, in 0.74x, and (8, 14, 14, 128) -> 64, estimate 1.40, in 0.93x. The 10 at
1.46-1.88 took 0.65-1.02x. On that host, shapes with as many channels as filters keep
0.9: strided ones from an estimate of 0.93 on ran in 0.57-0.75x
(``docs/architecture.md``, "Winograd")."""

COMPARE_COST = 40
"""A plain kernel recognized by its bits (:func:`convt.prepared.recognize`) costs this many GEMM
multiply-adds per element, counted in Winograd's work, when it is larger than
:data:`COMPARE_CACHED_BYTES`: the comparison then reads the kernel and its kept copy from
memory, and the transformed taps are read back after them. Measured as whole calls, plain
kernels against prepared ones (two workers): 0.35-0.7 ms more for 4 MiB kernels, about 40
multiply-adds per element at the GEMM rate.

Recognition is only worth it when the prepared kernel's Winograd beats the other algorithm by
more than that. It did not on small inputs with large kernels, which the rule now leaves to
the other algorithm: (1, 16, 512) -> 256, kernel 8, stride 4, 1.17 -> 0.60 ms; the same
with 64 steps 2.02 -> 1.25; (1, 8, 8, 256) -> 128, kernel 4, stride 2, 1.26 -> 0.71;
(1, 4, 4, 256) -> 256, 2.31 -> 0.66. ``dcgan_s1``'s 3.2 MiB kernel is still recognized
(5.0 ms against 6.6)."""

COMPARE_CACHED_BYTES = 2**20
"""Kernels up to this size are compared from the cache, and their comparison is not counted:
on 0.5-1 MiB kernels it cost 30-55 us, and recognition ran 0.65-0.94x the other algorithm's
time on calls of 0.1-0.5 ms."""

MAX_PHASES = 4096
"""Phases and Winograd, which walk every phase (``prod(strides)`` of them), are not chosen
past this many: a stride longer than the kernel leaves most phases empty, and a stride of
10**9 would take minutes to walk. Overlap-add's time does not depend on the stride."""

SCATTER_MAX_SMALL_MACS = 2**24
"""Overlap-add is chosen for calls of at most this many multiply-adds.

It makes a handful of NumPy calls where phases make several per phase and
tap, and on small problems those calls are the cost (tiny cases: 20-110 us
against 65-320 us).
"""


_COMPUTED_AS_IS = (np.dtype(np.float32), np.dtype(np.float64))
"""Dtypes computed and returned as they are when input and kernel share them (the common
case, answered before the general promotion)."""


def compute_dtype(inputs: np.ndarray, kernel: np.ndarray) -> tuple[np.dtype, np.dtype]:
    """(dtype computed in, dtype returned) for an input/kernel pair.

    Floats keep NumPy's promotion; float16 is computed in float32. An integer
    or bool array takes the other's float dtype (it does not widen it, as in
    torch); two of them are computed and returned in float32.
    """
    dtypes = (inputs.dtype, kernel.dtype)
    if dtypes[0] == dtypes[1] and dtypes[0] in _COMPUTED_AS_IS:
        return dtypes[0], dtypes[0]
    if all(dtype.kind in "biu" for dtype in dtypes):
        return np.dtype(np.float32), np.dtype(np.float32)
    real = all(dtype.kind in "biuf" for dtype in dtypes)
    try:
        result = np.result_type(*(d for d in dtypes if d.kind == "f" or not real))
    except TypeError:  # no common type (datetime64 and numbers)
        result = np.dtype(object)
    if result.kind != "f" or result.itemsize > 8:
        raise TypeError(
            "Expected real-valued `inputs` and `kernel` (float16, float32, float64, int or "
            f"bool). Received: inputs.dtype={inputs.dtype}, kernel.dtype={kernel.dtype}"
        )
    if result.itemsize < 4:
        return np.dtype(np.float32), result
    return result, result


def conv_transpose(
    inputs: np.ndarray,
    kernel: np.ndarray | PreparedKernel,
    args: ConvTransposeArgs,
    *,
    algorithm: str | None = None,
) -> np.ndarray:
    """Transposed convolution of already validated arrays.

    Args:
        inputs: array laid out as ``args.data_format`` says.
        kernel: ``(*kernel_size, filters, in_channels)``, an array or a
            :class:`PreparedKernel` (which keeps what is derived from it).
        args: the normalized arguments; shapes were checked by ``_shapes``.
        algorithm: ``"phases"``, ``"scatter"``, ``"rows"`` or ``"winograd"`` to force
            one; None lets :func:`choose_algorithm` pick.

    Returns:
        The output in ``args.data_format``.

    A plain kernel array that Winograd's tiles would take once prepared is
    recognized by its bits (:func:`convt.prepared.recognize`): from the second
    call with the same values on, it runs as the prepared kernel it was kept as.
    """
    prepared = kernel if isinstance(kernel, PreparedKernel) else None
    work_dtype, out_dtype = compute_dtype(inputs, kernel)
    channels_first = args.data_format == "channels_first"
    x = np.moveaxis(inputs, 1, -1) if channels_first else inputs
    x = np.ascontiguousarray(x, dtype=work_dtype)
    kernel = np.asarray(kernel, dtype=work_dtype)
    plans = _axis_plans(args, x.shape[1:-1])
    filters = kernel.shape[-2]
    shape = (x.shape[0], *(p.output_length for p in plans), filters)
    if not (math.prod(shape) and x.size):
        out = np.zeros(shape, dtype=work_dtype)
    else:
        kept = prepared is not None
        if not (kept or algorithm) and _recognizable(kernel.shape, kernel.dtype, plans, x.shape[0]):
            prepared, kept = recognize(kernel)
        chosen = algorithm or choose_algorithm(
            plans, x.shape[-1], filters, x.shape[0], dtype=work_dtype, prepared=kept)
        if chosen == "winograd" and not algorithm and not _all_finite(x, kernel, prepared):
            chosen = choose_algorithm(plans, x.shape[-1], filters, x.shape[0], dtype=work_dtype,
                                      prepared=kept, winograd=False)
        out = uninitialized(shape, work_dtype)
        macs = multiply_adds(plans, x.shape[-1], filters, x.shape[0])
        _run(chosen, x, kernel, plans, out, macs, prepared)
    if channels_first:
        out = np.moveaxis(out, -1, 1)
    return np.ascontiguousarray(out, dtype=out_dtype)


def _run(
    chosen: str,
    x: np.ndarray,
    kernel: np.ndarray,
    plans: tuple[AxisPlan, ...],
    out: np.ndarray,
    macs: int,
    prepared: PreparedKernel | None = None,
) -> None:
    """Runs the ``chosen`` algorithm into ``out``, on the workers when the call is large."""
    pieces = _threads.workers() if macs >= PARALLEL_MIN_MACS else 1
    with _threads.scratch_claim():
        if chosen == "winograd":
            tasks = _winograd.tasks(x, kernel, plans, out, pieces, prepared=prepared)
        else:
            tasks = ALGORITHMS[chosen](x, kernel, plans, out, pieces)
        _threads.run(tasks, parallel=pieces > 1)


def recipe(
    plans: tuple[AxisPlan, ...],
    input_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    prepared: bool = False,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The call as a function of its two arrays (channels_last, C-contiguous, ``dtype``),
    with every choice that the shapes make already made; None for empty calls and for
    those that Winograd could take (its choice also depends on the values, and on the
    kernel being kept: ``prepared``, or recognized by its bits).

    A small overlap-add call (one task) also has its chunks and zeroing decided
    (:func:`_scatter_layout`) and skips the choice of workers.
    """
    channels, filters = kernel_shape[-1], kernel_shape[-2]
    batch = input_shape[0]
    shape = (batch, *(p.output_length for p in plans), filters)
    if not (math.prod(shape) and math.prod(input_shape)):
        return None
    if prepared and _takes_winograd(plans, channels, filters, batch, dtype, prepared=True):
        return None
    if not prepared and _recognizable(kernel_shape, dtype, plans, batch):
        return None
    chosen = choose_algorithm(plans, channels, filters, batch, dtype=dtype, prepared=prepared)
    if chosen == "winograd":
        return None
    macs = multiply_adds(plans, channels, filters, batch)
    if chosen != "scatter" or macs >= PARALLEL_MIN_MACS:
        def any_task(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
            out = uninitialized(shape, dtype)
            _run(chosen, x, kernel, plans, out, macs)
            return out

        return any_task
    layout = _scatter_layout(plans, input_shape, kernel_shape, dtype.itemsize, 1)

    def one_task(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        out = uninitialized(shape, dtype)
        with _threads.scratch_claim():
            _threads.run(_scatter_tasks(layout, x, kernel, plans, out), parallel=False)
        return out

    return one_task


def _all_finite(x: np.ndarray, kernel: np.ndarray, prepared: PreparedKernel | None) -> bool:
    """False when an input or kernel value is inf or NaN.

    Winograd's transforms mix neighbouring values, so such a value would reach outputs
    that it cannot touch (an inf input of a 3-D call made 4,704 outputs non-finite where
    432 are); the other algorithms multiply each input by each weight alone. A sum of
    squares tells (BLAS's dot, a third of a NumPy sum's time): any inf or NaN makes it
    non-finite, and so do finite values whose squares overflow, which only costs
    Winograd's speed. A prepared kernel's answer is kept with it.
    """
    if prepared is None:
        kernel_finite = _squares_finite(kernel)
    else:
        kernel_finite = prepared.derived(("finite", kernel.dtype.str),
                                         lambda: np.asarray(_squares_finite(kernel)))
    return bool(kernel_finite) and _squares_finite(x)


def _squares_finite(array: np.ndarray) -> bool:
    flat = array.reshape(-1)
    return bool(np.isfinite(np.dot(flat, flat)))


def _recognizable(
    kernel_shape: tuple[int, ...], dtype: np.dtype, plans: tuple[AxisPlan, ...], batch: int
) -> bool:
    """True when the rule would send a prepared kernel of this shape and dtype to Winograd,
    comparing its bits included (:data:`COMPARE_COST`), and it is small enough to keep
    (:data:`convt.prepared.RECOGNIZED_MAX_BYTES`)."""
    size = math.prod(kernel_shape)
    compared = size if size * dtype.itemsize > COMPARE_CACHED_BYTES else 0
    return size * dtype.itemsize <= RECOGNIZED_MAX_BYTES and _takes_winograd(
        plans, kernel_shape[-1], kernel_shape[-2], batch, dtype, prepared=True,
        compared=compared)


@functools.lru_cache(maxsize=256)
def _axis_plans(args: ConvTransposeArgs, spatial: tuple[int, ...]) -> tuple[AxisPlan, ...]:
    """``args.axis_plans``, cached: a layer called in a loop asks for the same plans again."""
    return args.axis_plans(spatial)


@functools.lru_cache(maxsize=256)
def _tap_groups(plans: tuple[AxisPlan, ...]) -> tuple[tuple[TapGroup, ...], ...]:
    """Each axis's tap groups, cached (a tuple: the cached value is shared by every call)."""
    return tuple(plan.tap_groups() for plan in plans)


def choose_algorithm(
    plans: tuple[AxisPlan, ...],
    channels: int,
    filters: int,
    batch: int = 1,
    *,
    dtype: np.dtype | type = np.float32,
    prepared: bool = False,
    winograd: bool = True,
) -> str:
    """The faster algorithm for this geometry (the rule of docs/architecture.md).

    Winograd when it pays (float32 with numba, :data:`WINOGRAD_MIN_GAIN`; with
    a ``prepared`` kernel its transform is not counted, being kept from the
    first call) and ``winograd`` allows it.
    Otherwise overlap-add when its passes are compiled (:data:`ACCELERATE`;
    not for kernels twice the stride), when the taps tile the output
    (``kernel == stride``), when the outputs have at most half the inputs'
    channels, or when the call is small; of those, tap rows when every stride is 1, the
    window crops the first axis and there are enough filters. Sub-pixel
    phases otherwise.
    """
    if winograd and _takes_winograd(plans, channels, filters, batch, dtype, prepared):
        return "winograd"
    if (
        math.prod(p.stride for p in plans) > MAX_PHASES
        or (_accelerated(len(plans)) and not _two_taps_per_phase(plans))
        or _taps_tile_output(plans)
        or channels >= SCATTER_CHANNEL_RATIO * filters
        or multiply_adds(plans, channels, filters, batch) <= SCATTER_MAX_SMALL_MACS
    ):
        return "rows" if _rows_skip_crops(plans, filters) else "scatter"
    return "phases"


def _takes_winograd(
    plans: tuple[AxisPlan, ...],
    channels: int,
    filters: int,
    batch: int,
    dtype: np.dtype | type,
    prepared: bool,
    compared: int = 0,
) -> bool:
    """True when the rule picks Winograd: float32 with compiled transforms, at most
    :data:`MAX_PHASES` phases to walk (the estimate walks them), and an estimated work
    below the direct products that land in the window, by :data:`WINOGRAD_MIN_GAIN`
    (:data:`WINOGRAD_MIN_GAIN_NARROWING` for some calls, see :func:`_winograd_min_gain`).
    The work counts ``compared`` kernel elements at :data:`COMPARE_COST` each."""
    if dtype != np.float32 or filters == 1 or not (ACCELERATE and _fused.available()):
        return False  # one filter: each phase's GEMMs would be GEMVs, see WINOGRAD_MIN_GAIN
    if math.prod(p.stride for p in plans) > MAX_PHASES:
        return False
    gain = _winograd_gain(plans, channels, filters, batch, prepared, compared)
    return gain >= _winograd_min_gain(plans, channels, filters)


def _winograd_min_gain(plans: tuple[AxisPlan, ...], channels: int, filters: int) -> float:
    """The least estimated gain at which Winograd is taken (:data:`WINOGRAD_MIN_GAIN`,
    :data:`WINOGRAD_MIN_GAIN_NARROWING`)."""
    if (channels > filters and max(p.stride for p in plans) > 1
            and not _threads.small_gemm()):
        return WINOGRAD_MIN_GAIN_NARROWING
    return WINOGRAD_MIN_GAIN


@functools.lru_cache(maxsize=256)
def _winograd_gain(
    plans: tuple[AxisPlan, ...],
    channels: int,
    filters: int,
    batch: int,
    prepared: bool,
    compared: int = 0,
) -> float:
    """The direct products landing in the window over Winograd's estimated work, with
    ``compared`` elements at :data:`COMPARE_COST`; cached (a layer in a loop asks again; the
    estimate walks every phase's grids).

    0 when no phase has two taps on any axis (Winograd then saves no product: 1-D
    (8, 512, 256) -> 128, kernel 2, stride 2 estimated 0.91 and took 1.11-1.21x the time),
    and when its GEMMs would be bound by reading the transformed kernel
    (:func:`_winograd.kernel_bound`).
    """
    if _one_tap_phases(plans) or _winograd.kernel_bound(plans, channels, filters, batch):
        return 0.0
    landing = batch * channels * filters * math.prod(
        sum(stop - first for first, stop, _ in
            (plan.tap_reach(tap, 0, plan.input_length) for tap in range(plan.kernel_size)))
        for plan in plans
    )
    work = _winograd.cost(plans, channels, filters, batch, kernel_transform=not prepared)
    work += COMPARE_COST * compared
    return landing / work if work else 0.0  # no work: no tap lands in the window


def _one_tap_phases(plans: tuple[AxisPlan, ...]) -> bool:
    """True when no phase of any axis has two taps: taps ``j`` and ``j + D`` share a phase
    when ``D * dilation`` is a multiple of the stride, first at ``D = stride / gcd``."""
    return all(p.kernel_size - 1 < p.stride // math.gcd(p.stride, p.dilation) for p in plans)


def _two_taps_per_phase(plans: tuple[AxisPlan, ...]) -> bool:
    """True when every axis's kernel is twice its stride (no dilation): every phase then has
    exactly two taps per axis, and phases keep such shapes (see :data:`ACCELERATE`)."""
    return all(p.kernel_size == 2 * p.stride and p.dilation == 1 for p in plans)


def _accelerated(rank: int) -> bool:
    """True when overlap-add compiles its passes for inputs of this rank (:data:`ACCELERATE`)."""
    return ACCELERATE and 2 <= rank <= 3 and _fused.available()


def _rows_skip_crops(plans: tuple[AxisPlan, ...], filters: int) -> bool:
    """True when tap rows beat the canvas (see :data:`ROWS_MIN_FILTERS`).

    At stride 1 the canvas adds one tap at a time, as tap rows do, and then
    copies its window; tap rows add straight into the output and skip the
    GEMM rows that the crop would drop.
    """
    first = plans[0]
    least = ROWS_MIN_FILTERS_COMPILED if _accelerated(len(plans)) else ROWS_MIN_FILTERS
    return (
        len(plans) >= 2
        and all(p.stride == 1 for p in plans)
        and (first.crop_left > 0 or first.crop_right > 0)
        and filters >= least
    )


def multiply_adds(plans: tuple[AxisPlan, ...], channels: int, filters: int, batch: int) -> int:
    """The call's useful multiply-adds, ``N * prod(in_spatial) * C_in * C_out * prod(k)``."""
    return batch * channels * filters * math.prod(p.input_length * p.kernel_size for p in plans)


def _taps_tile_output(plans: tuple[AxisPlan, ...]) -> bool:
    """True when each scatter element receives exactly one tap of one input."""
    return all(p.kernel_size == p.stride and p.dilation == 1 for p in plans)


def uninitialized(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The output buffer, not zeroed: each algorithm writes every element (the tests fill it
    with NaN instead, so that an element left unwritten shows).

    Zeroing first is a pass over the whole output on the calling thread, before
    the workers start. Instead, algorithms store their results where they can
    (Winograd's tiles, the compiled sums, kernel == stride), and a chunk that
    adds into its own samples zeroes them itself, on its worker. Measured against
    zeroing first (interleaved, 41 samples): ``big_2d`` 0.93x, ``unet_same`` and
    ``conv_ae`` 0.96-0.97x, ``dilated`` and ``dcgan_s2`` 0.98-0.99x, the other
    cases 0.99-1.02x.
    """
    return np.empty(shape, dtype)


def _stored_box(
    columns: int, plans: tuple[AxisPlan, ...], spatial: tuple[int, ...]
) -> tuple[tuple[int, int], ...] | None:
    """Per axis, the ``(first, stop)`` outputs that overlap-add's chunks store when each owns
    its outputs; None when they add into them instead.

    The chunks store when the taps tile the full scatter, or when the compiled loop sums
    each output's taps (storing zeros where the inputs reach an output with no tap). Either
    way they store the range of outputs that the inputs reach; outside it, where
    ``output_padding`` appends zeros, nothing is written. ``columns`` is the GEMM's,
    ``taps * filters``.
    """
    if not (_taps_tile_output(plans) or _compiled_pass(columns, plans) == "sums"):
        return None
    tables = [_fused.landing_table(plan, 0, n) for plan, n in zip(plans, spatial)]
    return tuple((int(table[3]), int(table[3]) + len(table[0])) for table in tables)


def _zero_outside_box(out: np.ndarray, box: tuple[tuple[int, int], ...]) -> None:
    """Zeroes the outputs of ``out`` (``(batch, *L, C)``) outside ``box`` on any axis."""
    for axis, (first, stop) in enumerate(box):
        before = (slice(None),) * (axis + 1)
        out[(*before, slice(0, first))] = 0
        out[(*before, slice(stop, None))] = 0


def _chunks(
    batch: int, rows: int, row_bytes: int, pieces: int
) -> Iterator[tuple[slice, slice]]:
    """(batch slice, row slice) pairs whose scratch fits :data:`MEMORY_BUDGET`.

    ``row_bytes`` is the scratch that one row (first spatial axis) of one
    sample needs. Whole samples are grouped while they fit; a sample that
    does not fit alone is cut into groups of rows. The work is cut into a
    multiple of ``pieces`` chunks of equal size (to one sample or row), so
    that every worker gets the same share: 16 samples in chunks of 6, 6 and
    4 kept one worker idle for a third of the call (DCGAN 5x5: 10.2 -> 8.5 ms
    with 4 chunks of 4).
    """
    budget = min(MEMORY_BUDGET, max(1, -(-row_bytes * rows * batch // pieces)))
    sample_bytes = row_bytes * rows
    if sample_bytes <= budget:
        count = -(-batch // max(1, budget // max(sample_bytes, 1)))
        for samples in _threads.even_slices(batch, _round_up(count, pieces)):
            yield samples, slice(0, rows)
        return
    count = -(-rows // max(1, budget // row_bytes))
    row_slices = _threads.even_slices(rows, _round_up(count, pieces))
    for sample in range(batch):
        for row_slice in row_slices:
            yield slice(sample, sample + 1), row_slice


def _round_up(count: int, multiple: int) -> int:
    return -(-count // multiple) * multiple


def _phases(
    x: np.ndarray, kernel: np.ndarray, plans: tuple[AxisPlan, ...], out: np.ndarray, pieces: int
) -> Iterator[Task]:
    """Sub-pixel algorithm: per phase and block, one gather and one GEMM per chunk.

    A block is a box of one phase's outputs that all receive the same taps
    (:meth:`AxisPlan.phase_segments`), so no product with a missing input is
    computed and the block's columns are one strided view of the input.
    """
    filters = out.shape[-1]
    out.fill(0)  # outputs that no tap reaches stay zero
    for phase, blocks in _phase_blocks(plans):
        phase_out = out[(slice(None), *(slice(r, None, p.stride) for r, p in zip(phase, plans)))]
        phase_taps = [p.phase_taps(r) for p, r in zip(plans, phase)]
        phase_weights = _phase_weights(kernel, phase_taps)
        for block in blocks:
            weights = _block_weights(phase_weights, phase_taps, block)
            lengths = [stop - first for first, stop, _ in block]
            target = phase_out[(slice(None), *(slice(first, stop) for first, stop, _ in block))]
            row_bytes = math.prod(lengths[1:]) * (weights.shape[0] + filters) * x.itemsize
            macs = x.shape[0] * math.prod(lengths) * weights.size
            block_pieces = pieces if macs * pieces >= PARALLEL_MIN_MACS else 1
            for batches, rows in _chunks(x.shape[0], lengths[0], row_bytes, block_pieces):
                yield functools.partial(
                    _phase_chunk, x[batches], block, rows, weights, target[batches, rows]
                )


def _phase_chunk(
    x: np.ndarray,
    block: Block,
    rows: slice,
    weights: np.ndarray,
    target: np.ndarray,
) -> None:
    """Gathers one chunk's columns and writes its GEMM into the block's outputs."""
    if _reads_only_inputs(x, block, rows):
        windows = _windows(x, block, rows)
        columns = _threads.scratch(0, windows.shape, x.dtype)
        np.copyto(columns, windows)
    else:
        columns = _gather(x, block, rows)
    _matmul_into(columns.reshape(-1, weights.shape[0]), weights, target)


@functools.lru_cache(maxsize=256)
def _phase_blocks(
    plans: tuple[AxisPlan, ...],
) -> tuple[tuple[tuple[int, ...], tuple[Block, ...]], ...]:
    """(phase, blocks) of every phase that a tap reaches; a block has one segment per axis.

    Cached: repeated calls on one geometry (a layer in a loop) skip this arithmetic.
    """
    phases = []
    for phase in itertools.product(*(range(p.stride) for p in plans)):
        blocks = tuple(itertools.product(*(_axis_segments(p, r) for p, r in zip(plans, phase))))
        if blocks:  # a phase that no tap reaches stays zero
            phases.append((phase, blocks))
    return tuple(phases)


def _axis_segments(plan: AxisPlan, phase: int) -> tuple[tuple[int, int, Taps], ...]:
    """The phase's segments on one axis, or the whole axis when they are too many."""
    segments = plan.phase_segments(phase)
    if len(segments) <= PHASE_MAX_SEGMENTS or not segments:
        return segments
    return ((0, plan.phase_length(phase), plan.phase_taps(phase)),)


def _phase_weights(kernel: np.ndarray, taps: list[Taps]) -> np.ndarray:
    """The phase's kernel as a ``(*taps per axis, C_in, C_out)`` array."""
    picked = kernel[np.ix_(*([j for j, _ in axis_taps] for axis_taps in taps))]
    return np.ascontiguousarray(picked.swapaxes(-1, -2))


def _block_weights(phase_weights: np.ndarray, phase_taps: list[Taps], block: Block) -> np.ndarray:
    """The block's part of the phase's kernel as a ``(taps * C_in, C_out)`` matrix.

    A block's taps are consecutive among its phase's (offsets are monotonic
    in the tap), so its part is one slice per axis.
    """
    first_taps = [axis_taps.index(taps[0]) for axis_taps, (_, _, taps) in zip(phase_taps, block)]
    part = phase_weights[tuple(
        slice(first, first + len(taps)) for first, (_, _, taps) in zip(first_taps, block)
    )]
    return part.reshape(-1, phase_weights.shape[-1])


def _chunk_box(block: Block, rows: slice) -> tuple[list[int], list[int]]:
    """(first output, count) per axis of the block's chunk; ``rows`` cuts the first axis."""
    starts = [first for first, _, _ in block]
    starts[0] += rows.start
    counts = [rows.stop - rows.start] + [stop - first for first, stop, _ in block[1:]]
    return starts, counts


def _reads_only_inputs(x: np.ndarray, block: Block, rows: slice) -> bool:
    """True when every window of the chunk lies inside the input (a whole axis may reach out).

    Offsets fall as the taps rise, so the first tap reaches furthest right.
    """
    starts, counts = _chunk_box(block, rows)
    return all(
        start + taps[-1][1] >= 0 and start + count + taps[0][1] <= length
        for start, count, (_, _, taps), length in zip(starts, counts, block, x.shape[1:-1])
    )


def _gather(x: np.ndarray, block: Block, rows: slice) -> np.ndarray:
    """The block's input windows as ``(batch, *lengths, taps, C_in)`` columns, zeros where missing.

    Column ``t`` of element ``m`` holds input ``m + offset`` of tap ``t``.
    """
    starts, counts = _chunk_box(block, rows)
    n_taps = math.prod(len(taps) for _, _, taps in block)
    columns = _threads.scratch(0, (x.shape[0], *counts, n_taps, x.shape[-1]), x.dtype)
    for slot, combination in enumerate(itertools.product(*(taps for _, _, taps in block))):
        column = columns[..., slot, :]
        sources = []
        for axis, ((_, offset), start, count) in enumerate(zip(combination, starts, counts)):
            first = min(max(start, -offset), start + count)
            stop = max(min(start + count, x.shape[1 + axis] - offset), first)
            _zero_outside(column, axis, first - start, stop - start, count)
            sources.append(
                (slice(first - start, stop - start), slice(first + offset, stop + offset))
            )
        destination, source = zip(*sources)
        column[(slice(None), *destination)] = x[(slice(None), *source)]
    return columns


def _zero_outside(column: np.ndarray, axis: int, first: int, stop: int, count: int) -> None:
    """Zeros the elements of ``column`` before ``first`` and from ``stop`` on along ``axis``."""
    before = (slice(None),) * (axis + 1)
    if first > 0:
        column[(*before, slice(0, first))] = 0
    if stop < count:
        column[(*before, slice(stop, None))] = 0


def _windows(x: np.ndarray, block: Block, rows: slice) -> np.ndarray:
    """The block's input windows, a ``(batch, *lengths, *taps per axis, C_in)`` view of ``x``.

    Output ``m`` of an axis reads input ``m + offset`` for each of its taps;
    a block's taps are consecutive taps of its phase, so their offsets step
    evenly (down by ``dilation / gcd(stride, dilation)``) and one strided view
    holds every window. The caller has checked that every input it reaches
    exists (:func:`_reads_only_inputs`); NumPy also checks the view against
    ``x``'s buffer, which is contiguous.
    """
    starts, counts = _chunk_box(block, rows)
    corner = [start + taps[0][1] for start, (_, _, taps) in zip(starts, block)]
    steps = [taps[1][1] - taps[0][1] if len(taps) > 1 else 0 for _, _, taps in block]
    spatial_strides = x.strides[1:-1]
    windows = np.ndarray(
        (x.shape[0], *counts, *(len(taps) for _, _, taps in block), x.shape[-1]),
        x.dtype,
        buffer=x,
        offset=sum(index * stride for index, stride in zip(corner, spatial_strides)),
        strides=(x.strides[0], *spatial_strides,
                 *(step * stride for step, stride in zip(steps, spatial_strides)), x.strides[-1]),
    )
    windows.flags.writeable = False
    return windows


def _matmul_into(columns: np.ndarray, weights: np.ndarray, target: np.ndarray) -> None:
    """``target[...] = columns @ weights``, with no temporary when ``target`` is contiguous."""
    if target.flags.c_contiguous:
        np.matmul(columns, weights, out=target.reshape(columns.shape[0], -1))
    else:
        result = _threads.scratch(1, (columns.shape[0], weights.shape[1]), columns.dtype)
        target[...] = np.matmul(columns, weights, out=result).reshape(target.shape)


def _scatter(
    x: np.ndarray, kernel: np.ndarray, plans: tuple[AxisPlan, ...], out: np.ndarray, pieces: int
) -> Iterator[Task]:
    """Overlap-add algorithm: GEMM to per-tap columns, taps added into a canvas.

    Chunks are cut by samples and rows of the input, or, for inputs with few
    pixels (:func:`_splits_taps`), by the first axis's taps: each chunk then
    computes a part of the kernel over the whole input.
    """
    layout = _scatter_layout(plans, x.shape, kernel.shape, x.itemsize, pieces)
    yield from _scatter_tasks(layout, x, kernel, plans, out)


def _scatter_tasks(
    layout: ScatterLayout,
    x: np.ndarray,
    kernel: np.ndarray,
    plans: tuple[AxisPlan, ...],
    out: np.ndarray,
) -> Iterator[Task]:
    """Overlap-add's tasks by ``layout``; zeroes what the layout zeroes up front."""
    channels = kernel.shape[-1]
    if layout.tiles:
        yield functools.partial(_place_tiles, x, kernel.reshape(-1, channels).T, plans, out)
        return
    _zero_before_chunks(out, layout, plans[0])
    placing = threading.Lock() if layout.shared else None
    for taps, part_plans, part_groups in layout.parts:
        weights = kernel[taps].reshape(-1, channels).T
        for batches, rows, own_rows in layout.chunks:
            yield functools.partial(
                _scatter_chunk, x[batches, rows], weights, part_groups, part_plans, out[batches],
                rows.start, placing, own_rows, zero_first=layout.zero_own_samples,
            )


class ScatterLayout(NamedTuple):
    """What overlap-add's chunks are and how they meet, from the call's shapes alone."""

    tiles: bool
    """One task of a GEMM and one interleaving copy (:func:`_tiles_are_the_window`)."""
    parts: tuple[tuple[slice, tuple[AxisPlan, ...], tuple[tuple[TapGroup, ...], ...]], ...]
    """(taps of the first axis, their plans, their tap groups) of each part of the kernel."""
    chunks: tuple[tuple[slice, slice, tuple[int, int]], ...]
    """(samples, input rows, output rows of its own) of each chunk of the input."""
    shared: bool
    """Chunks add into outputs that other chunks add into too, holding a lock."""
    box: tuple[tuple[int, int], ...] | None
    """Per axis the outputs that the chunks store (:func:`_stored_box`), or None."""
    zero_rows: bool
    """The rows where row chunks of one sample meet are zeroed first."""
    zero_all: bool
    """The whole output is zeroed first."""
    zero_own_samples: bool
    """Each chunk zeroes its own samples before adding into them."""


@functools.lru_cache(maxsize=256)
def _scatter_layout(
    plans: tuple[AxisPlan, ...],
    input_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    itemsize: int,
    pieces: int,
) -> ScatterLayout:
    """Overlap-add's chunks and zeroing for these shapes; cached (a layer in a loop asks
    again, and working it out took a small call's tens of microseconds)."""
    rank = len(plans)
    if pieces == 1 and _tiles_are_the_window(plans):
        return ScatterLayout(tiles=True, parts=(), chunks=(), shared=False, box=None,
                             zero_rows=False, zero_all=False, zero_own_samples=False)
    kernel_size = kernel_shape[:rank]
    filters = kernel_shape[rank]
    groups = _tap_groups(plans)
    canvas_row = plans[0].stride * math.prod(
        (n + axis_groups[-1].row) * plan.stride
        for n, axis_groups, plan in zip(input_shape[2:-1], groups[1:], plans[1:])
    )
    split = _splits_taps(input_shape, kernel_shape, plans, pieces)
    parts = pieces if split else 1
    columns_row = math.prod(input_shape[2:-1]) * math.prod(kernel_size) // parts
    row_bytes = (columns_row + canvas_row) * filters * itemsize
    chunks = list(_chunks(input_shape[0], input_shape[1], row_bytes, pieces // parts))
    # Chunks of one sample's rows add into overlapping windows, as do parts of the kernel;
    # whole samples never overlap, and neither do the tiles of kernel == stride.
    whole_samples = chunks[0][1].stop == input_shape[1]
    rows_overlap = not whole_samples and not _taps_tile_output(plans)
    shared = split or rows_overlap
    box = None if split else _stored_box(math.prod(kernel_size) * filters, plans,
                                         input_shape[1:-1])
    stored = box is not None
    zero_own_samples = not shared and whole_samples and not stored
    kernel_parts = []
    for taps in _threads.even_slices(kernel_size[0], parts):
        part_plans = plans if parts == 1 else (
            plans[0].kernel_part(taps.start, taps.stop), *plans[1:])
        kernel_parts.append((taps, part_plans, groups if parts == 1 else _tap_groups(part_plans)))
    return ScatterLayout(
        tiles=False,
        parts=tuple(kernel_parts),
        chunks=tuple(
            (batches, rows, (0, 0) if split else plans[0].own_outputs(rows.start, rows.stop))
            for batches, rows in chunks),
        shared=shared,
        box=box,
        zero_rows=stored and rows_overlap,
        zero_all=not (stored or zero_own_samples),
        zero_own_samples=zero_own_samples,
    )


def _zero_before_chunks(out: np.ndarray, layout: ScatterLayout, first_axis: AxisPlan) -> None:
    """Zeroes the outputs that the layout's chunks neither store nor zero themselves."""
    if layout.box is not None:
        _zero_outside_box(out, layout.box)
    if layout.zero_rows:
        _zero_shared_rows(out, layout.chunks, first_axis)
    elif layout.zero_all:
        out.fill(0)  # chunks that share outputs, or leave some unwritten


def _tiles_are_the_window(plans: tuple[AxisPlan, ...]) -> bool:
    """True when the taps tile the output (``kernel == stride``) and Keras's window is the
    whole scatter (no crop, no zeros appended): each input's taps are one output tile.

    Then a small call (one task) is its GEMM and one interleaving copy into the
    output, without overlap-add's chunks, landing tables and zeroing. Their set-up
    cost ``keras_doc`` (a GEMM of 0.16 ms) 46 us of Python and NumPy calls inside the
    benchmark's loop, where the GEMM evicts their code and objects from the caches
    between calls (docs/architecture.md, "Per-call cost inside a loop").
    """
    return _taps_tile_output(plans) and all(
        p.crop_left == 0 and p.crop_right == 0 for p in plans)


def _place_tiles(
    x: np.ndarray, weights: np.ndarray, plans: tuple[AxisPlan, ...], out: np.ndarray
) -> None:
    """Stores the tiles of every input into ``out`` (see :func:`_tiles_are_the_window`)."""
    _place_window(out, _tap_columns(x, weights, plans), 0, plans, add=False)


def _zero_shared_rows(
    out: np.ndarray, chunks: tuple[tuple[slice, slice, tuple[int, int]], ...], plan: AxisPlan
) -> None:
    """Zeroes the output rows that no row chunk stores: the chunks add into the rows they
    share (under the lock), and store the rows they own (:meth:`AxisPlan.own_outputs`)
    that their inputs reach.

    A kernel shorter than its stride leaves rows between two inputs' taps that
    no input reaches; at a cut between chunks such a row is owned by both and
    stored by neither, so it is zeroed here too.
    """
    start = 0
    for samples, rows, (first, stop) in chunks:  # the rows each owns
        if samples.start > 0:  # every sample is cut into the same rows
            break
        reached = rows.start * plan.stride - plan.crop_left
        reach_stop = (rows.stop - 1) * plan.stride + plan.effective_kernel - plan.crop_left
        out[:, start:max(first, reached, start)] = 0
        start = max(start, min(stop, reach_stop))
    out[:, start:] = 0


def _splits_taps(
    input_shape: tuple[int, ...], kernel_shape: tuple[int, ...], plans: tuple[AxisPlan, ...],
    pieces: int,
) -> bool:
    """True when overlap-add's workers share out the first axis's taps rather than the input.

    With few input pixels, chunks of rows give each worker a GEMM of few rows
    against the whole kernel, which OpenBLAS runs slowly; a part of the
    kernel against every pixel runs faster (see :data:`TAP_SPLIT_MAX_PIXELS`).
    Not when the taps tile the output: those GEMMs write the output directly.
    """
    return (
        pieces > 1
        and math.prod(input_shape[:-1]) <= TAP_SPLIT_MAX_PIXELS
        and kernel_shape[0] % pieces == 0
        and not _taps_tile_output(plans)
    )


def _scatter_chunk(
    block: np.ndarray,
    weights: np.ndarray,
    groups: tuple[tuple[TapGroup, ...], ...],
    plans: tuple[AxisPlan, ...],
    out: np.ndarray,
    row_start: int,
    placing: threading.Lock | None,
    own_rows: tuple[int, int],
    *,
    zero_first: bool = False,
) -> None:
    """One chunk's GEMM, its taps summed, its window placed.

    ``placing`` is held while adding into outputs that other chunks add into
    too; None when the chunk's outputs are its own. Output rows ``own_rows``
    (first spatial axis) are the chunk's own even then. ``zero_first`` zeroes
    ``out`` (the chunk's own samples) before adding into it.
    """
    owned = placing is None
    if zero_first:
        out.fill(0)
    compiled = _compiled_pass(weights.shape[1], plans)
    if compiled == "sums":
        columns = _pixel_taps(block, weights, plans)
        _fused_overlap_add(out, columns, row_start, plans, placing, own_rows)
        return
    placing = placing or contextlib.nullcontext()
    if compiled == "planes" or (
        weights.shape[1] <= PLANE_MAX_ADDS and not _taps_tile_output(plans)
    ):
        pixel_major = compiled != "planes" and weights.shape[1] <= PLANE_MAX_ADDS
        planes = _tap_planes(block, weights, plans, pixel_major=pixel_major)
        with placing:
            _add_tap_planes(out, planes, row_start, plans, compiled=compiled == "planes")
        return
    interleaved = _tap_columns(block, weights, plans)
    if _taps_tile_output(plans):
        with placing:
            _place_window(out, interleaved, row_start, plans, add=not owned)
        return
    canvas = _overlap_add(interleaved, groups, plans)
    with placing:
        _place_window(out, canvas, row_start, plans, add=True)


def _compiled_pass(columns: int, plans: tuple[AxisPlan, ...]) -> str | None:
    """Which compiled loop replaces overlap-add's NumPy passes (see :data:`ACCELERATE`).

    ``"planes"`` with few filters (each tap's plane added in place), ``"sums"``
    otherwise (each output's landing taps summed); None without the
    accelerator, when the taps tile the output (nothing to add), and on 1-D
    inputs whose NumPy passes are long runs (:data:`COMPILED_1D_MAX_KERNEL`). ``columns``
    is the GEMM's, ``taps * filters``.
    """
    if _taps_tile_output(plans) or not (ACCELERATE and _fused.available()):
        return None
    if len(plans) == 1 and not (plans[0].kernel_size <= COMPILED_1D_MAX_KERNEL
                                or columns <= PLANE_MAX_ADDS):
        return None
    return "planes" if _few_filters(columns, plans) else "sums"


def _fused_overlap_add(
    out: np.ndarray,
    columns: np.ndarray,
    row_start: int,
    plans: tuple[AxisPlan, ...],
    placing: threading.Lock | None,
    own_rows: tuple[int, int],
) -> None:
    """The canvas's passes in one compiled loop that sums each output's landing taps.

    ``columns`` is ``(batch, *n, *k, C_out)``. Output rows that are the
    chunk's own are stored; the others are added holding ``placing``.
    """
    counts = columns.shape[1:1 + len(plans)]
    rows = _fused.landing_table(plans[0], row_start, counts[0])
    others = [_fused.landing_table(plan, 0, n) for plan, n in zip(plans[1:], counts[1:])]
    if placing is None:
        _fused.overlap_add(columns, out, [rows, *others], add=False)
        return
    own, shared = _fused.split_rows(rows, own_rows)
    _fused.overlap_add(columns, out, [own, *others], add=False)
    with placing:
        for part in shared:
            _fused.overlap_add(columns, out, [part, *others], add=True)


def _few_filters(columns: int, plans: tuple[AxisPlan, ...]) -> bool:
    return columns // math.prod(p.kernel_size for p in plans) < PLANAR_MAX_FILTERS


def _tap_planes(
    block: np.ndarray, weights: np.ndarray, plans: tuple[AxisPlan, ...], *, pixel_major: bool
) -> np.ndarray:
    """The GEMM of one chunk as ``(taps * C_out, pixels)``: ``(*k, C_out, batch, *n)`` planes.

    With ``pixel_major`` the GEMM is pixels times taps and the planes are its
    transposed view: OpenBLAS runs that orientation 1.1-2x faster when
    ``taps * C_out`` is small, and the strided planes cost NumPy's per-tap adds
    nothing (one-filter 5x5 DCGAN output: 0.41 -> 0.375 ms). Otherwise the
    kernel as stored times the pixels transposed, so that each plane is
    contiguous for the canvas's transposes (one-filter iSTFT-like case: 2.7
    ms against 3.2 pixel-major) and for the compiled plane adds, whose runs
    then read consecutive products (whole calls 0.75-0.90x on six 1-D, 2-D and
    3-D shapes with 1-8 filters; a call's one thread runs both GEMMs alike).
    """
    pixels = block.reshape(-1, block.shape[-1])
    if pixel_major:
        columns = _threads.scratch(0, (pixels.shape[0], weights.shape[1]), block.dtype)
        planes = np.matmul(pixels, weights, out=columns).T
    else:
        planes = _threads.scratch(0, (weights.shape[1], pixels.shape[0]), block.dtype)
        np.matmul(weights.T, pixels.T, out=planes)
    return planes.reshape(*(p.kernel_size for p in plans), -1, *block.shape[:-1])


def _add_tap_planes(
    out: np.ndarray,
    planes: np.ndarray,
    row_start: int,
    plans: tuple[AxisPlan, ...],
    *,
    compiled: bool = False,
) -> None:
    """Adds each tap's plane of each filter into its strided place in Keras's window.

    With few filters and taps, a canvas of taps would be added with a
    few-element inner loop; a plane per tap and filter is one strided NumPy add
    of whole rows (see :data:`PLANE_MAX_ADDS`). ``compiled`` runs the adds in
    one compiled loop instead (see :data:`ACCELERATE`).
    """
    rank = len(plans)
    counts = planes.shape[rank + 2:]
    if compiled:
        starts = (row_start,) + (0,) * (rank - 1)
        tables = [_fused.reach_table(p, s, n) for p, s, n in zip(plans, starts, counts)]
        _fused.add_planes(planes, out, tables)
        return
    for taps, target, source in _plane_places(plans, row_start, counts):
        for channel in range(planes.shape[rank]):
            out[(slice(None), *target, channel)] += planes[(*taps, channel, slice(None), *source)]


@functools.lru_cache(maxsize=256)
def _plane_places(
    plans: tuple[AxisPlan, ...], row_start: int, counts: tuple[int, ...]
) -> tuple[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]], ...]:
    """(taps, output slices, input slices) of every tap that lands inside Keras's window.

    For the input block that starts at row ``row_start`` and has ``counts``
    elements per spatial axis. Cached: the slices are the same every call.
    """
    starts = (row_start,) + (0,) * (len(plans) - 1)
    reaches = [[plan.tap_reach(tap, start, count) for tap in range(plan.kernel_size)]
               for plan, start, count in zip(plans, starts, counts)]
    places = []
    for taps in itertools.product(*(range(p.kernel_size) for p in plans)):
        spans = [reaches[axis][tap] for axis, tap in enumerate(taps)]
        if any(first == stop for first, stop, _ in spans):
            continue
        target = tuple(slice(output, output + (stop - first - 1) * plan.stride + 1, plan.stride)
                       for (first, stop, output), plan in zip(spans, plans))
        source = tuple(slice(first, stop) for first, stop, _ in spans)
        places.append((taps, target, source))
    return tuple(places)


def _tap_columns(block: np.ndarray, weights: np.ndarray, plans: tuple[AxisPlan, ...]) -> np.ndarray:
    """The GEMM of one chunk, viewed as ``(batch, n0, k0, n1, k1, ..., C_out)``.

    Pixels times taps, each pixel's taps side by side; with few filters the
    planes of :func:`_tap_planes`, transposed.
    """
    rank = len(plans)
    if _few_filters(weights.shape[1], plans):
        columns = _tap_planes(block, weights, plans, pixel_major=False)
        inputs, taps, channel = 1 + rank, range(rank), rank
    else:
        columns = _pixel_taps(block, weights, plans)
        inputs, taps, channel = 0, range(1 + rank, 1 + 2 * rank), 1 + 2 * rank
    order = [inputs]
    for axis, tap in enumerate(taps):
        order += [inputs + 1 + axis, tap]
    return columns.transpose(*order, channel)


def _pixel_taps(block: np.ndarray, weights: np.ndarray, plans: tuple[AxisPlan, ...]) -> np.ndarray:
    """The GEMM of one chunk as ``(batch, *n, *k, C_out)``: every pixel's taps side by side."""
    pixels = block.reshape(-1, block.shape[-1])
    columns = _threads.scratch(0, (pixels.shape[0], weights.shape[1]), block.dtype)
    return np.matmul(pixels, weights, out=columns).reshape(
        *block.shape[:-1], *(p.kernel_size for p in plans), -1
    )


def _overlap_add(
    interleaved: np.ndarray, groups: tuple[tuple[TapGroup, ...], ...], plans: tuple[AxisPlan, ...]
) -> np.ndarray:
    """Sums the taps into a ``(batch, rows0, stride0, rows1, stride1, ..., C)`` canvas."""
    lengths = interleaved.shape[1:-1:2]
    shape = [interleaved.shape[0]]
    for n, axis_groups, plan in zip(lengths, groups, plans):
        shape += [n + axis_groups[-1].row, plan.stride]
    canvas = _threads.scratch(1, (*shape, interleaved.shape[-1]), interleaved.dtype)
    canvas.fill(0)
    for combination in itertools.product(*groups):
        target, source = [slice(None)], [slice(None)]
        for n, group, plan in zip(lengths, combination, plans):
            last_column = group.first_column + (group.taps - 1) * plan.dilation
            target += [slice(group.row, group.row + n),
                       slice(group.first_column, last_column + 1, plan.dilation)]
            source += [slice(None), slice(group.first_tap, group.first_tap + group.taps)]
        canvas[tuple(target)] += interleaved[tuple(source)]
    return canvas


def _place_window(
    out: np.ndarray, canvas: np.ndarray, row_start: int, plans: tuple[AxisPlan, ...], add: bool
) -> None:
    """Writes (or adds) the part of the canvas inside Keras's output window.

    Canvas element ``P`` of an axis is scatter index ``start * stride + P``,
    which is output index ``start * stride + P - crop_left``.
    """
    rank = len(plans)
    sizes = [canvas.shape[1 + 2 * a] * canvas.shape[2 + 2 * a] for a in range(rank)]
    sources, targets = [slice(None)], [slice(None)]
    for plan, start, size in zip(plans, (row_start,) + (0,) * (rank - 1), sizes):
        shift = start * plan.stride - plan.crop_left
        first, stop = max(0, -shift), min(size, plan.output_length - shift)
        if first >= stop:
            return
        sources.append(slice(first, stop))
        targets.append(slice(first + shift, stop + shift))
    region = out[tuple(targets)]
    if region.flags.c_contiguous and region.shape[1:-1] == tuple(sizes):
        region, part = region.reshape(canvas.shape), canvas
    else:
        part = canvas.reshape(canvas.shape[0], *sizes, canvas.shape[-1])[tuple(sources)]
    if add:
        region += part
    else:
        region[...] = part


def _rows(
    x: np.ndarray, kernel: np.ndarray, plans: tuple[AxisPlan, ...], out: np.ndarray, pieces: int
) -> Iterator[Task]:
    """Tap-row algorithm: per chunk of output rows, one GEMM per tap of the first axis.

    A chunk owns a range of output rows (first spatial axis) of some samples.
    For each tap ``a`` of that axis, only the input rows whose tap ``a`` lands
    in the chunk's rows go through the GEMM ``(pixels, C_in) @ (C_in, taps *
    C_out)`` (the other axes' taps side by side), so rows that ``"same"``
    crops are never computed; each tap of the other axes is then added
    straight into the output. The chunk's input rows are laid out
    ``(rows, ..., samples, C_in)`` so that every landing row range, all
    samples included, is one matrix.
    """
    rank = len(plans)
    filters, channels = kernel.shape[rank:]
    weights = kernel.reshape(kernel.shape[0], -1, channels)
    other_taps = math.prod(kernel.shape[1:rank])
    pixels_per_row = math.prod(x.shape[2:-1])
    row_bytes = pixels_per_row * (channels + other_taps * filters) * x.itemsize
    row_bytes = max(1, row_bytes // plans[0].stride)
    for samples, rows in _chunks(x.shape[0], plans[0].output_length, row_bytes, pieces):
        yield functools.partial(_rows_chunk, x[samples], weights, plans, out[samples], rows)


def _rows_chunk(
    x: np.ndarray,
    weights: np.ndarray,
    plans: tuple[AxisPlan, ...],
    out: np.ndarray,
    rows: slice,
) -> None:
    """Fills output rows ``rows`` of these samples, tap row by tap row."""
    out[:, rows] = 0
    first_axis = plans[0]
    reaches = [(tap, *first_axis.tap_reach(tap, 0, x.shape[1], outputs=(rows.start, rows.stop)))
               for tap in range(first_axis.kernel_size)]
    reaches = [reach for reach in reaches if reach[1] < reach[2]]
    if not reaches:
        return
    low, high = min(r[1] for r in reaches), max(r[2] for r in reaches)
    slab = _sample_minor(x[:, low:high])
    target = np.moveaxis(out, 0, -2)
    places = _plane_places(plans[1:], 0, x.shape[2:-1])
    for tap, first, stop, output in reaches:
        landing = slab[first - low:stop - low]
        products = _threads.scratch(1, (landing[..., 0].size, weights.shape[1]), x.dtype)
        np.matmul(landing.reshape(-1, x.shape[-1]), weights[tap].T, out=products)
        products = products.reshape(*landing.shape[:-1], *(p.kernel_size for p in plans[1:]), -1)
        output_rows = slice(output, output + (stop - first - 1) * first_axis.stride + 1,
                            first_axis.stride)
        for taps, places_out, places_in in places:
            target[(output_rows, *places_out)] += products[
                (slice(None), *places_in, slice(None), *taps)
            ]


def _sample_minor(x: np.ndarray) -> np.ndarray:
    """``x`` laid out ``(rows, ..., samples, C)`` in one buffer (a view for one sample)."""
    moved = np.moveaxis(x, 0, -2)
    if moved.flags.c_contiguous:
        return moved
    slab = _threads.scratch(0, moved.shape, x.dtype)
    np.copyto(slab, moved)
    return slab


ALGORITHMS: dict[
    str, Callable[[np.ndarray, np.ndarray, tuple[AxisPlan, ...], np.ndarray, int], Iterator[Task]]
] = {
    "phases": _phases,
    "scatter": _scatter,
    "rows": _rows,
    "winograd": _winograd.tasks,
}
"""Each algorithm yields independent tasks that fill a channels_last ``out``.

``out`` arrives uninitialized (:func:`uninitialized`): an algorithm writes every
element, zeroing what no product reaches and what its chunks add into.

Called as ``algorithm(x, kernel, plans, out, pieces)``; ``pieces`` is the least
number of chunks worth cutting the work into (one per worker thread).
"""
