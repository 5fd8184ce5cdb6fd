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

Phases whose tiles read the same inputs (a kernel that is a multiple of the
stride) share one input transform (:func:`tile_groups`). The transforms are
compiled loops over tiles (numba), each tile read from the input once and
written to the output once; the GEMMs are NumPy's. Tiles are at most
:data:`MAX_TILE_INPUTS` long per axis (:data:`MAX_TILE_INPUTS_3D` in 3-D),
whose transforms use the points 0, 1, -1, 2, -2 and infinity: their float32
rounding stays near the direct sum's (``docs/architecture.md``, "Winograd").
The rule sends only float32 here; forced, float64 works too (the matrices
take the input's dtype).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from convt._shapes import AxisPlan
from convt.backends import _fused, _threads
from convt.prepared import PreparedKernel

MAX_TILE_INPUTS = 6
"""Input elements per tile and axis (``m + r - 1``) of 1-D and 2-D problems: the points
0, +-1, +-2 and infinity."""

MAX_TILE_INPUTS_3D = 4
"""Input elements per tile and axis of 3-D problems: the points 0, +-1 and infinity.

The rounding of a tile's transforms compounds over its axes. On 3-D float32
shapes (32-128 channels, kernels 3-4, strides 1-2), six-input tiles erred by
1.9e-5 to 6.2e-5 of the largest output (the direct GEMMs: 2e-7 to 7e-7), five by
5.9e-6 to 1.5e-5, four by 2.9e-7 to 5.4e-7. Four keeps the direct sum's accuracy;
3x3 stride-1 shapes with 64-128 channels still ran in 0.64-0.80 of the direct time.
"""

CHUNK_BYTES = 2**20
"""One chunk's transformed tiles and products take about this many bytes (they stay in
cache), unless that leaves fewer than :data:`MIN_CHUNK_TILES` tiles."""

MIN_CHUNK_TILES = 256
"""Tiles per chunk at least (when there are that many): the GEMMs' rows. With 14-tile
chunks (256 channels) the GEMMs alone ran at a fraction of their rate; that was OpenBLAS's
packed kernels, and :func:`chunk_tiles` makes an exception where its small-matrix kernels
take them (15-tile chunks of 256 x 256 channels: 0.74-0.84x the time of whole calls)."""

MEMBER_SPLIT_MIN_BYTES = 24 * 2**20
"""A group's members are shared out among the workers, rather than its tiles, when its
transformed kernel has at least this many bytes (three quarters of this machine's 32 MiB
L3 cache) and it has too few tiles to give every worker a full chunk (:func:`member_parts`).

Each chunk reads every member's transformed kernel, which is up to nine times the size
of the kernel (four members of 6x6 inputs for the 16 taps of a 4x4 kernel of stride 2);
with few tiles, reading it from memory took most of the time. Whole calls with prepared
kernels, interleaved, two workers, kernel 4, stride 2 "same", against chunks of tiles:

- (8, 8, 8, C_in) -> C_out: 256 -> 256 0.46-0.54x (a 38 MB transformed kernel),
  384 -> 256 0.47x, 512 -> 256 0.79-0.95x (75 MB);
- (8, 4, 4, 512) -> 512 0.65-0.73x, (16, 4, 4, 1024) -> 512 0.85x, (1, 8, 8, 512) -> 256
  0.71x, (2, 16, 16, 512) -> 256 0.83-0.84x, a 3-D (1, 8, 8, 8, 512) -> 256 0.78-0.82x.

With a 19 MB transformed kernel, (32, 4, 4, 256) -> 128, the split took 0.99-1.15x: it
transforms each input tile once per part, and that kernel stays in cache. Later runs put the
bound between 20 and 24 MiB. Below it, 18-20 MiB kernels lost 1.11-1.26x with the split
((4, 16, 16, 256) -> 128 1.22x, (8, 8, 8, 192) -> 192 1.17x). From 24 MiB on, 15 shapes that
the bound of 32 MiB did not split ran in 0.61-0.99x with it (interleaved, 11 rounds):
MelGAN's 1-D upsampler, (1, 200, 512) -> 256, kernel 16, stride 8, 0.78x (6.1 -> 4.8 ms), the
same on 16-256 steps 0.73-0.89x, and 2-D kernels of 4, stride 2, with 192-224 filters
0.61-0.97x ((16, 4, 4, 256) -> 192 4.6 -> 2.8 ms).
"""

SMALL_GEMM_MACS = 10**6
"""The most multiply-adds of a float32 GEMM that OpenBLAS runs in its small-matrix
kernels (:func:`convt.backends._threads.small_gemm`), which skip packing the operands.

Whole calls, interleaved, two workers, chunks of that many tiles against the byte
rule: 0.72-0.74x on DCGAN's 5x5 stride-1 layer (256 x 128 channels: 30 tiles per
chunk instead of 128), 0.71x on a 3-D (16, 16, 16, 128) -> 128 3x3 "same", 0.74-0.84x
with 256 x 256 channels, 0.83-0.93x on ``stride1_same`` and 0.86-0.87x with 128 x 128.
"""

SMALL_GEMM_MIN_TILES = 8
"""Fewer tiles per chunk lost: 1.23-1.26x with 512 x 256 channels in chunks of 7, 2.2x
with 512 x 512 in chunks of 3, 1.85x on ``melgan_up`` in chunks of 7."""

SMALL_CHUNK_MIN_MACS = 2**24
"""A chunk of small GEMMs has at least this many multiply-adds, so that its calls
cost little beside them: a 1-D (4, 256, 256) -> 128, kernel 5, in chunks of 30 tiles
(six GEMMs of 10^6 each) took 1.06x as long."""

TRANSFORM_COST = 35
"""The tile transforms' time per tile input and channel, in GEMM multiply-adds.

Measured on one worker against the GEMMs of the same tiles: 22 on stride-1 3x3
"same" (8, 32, 32, 64) -> 64 (loops 1.16 ms, GEMMs 1.69 ms), 36 on the dilated
case, 43 on a single 128x128 image (kernel 4, stride 2: strided outputs over
16 MiB); 35 fits the rule (:data:`convt.backends.numpy.WINOGRAD_MIN_GAIN`) best.
"""

TRANSFORM_COST_1D = 12
""":data:`TRANSFORM_COST` for 1-D problems: a 1-D tile's transform is one pass over its
inputs, where a 2-D tile's makes one per axis.

With 35, the rule left 16 one-dimensional shapes (prepared kernels; batches 1 and 8, 256
and 2000 steps, 32-64 channels, kernels 3-5 at stride 1, twice the stride at 2-4;
estimates 0.52-0.90) to the other algorithm, and Winograd ran in 0.53-1.01x its time on
every one (interleaved, two workers). 12 puts them all at 0.95 or more, and the two that
tied (1.00-1.01x, 32 channels, kernel 4, stride 2) at 1.05. The 1-D shapes measured to
lose with Winograd (plain kernels: ``melgan_up`` 2.3x, (1, 500, 256) -> 128, kernel 16,
stride 8, 1.16x) stay below 0.9 (0.39 and 0.70), their kernel transform being the cost.
On 28 random 1-D shapes it changed 9 picks: 8 ran in 0.51-1.01x the time; the ninth had one
tap per phase, where Winograd saves nothing (1.11-1.21x), and such shapes are now left out
(``numpy._one_tap_phases``)."""

KERNEL_COST = 130
"""The kernel transform's time per transformed tap and channel pair, in GEMM multiply-adds.

Measured on one thread: 130 for DCGAN's 5x5 stride-1 layer (36 x 256 x 128: 2.95 ms),
39-60 for four phases of 64-128 channels. Done before the tiles start, shared out
among the workers only when large (:data:`KERNEL_SPLIT_TAPS`), so it counts high.
Those were float64 stages; float32 ones written straight into their place took
0.46-0.85 of that time (:func:`_transform_filters`), but the rule's threshold
(:data:`convt.backends.numpy.WINOGRAD_MIN_GAIN`) was measured with 130, so 130 stays:
shapes that a lower cost would newly pick were not measured faster.
"""

KERNEL_BOUND_TILES = 8
"""A group with fewer tiles than this, whose transformed kernel is larger than
:data:`KERNEL_BOUND_BYTES`, makes Winograd a bad choice whatever its estimate
(:func:`kernel_bound`).

Each element of a group's transformed kernel takes part in one product per tile, so with
few tiles its GEMMs stream that kernel (1.5-9 times the size of the kernel itself) from
memory for a handful of products per element. Prepared kernels, interleaved, two workers,
whole calls with the rule against without it (two runs), on one-sample inputs with 1-7
tiles per group and 18-72 MiB transformed kernels: 0.35-0.76x. (1, 8, 8, 512) -> 256,
kernel 4, stride 2: 0.35-0.44x (5.5 -> 2.4 ms); (1, 4, 4, 256) -> 256: 0.40-0.45x;
MelGAN's upsampler on a 16-step chunk, (1, 16, 512) -> 256, kernel 16, stride 8:
0.54-0.71x; on 32 steps 0.67-0.76x.

Smaller transformed kernels stay in cache, and Winograd keeps them: with 3 MiB and 4
tiles, (1, 16, 256) -> 128, kernel 8, stride 4 ran in 0.45x the other algorithm's time.
At 12 MiB ((1, 16, 512) -> 256, kernel 8, stride 4) it was within noise (0.85-1.19x either
way). 8-9 tiles of a 27 MiB kernel (2-D) ran in 0.73-0.85x. Not caught: 13-16 tiles that
still lost, 1.06-1.24x ((2, 16, 8, 512) -> 256, kernel 4, stride 2)."""

KERNEL_BOUND_BYTES = 16 * 2**20
"""See :data:`KERNEL_BOUND_TILES`: half of this machine's 32 MiB L3 cache."""

KERNEL_SPLIT_TAPS = 2**19
"""The kernel transform is shared out among the workers from this many transformed taps
(channel pairs included). Its passes are memory-bound: two workers took DCGAN's
5x5 stride-1 layer (256 x 128 channels, 819k taps) from 2.95 to 1.82 ms, but its
stride-2 layer (128 x 64, 205k taps) from 0.79 to 0.90 ms (a worker's wake-up and the
calls per part cost more than they share out)."""

_POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2))


