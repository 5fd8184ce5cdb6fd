"""Keras 3's activation functions on NumPy arrays, resolved by name.

Every function takes an array_like and returns an array of the input's float
dtype (integer and bool inputs give float32, Keras's default float type).
float16 inputs are computed in float32 and rounded once at the end.

`get` resolves None (`linear`), a name, a serialized dict or a callable;
`serialize` gives a built-in function's Keras 3 name (``"silu"`` for `swish`)
and refuses other callables; `deserialize` reads a name,
``{"class_name": "function", "config": "relu", ...}`` (how Keras 3 writes a
function) or ``{"class_name": "relu"}``. Not provided: Keras's `threshold`
(it has required arguments) and `sparsemax`.

Example:
    >>> import numpy as np
    >>> relu(np.array([-1.0, 2.0], dtype=np.float16)).dtype
    dtype('float16')
    >>> get("swish") is silu, serialize(get("swish"))
    (True, 'silu')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convt._registry import Registry

__all__ = [
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_in_float_out(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """Runs `fn` in float32 or wider and returns the input's float dtype."""

    @functools.wraps(fn)
    def wrapper(x: ArrayLike, *args: Any, **kwargs: Any) -> np.ndarray:
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        compute_dtype = np.promote_types(dtype, np.float32)
        return np.asarray(fn(x.astype(compute_dtype, copy=False), *args, **kwargs), dtype=dtype)

    return wrapper


def linear(x: Any) -> Any:
    """Returns `x` unchanged (the identity; Keras's default activation).

    Example:
        >>> linear([1.5, -2.0])
        [1.5, -2.0]
    """
    return x


