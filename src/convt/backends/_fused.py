"""Overlap-add's passes as compiled loops: an optional accelerator (numba).

Overlap-add's GEMM gives every input pixel's contribution to every tap. In
NumPy those are then added, a group of taps at a time, into a zeroed canvas
whose window is added into the output: each pass reads and writes the canvas
again. Two loops here replace those passes:

- :func:`overlap_add` gives each output element the sum of the contributions
  of the taps that land there (at most ``ceil(k / s)`` per axis). It walks the
  inputs in the GEMM's order and adds each tap's products where it lands, into
  outputs it has zeroed (or into the output, for rows that chunks share): the
  reads stream, the adds hit the few output rows near the input. Its inner
  loop runs over the filters.
- :func:`add_planes` walks the taps: each tap's plane of products is added into
  its strided place in the output. For few filters, where the first loop's
  inner loop would be a few elements long.

Both run a 3-D problem; 1-D and 2-D ones get leading axes of one element and
one tap, so that the innermost loops stay the long ones (with a trailing unit
axis the first loop alone took 1.19-1.31x as long, the second 2.7x).

numba compiles each loop on first use (cached on disk), never at ``import
convt``; without numba, :func:`compiled` returns None and the NumPy passes run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from convt._shapes import AxisPlan

LandingTable = tuple[np.ndarray, np.ndarray, np.ndarray, int]
"""``(counts, taps, inputs, first_output)`` of one axis; see :func:`landing_table`."""

ReachTable = tuple[np.ndarray, int]
"""``(reaches, stride)`` of one axis; see :func:`reach_table`."""

UNIT_AXIS = AxisPlan(input_length=1, stride=1, kernel_size=1, dilation=1, output_length=1,
                     crop_left=0)
"""The axis of one element and one tap that pads a problem to three axes."""


@functools.cache
def compiled(loop: Callable[..., None]) -> Callable[..., None] | None:
    """``loop`` compiled by numba (on its first call), or None when numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(nogil=True, cache=True)(loop)


@functools.cache
def jitable(*helpers: Callable[..., object]) -> None:
    """Lets compiled loops call ``helpers`` (numba's ``register_jitable``); once, and
    nothing without numba (the loops then run as plain Python and call them as such)."""
    try:
        from numba.extending import register_jitable
    except ImportError:
        return
    for helper in helpers:
        register_jitable(helper)


def available() -> bool:
    """True when numba is installed, so that the loops compile."""
    return compiled(_overlap_add_loop) is not None


def overlap_add(
    columns: np.ndarray, out: np.ndarray, tables: Sequence[LandingTable], *, add: bool
) -> None:
    """``out (+)=`` the taps of ``columns`` landing on each element, by the compiled loop.

    ``columns`` is ``(batch, *n, *k, C)``, ``out`` the part of Keras's window
    ``(batch, *L, C)`` that ``tables`` (one :func:`landing_table` per axis) reach.
    """
    rank = len(tables)
    jitable(_input_landings)
    _run_on_three_axes(_overlap_add_loop, columns, (1, 1 + rank), out, tables,
                       landing_table(UNIT_AXIS, 0, 1), add)


def add_planes(planes: np.ndarray, out: np.ndarray, tables: Sequence[ReachTable]) -> None:
    """Adds each tap's plane of ``planes`` into its place in ``out``, by the compiled loop.

    ``planes`` is ``(*k, C, batch, *n)`` (any strides), ``out`` Keras's window
    ``(batch, *L, C)``; ``tables`` holds one :func:`reach_table` per axis.
    """
    rank = len(tables)
    _run_on_three_axes(_plane_adds_loop, planes, (0, rank + 2), out, tables,
                       reach_table(UNIT_AXIS, 0, 1))


def _run_on_three_axes(
    loop: Callable[..., None],
    operand: np.ndarray,
    spatial_starts: tuple[int, int],
    out: np.ndarray,
    tables: Sequence[LandingTable | ReachTable],
    unit_table: LandingTable | ReachTable,
    *flags: bool,
) -> None:
    """Runs the compiled ``loop`` with leading unit axes up to three spatial axes.

    ``spatial_starts`` are the operand's first axis of inputs and of taps;
    ``out`` is ``(batch, *L, C)``.
    """
    units = 3 - len(tables)
    compiled(loop)(
        _with_unit_axes(operand, units, spatial_starts), _with_unit_axes(out, units, (1,)),
        *[unit_table] * units, *tables, *flags,
    )


