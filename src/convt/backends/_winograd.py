"""Winograd's minimal filtering of the sub-pixel phases: an optional accelerator (numba).

Every phase of a transposed convolution is a stride-1 correlation of the input
with some of the taps (:meth:`AxisPlan.phase_taps`). Winograd's ``F(m, r)``
computes ``m`` outputs of an ``r``-tap correlation from ``a = m + r - 1``
inputs with ``a`` products instead of ``m * r``: the input tile is transformed
(``Bt d``), multiplied element by element with the transformed taps (``G g``),
and the products transformed back (``At``). Nested over the spatial axes and
summed over channels, the element-wise products are ``prod(a)`` GEMMs of
``(tiles, C_in) @ (C_in, C_out)``: 3x3 stride-1 tiles of 4x4 outputs cost
36 products per 16 outputs where the direct sum costs 144, and a kernel-4,
stride-2 phase (2x2 taps) in 5x5 tiles 36 per 25 where the direct sum costs 100.

The transforms are compiled loops over tiles (numba), each tile read from the
input once and written to the output once; the GEMMs are NumPy's. Tiles are
at most :data:`MAX_TILE_INPUTS` long per axis, whose transforms use the points
0, 1, -1, 2, -2 and infinity: their float32 rounding stays near the direct
sum's (``docs/architecture.md``, "Winograd"). The rule sends only float32 here; forced,
float64 works too (the matrices take the input's dtype).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from convt._shapes import AxisPlan
from convt.backends import _fused, _threads

MAX_TILE_INPUTS = 6
"""Input elements per tile and axis (``m + r - 1``): the points 0, +-1, +-2 and infinity."""

CHUNK_BYTES = 2**20
"""One chunk's transformed tiles and products take about this many bytes (they stay in
cache), unless that leaves fewer than :data:`MIN_CHUNK_TILES` tiles."""

MIN_CHUNK_TILES = 256
"""Tiles per chunk at least (when there are that many): the GEMMs' rows. With 14-tile
chunks (256 channels) the GEMMs alone ran at a fraction of their rate."""

TRANSFORM_COST = 63
"""The tile transforms' time per tile input and channel, in GEMM multiply-adds.

Measured on one worker, stride-1 3x3 "same" (8, 32, 32, 64) -> 64 in 4x4
tiles: the input and output loops took 2.8 ms, the GEMMs 1.43 ms.
"""

KERNEL_COST = 200
"""The kernel transform's time per transformed tap and channel pair, in GEMM multiply-adds.

