"""The NumPy kernels of transposed convolution.

Algorithm: one BLAS GEMM turns every input pixel into its contributions for
all kernel taps at once (``(pixels, C_in) @ (C_in, taps * filters)``), then
each tap's block is added into its strided place in the output, skipping the
parts that Keras's crop throws away. When every axis has ``kernel == stride``
and no dilation the taps tile the output exactly, so the GEMM result is just
re-laid out (depth-to-space) instead of added. Work is chunked over the batch,
and over the first spatial axis when one sample is too large, so temporaries
stay under :data:`MEMORY_BUDGET` bytes whatever the input size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from convt._shapes import AxisPlan, ConvTransposeArgs

MEMORY_BUDGET = 32 * 2**20
"""Upper bound, in bytes, on the GEMM scratch buffer of one chunk."""


def compute_dtype(inputs: np.ndarray, kernel: np.ndarray) -> tuple[np.dtype, np.dtype]:
    """(dtype computed in, dtype returned) for an input/kernel pair.

    Floats keep NumPy's promotion; float16 is computed in float32. Integer and
    bool arrays are computed and returned in float32.
    """
    result = np.result_type(inputs.dtype, kernel.dtype)
    if result.kind in "biu":
        return np.dtype(np.float32), np.dtype(np.float32)
    if result.kind != "f":
        raise TypeError(
            "Expected real-valued `inputs` and `kernel` (float, int or bool). "
            f"Received: inputs.dtype={inputs.dtype}, kernel.dtype={kernel.dtype}"
        )
    if result.itemsize < 4:
        return np.dtype(np.float32), result
    return result, result


def conv_transpose(
    inputs: np.ndarray, kernel: np.ndarray, args: ConvTransposeArgs
) -> np.ndarray:
    """Transposed convolution of already validated arrays.

    Args:
        inputs: array laid out as ``args.data_format`` says.
        kernel: ``(*kernel_size, filters, in_channels)``.
        args: the normalized arguments; shapes were checked by ``_shapes``.

    Returns:
        The output in ``args.data_format``.
    """
    work_dtype, out_dtype = compute_dtype(inputs, kernel)
    channels_first = args.data_format == "channels_first"
    x = np.moveaxis(inputs, 1, -1) if channels_first else inputs
    plans = args.axis_plans(x.shape[1:-1])
    out = _conv_transpose_channels_last(
        np.ascontiguousarray(x, dtype=work_dtype),
        np.asarray(kernel, dtype=work_dtype),
        plans,
    )
    if channels_first:
        out = np.moveaxis(out, -1, 1)
    return np.ascontiguousarray(out, dtype=out_dtype)


def _conv_transpose_channels_last(
    x: np.ndarray, kernel: np.ndarray, plans: tuple[AxisPlan, ...]
) -> np.ndarray:
    rank = len(plans)
    kernel_size = kernel.shape[:rank]
    filters, channels = kernel.shape[rank:]
    taps = math.prod(kernel_size)
    weights = kernel.reshape(taps * filters, channels).T
    batch = x.shape[0]
    out = np.zeros(
        (batch, *(p.output_length for p in plans), filters), dtype=x.dtype
    )
    if out.size == 0 or x.size == 0:
        return out
    place = _place_tiled if _taps_tile_output(plans) else _place_overlapping
    for batches, rows in _chunks(x.shape, taps * filters * x.itemsize):
        block = x[batches, rows]
        cols = (block.reshape(-1, channels) @ weights).reshape(
            *block.shape[:-1], taps, filters
        )
        place(out, cols, batches, rows.start, plans, kernel_size)
    return out


def _taps_tile_output(plans: tuple[AxisPlan, ...]) -> bool:
    """True when each output element receives exactly one tap of one input."""
    return all(
        p.kernel_size == p.stride and p.dilation == 1 and p.crop_left == 0 for p in plans
    )


def _chunks(shape: tuple[int, ...], bytes_per_pixel: int) -> Iterator[tuple[slice, slice]]:
    """(batch slice, first-spatial-axis slice) pairs whose GEMM fits the budget."""
    batch, rows = shape[0], shape[1]
    row_bytes = bytes_per_pixel * math.prod(shape[2:-1])
    sample_bytes = row_bytes * rows
    if sample_bytes <= MEMORY_BUDGET:
        step = max(1, MEMORY_BUDGET // max(sample_bytes, 1))
        for start in range(0, batch, step):
            yield slice(start, min(start + step, batch)), slice(0, rows)
        return
    row_step = max(1, MEMORY_BUDGET // row_bytes)
    for sample in range(batch):
        for start in range(0, rows, row_step):
            yield slice(sample, sample + 1), slice(start, min(start + row_step, rows))


def _place_tiled(
    out: np.ndarray,
    cols: np.ndarray,
    batches: slice,
    row_start: int,
    plans: tuple[AxisPlan, ...],
    kernel_size: tuple[int, ...],
) -> None:
    """Depth-to-space: interleave each input axis with its kernel axis."""
    rank = len(plans)
    block_spatial = cols.shape[1 : 1 + rank]
    tiles = cols.reshape(cols.shape[0], *block_spatial, *kernel_size, cols.shape[-1])
    order = [0]
    for axis in range(rank):
        order += [1 + axis, 1 + rank + axis]
    order.append(1 + 2 * rank)
    lengths = [n * k for n, k in zip(block_spatial, kernel_size)]
    starts = [row_start * kernel_size[0]] + [0] * (rank - 1)
    target = tuple(
        slice(start, min(start + n, p.output_length))
        for start, n, p in zip(starts, lengths, plans)
    )
    region = out[(batches, *target)]
    laid_out = tiles.transpose(order).reshape(cols.shape[0], *lengths, cols.shape[-1])
    region[...] = laid_out[(slice(None), *(slice(0, n) for n in region.shape[1:-1]))]


def _place_overlapping(
    out: np.ndarray,
    cols: np.ndarray,
    batches: slice,
    row_start: int,
    plans: tuple[AxisPlan, ...],
    kernel_size: tuple[int, ...],
) -> None:
    """Adds each tap's block into its strided window of the output."""
    block_lengths = cols.shape[1 : 1 + len(plans)]
    starts = (row_start,) + (0,) * (len(plans) - 1)
    for tap, offsets in enumerate(np.ndindex(*kernel_size)):
        windows = [
            _tap_window(plan, start, length, offset)
            for plan, start, length, offset in zip(plans, starts, block_lengths, offsets)
        ]
        if None in windows:
            continue
        sources, targets = zip(*windows)
        out[(batches, *targets)] += cols[(slice(None), *sources, tap)]


def _tap_window(
    plan: AxisPlan, start: int, length: int, tap: int
) -> tuple[slice, slice] | None:
    """(input slice within the block, output slice) that one tap touches on one axis.

    Input element ``n`` (``start <= n < start + length``) lands at output
    index ``n * stride + tap * dilation - crop_left``; only indices inside
    ``[0, output_length)`` are kept. ``None`` when nothing lands inside.
    """
    shift = tap * plan.dilation - plan.crop_left
    first = max(start, -(shift // plan.stride))
    last = min(start + length - 1, (plan.output_length - 1 - shift) // plan.stride)
    if first > last:
        return None
    source = slice(first - start, last - start + 1)
    target = slice(first * plan.stride + shift, last * plan.stride + shift + 1, plan.stride)
    return source, target
