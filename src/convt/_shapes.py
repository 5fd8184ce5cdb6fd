"""The arithmetic of transposed convolution, in plain Python ints.

This module is the single owner of every shape fact in convt: argument
normalization and validation (with Keras's messages), the output length of each
spatial axis, and where Keras's output window sits inside the full scatter.
Layers, backends, tools and benchmarks ask it; nobody re-derives.

Geometry of one spatial axis. With input length ``i``, stride ``s``, kernel
size ``k`` and dilation ``d``, the effective kernel is ``K = (k - 1) * d + 1``
and the *full scatter* places input element ``n`` with tap ``j`` at index
``n * s + j * d``; it has length ``(i - 1) * s + K``. Keras's output is a
window of that scatter: it starts ``crop_left`` elements in and is
``output_length`` long. A window that runs past the end of the scatter reads
zeros (``crop_right < 0``).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from convt.errors import ArgumentTypeError

PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")
SPATIAL_RANKS = (1, 2, 3)
MAX_ELEMENTS = 2**40
"""No tensor that convt allocates may have more elements than this."""

_default_data_format: str | None = None
"""Set by :func:`set_image_data_format`, or read from Keras's ``keras.json`` on first use."""
_default_data_format_lock = threading.Lock()
if hasattr(os, "register_at_fork"):  # a child starts with one thread: no holder of the lock
    os.register_at_fork(after_in_child=_default_data_format_lock._at_fork_reinit)


def is_integer(value: object) -> bool:
    """True for Python and NumPy integers, False for bools and everything else."""
    if type(value) is int:  # the common case, without the slower abstract-class check
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer_value(value: object) -> int | None:
    """``value`` as an int when it is one: a Python or NumPy integer, or a 0-d integer
    array or tensor (not a bool); None otherwise."""
    if is_integer(value):
        return int(value)
    if getattr(value, "ndim", None) == 0 and "int" in str(getattr(value, "dtype", "")):
        return int(value)  # type: ignore[call-overload]
    return None


def normalize_tuple(
    value: int | Sequence[int], rank: int, name: str, *, allow_zero: bool = False
) -> tuple[int, ...]:
    """Turns an int or a sequence of ints into a tuple of ``rank`` ints.

    Raises:
        ValueError: if ``value`` is not an int or a sequence of ``rank`` ints,
            or holds a negative value (or zero when ``allow_zero`` is False);
            an :class:`ArgumentTypeError` (also a ``TypeError``) for strings.
    """
    expected = f"The `{name}` argument must be a tuple of {rank} integers"
    if isinstance(value, (str, bytes)) or (
        isinstance(value, (tuple, list)) and any(isinstance(v, (str, bytes)) for v in value)
    ):
        raise ArgumentTypeError(f"{expected}. Received: {name}={value!r}")
    single = integer_value(value)
    if single is not None:
        values = (single,) * rank
    elif not hasattr(value, "__iter__") or getattr(value, "ndim", None) == 0:
        raise ValueError(f"{expected}. Received: {name}={value!r}")
    else:
        items = [integer_value(v) for v in value]
        if len(items) != rank or None in items:
            raise ValueError(f"{expected}. Received: {name}={value!r}")
        values = tuple(items)
    lowest = 0 if allow_zero else 1
    if any(v < lowest for v in values):
        requirement = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{expected}, each `value {requirement}`. Received: {name}={value!r}"
        )
    return values


def normalize_padding(padding: str) -> str:
    """Lower-cases ``padding`` and checks it is ``"valid"`` or ``"same"``."""
    lowered = padding.lower() if isinstance(padding, str) else None
    if lowered not in PADDINGS:
        raise ValueError(
            "The `padding` argument must be one of 'valid', 'same' "
            f"(case-insensitive). Received: padding={padding!r}"
        )
    return lowered


