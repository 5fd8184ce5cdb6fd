"""Keras 3's weight initializers on NumPy, resolved and serialized by name.

An initializer is called as ``init(shape, dtype="float32")`` and returns a new
NumPy array. Random ones draw from ``np.random.default_rng(seed)`` afresh on
every call: an integer seed gives the same values on every call and in every
run; ``seed=None`` gives fresh values on every call (Keras instead fixes a
random seed once per unseeded instance).

Names are the class names, their snake_case forms (``"glorot_uniform"``...)
and Keras's older aliases (``"zero"``, ``"one"``, ``"uniform"``, ``"normal"``).

Example:
    >>> init = get("glorot_uniform")
    >>> init((3, 3, 16, 8)).shape
    (3, 3, 16, 8)
    >>> serialize(init)["config"]
    {'seed': None, 'input_axes': None, 'output_axes': None}
"""

from __future__ import annotations

import abc
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from convt import windows
from convt._arrays import real_array
from convt._registry import Configurable, Registry, float_arg

__all__ = [
    "ArrayValues",
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "STFT",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "deserialize",
    "get",
    "serialize",
]

SAMPLE_ITEMSIZE = 8
"""Bytes per element of the float64 values that the random initializers draw before
rounding them to the weight's dtype; the layers charge it for every new weight."""

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STDDEV = 0.87962566103423978


def _check_shape(shape: Any) -> tuple[int, ...]:
    """Returns `shape` as a tuple of non-negative ints, or raises ValueError."""
    try:
        dims = tuple(operator.index(dim) for dim in shape)
    except TypeError:
        dims = None
    if isinstance(shape, (str, bytes)) or dims is None or any(dim < 0 for dim in dims):
        raise ValueError(
            f"Expected `shape` to be a tuple of non-negative integers. Received: shape={shape!r}"
        )
    return dims


def _check_dtype(dtype: DTypeLike, *, floating_only: bool) -> np.dtype:
    """Returns `dtype` (None meaning float32) as a NumPy dtype, or raises ValueError."""
    try:
        resolved = np.dtype("float32" if dtype is None else dtype)
    except TypeError:
        resolved = None
    kinds, expected = ("f", "a floating-point") if floating_only else ("fiub", "a numeric")
    if resolved is None or resolved.kind not in kinds:
        raise ValueError(f"Expected `dtype` to be {expected} dtype. Received: dtype={dtype!r}")
    return resolved


def _check_seed(seed: Any) -> int | None:
    """Returns `seed` as a non-negative int or None, or raises ValueError."""
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ValueError(
        f"`seed` argument should be a non-negative integer or None. Received: seed={seed!r}"
    )


def _check_axes(axes: Any, *, name: str) -> tuple[int, ...] | None:
    """Returns `axes` as a tuple of ints or None, or raises ValueError."""
    if axes is None:
        return None
    try:
        return tuple(operator.index(axis) for axis in axes)
    except TypeError:
        raise ValueError(
            f"Expected `{name}` to be None or a list of integers. Received: {name}={axes!r}"
        ) from None