@_float_in_float_out
def relu(
    x: ArrayLike,
    *,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> np.ndarray:
    """Rectified linear unit with Keras's optional slope, ceiling and threshold.

    Values above `threshold` pass (0 below it), are clipped to
    ``[0, max_value]`` when `max_value` is given, and values below `threshold`
    then add ``negative_slope * (x - threshold)``.

    Args:
        x: input array.
        negative_slope: slope below the threshold.
        max_value: the largest value returned, or None for no ceiling.
        threshold: the value below which inputs are damped.

    Example:
        >>> relu([-10.0, -5.0, 0.0, 5.0, 10.0], negative_slope=0.5).tolist()
        [-5.0, -2.5, 0.0, 5.0, 10.0]
        >>> relu([-10.0, 0.0, 5.0, 10.0], max_value=5.0).tolist()
        [0.0, 0.0, 5.0, 5.0]
    """
    out = np.maximum(x, 0) if threshold == 0 else np.where(x > threshold, x, 0)
    if max_value is not None:
        out = np.clip(out, 0, max_value)
    if negative_slope != 0:
        out = out - negative_slope * np.maximum(threshold - x, 0)
    return out


@_float_in_float_out
def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> np.ndarray:
    """``x`` for ``x >= 0``, else ``negative_slope * x``.

    Example:
        >>> leaky_relu([-1.0, 2.0]).tolist()
        [-0.2, 2.0]
    """
    return np.where(x >= 0, x, negative_slope * x)


@_float_in_float_out
def relu6(x: ArrayLike) -> np.ndarray:
    """ReLU capped at 6: ``min(max(x, 0), 6)``.

    Example:
        >>> relu6([-1.0, 3.0, 9.0]).tolist()
        [0.0, 3.0, 6.0]
    """
    return np.clip(x, 0, 6)


@_float_in_float_out
def sigmoid(x: ArrayLike) -> np.ndarray:
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``.

    Example:
        >>> sigmoid([0.0]).tolist()
        [0.5]
    """
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


@_float_in_float_out
def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent.

    Example:
        >>> tanh([0.0]).tolist()
        [0.0]
    """
    return np.tanh(x)


@_float_in_float_out
def softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along `axis`, shifted by the maximum for stability.

    Example:
        >>> softmax([1000.0, 1000.0]).tolist()
        [0.5, 0.5]
    """
    exps = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return exps / np.sum(exps, axis=axis, keepdims=True)


@_float_in_float_out
def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    """``log(softmax(x))`` along `axis`, without forming ``softmax(x)``.

    Example:
        >>> log_softmax([0.0, 0.0]).tolist() == [-math.log(2)] * 2
        True
    """
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# W. J. Cody's rational approximations for erf/erfc (Math. Comp. 23, 1969),
# highest degree first for np.polyval: erf on |x| <= 0.46875 in x**2, erfc on
# (0.46875, 4] in |x|, and erfc beyond 4 in 1 / x**2.
_ERF_NUM = (
    1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
    3.77485237685302021e2, 3.20937758913846947e3,
)  # fmt: skip
_ERF_DEN = (
    1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
    2.84423683343917062e3,
)  # fmt: skip
_ERFC_MID_NUM = (
    2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
    6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
    1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3,
)  # fmt: skip
_ERFC_MID_DEN = (
    1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
    1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
    3.43936767414372164e3, 1.23033935480374942e3,
)  # fmt: skip
_ERFC_TAIL_NUM = (
    1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
    1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4,
)  # fmt: skip
_ERFC_TAIL_DEN = (
    1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
    6.05183413124413191e-2, 2.33520497626869185e-3,
)  # fmt: skip


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """``exp(-y**2)``, split as Cody does so the rounding of ``y**2`` does not count."""
    head = np.trunc(16 * y) / 16
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function in float64, relative error about 1e-15."""
    x = np.asarray(x, dtype=np.float64)
    y = np.minimum(np.abs(x), 40.0)  # erfc(27.3) already underflows to 0
    out = np.full_like(y, np.nan)
    small = y <= 0.46875
    mid = (y > 0.46875) & (y <= 4)
    tail = y > 4
    t = y[small] ** 2
    out[small] = 1 - y[small] * np.polyval(_ERF_NUM, t) / np.polyval(_ERF_DEN, t)
    m = y[mid]
    ratio = np.polyval(_ERFC_MID_NUM, m) / np.polyval(_ERFC_MID_DEN, m)
    out[mid] = _exp_minus_square(m) * ratio
    s = y[tail]
    z = 1 / (s * s)
    ratio = z * np.polyval(_ERFC_TAIL_NUM, z) / np.polyval(_ERFC_TAIL_DEN, z)
    out[tail] = _exp_minus_square(s) * (1 / math.sqrt(math.pi) - ratio) / s
    return np.where(x < 0, 2 - out, out)


@_float_in_float_out
def gelu(x: ArrayLike, *, approximate: bool = False) -> np.ndarray:
    """Gaussian error linear unit: ``x * P(X <= x)`` for a standard normal ``X``.

    The exact form is ``0.5 * x * erfc(-x / sqrt(2))`` (equal to
    ``0.5 * x * (1 + erf(x / sqrt(2)))`` without its cancellation for
    negative `x`); `approximate` uses Keras's tanh formula.

    Args:
        x: input array.
        approximate: use the tanh approximation instead of the erf form.

    Example:
        >>> round(float(gelu(1.0)), 6), round(float(gelu(1.0, approximate=True)), 6)
        (0.841345, 0.841192)
    """
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    return 0.5 * x * _erfc(-x / math.sqrt(2))


@_float_in_float_out
def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: ``x`` for ``x >= 0``, else ``alpha * (exp(x) - 1)``.

    Example:
        >>> elu([0.0, 2.0]).tolist()
        [0.0, 2.0]
    """
    return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0)))


@_float_in_float_out
def selu(x: ArrayLike) -> np.ndarray:
    """Scaled ELU with Klambauer et al.'s constants (alpha 1.67326, scale 1.05070).

    Example:
        >>> selu(np.float32(1.0)).dtype, round(float(selu(1.0)), 6)
        (dtype('float32'), 1.050701)
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


@_float_in_float_out
def softplus(x: ArrayLike) -> np.ndarray:
    """``log(exp(x) + 1)``, computed without overflow.

    Example:
        >>> softplus([1000.0]).tolist()
        [1000.0]
    """
    return np.logaddexp(x, 0)


@_float_in_float_out
def softsign(x: ArrayLike) -> np.ndarray:
    """``x / (abs(x) + 1)``.

    Example:
        >>> softsign([-1.0, 3.0]).tolist()
        [-0.5, 0.75]
    """
    return x / (np.abs(x) + 1)


@_float_in_float_out
def silu(x: ArrayLike) -> np.ndarray:
    """Swish / SiLU: ``x * sigmoid(x)``. Serialized as ``"silu"``; ``swish`` is this function.

    Example:
        >>> silu([0.0]).tolist()
        [0.0]
    """
    return x * sigmoid(x)


swish = silu


@_float_in_float_out
def hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """Piecewise-linear sigmoid: ``relu6(x + 3) / 6``, i.e. ``clip(x / 6 + 0.5, 0, 1)``.

    Example:
        >>> hard_sigmoid([-4.0, 0.0, 4.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return np.clip(x / 6 + 0.5, 0, 1)


@_float_in_float_out
def hard_silu(x: ArrayLike) -> np.ndarray:
    """Hard SiLU / hard swish: ``x * hard_sigmoid(x)``; ``hard_swish`` is this function.

    Example:
        >>> hard_silu([-4.0, 4.0]).tolist()
        [-0.0, 4.0]
    """
    return x * hard_sigmoid(x)


hard_swish = hard_silu


@_float_in_float_out
def hard_tanh(x: ArrayLike) -> np.ndarray:
    """``clip(x, -1, 1)``.

    Example:
        >>> hard_tanh([-2.0, 0.5]).tolist()
        [-1.0, 0.5]
    """
    return np.clip(x, -1, 1)


@_float_in_float_out
def exponential(x: ArrayLike) -> np.ndarray:
    """``exp(x)``.

    Example:
        >>> exponential([0.0]).tolist()
        [1.0]
    """
    return np.exp(x)


@_float_in_float_out
def mish(x: ArrayLike) -> np.ndarray:
    """``x * tanh(softplus(x))``.

    Example:
        >>> mish([0.0]).tolist()
        [0.0]
    """
    return x * np.tanh(softplus(x))


@_float_in_float_out
def tanh_shrink(x: ArrayLike) -> np.ndarray:
    """``x - tanh(x)``.

    Example:
        >>> tanh_shrink([0.0]).tolist()
        [0.0]
    """
    return x - np.tanh(x)


@_float_in_float_out
def celu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``.

    Example:
        >>> celu([2.0]).tolist()
        [2.0]
    """
    return np.maximum(x, 0) + alpha * np.expm1(np.minimum(x, 0) / alpha)


@_float_in_float_out
def glu(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of `axis`.

    Raises:
        ValueError: if the size of `axis` is odd.

    Example:
        >>> glu([2.0, 0.0]).tolist()
        [1.0]
    """
    if x.shape[axis] % 2:
        raise ValueError(
            "Expected the size of `axis` to be divisible by 2. "
            f"Received: x.shape={x.shape} with axis={axis}"
        )
    first, second = np.split(x, 2, axis=axis)
    return first * sigmoid(second)


@_float_in_float_out
def log_sigmoid(x: ArrayLike) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)``.

    Example:
        >>> log_sigmoid([-1000.0]).tolist()
        [-1000.0]
    """
    return -softplus(-x)


@_float_in_float_out
def sparse_sigmoid(x: ArrayLike) -> np.ndarray:
    """``clip((x + 1) / 2, 0, 1)``.

    Example:
        >>> sparse_sigmoid([-2.0, 0.0, 2.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return np.clip(0.5 * (x + 1), 0, 1)


@_float_in_float_out
def sparse_plus(x: ArrayLike) -> np.ndarray:
    """0 for ``x <= -1``, ``(x + 1)**2 / 4`` for ``-1 < x < 1``, ``x`` for ``x >= 1``.

    Example:
        >>> sparse_plus([-2.0, 0.0, 2.0]).tolist()
        [0.0, 0.25, 2.0]
    """
    return np.where(x <= -1, 0, np.where(x < 1, 0.25 * (x + 1) ** 2, x))


@_float_in_float_out
def squareplus(x: ArrayLike, b: float = 4) -> np.ndarray:
    """``(x + sqrt(x**2 + b)) / 2``.

    Example:
        >>> squareplus([0.0]).tolist()
        [1.0]
    """
    return (x + np.sqrt(x * x + b)) / 2


@_float_in_float_out
def soft_shrink(x: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """Shrinks ``|x|`` by `threshold` toward 0, and to 0 within it.

    Example:
        >>> soft_shrink([-2.0, 0.25, 2.0]).tolist()
        [-1.5, 0.0, 1.5]
    """
    return np.sign(x) * np.maximum(np.abs(x) - threshold, 0)


@_float_in_float_out
def hard_shrink(x: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """``x`` where ``|x| > threshold``, else 0.

    Example:
        >>> hard_shrink([-2.0, 0.25]).tolist()
        [-2.0, 0.0]
    """
    return np.where(np.abs(x) > threshold, x, 0)


_REGISTRY = Registry(
    kind="activation function",
    argument="activation",
    module="keras.activations",
    also_accepted_modules=("keras.src.activations.activations",),
    default=linear,
    objects=[
        linear, relu, leaky_relu, relu6, sigmoid, tanh, softmax, log_softmax, gelu, elu, selu,
        softplus, softsign, silu, hard_sigmoid, hard_silu, hard_tanh, exponential, mish,
        tanh_shrink, celu, glu, log_sigmoid, sparse_sigmoid, sparse_plus, squareplus,
        soft_shrink, hard_shrink,
    ],
    aliases={"swish": silu, "hard_swish": hard_silu},
)  # fmt: skip


get, serialize, deserialize = _REGISTRY.get, _REGISTRY.serialize, _REGISTRY.deserialize
