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
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    rank = x.ndim - 2
    s = _per_axis(strides, rank)
    d = _per_axis(dilation_rate, rank)
    op = (None,) * rank if output_padding is None else _per_axis(output_padding, rank)
    ks = w.shape[:rank]
    filters = w.shape[rank]
    lengths = [keras_length(x.shape[1 + a], ks[a], s[a], padding, op[a], d[a]) for a in range(rank)]
    crops = [keras_crop_left(ks[a], s[a], padding, op[a], d[a]) for a in range(rank)]
    out = np.zeros((x.shape[0], *lengths, filters))
    for pos in itertools.product(*(range(n) for n in x.shape[1:-1])):
        for tap in itertools.product(*(range(k) for k in ks)):
            where = [pos[a] * s[a] + tap[a] * d[a] - crops[a] for a in range(rank)]
            if all(0 <= where[a] < lengths[a] for a in range(rank)):
                out[(slice(None), *where)] += x[(slice(None), *pos)] @ w[tap].T
    if data_format == "channels_first":
        out = np.moveaxis(out, -1, 1)
    return out


def conv_loops(y, w, x_spatial, strides=1, output_padding=None, padding="valid",
               data_format="channels_last", dilation_rate=1):
    """The direct convolution whose adjoint the transposed convolution is.

    ``x[n] = sum_j y[n * s + j * d - crop] . w[j]`` over taps landing inside ``y``:
    a gather, written independently of the scatter above.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if data_format == "channels_first":
        y = np.moveaxis(y, 1, -1)
    rank = y.ndim - 2
    s = _per_axis(strides, rank)
    d = _per_axis(dilation_rate, rank)
    op = (None,) * rank if output_padding is None else _per_axis(output_padding, rank)
    ks = w.shape[:rank]
    crops = [keras_crop_left(ks[a], s[a], padding, op[a], d[a]) for a in range(rank)]
    x = np.zeros((y.shape[0], *x_spatial, w.shape[-1]))
    for pos in itertools.product(*(range(n) for n in x_spatial)):
        for tap in itertools.product(*(range(k) for k in ks)):
            where = [pos[a] * s[a] + tap[a] * d[a] - crops[a] for a in range(rank)]
            if all(0 <= where[a] < y.shape[1 + a] for a in range(rank)):
                x[(slice(None), *pos)] += y[(slice(None), *where)] @ w[tap]
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1)
    return x