def compute_fans(
    shape: Sequence[int],
    *,
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Returns ``(fan_in, fan_out)`` for a weight shape, by Keras's rule.

    With both `input_axes` and `output_axes`, the fans are the products of those
    dimensions. Otherwise: rank 0 gives (1, 1); rank 1 gives (n, n); rank 2 is
    ``(in, out)``; a kernel of rank >= 3 is ``(*receptive_field, in, out)`` and
    multiplies both by ``prod(receptive_field)``. For a transposed convolution
    kernel ``(*kernel_size, filters, in_channels)`` this means fan_in counts
    `filters` and fan_out counts `in_channels`, exactly as in Keras.

    Raises:
        ValueError: for an axis outside the shape.

    Example:
        >>> compute_fans((3, 3, 16, 8))
        (144, 72)
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        for name, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
            if not all(-len(shape) <= axis < len(shape) for axis in axes):
                raise ValueError(
                    f"Expected `{name}` to index the {len(shape)} dimensions of the weight. "
                    f"Received: {name}={list(axes)} for shape={shape}"
                )
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal draws, with those beyond 2 in absolute value drawn again."""
    draws = rng.standard_normal(shape)
    outside = np.abs(draws) > 2
    while outside.any():
        draws[outside] = rng.standard_normal(np.count_nonzero(outside))
        outside = np.abs(draws) > 2
    return draws


class Initializer(Configurable, abc.ABC):
    """Base class: ``init(shape, dtype="float32")`` returns a new NumPy array.

    Subclasses implement `_generate` (values for a checked shape, any float
    dtype); the base checks the arguments and casts once. A subclass works in
    layers but has no serialized form (it is not in the allow-list).

    Example:
        >>> class Halves(Initializer):
        ...     def _generate(self, shape):
        ...         return np.full(shape, 0.5)
        >>> Halves()((2,), dtype="float16")
        array([0.5, 0.5], dtype=float16)
    """

    _floating_only = False

    def __call__(self, shape: Sequence[int], dtype: DTypeLike = "float32") -> np.ndarray:
        """Returns a new array of `shape` and `dtype` (None means float32).

        Raises:
            ValueError: for a shape that is not a tuple of non-negative
                integers, or a dtype the initializer cannot produce.
        """
        dtype = _check_dtype(dtype, floating_only=self._floating_only)
        return np.asarray(self._generate(_check_shape(shape)), dtype=dtype)

    @abc.abstractmethod
    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        """Implemented by each subclass."""


class Zeros(Initializer):
    """Fills with 0.

    Example:
        >>> Zeros()((2,), dtype="int32")
        array([0, 0], dtype=int32)
    """

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)


class Ones(Initializer):
    """Fills with 1.

    Example:
        >>> Ones()((2,)).tolist()
        [1.0, 1.0]
    """

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape)


class Constant(Initializer):
    """Fills with one scalar `value`.

    Args:
        value: a finite real number.

    Example:
        >>> Constant(0.5)((2,)).tolist()
        [0.5, 0.5]
    """

    def __init__(self, value: float = 0.0) -> None:
        self.value = float_arg(value, name="value")

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class Identity(Initializer):
    """``gain`` times the identity matrix (rectangular shapes get ones on the diagonal).

    Args:
        gain: a finite real factor.

    Raises:
        ValueError: on call, for a shape of rank other than 2.

    Example:
        >>> Identity(gain=2.0)((2, 3)).tolist()
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float_arg(gain, name="gain")

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        return self.gain * np.eye(*shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


class _RandomInitializer(Initializer):
    """Base of the random initializers: a seed and a sampler of float64 values.

    Args:
        seed: a non-negative integer (same values on every call) or None
            (fresh values on every call).
    """

    _floating_only = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _check_seed(seed)

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._sample(np.random.default_rng(self.seed), shape)

    @abc.abstractmethod
    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Implemented by each subclass."""

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class RandomUniform(_RandomInitializer):
    """Uniform draws in ``[minval, maxval)``.

    Args:
        minval: lower bound.
        maxval: upper bound, not below `minval`.
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> values = RandomUniform(-1.0, 1.0, seed=0)((1000,))
        >>> bool(values.min() >= -1.0 and values.max() < 1.0)
        True
    """

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, *, seed: int | None = None
    ) -> None:
        self.minval = float_arg(minval, name="minval")
        self.maxval = float_arg(maxval, name="maxval")
        if self.minval > self.maxval:
            raise ValueError(
                "Expected `minval` to be at most `maxval`. "
                f"Received: minval={minval!r}, maxval={maxval!r}"
            )
        super().__init__(seed)

    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class RandomNormal(_RandomInitializer):
    """Normal draws with the given `mean` and `stddev`.

    Args:
        mean: mean of the draws.
        stddev: standard deviation, non-negative.
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> init = RandomNormal(stddev=1.0, seed=1)
        >>> bool((init((2,)) == init((2,))).all())
        True
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, *, seed: int | None = None) -> None:
        self.mean = float_arg(mean, name="mean")
        self.stddev = float_arg(stddev, name="stddev", non_negative=True)
        super().__init__(seed)

    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return self.mean + self.stddev * self._standard(rng, shape)

    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal draws, with those beyond 2 `stddev` of `mean` drawn again (as Keras).

    Args:
        mean: mean of the untruncated normal.
        stddev: its standard deviation, non-negative.
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> values = TruncatedNormal(stddev=1.0, seed=0)((10000,))
        >>> bool(abs(values).max() <= 2.0)
        True
    """

    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return _truncated_normal(rng, shape)


class VarianceScaling(_RandomInitializer):
    """Draws with variance ``scale / n``, ``n`` set by `mode` from `compute_fans`.

    `mode` ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` picks fan_in, fan_out or
    their mean (at least 1). ``"truncated_normal"`` (alias ``"normal"``) draws a
    normal truncated at 2 standard deviations whose standard deviation after
    truncation is ``sqrt(scale / n)``; ``"untruncated_normal"`` a plain normal;
    ``"uniform"`` draws in ``[-limit, limit)`` with ``limit = sqrt(3 * scale / n)``.

    Args:
        scale: positive scaling factor.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"``, ``"untruncated_normal"`` or
            ``"uniform"`` (case-insensitive; ``"normal"`` means truncated).
        seed: integer seed, or None for fresh values on every call.
        input_axes: with `output_axes`, the axes whose product is fan_in
            (Keras >= 3.16); written to the config only when set.
        output_axes: the axes whose product is fan_out.

    Example:
        >>> init = VarianceScaling(2.0, mode="fan_in", distribution="uniform", seed=0)
        >>> bool(abs(init((50, 10))).max() <= (3 * 2.0 / 50) ** 0.5)
        True
    """

    def __init__(
        self,
        scale: float = 1.0,
        *,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        real = isinstance(scale, numbers.Real) and not isinstance(scale, bool)
        if not (real and 0 < scale < math.inf):
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale!r}")
        modes = ["fan_in", "fan_out", "fan_avg"]
        if mode not in modes:
            raise ValueError(
                f"Invalid `mode` argument: expected one of {modes}. Received: mode={mode!r}"
            )
        distributions = ["truncated_normal", "untruncated_normal", "uniform"]
        name = distribution.lower() if isinstance(distribution, str) else distribution
        if name not in [*distributions, "normal"]:
            raise ValueError(
                f"Invalid `distribution` argument: expected one of {distributions}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale = float(scale)
        self.mode = mode
        self.distribution = "truncated_normal" if name == "normal" else name
        self.input_axes = _check_axes(input_axes, name="input_axes")
        self.output_axes = _check_axes(output_axes, name="output_axes")
        super().__init__(seed)

    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(
            shape, input_axes=self.input_axes, output_axes=self.output_axes
        )
        fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / max(1.0, fans[self.mode])
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return math.sqrt(variance) / _TRUNCATED_STDDEV * _truncated_normal(rng, shape)

    def _axes_config(self) -> dict[str, Any]:
        """Keras 3.15 always writes both keys, None when unset."""
        axes = {"input_axes": self.input_axes, "output_axes": self.output_axes}
        return {key: None if value is None else list(value) for key, value in axes.items()}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            **self._axes_config(),
        }


class _VarianceScalingPreset(VarianceScaling):
    """A `VarianceScaling` with fixed scale, mode and distribution (class attributes)."""

    _preset: tuple[float, str, str]

    def __init__(
        self,
        seed: int | None = None,
        *,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        scale, mode, distribution = self._preset
        super().__init__(
            scale,
            mode=mode,
            distribution=distribution,
            seed=seed,
            input_axes=input_axes,
            output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, **self._axes_config()}


class GlorotUniform(_VarianceScalingPreset):
    """Glorot (Xavier) uniform: in ``[-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> GlorotUniform(seed=0)((4, 4)).dtype
        dtype('float32')
    """

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_VarianceScalingPreset):
    """Glorot (Xavier) normal: truncated normal, ``stddev = sqrt(2 / (fan_in + fan_out))``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> GlorotNormal(seed=0)((4, 4)).shape
        (4, 4)
    """

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_VarianceScalingPreset):
    """He uniform: in ``[-limit, limit)``, ``limit = sqrt(6 / fan_in)``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> bool(abs(HeUniform(seed=0)((24, 4))).max() <= 0.5)
        True
    """

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_VarianceScalingPreset):
    """He normal: truncated normal, ``stddev = sqrt(2 / fan_in)``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> HeNormal(seed=0)((3, 3, 16, 8)).shape
        (3, 3, 16, 8)
    """

    _preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_VarianceScalingPreset):
    """LeCun uniform: in ``[-limit, limit)``, ``limit = sqrt(3 / fan_in)``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> bool(abs(LecunUniform(seed=0)((12, 4))).max() <= 0.5)
        True
    """

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_VarianceScalingPreset):
    """LeCun normal: truncated normal, ``stddev = sqrt(1 / fan_in)``.

    Args:
        seed: integer seed, or None for fresh values on every call.

    Example:
        >>> LecunNormal(seed=0)((5,)).shape
        (5,)
    """

    _preset = (1.0, "fan_in", "truncated_normal")


class Orthogonal(_RandomInitializer):
    """``gain`` times an orthogonal matrix, from the QR decomposition of normal draws.

    A shape of rank > 2 is treated as a ``(prod(shape[:-1]), shape[-1])``
    matrix and reshaped back. The rows are orthonormal when the matrix is
    wide, the columns when it is tall.

    Args:
        gain: a finite real factor.
        seed: integer seed, or None for fresh values on every call.

    Raises:
        ValueError: on call, for a shape of rank below 2.

    Example:
        >>> q = Orthogonal(seed=0)((3, 3), dtype="float64")
        >>> bool(np.allclose(q.T @ q, np.eye(3)))
        True
    """

    def __init__(self, gain: float = 1.0, *, seed: int | None = None) -> None:
        self.gain = float_arg(gain, name="gain")
        super().__init__(seed)

    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}



class STFT(Initializer):
    """Kernels of a short-time Fourier transform: the real or imaginary part of the DFT
    basis over a window's samples, as Keras 3's ``STFT`` initializer (``STFTInitializer``).

    For shape ``(frame_length, channels, bins)`` the value at ``(t, c, f)`` is
    ``cos(a)`` (``side="real"``) or ``sin(a)`` (``"imag"``) with ``a = -2 pi t f /
    (2 (bins - 1))``, times ``window[t] / scale``: the window of ``frame_length``
    samples, and ``scale`` its L2 norm (``"density"``), L1 norm (``"spectrum"``) or 1
    (None). In a ``Conv1DTranspose`` of one filter, ``(frame_length, 1, bins)`` is the
    kernel that sums ``bins`` frequency channels back into frames (an inverse STFT's
    synthesis). Values are computed in float64 and rounded once; Keras multiplies the
    angles by a float32 pi even for float64 kernels, so its values differ from these by up
    to about ``|a|`` times 6e-8 (2e-4 at 1024 samples). Every channel gets the same values
    (Keras returns one channel, ``(frame_length, 1, bins)``, whatever the shape asked).

    Args:
        side: ``"real"`` or ``"imag"``.
        window: a window name of ``scipy.signal.windows`` (:mod:`convt.windows`
            computes ``hann``, ``hamming``, ``blackman``, ``bartlett``, ``triang`` and
            ``boxcar``; others need SciPy), its values (``frame_length`` numbers), or None.
        scaling: ``"density"``, ``"spectrum"`` or None.
        periodic: a periodic window (for spectral analysis) rather than a symmetric one.

    Raises:
        ValueError: for an invalid argument; on call, for a shape of rank other than 3,
            fewer than 2 bins, or window values of another length.

    Example:
        >>> STFT("real", window=None)((4, 1, 3), dtype="float64")[:, 0].round(6).tolist()
        [[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -1.0, 1.0], [1.0, -0.0, -1.0]]
    """

    def __init__(
        self,
        side: str = "real",
        window: str | Sequence[float] | None = "hann",
        scaling: str | None = "density",
        periodic: bool = False,
    ) -> None:
        if side not in ("real", "imag"):
            raise ValueError(
                f"Expected `side` to be one of 'real', 'imag'. Received: side={side!r}")
        if scaling not in ("density", "spectrum", None):
            raise ValueError(
                "Expected `scaling` to be one of 'density', 'spectrum' or None. "
                f"Received: scaling={scaling!r}")
        if not isinstance(periodic, bool):
            raise ValueError(
                f"Expected `periodic` to be a boolean. Received: periodic={periodic!r}")
        self.side, self.scaling, self.periodic = side, scaling, periodic
        self.window = _check_window(window)

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) != 3 or shape[2] < 2:
            raise ValueError(
                "Expected `shape` to be (frame_length, channels, bins) with at least 2 bins. "
                f"Received: shape={shape}")
        frame_length, _, bins = shape
        angles = (-2.0 * np.pi / (2 * (bins - 1))) * np.outer(np.arange(frame_length),
                                                              np.arange(bins))
        basis = np.cos(angles) if self.side == "real" else np.sin(angles)
        window = self._window(frame_length)
        if window is not None:
            scale = {"density": np.sqrt(np.sum(window**2)), "spectrum": np.sum(np.abs(window)),
                     None: 1.0}[self.scaling]
            basis = basis * window[:, None] / scale
        return np.repeat(basis[:, None, :], shape[1], axis=1)  # a new array per call

    def _window(self, frame_length: int) -> np.ndarray | None:
        """The window's ``frame_length`` samples, or None for no window."""
        if self.window is None:
            return None
        if isinstance(self.window, str):
            return windows.get_window(self.window, frame_length, periodic=self.periodic)
        if len(self.window) != frame_length:
            raise ValueError(
                "Expected `window` values for each of the frame_length="
                f"{frame_length} samples. Received: {len(self.window)} values")
        return np.asarray(self.window, np.float64)

    def get_config(self) -> dict[str, Any]:
        return {"side": self.side, "window": self.window, "periodic": self.periodic,
                "scaling": self.scaling}


def _check_window(window: Any) -> str | list[float] | None:
    """A window name (checked), None, or its values as a list of finite floats (for configs)."""
    if window is None:
        return None
    if isinstance(window, str):
        windows.check_window_name(window)
        return window
    try:
        values = None if isinstance(window, bytes) else np.asarray(window)
    except ValueError:  # ragged nested sequences
        values = None
    if values is None or values.ndim != 1 or values.dtype.kind not in "iuf" or not (
            np.isfinite(values).all()):
        raise ValueError(
            "Expected `window` to be a window name, None, or a 1-D sequence of finite "
            f"numbers. Received: window={window!r}")
    return values.astype(np.float64).tolist()


_REGISTRY = Registry(
    kind="initializer",
    module="keras.initializers",
    also_accepted_modules=(  # where Keras 3.0.0-3.0.1 wrote its classes' own modules
        "keras.src.initializers.random_initializers",
        "keras.src.initializers.constant_initializers",
    ),
    objects=[
        Zeros, Ones, Constant, Identity, RandomUniform, RandomNormal, TruncatedNormal,
        VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
        LecunNormal, Orthogonal, STFT,
    ],
    aliases={  # Keras's older names, kept for compatibility
        "zero": Zeros,
        "one": Ones,
        "uniform": RandomUniform,
        "normal": RandomNormal,
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
        "STFTInitializer": STFT,
    },
)  # fmt: skip


serialize, deserialize = _REGISTRY.serialize, _REGISTRY.deserialize


class ArrayValues(Initializer):
    """The values of an array, for its shape only: what :func:`get` makes of an array.

    Keras 3's ``initializers.get`` accepts an array (or a backend tensor) and
    returns a function that gives its values cast to the requested dtype. This
    keeps a read-only copy: changing the array afterwards does not change what
    the initializer gives. Like Keras's function, it has no serialized form.

    Raises:
        TypeError: for an array that does not hold real numbers.

    Example:
        >>> init = ArrayValues(np.eye(2))
        >>> init((2, 2), dtype="int32")
        array([[1, 0],
               [0, 1]], dtype=int32)
        >>> init((3, 3))
        Traceback (most recent call last):
        ...
        ValueError: Expected `shape` to be (2, 2), the shape of the array given as the \
initializer. Received: shape=(3, 3)
    """

    def __init__(self, values: Any) -> None:
        if hasattr(values, "detach"):  # a torch tensor: it may require grad, be on a GPU or be
            tensor = values.detach().cpu()  # bfloat16, which NumPy lacks (float32 holds it)
            half = tensor.is_floating_point() and tensor.element_size() == 2
            values = (tensor.float() if half else tensor).numpy()
        array = real_array(values, "initializer", copy=True)
        array.flags.writeable = False
        self._values = array

    def _generate(self, shape: tuple[int, ...]) -> np.ndarray:
        if shape != self._values.shape:
            raise ValueError(
                f"Expected `shape` to be {self._values.shape}, the shape of the array given as "
                f"the initializer. Received: shape={shape}"
            )
        return self._values.copy()

    def __repr__(self) -> str:
        return f"ArrayValues(shape={self._values.shape}, dtype={self._values.dtype})"


def get(identifier: Any) -> Any:
    """Resolves an initializer as Keras 3's ``initializers.get``.

    None gives None; a name or a serialized dict the initializer it names; a
    class an instance; an instance or any other callable passes through; an
    array (NumPy, or a tensor of a framework) its values (:class:`ArrayValues`).

    Raises:
        ValueError: for anything else, or a name or dict that does not deserialize.

    Example:
        >>> get("ones")((2,))
        array([1., 1.], dtype=float32)
        >>> get(np.arange(3.0))
        ArrayValues(shape=(3,), dtype=float64)
    """
    if hasattr(identifier, "__array__") and not callable(identifier):
        return ArrayValues(identifier)
    return _REGISTRY.get(identifier)