def _with_unit_axes(array: np.ndarray, count: int, positions: tuple[int, ...]) -> np.ndarray:
    """A view of ``array`` with ``count`` axes of length one inserted before each axis in
    ``positions`` (a reshape that only adds unit axes never copies)."""
    if not count:
        return array
    shape: list[int] = []
    for axis, length in enumerate(array.shape):
        shape += [1] * count if axis in positions else []
        shape.append(length)
    return array.reshape(shape)


def _overlap_add_loop(columns, out, axis0, axis1, axis2, add):
    """``out[b, o0, o1, o2] (+)= sum of columns[b, i0, i1, i2, t0, t1, t2]`` over landing taps.

    Plain Python until :func:`compiled` compiles it (the tests run both).

    ``columns`` is ``(batch, n0, n1, n2, k0, k1, k2, C)``; ``out`` is the
    window ``(batch, L0, L1, L2, C)``; each ``axis`` is a landing table
    (:func:`landing_table`) whose outputs start at ``first_output``. Storing
    (``add`` False) zeroes the tables' box of outputs first. The columns are
    read in their order, each input's taps added where they land: the reads
    stream, and the adds hit the few output rows near the input.
    """
    lands0 = _input_landings(axis0, columns.shape[1], columns.shape[4])
    lands1 = _input_landings(axis1, columns.shape[2], columns.shape[5])
    lands2 = _input_landings(axis2, columns.shape[3], columns.shape[6])
    if not add:
        out[:, axis0[3]:axis0[3] + axis0[0].shape[0], axis1[3]:axis1[3] + axis1[0].shape[0],
            axis2[3]:axis2[3] + axis2[0].shape[0]] = 0
    for b in range(columns.shape[0]):
        for i0 in range(columns.shape[1]):
            for i1 in range(columns.shape[2]):
                for i2 in range(columns.shape[3]):
                    for t0 in range(columns.shape[4]):
                        o0 = lands0[i0, t0]
                        if o0 < 0:
                            continue
                        for t1 in range(columns.shape[5]):
                            o1 = lands1[i1, t1]
                            if o1 < 0:
                                continue
                            for t2 in range(columns.shape[6]):
                                o2 = lands2[i2, t2]
                                if o2 < 0:
                                    continue
                                source = columns[b, i0, i1, i2, t0, t1, t2]
                                target = out[b, o0, o1, o2]
                                for c in range(source.shape[0]):
                                    target[c] += source[c]


def _input_landings(table, inputs, taps):
    """The landing table turned around: ``lands[i, t]`` is the output that tap ``t`` of input
    ``i`` lands on, among the table's, or -1."""
    counts, tap_of, input_of, first = table
    lands = np.full((inputs, taps), -1, np.intp)
    for o in range(counts.shape[0]):
        for j in range(counts[o]):
            lands[input_of[o, j], tap_of[o, j]] = first + o
    return lands


def _plane_adds_loop(planes, out, axis0, axis1, axis2):
    """``out[b, o0, o1, o2, c] += planes[t0, t1, t2, c, b, i0, i1, i2]`` for every landing tap.

    Plain Python until :func:`compiled` compiles it (the tests run both).

    ``planes`` is ``(k0, k1, k2, C, batch, n0, n1, n2)``; ``out`` is Keras's
    window ``(batch, L0, L1, L2, C)``; each ``axis`` is a reach table
    (:func:`reach_table`).
    """
    reaches0, stride0 = axis0
    reaches1, stride1 = axis1
    reaches2, stride2 = axis2
    for t0 in range(planes.shape[0]):
        first0, stop0, output0 = reaches0[t0, 0], reaches0[t0, 1], reaches0[t0, 2]
        for t1 in range(planes.shape[1]):
            first1, stop1, output1 = reaches1[t1, 0], reaches1[t1, 1], reaches1[t1, 2]
            for t2 in range(planes.shape[2]):
                first2, stop2, output2 = reaches2[t2, 0], reaches2[t2, 1], reaches2[t2, 2]
                # With no input in reach (first2 == stop2) the source run is empty and the
                # loop below adds nothing, whatever slice of the output this end gives.
                last2 = output2 + (stop2 - first2 - 1) * stride2
                for c in range(planes.shape[3]):
                    for b in range(planes.shape[4]):
                        for i0 in range(first0, stop0):
                            o0 = output0 + (i0 - first0) * stride0
                            for i1 in range(first1, stop1):
                                o1 = output1 + (i1 - first1) * stride1
                                source = planes[t0, t1, t2, c, b, i0, i1, first2:stop2]
                                target = out[b, o0, o1, output2:last2 + 1:stride2, c]
                                for i2 in range(source.shape[0]):
                                    target[i2] += source[i2]