Measured: 9 ms for 36 x 256 x 256 (float64, memory-bound), once per call and
phase, on the calling thread before the chunks start.
"""

_POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2))


@dataclass(frozen=True)
class AxisGrid:
    """One axis of a Winograd problem: the outputs of one phase with one residue.

    Output ``out_origin + out_step * q`` (``q < count``) receives tap
    ``taps[u]`` of input ``in_origin + in_step * (q + u)``, for ``u < len(taps)``,
    when that input exists. Tiles hold ``outputs`` consecutive ``q``.
    """

    taps: tuple[int, ...]
    in_origin: int
    in_step: int
    out_origin: int
    out_step: int
    count: int
    outputs: int

    @property
    def tiles(self) -> int:
        return -(-self.count // self.outputs)

    @property
    def inputs(self) -> int:
        """Inputs per tile, ``m + r - 1``."""
        return self.outputs + len(self.taps) - 1


@functools.lru_cache(maxsize=256)
def axis_grids(plan: AxisPlan) -> tuple[AxisGrid, ...]:
    """The axis's outputs as correlations with evenly spaced inputs, one per phase and residue.

    Output ``m * stride + phase`` reads input ``m + offset`` for each tap of
    the phase, and the offsets step by ``dilation / gcd(stride, dilation)``;
    with a step above 1 the phase's outputs are split by ``m % step``, each
    residue a plain correlation of every ``step``-th input. Cached: a layer in
    a loop asks for the same grids.

    Example:
        >>> from convt._shapes import axis_plan
        >>> [(g.taps, g.in_origin, g.out_origin, g.out_step, g.count)
        ...  for g in axis_grids(axis_plan(4, 3, 2, "same", None, 1))]
        [((2, 0), -1, 0, 2, 4), ((1,), 0, 1, 2, 4)]
    """
    step = plan.dilation // math.gcd(plan.stride, plan.dilation)
    grids = []
    for phase in range(plan.stride):
        taps = plan.phase_taps(phase)
        length = plan.phase_length(phase)
        if not taps:
            continue
        ascending = sorted(taps, key=lambda pair: pair[1])
        for residue in range(min(step, length)):
            grids.append(AxisGrid(
                taps=tuple(tap for tap, _ in ascending),
                in_origin=residue + ascending[0][1],
                in_step=step,
                out_origin=residue * plan.stride + phase,
                out_step=step * plan.stride,
                count=-(-(length - residue) // step),
                outputs=tile_outputs(len(taps)),
            ))
    return tuple(grids)


def cost(plans: tuple[AxisPlan, ...], channels: int, filters: int, batch: int) -> float:
    """The estimated work of :func:`tasks`, in GEMM multiply-adds: GEMMs and transforms.

    Each tile input (``prod(m + r - 1)`` per tile) is one row of each GEMM
    and passes both transforms (:data:`TRANSFORM_COST`); each phase's kernel
    is transformed once (:data:`KERNEL_COST`).
    """
    inputs = math.prod(sum(g.tiles * g.inputs for g in axis_grids(plan)) for plan in plans)
    kernels = math.prod(sum(g.inputs for g in axis_grids(plan)) for plan in plans)
    return (batch * inputs * (channels * filters + TRANSFORM_COST * (channels + filters))
            + KERNEL_COST * kernels * channels * filters)


def tile_outputs(taps: int) -> int:
    """``m`` for ``r`` taps: the longest tile of :data:`MAX_TILE_INPUTS` inputs, or 1.

    One tap is a product per output whatever the tile: its tiles are the longest.
    """
    return MAX_TILE_INPUTS if taps == 1 else max(1, MAX_TILE_INPUTS + 1 - taps)


@functools.lru_cache(maxsize=64)
def transforms(outputs: int, taps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(At, G, Bt)`` of ``F(outputs, taps)``: ``y = At @ ((G @ g) * (Bt @ d))`` (float64).

    ``y[i] = sum_u d[i + u] * g[u]``. Built by Toom-Cook on the points 0, 1,
    -1, 2, -2 and infinity: a correlation is the transpose of a linear
    convolution, ``s = V^-1 ((Eg g) * (Eh h))``, whose evaluation matrices give
    ``At = Eh^T``, ``G = Eg`` and ``Bt = V^-T``. One output is the direct sum.

    Example:
        >>> at, g, bt = transforms(2, 3)
        >>> d, taps = np.arange(4.0), np.array([1.0, 10.0, 100.0])
        >>> (at @ ((g @ taps) * (bt @ d))).round(6).tolist()
        [210.0, 321.0]
    """
    if outputs == 1 or taps == 1:  # the direct sum, or one product per output
        return np.ones((outputs, taps)) if taps > 1 else np.eye(outputs), np.ones(
            (outputs + taps - 1, taps)) if taps == 1 else np.eye(taps), np.eye(outputs + taps - 1)
    inputs = outputs + taps - 1
    points = _POINTS[:inputs - 1]

    def evaluation(length: int) -> list[list[Fraction]]:
        finite = [[point**power for power in range(length)] for point in points]
        return finite + [[Fraction(0)] * (length - 1) + [Fraction(1)]]

    inverse = _exact_inverse(evaluation(inputs))
    at = np.array(evaluation(outputs), dtype=float).T
    g = np.array(evaluation(taps), dtype=float)
    bt = np.array(inverse, dtype=float).T
    for matrix in (at, g, bt):
        matrix.flags.writeable = False
    return at, g, bt