def image_data_format() -> str:
    """The data format used when ``data_format=None``.

    Until :func:`set_image_data_format` is called, the ``"image_data_format"`` of Keras's
    configuration file (:mod:`convt.keras_config`), read once, else ``"channels_last"``.
    """
    global _default_data_format
    if _default_data_format is None:
        from convt import keras_config

        with _default_data_format_lock:
            if _default_data_format is None:
                configured = keras_config.configured_image_data_format()
                _default_data_format = configured or "channels_last"
    return _default_data_format


def set_image_data_format(data_format: str) -> None:
    """Sets the data format used when ``data_format=None``.

    Example:
        >>> import convt
        >>> convt.set_image_data_format("channels_last")
        >>> convt.image_data_format()
        'channels_last'
    """
    global _default_data_format
    checked = _checked_data_format(data_format)
    with _default_data_format_lock:
        _default_data_format = checked


def normalize_data_format(data_format: str | None) -> str:
    """Resolves ``None`` to the default and checks the value."""
    return image_data_format() if data_format is None else _checked_data_format(data_format)


def _checked_data_format(data_format: object) -> str:
    """``data_format`` lower-cased, when it is one of :data:`DATA_FORMATS`."""
    lowered = data_format.lower() if isinstance(data_format, str) else None
    if lowered not in DATA_FORMATS:
        raise ValueError(
            "The `data_format` argument must be one of 'channels_last', "
            f"'channels_first'. Received: data_format={data_format!r}"
        )
    return lowered


def normalize_rank(rank: int) -> int:
    """Checks that the number of spatial axes is 1, 2 or 3."""
    if not is_integer(rank) or rank not in SPATIAL_RANKS:
        raise ValueError(
            "Transposed convolution supports 1, 2 or 3 spatial dimensions. "
            f"Received: rank={rank!r}"
        )
    return int(rank)