@functools.lru_cache(maxsize=1024)
def reach_table(plan: AxisPlan, start: int, count: int) -> ReachTable:
    """Where each tap of inputs ``start .. start + count - 1`` lands inside Keras's window.

    Returns ``(reaches, stride)``: row ``tap`` of ``reaches`` is
    :meth:`AxisPlan.tap_reach` ``(first, stop, output)``, so that input ``start +
    m`` (``first <= m < stop``) lands at output ``output + (m - first) * stride``.
    Cached: a layer in a loop asks for the same tables.

    Example:
        >>> from convt._shapes import axis_plan
        >>> reaches, stride = reach_table(axis_plan(2, 3, 2, "same", None, 1), 0, 2)
        >>> reaches.tolist(), stride  # tap 2 of input 1 would land on output 4, outside
        ([[0, 2, 0], [0, 2, 1], [0, 1, 2]], 2)
    """
    reaches = np.array([plan.tap_reach(tap, start, count) for tap in range(plan.kernel_size)],
                       np.intp).reshape(plan.kernel_size, 3)
    reaches.flags.writeable = False
    return reaches, plan.stride


@functools.lru_cache(maxsize=1024)
def landing_table(plan: AxisPlan, start: int, count: int) -> LandingTable:
    """Which taps of inputs ``start .. start + count - 1`` land on each output they reach.

    Returns ``(counts, taps, inputs, first_output)``: output ``first_output +
    o`` of Keras's window receives tap ``taps[o, j]`` of input ``start +
    inputs[o, j]`` for ``j < counts[o]``. The outputs run from the first to
    the last one that these inputs reach (:meth:`AxisPlan.tap_reach`).
    Cached: a layer in a loop asks for the same tables.

    Example:
        >>> from convt._shapes import axis_plan
        >>> counts, taps, inputs, first = landing_table(axis_plan(2, 3, 2, "same", None, 1), 0, 2)
        >>> first, counts.tolist()  # outputs 0..3 of a 3-tap, stride-2 "same" axis
        (0, [1, 1, 2, 1])
        >>> [list(zip(t[:n], i[:n])) for n, t, i in zip(counts, taps.tolist(), inputs.tolist())]
        [[(0, 0)], [(1, 0)], [(0, 1), (2, 0)], [(1, 1)]]
    """
    landings = [(output + (m - first) * plan.stride, tap, m)
                for tap in range(plan.kernel_size)
                for first, stop, output in [plan.tap_reach(tap, start, count)]
                for m in range(first, stop)]
    if not landings:
        empty = np.zeros((0, 1), np.intp)
        return np.zeros(0, np.intp), empty, empty, 0
    first_output = min(output for output, _, _ in landings)
    length = max(output for output, _, _ in landings) + 1 - first_output
    counts = np.zeros(length, np.intp)
    taps = np.zeros((length, plan.kernel_size), np.intp)
    inputs = np.zeros_like(taps)
    for output, tap, m in sorted(landings):
        slot = output - first_output
        taps[slot, counts[slot]], inputs[slot, counts[slot]] = tap, m
        counts[slot] += 1
    for array in (counts, taps, inputs):
        array.flags.writeable = False
    return counts, taps, inputs, first_output


def split_rows(
    table: LandingTable, own: tuple[int, int]
) -> tuple[LandingTable, tuple[LandingTable, LandingTable]]:
    """The table's outputs inside ``own`` (a range of window outputs), and those before and after.

    Example:
        >>> from convt._shapes import axis_plan
        >>> table = landing_table(axis_plan(8, 3, 2, "same", None, 1), 4, 4)  # outputs 8..15
        >>> own, (before, after) = split_rows(table, (9, 16))
        >>> own[3], len(own[0]), before[3], len(before[0]), len(after[0])
        (9, 7, 8, 1, 0)
    """
    counts, taps, inputs, first = table
    stop = first + len(counts)
    low = min(max(own[0], first), stop)
    high = max(min(own[1], stop), low)
    own_part, before, after = (
        (counts[a - first:b - first], taps[a - first:b - first], inputs[a - first:b - first], a)
        for a, b in ((low, high), (first, low), (high, stop))
    )
    return own_part, (before, after)