@dataclass(frozen=True)
class AxisGrid:
    """One axis of a Winograd problem: the outputs of one phase with one residue.

    Output ``out_origin + out_step * q`` (``skip <= q < count``) receives tap
    ``taps[u]`` of input ``in_origin + in_step * (q + u)``, for ``u < len(taps)``,
    when that input exists. Tiles hold ``outputs`` consecutive ``q``. A grid
    moved to start at an earlier input (:func:`axis_classes`) skips the outputs
    before its own first one.
    """

    taps: tuple[int, ...]
    in_origin: int
    in_step: int
    out_origin: int
    out_step: int
    count: int
    outputs: int
    skip: int = 0

    @property
    def tiles(self) -> int:
        return -(-self.count // self.outputs)

    @property
    def inputs(self) -> int:
        """Inputs per tile, ``m + r - 1``."""
        return self.outputs + len(self.taps) - 1


@functools.lru_cache(maxsize=256)
def axis_grids(plan: AxisPlan, max_inputs: int = MAX_TILE_INPUTS) -> tuple[AxisGrid, ...]:
    """The axis's outputs as correlations with evenly spaced inputs, one per phase and residue.

    Output ``m * stride + phase`` reads input ``m + offset`` for each tap of
    the phase, and the offsets step by ``dilation / gcd(stride, dilation)``;
    with a step above 1 the phase's outputs are split by ``m % step``, each
    residue a plain correlation of every ``step``-th input. Tiles are at most
    ``max_inputs`` long. Cached: a layer in a loop asks for the same grids.

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
                outputs=tile_outputs(len(taps), max_inputs),
            ))
    return tuple(grids)


@functools.lru_cache(maxsize=256)
def axis_classes(plan: AxisPlan, max_inputs: int) -> tuple[tuple[AxisGrid, ...], ...]:
    """The axis's grids in classes that read the same input tiles, cached.

    Grids with the same step, tile shape (outputs and taps) and inputs a whole
    number of steps apart read the same tiles once each starts at the class's
    first input: it then skips the outputs before its own first one. A class's
    tiles are transformed once for all its grids (a 1-D kernel four times its
    stride: one class of ``stride`` grids).

    Example:
        >>> from convt._shapes import axis_plan
        >>> [[(g.in_origin, g.out_origin, g.count, g.skip) for g in members]
        ...  for members in axis_classes(axis_plan(4, 4, 2, "same", None, 1), 6)]
        [[(-1, 0, 4, 0), (-1, -1, 5, 1)]]
    """
    classes: dict[tuple[int, int, int, int], list[AxisGrid]] = {}
    for grid in axis_grids(plan, max_inputs):
        key = (grid.in_origin % grid.in_step, grid.in_step, grid.outputs, len(grid.taps))
        classes.setdefault(key, []).append(grid)
    return tuple(_from_first_input(members) for members in classes.values())


def _from_first_input(grids: list[AxisGrid]) -> tuple[AxisGrid, ...]:
    """The grids moved to start at their earliest input, each skipping its extra outputs."""
    origin = min(grid.in_origin for grid in grids)
    moved = []
    for grid in grids:
        skip = (grid.in_origin - origin) // grid.in_step
        moved.append(dataclasses.replace(
            grid, in_origin=origin, out_origin=grid.out_origin - skip * grid.out_step,
            count=grid.count + skip, skip=skip))
    return tuple(moved)


@functools.lru_cache(maxsize=256)
def tile_groups(plans: tuple[AxisPlan, ...]) -> tuple[tuple[Grids, ...], ...]:
    """The problem's grid combinations (on three axes), in groups that share their input
    tiles: one class per axis (:func:`axis_classes`), cached."""
    max_inputs = MAX_TILE_INPUTS_3D if len(plans) == 3 else MAX_TILE_INPUTS
    return tuple(
        tuple(_on_three_axes(grids, UNIT_GRID) for grids in itertools.product(*classes))
        for classes in itertools.product(*(axis_classes(plan, max_inputs) for plan in plans))
    )


def kernel_bound(plans: tuple[AxisPlan, ...], channels: int, filters: int, batch: int) -> bool:
    """True when a group's GEMMs would stream a large transformed kernel for too few tiles
    (:data:`KERNEL_BOUND_TILES`); float32 sizes."""
    return any(
        batch * math.prod(_group_tiles(members)) < KERNEL_BOUND_TILES
        and len(members) * _tile_inputs(members[0]) * channels * filters * 4 > KERNEL_BOUND_BYTES
        for members in tile_groups(plans)
    )


def cost(plans: tuple[AxisPlan, ...], channels: int, filters: int, batch: int, *,
         kernel_transform: bool = True) -> float:
    """The estimated work of :func:`tasks`, in GEMM multiply-adds: GEMMs and transforms.

    Each tile input of a group (``prod(m + r - 1)`` per tile) is one row of
    every member's GEMMs, and passes the input transform once and every
    member's output transform (:data:`TRANSFORM_COST`, :data:`TRANSFORM_COST_1D` in 1-D);
    each member's kernel is transformed once (:data:`KERNEL_COST`), unless
    ``kernel_transform`` is False (a :class:`PreparedKernel` keeps it).
    """
    work = 0.0
    transform = TRANSFORM_COST_1D if len(plans) == 1 else TRANSFORM_COST
    for members in tile_groups(plans):
        width = len(members) * filters
        inputs = math.prod(_group_tiles(members)) * _tile_inputs(members[0])
        work += batch * inputs * (channels * width + transform * (channels + width))
        if kernel_transform:
            work += KERNEL_COST * _tile_inputs(members[0]) * channels * width
    return work


def _tile_inputs(grids: Grids) -> int:
    """Inputs per tile, ``prod(m + r - 1)``."""
    return math.prod(grid.inputs for grid in grids)


def _group_tiles(members: tuple[Grids, ...]) -> tuple[int, int, int]:
    """Tiles per axis of a group: its members' most."""
    return tuple(max(grids[axis].tiles for grids in members) for axis in range(3))


def tile_outputs(taps: int, max_inputs: int = MAX_TILE_INPUTS) -> int:
    """``m`` for ``r`` taps: the longest tile of at most ``max_inputs`` inputs, or 1.

    One tap is a product per output whatever the tile: its tiles are the longest.
    """
    return max_inputs if taps == 1 else max(1, max_inputs + 1 - taps)


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
    x: np.ndarray,
    kernel: np.ndarray,
    plans: tuple[AxisPlan, ...],
    out: np.ndarray,
    pieces: int,
    *,
    prepared: PreparedKernel | None = None,
) -> Iterator[Callable[[], None]]:
    """Every group of phases and residues (:func:`tile_groups`) and chunk of its tiles, with
    all of the group's members or a part of them (:func:`member_parts`), as a task that
    writes their outputs of ``out``.

    ``x`` is ``(batch, *n, C_in)`` (float32 or float64), ``kernel`` ``(*k, C_out, C_in)``,
    ``out`` the uninitialized ``(batch, *L, C_out)``. Each output of a phase with taps is
    stored once; when some phase has none, ``out`` is zeroed first.
    ``prepared``, the :class:`PreparedKernel` that ``kernel`` holds, keeps the
    transformed taps for the next calls.
    """
    if not all(plan.phase_taps(phase) for plan in plans for phase in range(plan.stride)):
        out.fill(0)
    x3 = x.reshape(x.shape[0], *_on_three_axes(x.shape[1:-1], 1), x.shape[-1])
    out3 = out.reshape(out.shape[0], *_on_three_axes(out.shape[1:-1], 1), out.shape[-1])
    kernel3 = kernel.reshape(*_on_three_axes(kernel.shape[:-2], 1), *kernel.shape[-2:])
    groups = tile_groups(plans)
    if prepared is None:
        kernels = _transformed_kernels(kernel3, groups, pieces)
    else:
        kernels = [prepared.derived(
            ("winograd", kernel.dtype.str, _transform_key(members)),
            functools.partial(_group_kernel, kernel3, members, pieces),
        ) for members in groups]
    for members, group_kernel in zip(groups, kernels):
        geometry, bt, at = _tables(members, x.dtype)
        tiles = x.shape[0] * math.prod(_group_tiles(members))
        inputs, channels, filters = group_kernel.shape[1:]
        parts = member_parts(group_kernel.shape, tiles, x.dtype, pieces)
        if parts > 1:  # each worker reads only its members' kernels, so the chunks can be few
            chunks = -(-tiles // _byte_rule_tiles(inputs, channels, filters, x.dtype))
        else:
            per_chunk = chunk_tiles(inputs, channels, filters, x.dtype)
            chunks = pieces * -(-tiles // (per_chunk * pieces))  # a multiple of the workers
        for part in _threads.even_slices(tiles, chunks):
            for kept in _threads.even_slices(len(members), parts):
                yield functools.partial(
                    _tile_chunk, x3, group_kernel[kept], geometry[kept], bt, at, part.start,
                    part.stop - part.start, out3,
                )


def member_parts(kernel_shape: tuple[int, ...], tiles: int, dtype: np.dtype, pieces: int) -> int:
    """How many parts a group's members are cut into, each a task with its chunks of tiles.

    ``kernel_shape`` is the group's transformed kernel's, ``(members, inputs, C_in, C_out)``.
    ``pieces`` parts when the group has that many members, a transformed kernel of at
    least :data:`MEMBER_SPLIT_MIN_BYTES`, and fewer tiles than would give each worker a
    chunk of :func:`_byte_rule_tiles`; otherwise 1 (the workers share out the tiles).
    """
    members, inputs, channels, filters = kernel_shape
    if (members >= pieces > 1
            and math.prod(kernel_shape) * dtype.itemsize >= MEMBER_SPLIT_MIN_BYTES
            and tiles < pieces * _byte_rule_tiles(inputs, channels, filters, dtype)):
        return pieces
    return 1


def _byte_rule_tiles(inputs: int, channels: int, filters: int, dtype: np.dtype) -> int:
    """Tiles whose transformed inputs and products take about :data:`CHUNK_BYTES`, but at
    least :data:`MIN_CHUNK_TILES`."""
    return max(CHUNK_BYTES // (inputs * (channels + filters) * dtype.itemsize), MIN_CHUNK_TILES)


def chunk_tiles(inputs: int, channels: int, filters: int, dtype: np.dtype) -> int:
    """Tiles per chunk at most, for tiles of ``inputs`` elements.

    As many as keep a chunk's transformed tiles and products near
    :data:`CHUNK_BYTES`, but at least :data:`MIN_CHUNK_TILES`. Fewer where each of
    the chunk's float32 GEMMs then fits OpenBLAS's small-matrix kernels
    (:data:`SMALL_GEMM_MACS`), if that leaves at least :data:`SMALL_GEMM_MIN_TILES`
    tiles and :data:`SMALL_CHUNK_MIN_MACS` multiply-adds per chunk.
    """
    per_chunk = _byte_rule_tiles(inputs, channels, filters, dtype)
    small = SMALL_GEMM_MACS // (channels * filters)
    if (SMALL_GEMM_MIN_TILES <= small < per_chunk
            and inputs * small * channels * filters >= SMALL_CHUNK_MIN_MACS
            and dtype == np.float32 and _threads.small_gemm()):
        return small
    return per_chunk


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
    """Transforms tiles ``first .. first + count - 1`` once; for each member, multiplies them
    by its kernel and writes its outputs.

    Member by member, the products stay in cache. One GEMM of all members' filters
    ran slower (OpenBLAS, ``C_in`` 64: 4 x 64 filters at once 1.3x four GEMMs), and
    keeping all members' products cost 1.15x on (2, 48, 48, 64) -> 64, kernel 4, stride 2.
    """
    members, inputs, channels, filters = kernel.shape
    tiles = _threads.scratch(0, (inputs, count, channels), x.dtype)
    _fused.jitable(_axis_pass, _tile_position, _gather_tile, _tile_inside)
    _loop(_input_tiles_loop)(x, bt, geometry[0], first, tiles)
    products = _threads.scratch(1, (inputs, count, filters), x.dtype)
    for member in range(members):
        np.matmul(tiles, kernel[member], out=products)
        _loop(_output_tiles_loop)(products, at, geometry[member], first, out)


def _loop(loop: Callable[..., None]) -> Callable[..., None]:
    """The compiled loop, or the plain Python one without numba (when the algorithm is
    forced: :func:`convt.backends.numpy.choose_algorithm` needs numba to pick it)."""
    return _fused.compiled(loop) or loop


@functools.lru_cache(maxsize=256)
def _tables(members: tuple[Grids, ...], dtype: np.dtype
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometry, Bt, At) of a group's three axes for the loops, cached.

    ``geometry[member, axis]`` is ``(in_origin, in_step, out_origin, out_step,
    count, outputs, inputs, tiles, skip)``, ``tiles`` the group's; ``bt[axis]`` and
    ``at[axis]`` are the axis's transforms (the same for every member) in the
    top-left corner of a zero ``dtype`` square at least six wide (:func:`_axis_pass`
    reads six columns of four-input tiles).
    """
    geometry = np.array([[
        (g.in_origin, g.in_step, g.out_origin, g.out_step, g.count, g.outputs, g.inputs, tiles,
         g.skip) for g, tiles in zip(grids, _group_tiles(members))
    ] for grids in members], np.int64)
    grids = members[0]
    size = max(MAX_TILE_INPUTS, *(grid.inputs for grid in grids))
    bt = np.zeros((3, size, size), dtype)
    at = np.zeros_like(bt)
    for axis, grid in enumerate(grids):
        axis_at, _, axis_bt = transforms(grid.outputs, len(grid.taps))
        bt[axis, :grid.inputs, :grid.inputs] = axis_bt
        at[axis, :grid.outputs, :grid.inputs] = axis_at
    for array in (geometry, bt, at):
        array.flags.writeable = False
    return geometry, bt, at


def _transform_key(members: tuple[Grids, ...]) -> tuple:
    """What a group's transformed taps depend on besides the kernel: each member's taps and
    tile length per axis."""
    return tuple(tuple((grid.taps, grid.outputs) for grid in grids) for grids in members)


def _group_kernel(kernel: np.ndarray, members: tuple[Grids, ...], pieces: int) -> np.ndarray:
    """One group's :func:`_transformed_kernels`."""
    return _transformed_kernels(kernel, (members,), pieces)[0]


def _transformed_kernels(kernel: np.ndarray, groups: tuple[tuple[Grids, ...], ...], pieces: int
                         ) -> list[np.ndarray]:
    """Each group's members' transformed taps (:func:`_transform_filters`), as ``(members,
    prod(inputs), C_in, C_out)``; from :data:`KERNEL_SPLIT_TAPS` taps on, the filters are
    shared out among ``pieces`` workers."""
    filters, channels = kernel.shape[-2:]
    kernels = [np.empty((len(members), _tile_inputs(members[0]), channels, filters),
                        kernel.dtype) for members in groups]
    taps = sum(math.prod(len(g.taps) for g in grids) for members in groups for grids in members)
    parts = pieces if taps * channels * filters >= KERNEL_SPLIT_TAPS else 1
    transforms = [functools.partial(_transform_filters, kernel, grids, part, target)
                  for members, targets in zip(groups, kernels)
                  for grids, target in zip(members, targets)
                  for part in _threads.even_slices(filters, parts)]
    if parts > 1:
        _threads.run(transforms)
    else:
        for transform in transforms:
            transform()
    return kernels


def _transform_filters(kernel: np.ndarray, grids: Grids, filters: slice, target: np.ndarray
                       ) -> None:
    """Writes ``G g G^T`` per channel pair of ``filters`` into ``target[:, :, filters]``,
    ``(prod(inputs), C_in, filters)``.

    ``kernel`` is ``(k0, k1, k2, C_out, C_in)``. The taps are laid out
    ``(..., C_in, C_out)`` first (the transposing copy is then the smallest),
    and transformed in the kernel's dtype, one axis at a time, each a matrix
    product over contiguous rows, the last one straight into ``target`` when
    it is contiguous. The stages live in this thread's kept scratch buffers:
    fresh ones cost their page faults on every call (DCGAN's 5x5 stride-1
    layer, 256 x 128 channels, one thread: 8.3-9.6 ms fresh, 2.6-3.4 ms kept).
    Against float64 stages and a final copy, this took 0.46-0.85 of the time
    (DCGAN's layers, ``big_2d``, ``stride1_same``, ``melgan_up``, ``vnet3d_same``)
    and moved the outputs' largest error by at most 1e-6 of the largest output
    (``docs/architecture.md``, "Winograd").
    """
    target = target[:, :, filters]
    picked = kernel[..., filters, :][np.ix_(*(grid.taps for grid in grids))].swapaxes(-1, -2)
    products = _threads.scratch(2, picked.shape, kernel.dtype)
    np.copyto(products, picked)
    passes = [grid for grid in grids if grid.inputs > 1]
    last_into_target = bool(passes) and target.flags.c_contiguous
    done, slot = 1, 3
    for number, grid in enumerate(passes, 1):
        rows = products.reshape(done, len(grid.taps), -1)
        shape = (done, grid.inputs, rows.shape[-1])
        if last_into_target and number == len(passes):
            stage = target.reshape(shape)
        else:
            stage = _threads.scratch(slot, shape, kernel.dtype)
        g = _tap_transform(grid.outputs, len(grid.taps), kernel.dtype)
        products = np.matmul(g, rows, out=stage)
        slot = 5 - slot  # the stages alternate between scratch slots 3 and 2
        done *= grid.inputs
    if not last_into_target:
        target[...] = products.reshape(target.shape)


@functools.lru_cache(maxsize=64)
def _tap_transform(outputs: int, taps: int, dtype: np.dtype) -> np.ndarray:
    """``G`` of ``F(outputs, taps)`` (:func:`transforms`) in ``dtype``."""
    return transforms(outputs, taps)[1].astype(dtype)


def _axis_pass(matrix, rows, cols, source, start, step, target, target_start, target_step, length):
    """One axis's transform of a tile, between flat arrays: for ``r < rows``, ``e < length``,
    ``target[target_start + r * target_step + e]`` becomes the sum over ``j < cols`` of
    ``matrix[r, j] * source[start + j * step + e]``.

    ``source`` and ``target`` are flat arrays, so that every row is a contiguous
    slice: the loops over ``e`` then vectorize (an element index computed from a
    runtime offset carries numba's negative-index check, which they do not).
    Tiles of six or four inputs get each output row in one pass over six source
    rows (four: rows 4 and 5 are row 0 again, under the zero columns that
    :func:`_tables` pads the matrix with; one more block of code for four cost
    the six-input loops 8-28%: it kept them from being inlined).
    """
    if cols == 6 or cols == 4:
        more = step if cols == 6 else 0
        row0 = source[start:start + length]
        row1 = source[start + step:start + step + length]
        row2 = source[start + 2 * step:start + 2 * step + length]
        row3 = source[start + 3 * step:start + 3 * step + length]
        row4 = source[start + 4 * more:start + 4 * more + length]
        row5 = source[start + 5 * more:start + 5 * more + length]
        for r in range(rows):
            w0, w1, w2 = matrix[r, 0], matrix[r, 1], matrix[r, 2]
            w3, w4, w5 = matrix[r, 3], matrix[r, 4], matrix[r, 5]
            row = target[target_start + r * target_step:target_start + r * target_step + length]
            for e in range(length):
                row[e] = (w0 * row0[e] + w1 * row1[e] + w2 * row2[e]
                          + w3 * row3[e] + w4 * row4[e] + w5 * row5[e])
        return
    for r in range(rows):
        row = target[target_start + r * target_step:target_start + r * target_step + length]
        row[:] = 0.0
        for j in range(cols):
            weight = matrix[r, j]
            if weight != 0.0:
                column = source[start + j * step:start + j * step + length]
                for e in range(length):
                    row[e] += weight * column[e]


def _tile_position(tile, geometry):
    """``(sample, k0, k1, k2)`` of a tile number: tiles run over samples, then each axis."""
    sample, rest = divmod(tile, geometry[0, 7] * geometry[1, 7] * geometry[2, 7])
    k0, rest = divmod(rest, geometry[1, 7] * geometry[2, 7])
    k1, k2 = divmod(rest, geometry[2, 7])
    return sample, k0, k1, k2


def _gather_tile(x, sample, k0, k1, k2, geometry, patch):
    """Copies input tile ``(k0, k1, k2)`` of ``sample`` into the flat ``patch``, laid out
    ``(a0, a1, a2, C)``, with zeros where the tile reaches past the input."""
    channels = x.shape[4]
    a0, a1, a2 = geometry[0, 6], geometry[1, 6], geometry[2, 6]
    for j0 in range(a0):
        p0 = geometry[0, 0] + geometry[0, 1] * (k0 * geometry[0, 5] + j0)
        for j1 in range(a1):
            p1 = geometry[1, 0] + geometry[1, 1] * (k1 * geometry[1, 5] + j1)
            for j2 in range(a2):
                p2 = geometry[2, 0] + geometry[2, 1] * (k2 * geometry[2, 5] + j2)
                row = patch[((j0 * a1 + j1) * a2 + j2) * channels:
                            ((j0 * a1 + j1) * a2 + j2 + 1) * channels]
                if 0 <= p0 < x.shape[1] and 0 <= p1 < x.shape[2] and 0 <= p2 < x.shape[3]:
                    pixel = x[sample, p0, p1, p2]
                    for c in range(channels):  # element loops: numba's slice assignment is slower
                        row[c] = pixel[c]
                else:
                    for c in range(channels):
                        row[c] = 0.0


def _tile_inside(x, k0, k1, k2, geometry):
    """True when tile ``(k0, k1, k2)`` reads only inputs that exist, the last axis's contiguous."""
    if geometry[2, 1] != 1:
        return False
    for axis, k in ((0, k0), (1, k1), (2, k2)):
        first = geometry[axis, 0] + geometry[axis, 1] * k * geometry[axis, 5]
        last = first + geometry[axis, 1] * (geometry[axis, 6] - 1)
        if first < 0 or last >= x.shape[1 + axis]:
            return False
    return True


def _input_tiles_loop(x, bt, geometry, first, tiles):
    """``tiles[xi, t, :]``: input tile ``first + t`` transformed by ``Bt`` along each axis.

    Plain Python until :func:`_fused.compiled` compiles it (the tests run both).

    ``x`` is ``(batch, n0, n1, n2, C)``; inputs outside it read as zeros. A tile
    inside the input is transformed straight from it, one at its edge from a
    zero-padded copy. The middle axis's pass is skipped when it is the identity,
    both unit axes' passes of a 1-D problem (:func:`_on_three_axes`) too.
    """
    channels = x.shape[4]
    count = tiles.shape[1]
    a0, a1, a2 = geometry[0, 6], geometry[1, 6], geometry[2, 6]
    flat_x = x.reshape(x.size)
    flat_tiles = tiles.reshape(tiles.size)
    patch = np.empty(a0 * a1 * a2 * channels, tiles.dtype)
    front = np.empty_like(patch)
    back = np.empty_like(patch)
    plane = a2 * channels
    bt0, bt1, bt2 = bt[0].copy(), bt[1].copy(), bt[2].copy()  # measured 5-10% faster than views
    for t in range(count):
        sample, k0, k1, k2 = _tile_position(first + t, geometry)
        if _tile_inside(x, k0, k1, k2, geometry):
            source = flat_x
            start = (((sample * x.shape[1] + geometry[0, 0] + geometry[0, 1] * k0 * geometry[0, 5])
                      * x.shape[2] + geometry[1, 0] + geometry[1, 1] * k1 * geometry[1, 5])
                     * x.shape[3] + geometry[2, 0] + k2 * geometry[2, 5]) * channels
            step0 = geometry[0, 1] * x.shape[2] * x.shape[3] * channels
            step1 = geometry[1, 1] * x.shape[3] * channels
        else:
            _gather_tile(x, sample, k0, k1, k2, geometry, patch)
            source, start, step0, step1 = patch, 0, a1 * plane, plane
        if a0 == 1:  # a 1-D problem: only the last axis's pass
            _axis_pass(bt2, a2, a2, source, start, channels,
                       flat_tiles, t * channels, count * channels, channels)
            continue
        for j1 in range(a1):
            _axis_pass(bt0, a0, a0, source, start + j1 * step1, step0,
                       front, j1 * plane, a1 * plane, plane)
        middle = front
        if geometry[1, 5] > 1 and a1 > geometry[1, 5]:  # else Bt is the identity
            for x0 in range(a0):
                _axis_pass(bt1, a1, a1, front, x0 * a1 * plane, plane,
                           back, x0 * a1 * plane, plane, plane)
            middle = back
        for x01 in range(a0 * a1):
            _axis_pass(bt2, a2, a2, middle, x01 * plane, channels,
                       flat_tiles, (x01 * a2 * count + t) * channels, count * channels, channels)


def _output_tiles_loop(products, at, geometry, first, out):
    """Writes tile ``first + t``'s outputs: ``products[:, t, :]`` transformed by ``At``.

    Plain Python until :func:`_fused.compiled` compiles it (the tests run both).

    ``out`` is ``(batch, L0, L1, L2, C)``; outputs before an axis's ``skip``
    or past its ``count`` are not written. The last axis's pass writes straight
    into ``out``; a 1-D problem (:func:`_on_three_axes`) has only that one.
    """
    filters = out.shape[4]
    count = products.shape[1]
    a0, a1, a2 = geometry[0, 6], geometry[1, 6], geometry[2, 6]
    m0, m1, m2 = geometry[0, 5], geometry[1, 5], geometry[2, 5]
    flat_products = products.reshape(products.size)
    flat_out = out.reshape(out.size)
    front = np.empty(m0 * a1 * a2 * filters, products.dtype)
    back = np.empty(m0 * m1 * a2 * filters, products.dtype)
    plane = a2 * filters
    out_row, out_plane = out.shape[3] * filters, out.shape[2] * out.shape[3] * filters
    at0, at1, at2 = at[0].copy(), at[1].copy(), at[2].copy()
    for t in range(count):
        sample, k0, k1, k2 = _tile_position(first + t, geometry)
        low, high = max(0, geometry[2, 8] - k2 * m2), min(m2, geometry[2, 4] - k2 * m2)
        if high <= low:
            continue
        rows = at2[low:]
        o2 = geometry[2, 2] + geometry[2, 3] * (k2 * m2 + low)
        if a0 == 1:  # a 1-D problem: only the last axis's pass
            _axis_pass(rows, high - low, a2, flat_products, t * filters, count * filters, flat_out,
                       (sample * out.shape[3] + o2) * filters, geometry[2, 3] * filters, filters)
            continue
        for x12 in range(a1 * a2):
            _axis_pass(at0, m0, a0, flat_products, (x12 * count + t) * filters,
                       a1 * a2 * count * filters, front, x12 * filters, a1 * plane, filters)
        middle = front
        if a1 > m1:  # else At is the identity
            for i0 in range(m0):
                _axis_pass(at1, m1, a1, front, i0 * a1 * plane, plane,
                           back, i0 * m1 * plane, plane, plane)
            middle = back
        o0 = geometry[0, 2] + geometry[0, 3] * k0 * m0
        o1 = geometry[1, 2] + geometry[1, 3] * k1 * m1
        for i0 in range(max(0, geometry[0, 8] - k0 * m0), min(m0, geometry[0, 4] - k0 * m0)):
            for i1 in range(max(0, geometry[1, 8] - k1 * m1), min(m1, geometry[1, 4] - k1 * m1)):
                target = ((sample * out.shape[1] + o0 + geometry[0, 3] * i0) * out_plane
                          + (o1 + geometry[1, 3] * i1) * out_row + o2 * filters)
                _axis_pass(rows, high - low, a2, middle, (i0 * m1 + i1) * plane, filters,
                           flat_out, target, geometry[2, 3] * filters, filters)