@dataclass(frozen=True)
class AxisPlan:
    """Where Keras's output window sits in the full scatter of one axis."""

    input_length: int
    stride: int
    kernel_size: int
    dilation: int
    output_length: int
    crop_left: int

    @property
    def full_length(self) -> int:
        """Length of the full scatter, ``(i - 1) * s + (k - 1) * d + 1``."""
        if self.input_length == 0:
            return 0
        return (self.input_length - 1) * self.stride + self.effective_kernel

    @property
    def effective_kernel(self) -> int:
        return (self.kernel_size - 1) * self.dilation + 1

    @property
    def crop_right(self) -> int:
        """Elements cut from the right end; negative means zeros appended."""
        return self.full_length - self.crop_left - self.output_length

    @property
    def correlation_padding(self) -> tuple[int, int]:
        """(left, right) zero padding of the stride-dilated input for the same window.

        The output equals a stride-1 correlation of the input dilated by
        ``stride`` (``(i - 1) * stride + 1`` long), padded by these amounts,
        with the flipped kernel; the right amount may be negative.
        """
        left = self.effective_kernel - 1 - self.crop_left
        dilated_input = (self.input_length - 1) * self.stride + 1
        right = self.output_length + self.effective_kernel - 1 - dilated_input - left
        return left, right

    def tap_reach(
        self, tap: int, start: int, count: int, outputs: tuple[int, int] | None = None
    ) -> tuple[int, int, int]:
        """Which of the inputs ``start .. start + count - 1`` tap ``tap`` lands inside the window.

        Input ``m``'s tap ``tap`` lands at output ``m * stride + tap * dilation
        - crop_left``. Returns ``(first, stop, output)``: the inputs ``start +
        first`` up to ``start + stop`` (excluded) land inside Keras's window, at
        outputs ``output, output + stride, ...``; ``first == stop`` when none do.
        ``outputs=(first_output, stop_output)`` narrows the window to that range.

        Example:
            >>> plan = axis_plan(4, 3, 2, "same", None, 1)  # output 8, crop_left 0
            >>> plan.tap_reach(2, 0, 4)  # inputs 0..2 reach 2, 4, 6; input 3 would reach 8
            (0, 3, 2)
            >>> plan.tap_reach(2, 0, 4, outputs=(3, 8))  # only inputs 1 and 2 land in 3..7
            (1, 3, 4)
        """
        first_output, stop_output = outputs or (0, self.output_length)
        shift = tap * self.dilation - self.crop_left
        first = max(start, -((shift - first_output) // self.stride))
        stop = max(first, min(start + count, -((shift - stop_output) // self.stride)))
        return first - start, stop - start, first * self.stride + shift

    def phase_length(self, phase: int) -> int:
        """How many output indices ``o`` have ``o % stride == phase``."""
        return max(0, -(-(self.output_length - phase) // self.stride))

    def phase_taps(self, phase: int) -> tuple[tuple[int, int], ...]:
        """The taps that reach output indices ``o = m * stride + phase``.

        Returns ``(tap, offset)`` pairs: output ``m * stride + phase`` receives
        tap ``tap`` of input element ``m + offset`` (when it exists), because
        ``(m + offset) * stride + tap * dilation - crop_left`` equals it. Each
        phase is thus a stride-1 correlation; a phase may have no taps at all.
        """
        reach = phase + self.crop_left
        return tuple(
            (tap, (reach - tap * self.dilation) // self.stride)
            for tap in range(self.kernel_size)
            if (reach - tap * self.dilation) % self.stride == 0
        )

    def phase_segments(
        self, phase: int
    ) -> tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]:
        """The phase's outputs cut where the set of taps with an existing input changes.

        Returns ``(first, stop, taps)``: outputs ``m = first .. stop - 1`` of
        the phase (``o = m * stride + phase``) receive exactly the ``taps``
        (``(tap, offset)`` pairs of :meth:`phase_taps`), each from an input
        ``m + offset`` that exists. Segments that receive no tap are left out,
        so nothing that ``"same"`` crops or that falls outside the input is
        ever computed.

        Example:
            >>> plan = axis_plan(4, 3, 1, "same", None, 1)  # a 3-tap stride-1 "same" axis
            >>> plan.phase_segments(0)
            ((0, 1, ((0, 1), (1, 0))), (1, 3, ((0, 1), (1, 0), (2, -1))), (3, 4, ((1, 0), (2, -1))))
        """
        taps, length = self.phase_taps(phase), self.phase_length(phase)
        cuts = {0, length}
        for _, offset in taps:
            cuts |= {min(max(-offset, 0), length), min(max(self.input_length - offset, 0), length)}
        segments = []
        for first, stop in itertools.pairwise(sorted(cuts)):
            present = tuple(
                (tap, offset) for tap, offset in taps
                if first + offset >= 0 and stop + offset <= self.input_length
            )
            if present:
                segments.append((first, stop, present))
        return tuple(segments)

    def own_outputs(self, start: int, stop: int) -> tuple[int, int]:
        """``(first, stop)``: the outputs that no input outside ``start .. stop - 1`` reaches.

        Input ``start - 1`` reaches up to ``(start - 1) * stride + (k - 1) *
        dilation - crop_left``, input ``stop`` from ``stop * stride - crop_left``;
        the range may be empty (``first >= stop``).

        Example:
            >>> plan = axis_plan(8, 3, 2, "same", None, 1)  # output 16, crop_left 0
            >>> plan.own_outputs(0, 4), plan.own_outputs(4, 8)  # output 8 is shared
            ((0, 8), (9, 16))
        """
        first = 0
        if start > 0:
            first = (start - 1) * self.stride + self.effective_kernel - self.crop_left
        last = self.output_length
        if stop < self.input_length:
            last = stop * self.stride - self.crop_left
        return max(first, 0), min(last, self.output_length)

    def kernel_part(self, first_tap: int, stop_tap: int) -> AxisPlan:
        """The plan of taps ``first_tap .. stop_tap - 1`` taken as a kernel of their own.

        Their sum over every input is this axis's transposed convolution
        restricted to those taps: the part's scatter starts ``first_tap *
        dilation`` further right, so its window starts that much less far in
        (``crop_left`` may become negative: the window then starts before the
        part's scatter).

        Example:
            >>> plan = axis_plan(200, 16, 8, "same", None, 1)
            >>> plan.crop_left, plan.kernel_part(8, 16).crop_left
            (4, -4)
        """
        return replace(
            self,
            kernel_size=stop_tap - first_tap,
            crop_left=self.crop_left - first_tap * self.dilation,
        )

    def tap_groups(self) -> tuple[TapGroup, ...]:
        """The taps cut by stride-long rows of the full scatter.

        Tap ``j`` of input ``n`` lands at scatter index ``n * stride + j * dilation``,
        that is in row ``n + j * dilation // stride`` at column
        ``j * dilation % stride``. Consecutive taps landing in the same row
        form one group whose columns step by ``dilation``.
        """
        groups: list[TapGroup] = []
        for tap in range(self.kernel_size):
            row, column = divmod(tap * self.dilation, self.stride)
            if groups and groups[-1].row == row:
                last = groups[-1]
                groups[-1] = TapGroup(row, last.first_tap, last.taps + 1, last.first_column)
            else:
                groups.append(TapGroup(row, tap, 1, column))
        return tuple(groups)


@dataclass(frozen=True)
class TapGroup:
    """Taps ``first_tap ...`` (``taps`` of them) that land in one row of the scatter.

    They occupy columns ``first_column, first_column + dilation, ...`` of row
    ``input index + row`` (rows are ``stride`` long).
    """

    row: int
    first_tap: int
    taps: int
    first_column: int


def _padding_amounts(
    kernel_size: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """Keras's (left, right) padding of the stride-dilated input.

    The transposed convolution equals a stride-1 correlation of the input
    dilated by ``stride`` and padded by these amounts with the flipped kernel.
    """
    effective = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(effective, stride) - effective
        return effective - 1, effective - 1 + output_padding
    if output_padding is None:
        total = stride + effective - 2
    else:
        total = effective + effective % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, effective - 1)
    return left, total - left


def output_length(
    input_length: int | None,
    kernel_size: int,
    stride: int,
    padding: str,
    output_padding: int | None,
    dilation: int,
) -> int | None:
    """Keras's output length of one spatial axis (``None`` stays ``None``).

    An empty axis (``input_length == 0``) gives an empty output axis.
    """
    if input_length is None:
        return None
    if input_length == 0:
        return 0
    left, right = _padding_amounts(kernel_size, stride, dilation, padding, output_padding)
    effective = (kernel_size - 1) * dilation + 1
    return (input_length - 1) * stride + 1 + left + right - effective + 1


def axis_plan(
    input_length: int,
    kernel_size: int,
    stride: int,
    padding: str,
    output_padding: int | None,
    dilation: int,
) -> AxisPlan:
    """The output window of one axis inside its full scatter."""
    left, _ = _padding_amounts(kernel_size, stride, dilation, padding, output_padding)
    effective = (kernel_size - 1) * dilation + 1
    return AxisPlan(
        input_length=input_length,
        stride=stride,
        kernel_size=kernel_size,
        dilation=dilation,
        output_length=output_length(
            input_length, kernel_size, stride, padding, output_padding, dilation
        ),
        crop_left=effective - 1 - left,
    )


@dataclass(frozen=True)
class ConvTransposeArgs:
    """Normalized arguments of one transposed convolution of ``rank`` spatial axes."""

    rank: int
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    output_padding: tuple[int, ...] | None
    data_format: str
    dilation_rate: tuple[int, ...]

    @classmethod
    def normalize(
        cls,
        rank: int,
        kernel_size: int | Sequence[int],
        *,
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        output_padding: int | Sequence[int] | None = None,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
    ) -> ConvTransposeArgs:
        """Validates and normalizes the arguments, raising Keras's ValueErrors."""
        rank = normalize_rank(rank)
        if output_padding is not None:
            output_padding = normalize_tuple(
                output_padding, rank, "output_padding", allow_zero=True
            )
        return cls(
            rank=rank,
            kernel_size=normalize_tuple(kernel_size, rank, "kernel_size"),
            strides=normalize_tuple(strides, rank, "strides"),
            padding=normalize_padding(padding),
            output_padding=output_padding,
            data_format=normalize_data_format(data_format),
            dilation_rate=normalize_tuple(dilation_rate, rank, "dilation_rate"),
        )

    def check_layer_limits(self) -> None:
        """The extra restrictions the Keras layers (not the op) impose."""
        if self.output_padding is not None:
            for axis, (pad, stride) in enumerate(zip(self.output_padding, self.strides)):
                if pad >= stride:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` "
                        f"for all dimensions. At dimension {axis}, "
                        f"`output_padding` is {pad} but `strides` is {stride}. "
                        f"Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}"
                    )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with "
                f"`dilation_rate > 1`. Received: strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}"
            )

    def _axis_output_padding(self, axis: int) -> int | None:
        return None if self.output_padding is None else self.output_padding[axis]

    def axis_plans(self, input_spatial: Sequence[int]) -> tuple[AxisPlan, ...]:
        """One :class:`AxisPlan` per spatial axis, for known input lengths."""
        return tuple(
            axis_plan(
                length,
                self.kernel_size[axis],
                self.strides[axis],
                self.padding,
                self._axis_output_padding(axis),
                self.dilation_rate[axis],
            )
            for axis, length in enumerate(input_spatial)
        )

    def output_spatial(self, input_spatial: Sequence[int | None]) -> tuple[int | None, ...]:
        """Output lengths of the spatial axes; ``None`` stays ``None``."""
        return tuple(
            output_length(
                length,
                self.kernel_size[axis],
                self.strides[axis],
                self.padding,
                self._axis_output_padding(axis),
                self.dilation_rate[axis],
            )
            for axis, length in enumerate(input_spatial)
        )

    def split_shape(
        self, shape: Sequence[int | None], name: str = "inputs"
    ) -> tuple[int | None, tuple[int | None, ...], int | None]:
        """Splits an input shape into (batch, spatial, channels) by data format."""
        shape = check_shape(shape, self.rank + 2, name)
        if self.data_format == "channels_last":
            return shape[0], shape[1:-1], shape[-1]
        return shape[0], shape[2:], shape[1]

    def join_shape(
        self, batch: int | None, spatial: Sequence[int | None], channels: int | None
    ) -> tuple[int | None, ...]:
        """The inverse of :meth:`split_shape`."""
        if self.data_format == "channels_last":
            return (batch, *spatial, channels)
        return (batch, channels, *spatial)

    def output_shape(
        self, input_shape: Sequence[int | None], filters: int
    ) -> tuple[int | None, ...]:
        """The full output shape for ``input_shape`` and ``filters`` output channels."""
        batch, spatial, _ = self.split_shape(input_shape)
        shape = self.join_shape(batch, self.output_spatial(spatial), filters)
        check_size(shape, "output")
        return shape


def check_shape(shape: Sequence[int | None], ndim: int, name: str) -> tuple[int | None, ...]:
    """Checks a shape tuple: ``ndim`` entries, each a non-negative int or ``None``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(
            f"Expected `{name}` shape to be a tuple of {ndim} integers or None. "
            f"Received: {name}_shape={shape!r}"
        ) from None
    if len(dims) != ndim:
        raise ValueError(
            f"Expected `{name}` to have rank {ndim} (batch, spatial axes, "
            f"channels), found rank {len(dims)}. Received: {name}_shape={dims}"
        )
    if not all(d is None or (is_integer(d) and d >= 0) for d in dims):
        raise ValueError(
            f"Expected `{name}` shape entries to be non-negative integers or "
            f"None. Received: {name}_shape={dims}"
        )
    return tuple(None if d is None else int(d) for d in dims)


def check_size(shape: Sequence[int | None], name: str) -> None:
    """Refuses shapes whose element count or any axis is absurd, before anything is
    allocated (an axis too: with another of length 0, NumPy refuses it with an error that
    names nothing)."""
    known = [d for d in shape if d is not None]
    if math.prod(known) > MAX_ELEMENTS or max([0, *known]) > MAX_ELEMENTS:  # no default=: Dynamo
        raise ValueError(
            f"The `{name}` tensor would have more than {MAX_ELEMENTS} elements (or an axis "
            f"longer than that). Received: {name}_shape={tuple(shape)}"
        )


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None


PHYSICAL_MEMORY = physical_memory()
"""Read once at import: a system call in every op would break ``torch.compile``'s graph."""


def check_fits_in_memory(shape: Sequence[int], itemsize: int, name: str) -> None:
    """Refuses an array that does not fit twice in the machine's memory, before anything
    is allocated (NumPy and torch would raise MemoryError or RuntimeError, or start
    filling it until the system kills the process).

    Twice: a call holds what it makes and at least one more array of that size (a layer's
    activation or bias sum, a window or dtype copy on torch, the float64 draws of an
    initializer), so an output of more than half the memory cannot complete.

    Args:
        shape: the array's shape.
        itemsize: bytes per element of what will be allocated.
        name: what the array is (``"output"``, ``"kernel"``), for the message.

    Raises:
        ValueError: if twice its bytes exceed :data:`PHYSICAL_MEMORY`.

    Example:
        >>> check_fits_in_memory((2, 3), 4, "output")  # 24 bytes
    """
    needed, memory = math.prod(shape) * itemsize, PHYSICAL_MEMORY
    if memory is not None and 2 * needed > memory:
        raise ValueError(
            f"Expected {'an' if name[0] in 'aeiou' else 'a'} {name} that fits twice in this "
            f"machine's {memory} bytes of memory. Received: {name}_shape={tuple(shape)}, "
            f"{needed} bytes"
        )


def check_call_fits(itemsize: int, **shapes: Sequence[int]) -> None:
    """:func:`check_fits_in_memory` for each named array of one call, in the order given.

    Example:
        >>> check_call_fits(4, input=(1, 3, 2), kernel=(3, 4, 2), output=(1, 5, 4))
    """
    for name, shape in shapes.items():
        check_fits_in_memory(shape, itemsize, name)


def kernel_parts(
    kernel_shape: Sequence[int], rank: int
) -> tuple[tuple[int, ...], int, int]:
    """Splits a Keras transposed kernel shape into (kernel_size, filters, in_channels)."""
    dims = check_shape(kernel_shape, rank + 2, "kernel")
    if None in dims:
        raise ValueError(f"Expected a fully known kernel shape. Received: kernel_shape={dims}")
    return dims[:rank], dims[rank], dims[rank + 1]


def check_input_channels(
    input_channels: int | None, kernel_channels: int, data_format: str
) -> None:
    """Keras's check that the inputs carry as many channels as the kernel expects."""
    if input_channels is not None and input_channels != kernel_channels:
        raise ValueError(
            "The number of input channels must match the kernel's input "
            f"channels. Received: input channels={input_channels}, kernel "
            f"input channels={kernel_channels}, data_format='{data_format}'."
        )


def plan_conv_transpose(
    input_shape: Sequence[int | None],
    kernel_shape: Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    output_padding: int | Sequence[int] | None = None,
    data_format: str | None = None,
    dilation_rate: int | Sequence[int] = 1,
) -> tuple[ConvTransposeArgs, tuple[int | None, ...]]:
    """Validates one op call and returns its normalized arguments and output shape."""
    kernel_shape = _shape_tuple(kernel_shape, "kernel")
    input_ndim = len(_shape_tuple(input_shape, "inputs"))
    if input_ndim - 2 not in SPATIAL_RANKS:
        raise ValueError(
            "Expected `inputs` of rank 3, 4 or 5 (batch, 1 to 3 spatial axes, "
            f"channels). Received: inputs.shape={tuple(input_shape)}"
        )
    if len(kernel_shape) != input_ndim:
        raise ValueError(
            f"Expected `kernel` to have the rank of `inputs` ({input_ndim}), laid "
            "out as (*kernel_size, filters, in_channels). Received: "
            f"kernel.shape={kernel_shape}"
        )
    rank = input_ndim - 2
    kernel_size, filters, kernel_channels = kernel_parts(kernel_shape, rank)
    args = ConvTransposeArgs.normalize(
        rank,
        kernel_size,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
    )
    _, _, channels = args.split_shape(input_shape)
    check_input_channels(channels, kernel_channels, args.data_format)
    return args, args.output_shape(input_shape, filters)


def _shape_tuple(shape: Any, name: str) -> tuple[Any, ...]:
    """``tuple(shape)``, or a ValueError naming the argument when it is not a sequence."""
    try:
        return tuple(shape)
    except TypeError:
        raise ValueError(
            f"Expected `{name}` shape to be a sequence of dimensions. Received: "
            f"{name}.shape={shape!r}"
        ) from None


def remembered_plan(
    input_shape: Sequence[int | None], kernel_shape: Sequence[int], **arguments: Any
) -> tuple[ConvTransposeArgs, tuple[int | None, ...]]:
    """:func:`plan_conv_transpose`, remembered across calls with the same plain arguments.

    A layer called in a loop asks the same question every call (13 of the 37
    us of a tiny call). Only exact ints, strings, None and tuples of ints are
    remembered: a float or a bool equals an int as a key and would reuse a
    valid plan instead of raising, so other types are planned afresh.
    ``data_format=None`` is resolved first, as the default can change. The
    arguments are remembered in the order given (a call site gives one order).
    """
    if arguments.get("data_format") is None:
        arguments["data_format"] = image_data_format()
    input_shape, kernel_shape = tuple(input_shape), tuple(kernel_shape)
    if are_plain(input_shape + kernel_shape, arguments.values()):
        return _plan_memory(input_shape, kernel_shape, tuple(arguments.items()))
    return plan_conv_transpose(input_shape, kernel_shape, **arguments)


_INT = frozenset((int,))
_PLAIN_SCALARS = frozenset((int, str, type(None)))


def are_plain(dimensions: tuple[Any, ...], arguments: Iterable[Any]) -> bool:
    """Exact ints as dimensions; exact ints, strings, None or tuples of ints as arguments."""
    if not _INT.issuperset(map(type, dimensions)):
        return False
    for value in arguments:
        if type(value) is tuple:
            if not _INT.issuperset(map(type, value)):
                return False
        elif type(value) not in _PLAIN_SCALARS:
            return False
    return True


@functools.lru_cache(maxsize=1024)
def _plan_memory(
    input_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    arguments: tuple[tuple[str, Any], ...],
) -> tuple[ConvTransposeArgs, tuple[int | None, ...]]:
    return plan_conv_transpose(input_shape, kernel_shape, **dict(arguments))


def conv_transpose_output_shape(
    input_shape: Sequence[int | None],
    kernel_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    output_padding: int | Sequence[int] | None = None,
    data_format: str | None = None,
    dilation_rate: int | Sequence[int] = 1,
) -> tuple[int | None, ...]:
    """Output shape of :func:`convt.ops.conv_transpose`, in plain ints.

    Args:
        input_shape: ``(batch, *spatial, channels)`` for ``"channels_last"`` or
            ``(batch, channels, *spatial)``; any entry may be ``None``.
        kernel_shape: ``(*kernel_size, filters, in_channels)``.
        strides: int or tuple of ints, the stride of each spatial axis.
        padding: ``"valid"`` or ``"same"``.
        output_padding: None, an int or a tuple of ints.
        data_format: ``"channels_last"``, ``"channels_first"`` or None.
        dilation_rate: int or tuple of ints.

    Returns:
        The output shape; unknown (``None``) input entries stay ``None``.

    Example:
        >>> conv_transpose_output_shape((4, 10, 8, 128), (2, 2, 32, 128), strides=2)
        (4, 20, 16, 32)
    """
    _, shape = plan_conv_transpose(
        input_shape,
        kernel_shape,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
    )
    return shape
