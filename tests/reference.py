"""Independent references for tests only: direct loops, written from the definitions.

Nothing here imports convt. The transposed convolution is written as the
literal scatter of the definition, the direct convolution as the literal
gather; the Keras output lengths are restated from Keras's documentation so a
bug in ``convt._shapes`` cannot hide in both places.
"""

from __future__ import annotations

import itertools

import numpy as np


def keras_length(i, k, s, padding, output_padding, d):
    """Keras's documented output length of one axis (restated, not imported)."""
    if i == 0:
        return 0
    big_k = (k - 1) * d + 1
    if padding == "valid":
        pad = max(big_k, s) - big_k if output_padding is None else output_padding
        return (i - 1) * s + big_k + pad
    if output_padding is None:
        return i * s
    return (i - 1) * s + big_k % 2 + output_padding


def keras_crop_left(k, s, padding, output_padding, d):
    """How far into the full scatter Keras's output window starts."""
    big_k = (k - 1) * d + 1
    if padding == "valid":
        return 0
    total = s + big_k - 2 if output_padding is None else big_k + big_k % 2 - 2 + output_padding
    return big_k - 1 - min((total + 1) // 2, big_k - 1)


def _per_axis(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def conv_transpose_loops(x, w, strides=1, padding="valid", output_padding=None,
                         data_format="channels_last", dilation_rate=1):
    """Scatter every input element times every tap, then take Keras's window (float64)."""
    x, w, s, d, op, crops = _channels_last_float64(
        x, w, strides, padding, output_padding, data_format, dilation_rate)
    rank = x.ndim - 2
    ks, filters = w.shape[:rank], w.shape[rank]
    lengths = [keras_length(x.shape[1 + a], ks[a], s[a], padding, op[a], d[a]) for a in range(rank)]
    out = np.zeros((x.shape[0], *lengths, filters))
    for pos in itertools.product(*(range(n) for n in x.shape[1:-1])):
        for tap in itertools.product(*(range(k) for k in ks)):
            where = [pos[a] * s[a] + tap[a] * d[a] - crops[a] for a in range(rank)]
            if all(0 <= where[a] < lengths[a] for a in range(rank)):
                out[(slice(None), *where)] += x[(slice(None), *pos)] @ w[tap].T
    if data_format == "channels_first":
        out = np.moveaxis(out, -1, 1)
    return out


def conv_transpose_taps(x, w, strides=1, padding="valid", output_padding=None,
                        data_format="channels_last", dilation_rate=1):
    """The same scatter a tap at a time, every input at once (float64).

    Each tap's products ``x . w[tap]`` land on every ``s``-th element from ``tap * d``
    of a canvas that holds both the full scatter and Keras's window (which may reach
    past it, as zeros); the window is cut from the canvas. An empty axis adds nothing
    (its slices would count from the end). Fast enough for the sizes
    ``tools/fuzz_numpy_op.py`` draws, and written as independently of convt as the
    loops above.
    """
    x, w, s, d, op, crops = _channels_last_float64(
        x, w, strides, padding, output_padding, data_format, dilation_rate)
    rank = x.ndim - 2
    ks, n = w.shape[:rank], x.shape[1:-1]
    lengths = [keras_length(n[a], ks[a], s[a], padding, op[a], d[a]) for a in range(rank)]
    reach = [(n[a] - 1) * s[a] + (ks[a] - 1) * d[a] + 1 for a in range(rank)]
    canvas = np.zeros((x.shape[0], *(max(reach[a], crops[a] + lengths[a]) for a in range(rank)),
                       w.shape[rank]))
    for tap in itertools.product(*(range(k) for k in ks)) if all(n) else ():
        lands = tuple(slice(tap[a] * d[a], tap[a] * d[a] + (n[a] - 1) * s[a] + 1, s[a])
                      for a in range(rank))
        canvas[(slice(None), *lands)] += x @ w[tap].T
    out = canvas[(slice(None), *(slice(crops[a], crops[a] + lengths[a]) for a in range(rank)))]
    if data_format == "channels_first":
        out = np.moveaxis(out, -1, 1)
    return out


def conv_loops(y, w, x_spatial, strides=1, output_padding=None, padding="valid",
               data_format="channels_last", dilation_rate=1):
    """The direct convolution whose adjoint the transposed convolution is.

    ``x[n] = sum_j y[n * s + j * d - crop] . w[j]`` over taps landing inside ``y``:
    a gather, written independently of the scatter above.
    """
    y, w, s, d, _, crops = _channels_last_float64(
        y, w, strides, padding, output_padding, data_format, dilation_rate)
    rank, ks = y.ndim - 2, w.shape[:y.ndim - 2]
    x = np.zeros((y.shape[0], *x_spatial, w.shape[-1]))
    for pos in itertools.product(*(range(n) for n in x_spatial)):
        for tap in itertools.product(*(range(k) for k in ks)):
            where = [pos[a] * s[a] + tap[a] * d[a] - crops[a] for a in range(rank)]
            if all(0 <= where[a] < y.shape[1 + a] for a in range(rank)):
                x[(slice(None), *pos)] += y[(slice(None), *where)] @ w[tap]
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1)
    return x


def conv_transpose_at(x, w, positions, strides=1, padding="valid", output_padding=None,
                      data_format="channels_last", dilation_rate=1):
    """The output at ``positions`` only, as a gather from the definition (float64).

    ``positions`` holds ``(sample, *spatial)`` indices of Keras's output; the
    result is ``(len(positions), filters)``. Output index ``o`` of an axis
    receives input ``i`` through tap ``t`` when ``i * s + t * d - crop == o``,
    so each position costs one pass over the taps: cheap enough to check
    outputs far too large for :func:`conv_transpose_loops`.
    """
    x, w, s, d, _, crops = _channels_last_float64(
        x, w, strides, padding, output_padding, data_format, dilation_rate)
    rank, ks = x.ndim - 2, w.shape[:x.ndim - 2]
    values = np.zeros((len(positions), w.shape[rank]))
    for row, (sample, *where) in enumerate(positions):
        for tap in itertools.product(*(range(k) for k in ks)):
            shifted = [where[a] + crops[a] - tap[a] * d[a] for a in range(rank)]
            if all(v % s[a] == 0 and 0 <= v // s[a] < x.shape[1 + a]
                   for a, v in enumerate(shifted)):
                pos = tuple(v // s[a] for a, v in enumerate(shifted))
                values[row] += w[tap] @ x[(sample, *pos)]
    return values


def _channels_last_float64(a, w, strides, padding, output_padding, data_format, dilation_rate):
    """``a`` (channels_last) and ``w`` in float64, with per-axis strides, dilations,
    output paddings and Keras's left crops."""
    a = np.asarray(a, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if data_format == "channels_first":
        a = np.moveaxis(a, 1, -1)
    rank = a.ndim - 2
    s = _per_axis(strides, rank)
    d = _per_axis(dilation_rate, rank)
    op = (None,) * rank if output_padding is None else _per_axis(output_padding, rank)
    crops = [keras_crop_left(w.shape[i], s[i], padding, op[i], d[i]) for i in range(rank)]
    return a, w, s, d, op, crops