def _exact_inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """The inverse of a square matrix of fractions, by Gauss-Jordan elimination."""
    size = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(size)] for i, row in enumerate(matrix)]
    for column in range(size):
        pivot = next(i for i in range(column, size) if rows[i][column] != 0)
        rows[column], rows[pivot] = rows[pivot], rows[column]
        lead = rows[column][column]
        rows[column] = [value / lead for value in rows[column]]
        for i in range(size):
            if i != column and rows[i][column] != 0:
                factor = rows[i][column]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[column])]
    return [row[size:] for row in rows]


UNIT_GRID = AxisGrid(taps=(0,), in_origin=0, in_step=1, out_origin=0, out_step=1, count=1,
                     outputs=1)
"""The axis of one element and one tap that pads a problem to three axes."""

Grids = tuple[AxisGrid, AxisGrid, AxisGrid]


def tasks(
    x: np.ndarray, kernel: np.ndarray, plans: tuple[AxisPlan, ...], out: np.ndarray, pieces: int
) -> Iterator[Callable[[], None]]:
    """Every phase, residue and chunk of tiles as a task that writes its outputs of ``out``.

    ``x`` is ``(batch, *n, C_in)`` (float32 or float64), ``kernel`` ``(*k, C_out, C_in)``,
    ``out`` the zeroed ``(batch, *L, C_out)``; outputs that no tap reaches stay zero.
    """
    x3 = x.reshape(x.shape[0], *_on_three_axes(x.shape[1:-1], 1), x.shape[-1])
    out3 = out.reshape(out.shape[0], *_on_three_axes(out.shape[1:-1], 1), out.shape[-1])
    kernel3 = kernel.reshape(*_on_three_axes(kernel.shape[:-2], 1), *kernel.shape[-2:])
    for combination in itertools.product(*(axis_grids(plan) for plan in plans)):
        grids: Grids = _on_three_axes(combination, UNIT_GRID)
        geometry, bt, at = _tables(grids, x.dtype)
        products = _transformed_kernel(kernel3, grids)
        tiles = x.shape[0] * math.prod(grid.tiles for grid in grids)
        tile_bytes = products.shape[0] * (products.shape[1] + products.shape[2]) * x.itemsize
        per_chunk = max(CHUNK_BYTES // tile_bytes, MIN_CHUNK_TILES)
        chunks = pieces * -(-tiles // (per_chunk * pieces))  # a multiple of the workers
        for part in _threads.even_slices(tiles, chunks):
            yield functools.partial(
                _tile_chunk, x3, products, geometry, bt, at, part.start, part.stop - part.start,
                out3,
            )


def _on_three_axes(items: tuple, unit: object) -> tuple:
    """Three axes' items from one per spatial axis: a 2-D problem's unit axis goes in the
    middle, a 1-D problem's first, so that the loops' first and last axes are real ones
    (their transforms are fused with reading and writing a tile)."""
    if len(items) == 1:
        return (unit, unit, items[0])
    if len(items) == 2:
        return (items[0], unit, items[1])
    return tuple(items)


def _tile_chunk(
    x: np.ndarray,
    kernel: np.ndarray,
    geometry: np.ndarray,
    bt: np.ndarray,
    at: np.ndarray,
    first: int,
    count: int,
    out: np.ndarray,
) -> None:
    """Transforms tiles ``first .. first + count - 1``, multiplies them, writes their outputs."""
    inputs, channels, filters = kernel.shape
    tiles = _threads.scratch(0, (inputs, count, channels), x.dtype)
    _fused.jitable(_middle_axis, _tile_position)
    _loop(_input_tiles_loop)(x, bt, geometry, first, tiles)
    products = _threads.scratch(1, (inputs, count, filters), x.dtype)
    np.matmul(tiles, kernel, out=products)
    _loop(_output_tiles_loop)(products, at, geometry, first, out)


def _loop(loop: Callable[..., None]) -> Callable[..., None]:
    """The compiled loop, or the plain Python one without numba (when the algorithm is
    forced: :func:`convt.backends.numpy.choose_algorithm` needs numba to pick it)."""
    return _fused.compiled(loop) or loop


@functools.lru_cache(maxsize=256)
def _tables(grids: Grids, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometry, Bt, At) of the three axes for the loops, cached.

    ``geometry[axis]`` is ``(in_origin, in_step, out_origin, out_step, count,
    outputs, inputs, tiles)``; ``bt[axis]`` and ``at[axis]`` are the axis's
    transforms in the top-left corner of a ``dtype`` square.
    """
    geometry = np.array([
        (g.in_origin, g.in_step, g.out_origin, g.out_step, g.count, g.outputs, g.inputs, g.tiles)
        for g in grids
    ], np.int64)
    bt = np.zeros((3, MAX_TILE_INPUTS, MAX_TILE_INPUTS), dtype)
    at = np.zeros_like(bt)
    for axis, grid in enumerate(grids):
        axis_at, _, axis_bt = transforms(grid.outputs, len(grid.taps))
        bt[axis, :grid.inputs, :grid.inputs] = axis_bt
        at[axis, :grid.outputs, :grid.inputs] = axis_at
    for array in (geometry, bt, at):
        array.flags.writeable = False
    return geometry, bt, at


def _transformed_kernel(kernel: np.ndarray, grids: Grids) -> np.ndarray:
    """``G g G^T`` per channel pair, as ``(prod(inputs), C_in, C_out)`` in the kernel's dtype.

    ``kernel`` is ``(k0, k1, k2, C_out, C_in)``. The taps are laid out
    ``(..., C_in, C_out)`` first (the transposing copy is then the smallest),
    and transformed in float64, one axis at a time, each a matrix product
    over contiguous rows.
    """
    picked = kernel[np.ix_(*(grid.taps for grid in grids))].swapaxes(-1, -2)
    products = np.ascontiguousarray(picked, dtype=np.float64)
    done = 1
    for grid in grids:
        if grid.inputs > 1:
            g = transforms(grid.outputs, len(grid.taps))[1]
            products = np.matmul(g, products.reshape(done, len(grid.taps), -1))
        done *= grid.inputs
    return products.reshape(done, *picked.shape[-2:]).astype(kernel.dtype)


def _middle_axis(matrix, source, target):
    """``target[a, r, b, :] = sum_j matrix[r, j] * source[a, j, b, :]``, zero entries skipped.

    ``source`` is ``(A, R_in, B, C)``, ``target`` ``(A, R_out, B, C)`` with
    ``matrix`` at least ``R_out x R_in``.
    """
    for a in range(source.shape[0]):
        for r in range(target.shape[1]):
            for b in range(source.shape[2]):
                for c in range(source.shape[3]):
                    target[a, r, b, c] = 0.0
            for j in range(source.shape[1]):
                weight = matrix[r, j]
                if weight != 0.0:
                    for b in range(source.shape[2]):
                        for c in range(source.shape[3]):
                            target[a, r, b, c] += weight * source[a, j, b, c]


def _tile_position(tile, geometry):
    """``(sample, k0, k1, k2)`` of a tile number: tiles run over samples, then each axis."""
    sample, rest = divmod(tile, geometry[0, 7] * geometry[1, 7] * geometry[2, 7])
    k0, rest = divmod(rest, geometry[1, 7] * geometry[2, 7])
    k1, k2 = divmod(rest, geometry[2, 7])
    return sample, k0, k1, k2


def _input_tiles_loop(x, bt, geometry, first, tiles):
    """``tiles[xi, t, :]``: input tile ``first + t`` transformed by ``Bt`` along each axis.

    Plain Python until :func:`_fused.compiled` compiles it (the tests run both).

    ``x`` is ``(batch, n0, n1, n2, C)``; inputs outside it read as zeros.
    The first axis's transform is done while reading the tile, the last
    one's while writing it; the middle one's is skipped when it is the identity.
    """
    channels = x.shape[4]
    a0, a1, a2 = geometry[0, 6], geometry[1, 6], geometry[2, 6]
    front = np.empty((a0, a1, a2, channels), tiles.dtype)
    back = np.empty_like(front)
    for t in range(tiles.shape[1]):
        sample, k0, k1, k2 = _tile_position(first + t, geometry)
        front[:] = 0.0
        for x0 in range(a0):
            for j0 in range(a0):
                weight = bt[0, x0, j0]
                p0 = geometry[0, 0] + geometry[0, 1] * (k0 * geometry[0, 5] + j0)
                if weight == 0.0 or not 0 <= p0 < x.shape[1]:
                    continue
                for j1 in range(a1):
                    p1 = geometry[1, 0] + geometry[1, 1] * (k1 * geometry[1, 5] + j1)
                    for j2 in range(a2):
                        p2 = geometry[2, 0] + geometry[2, 1] * (k2 * geometry[2, 5] + j2)
                        if 0 <= p1 < x.shape[2] and 0 <= p2 < x.shape[3]:
                            for c in range(channels):
                                front[x0, j1, j2, c] += weight * x[sample, p0, p1, p2, c]
        middle = front
        if geometry[1, 5] > 1 and a1 > geometry[1, 5]:  # else Bt is the identity
            _middle_axis(bt[1], front, back)
            middle = back
        for x0 in range(a0):
            for x1 in range(a1):
                for x2 in range(a2):
                    xi = (x0 * a1 + x1) * a2 + x2
                    for c in range(channels):
                        tiles[xi, t, c] = 0.0
                    for j2 in range(a2):
                        weight = bt[2, x2, j2]
                        if weight != 0.0:
                            for c in range(channels):
                                tiles[xi, t, c] += weight * middle[x0, x1, j2, c]


def _output_tiles_loop(products, at, geometry, first, out):
    """Writes tile ``first + t``'s outputs: ``products[:, t, :]`` transformed by ``At``.

    Plain Python until :func:`_fused.compiled` compiles it (the tests run both).

    ``out`` is ``(batch, L0, L1, L2, C)``; outputs past an axis's count are
    not written. As in the input loop, the first and last axes' transforms
    are done while reading and writing.
    """
    filters = out.shape[4]
    a0, a1, a2 = geometry[0, 6], geometry[1, 6], geometry[2, 6]
    m0, m1, m2 = geometry[0, 5], geometry[1, 5], geometry[2, 5]
    front = np.empty((m0, a1, a2, filters), products.dtype)
    back = np.empty((m0, m1, a2, filters), products.dtype)
    for t in range(products.shape[1]):
        sample, k0, k1, k2 = _tile_position(first + t, geometry)
        front[:] = 0.0
        for i0 in range(m0):
            for x0 in range(a0):
                weight = at[0, i0, x0]
                if weight != 0.0:
                    for x1 in range(a1):
                        for x2 in range(a2):
                            xi = (x0 * a1 + x1) * a2 + x2
                            for f in range(filters):
                                front[i0, x1, x2, f] += weight * products[xi, t, f]
        middle = front
        if a1 > m1:  # else At is the identity
            _middle_axis(at[1], front, back)
            middle = back
        for i0 in range(min(m0, geometry[0, 4] - k0 * m0)):
            o0 = geometry[0, 2] + geometry[0, 3] * (k0 * m0 + i0)
            for i1 in range(min(m1, geometry[1, 4] - k1 * m1)):
                o1 = geometry[1, 2] + geometry[1, 3] * (k1 * m1 + i1)
                for i2 in range(min(m2, geometry[2, 4] - k2 * m2)):
                    o2 = geometry[2, 2] + geometry[2, 3] * (k2 * m2 + i2)
                    for f in range(filters):
                        out[sample, o0, o1, o2, f] = 0.0
                    for x2 in range(a2):
                        weight = at[2, i2, x2]
                        if weight != 0.0:
                            for f in range(filters):
                                out[sample, o0, o1, o2, f] += weight * middle[i0, i1, x2, f]
