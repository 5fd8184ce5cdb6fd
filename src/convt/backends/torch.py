"""The torch kernels of transposed convolution: torch's operator or a GEMM, Keras's window.

``torch.nn.functional.conv_transpose{1,2,3}d`` computes the same scatter as
Keras (input element ``n`` and tap ``j`` land at ``n * s + j * d``, no kernel
flip); only the window differs. Per axis, Keras's window starts ``crop_left``
into the full scatter and ends ``crop_right`` before its end (negative: zeros
appended). torch crops ``padding`` on both sides and appends ``output_padding``
(``< max(stride, dilation)``) on the right, so each axis is given
``padding = crop_left`` and, when ``crop_right < crop_left``, the difference as
``output_padding``; what torch cannot express is finished here, a surplus on
the right by a slice (a view, no copy) and a long zero tail by ``pad``. In
inference on the CPU, large strided channels_first inputs reach the operator in
channels_last memory, where oneDNN was measured faster (:func:`runs_channels_last`),
and strided calls with few filters are one stride-1 convolution whose output
channels are the output's phases (:func:`runs_phases`). 1-D and 2-D calls with
few filters on inputs small for their channels, in training too, are one GEMM
summed into place by torch's col2im (:func:`runs_fold`).
Single 3-D float32 samples that torch would give its slow native kernels, and
strided 2-D and 3-D inputs that it gives oneDNN on channels_first memory, go to
oneDNN's transposed convolution directly instead (:func:`runs_onednn`), in
channels_last memory; oneDNN crops each side by its own amount, so computes
Keras's window itself.

Where torch's operator is slow for the Keras kernel layout (see
:func:`gemm_method`: ``kernel == stride`` upsampling, long-kernel 1-D), the
full scatter is computed instead as one GEMM on the Keras kernel read as a
``(taps * filters, in)`` matrix, and the same window is taken of it.

Everything stays on the tensors' device with no host synchronisation, and
autograd differentiates through it. float16 and bfloat16 are computed in
float32 on the CPU (rounded once at the end, as the NumPy backend does) and
natively on accelerators.

This module imports torch; :mod:`convt.ops` imports it only when a torch
tensor is passed.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from convt._arrays import real_array
from convt._shapes import (
    AxisPlan,
    ConvTransposeArgs,
    are_plain,
    check_call_fits,
    image_data_format,
    plan_conv_transpose,
    remembered_plan,
)

_FUNCTIONS = {
    1: F.conv_transpose1d,
    2: F.conv_transpose2d,
    3: F.conv_transpose3d,
}
_LOW_PRECISION = (torch.float16, torch.bfloat16)
_FULL_PRECISION = (torch.float32, torch.float64)
_FLOATS = (*_LOW_PRECISION, *_FULL_PRECISION)


@dataclass(frozen=True)
class TorchWindow:
    """How one axis's Keras window is asked of torch, and what is left to do."""

    padding: int
    output_padding: int
    keep: int
    """Output elements kept from the left of torch's result."""
    zeros: int
    """Zeros appended on the right after that."""


def torch_window(plan: AxisPlan) -> TorchWindow:
    """Splits an axis's crops into torch's ``padding``/``output_padding`` and the rest.

    Example:
        >>> from convt._shapes import axis_plan
        >>> torch_window(axis_plan(4, 3, 2, "same", None, 1))  # Keras cuts 0 left, 1 right
        TorchWindow(padding=0, output_padding=0, keep=8, zeros=0)
    """
    padding = plan.crop_left
    output_padding = min(max(padding - plan.crop_right, 0), max(plan.stride, plan.dilation) - 1)
    produced = plan.full_length - 2 * padding + output_padding
    keep = min(produced, plan.output_length)
    return TorchWindow(padding, output_padding, keep, plan.output_length - keep)


# The Keras kernel's axes in torch's order ``(in, filters, *kernel_size)``, per spatial rank.
_TORCH_ORDERS = {rank: (rank + 1, rank, *range(rank)) for rank in (1, 2, 3)}


def to_torch_kernel(kernel: torch.Tensor, rank: int) -> torch.Tensor:
    """Keras's ``(*kernel_size, filters, in)`` as torch's ``(in, filters, *kernel_size)``."""
    return kernel.permute(*_TORCH_ORDERS[rank])


def from_torch_kernel(weight: torch.Tensor, rank: int) -> torch.Tensor:
    """torch's ``(in, filters, *kernel_size)`` as Keras's ``(*kernel_size, filters, in)``."""
    return weight.permute(*range(2, rank + 2), 1, 0)


def as_tensors(inputs: Any, kernel: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both arguments as dense tensors; a non-tensor goes to the device of the tensor one.

    A non-tensor is read as NumPy would (any strides or byte order).

    Raises:
        TypeError: for arguments that are not real numbers, or sparse tensors.
        ValueError: for tensors on two devices.
    """
    if not isinstance(inputs, torch.Tensor):
        inputs = _host_tensor(inputs, "inputs").to(kernel.device)
    if not isinstance(kernel, torch.Tensor):
        kernel = _host_tensor(kernel, "kernel").to(inputs.device)
    for name, tensor in (("inputs", inputs), ("kernel", kernel)):
        if tensor.layout != torch.strided:
            raise TypeError(
                f"Expected `{name}` to be a dense tensor. Received: {name}.layout={tensor.layout}"
            )
    if inputs.device != kernel.device:
        raise ValueError(
            "Expected `inputs` and `kernel` on the same device. "
            f"Received: inputs.device={inputs.device}, kernel.device={kernel.device}"
        )
    return inputs, kernel


def _host_tensor(value: Any, name: str) -> torch.Tensor:
    """``value`` read by NumPy, as a CPU tensor; TypeError when it is not real numbers
    that torch holds (it has no long double)."""
    array = np.ascontiguousarray(real_array(value, name))
    if array.dtype.itemsize > 8:
        raise TypeError(
            f"Expected `{name}` of a dtype torch holds (float16, float32, float64, int or "
            f"bool). Received: {name}.dtype={array.dtype}"
        )
    if array.dtype.byteorder not in "=|" or any(step < 0 for step in array.strides):
        # NumPy calls a negative step along a length-1 axis contiguous; torch refuses it
        array = np.array(array, dtype=array.dtype.newbyteorder("="), order="C")
    return torch.from_numpy(array)


def compute_dtypes(inputs: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(dtype computed in, dtype returned), as the NumPy backend decides.

    Raises:
        TypeError: for complex tensors and float8 types.
    """
    if inputs.dtype == kernel.dtype and inputs.dtype in _FULL_PRECISION:  # without promotion
        return inputs.dtype, inputs.dtype
    try:
        result = torch.result_type(inputs, kernel)
    except RuntimeError:  # float8 types, which torch does not promote
        result = None
    if result is not None and not result.is_floating_point:
        if result.is_complex:
            raise TypeError(
                "Expected real-valued `inputs` and `kernel` (float, int or bool). "
                f"Received: inputs.dtype={inputs.dtype}, kernel.dtype={kernel.dtype}"
            )
        return torch.float32, torch.float32
    if result not in _FLOATS:
        raise TypeError(
            "Expected `inputs` and `kernel` in float16, bfloat16, float32 or float64 (or "
            f"integers). Received: inputs.dtype={inputs.dtype}, kernel.dtype={kernel.dtype}"
        )
    if result in _LOW_PRECISION and inputs.device.type == "cpu":
        return torch.float32, result
    return result, result


def op(inputs: Any, kernel: Any, strides: Any, padding: Any, output_padding: Any,
       data_format: str | None, dilation_rate: Any) -> torch.Tensor:
    """:func:`convt.ops.conv_transpose` when either argument is a tensor.

    Args:
        inputs: the input, a tensor or an array (moved to the other's device).
        kernel: ``(*kernel_size, filters, in_channels)``, a tensor or an array.
        strides, padding, output_padding, data_format, dilation_rate: as the op
            takes them (validated here).

    Returns:
        The output, on the tensors' device.

    Example:
        >>> import torch
        >>> op(torch.ones(1, 3, 1), torch.ones(3, 1, 1), 2, "valid", None, None, 1)[0, :, 0]
        tensor([1., 1., 2., 1., 2., 1., 1.])
    """
    if data_format is None:  # the default can change between calls
        data_format = image_data_format()
    arguments = (strides, padding, output_padding, data_format, dilation_rate)
    # only plain arguments are remembered (see :func:`convt._shapes.remembered_plan`:
    # ``2.0`` or ``True`` would find the plan of ``2`` or ``1`` instead of raising)
    key = _tensors_key(inputs, kernel, arguments) if are_plain((), arguments) else None
    call = _CALLS.get(key) if key is not None else None
    if call is None:
        inputs, kernel = as_tensors(inputs, kernel)
        args, _ = plan(tuple(inputs.shape), tuple(kernel.shape), strides=strides,
                       padding=padding, output_padding=output_padding,
                       data_format=data_format, dilation_rate=dilation_rate)
        call = _remember(key, _prepare(inputs, kernel, args))
    return _compute(inputs, kernel, call)


def conv_transpose(
    inputs: torch.Tensor, kernel: torch.Tensor, args: ConvTransposeArgs
) -> torch.Tensor:
    """Transposed convolution of already validated tensors, on their device.

    Args:
        inputs: tensor laid out as ``args.data_format`` says.
        kernel: ``(*kernel_size, filters, in_channels)``.
        args: the normalized arguments; shapes were checked by ``_shapes``.

    Returns:
        The output in ``args.data_format``, on the inputs' device.

    Raises:
        ValueError: for an input, kernel or output in the host's memory that does not
            fit twice in it, or arguments beyond torch's 32-bit limits.

    Example:
        >>> import torch
        >>> from convt._shapes import ConvTransposeArgs
        >>> args = ConvTransposeArgs.normalize(1, 3, strides=2)
        >>> conv_transpose(torch.ones(1, 3, 1), torch.ones(3, 1, 1), args)[0, :, 0]
        tensor([1., 1., 2., 1., 2., 1., 1.])
    """
    key = _tensors_key(inputs, kernel, (args,))
    call = _CALLS.get(key) if key is not None else None
    if call is None:
        call = _remember(key, _prepare(inputs, kernel, args))
    return _compute(inputs, kernel, call)


@dataclass(frozen=True)
class _Call:
    """What a call's shapes, dtypes and device decide, made once per such signature: the
    arguments' checks passed, and how the call is computed."""

    launch: Launch
    work_dtype: torch.dtype
    out_dtype: torch.dtype
    channels_last: bool
    empty: bool
    """Nothing reaches the output (an empty input, kernel or window)."""
    route: OperatorRoute | None
    """:func:`operator_route`'s, for the ``"operator"`` method."""


# A training loop makes the same call every step, and its checks and decisions (the
# arguments' plan, the dtypes, the launch, the memory check, the operator's route) are
# made once per signature. Made every call, they took 70-95 us of a 1 ms call before
# torch's operator started, where 17-25 us when timed back to back: the operator evicts
# Python's and torch's code and objects from the caches between calls (``dilated``'s
# forward pass 1.10-1.12x torch's time, remembered 0.98-1.04x; docs/architecture.md, "The
# torch backend"). Remembered by exact signature; cleared when full.
_CALLS: dict[tuple[Any, ...], _Call] = {}
CALLS_REMEMBERED = 1024
_PLAIN_TENSORS = frozenset((torch.Tensor, torch.nn.Parameter))


def _tensors_key(inputs: Any, kernel: Any, arguments: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The signature a call's :class:`_Call` is remembered by: everything its checks and
    decisions read. None for a call that is decided afresh: arrays, tensor subclasses
    (their shapes or devices may be computed), and calls that ``torch.compile`` traces
    (Dynamo does not trace the memo) or functorch transforms (see :func:`_vmapping`)."""
    if (type(inputs) not in _PLAIN_TENSORS or type(kernel) not in _PLAIN_TENSORS
            or torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()):
        return None
    return (*arguments, inputs.shape, kernel.shape, inputs.dtype, kernel.dtype,
            inputs.device, kernel.device, inputs.layout, kernel.layout, inputs.stride(),
            torch.is_grad_enabled() and (inputs.requires_grad or kernel.requires_grad),
            torch._C._get_mkldnn_enabled())


def _remember(key: tuple[Any, ...] | None, call: _Call) -> _Call:
    if key is not None:
        if len(_CALLS) >= CALLS_REMEMBERED:
            _CALLS.clear()
        _CALLS[key] = call
    return call


def _prepare(inputs: torch.Tensor, kernel: torch.Tensor, args: ConvTransposeArgs) -> _Call:
    """Checks a call and decides how it is computed (see :func:`conv_transpose`)."""
    work_dtype, out_dtype = compute_dtypes(inputs, kernel)
    channels_last = args.data_format == "channels_last"
    spatial = inputs.shape[1:-1] if channels_last else inputs.shape[2:]
    launch = _unless_compiling(_launch_memory, _launch)(args, spatial)
    if inputs.is_cpu:  # what the host must hold (a device checks its own memory)
        _check_fits(inputs.shape, kernel.shape, launch, channels_last, work_dtype)
    empty = inputs.numel() == 0 or kernel.numel() == 0 or 0 in launch.output_spatial
    route = None
    if launch.method == "operator" and not empty:
        x = _as_dtype(inputs, work_dtype)
        route = operator_route(x.movedim(-1, 1) if channels_last else x,
                               _as_dtype(kernel, work_dtype), launch, channels_last)
    return _Call(launch, work_dtype, out_dtype, channels_last, empty, route)


def _compute(inputs: torch.Tensor, kernel: torch.Tensor, call: _Call) -> torch.Tensor:
    """The output of a call :func:`_prepare` decided."""
    x, kernel = _as_dtype(inputs, call.work_dtype), _as_dtype(kernel, call.work_dtype)
    if call.empty:
        return _zeros(x, kernel, call.launch, call.channels_last).to(call.out_dtype)
    if call.route is not None:
        out = _operator(x, kernel, call.launch, call.channels_last, call.route)
    else:
        out = _METHODS[call.launch.method](x, kernel, call.launch, call.channels_last)
    return _as_dtype(out, call.out_dtype)


def _check_fits(input_shape: torch.Size, kernel_shape: torch.Size, launch: Launch,
                channels_last: bool, dtype: torch.dtype) -> None:
    """Refuses an input or kernel (either may be an expanded view of far more elements than
    it holds, which some routes copy) or an output larger than the host's memory can take:
    torch would fail to allocate it, or overflow its element count."""
    spatial, batch, filters = launch.output_spatial, input_shape[0], kernel_shape[-2]
    output = (batch, *spatial, filters) if channels_last else (batch, filters, *spatial)
    check_call_fits(dtype.itemsize, input=input_shape, kernel=kernel_shape, output=output)


def _zeros(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
           channels_last: bool) -> torch.Tensor:
    """The output when nothing reaches it (an empty input, kernel or window): zeros that
    autograd still links to both arguments, with zero gradients, as torch's operator does.

    The link is a sum over no element of each, which is exactly zero whatever they hold.
    """
    filters = kernel.shape[launch.rank]
    shape = (x.shape[0], *launch.output_spatial, filters) if channels_last else (
        x.shape[0], filters, *launch.output_spatial)
    nothing = x.reshape(-1)[:0].sum() + kernel.reshape(-1)[:0].sum()
    return x.new_zeros(shape) + nothing


def _as_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor.to(dtype)``, without the call when it is already so (a small layer's time)."""
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


@dataclass(frozen=True)
class Launch:
    """How one input shape is computed, and the window of the result still to take."""

    rank: int
    method: str
    """``"operator"`` (torch's own), ``"tiles"`` (kernel == stride), ``"rows"`` (1-D) or
    ``"phases"`` (:func:`_phases`)."""
    output_spatial: tuple[int, ...]
    produced: tuple[int, ...]
    """The length of each spatial axis that the method computes, before the window."""
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    keep: tuple[slice, ...] | None
    """Index of the computed result (all axes) that is in Keras's window; None: all of it."""
    zeros: tuple[int, ...] | None
    """Pads (torch's order, last axis first) of zeros after that; None when there are none."""
    crops: tuple[tuple[int, int], ...]
    """Keras's ``(left, right)`` crop of each axis's full scatter; negative: zeros appended."""
    phases: Launch | None = None
    """The launch of :func:`_phases` for the same input, where it could compute it."""
    onednn: bool = False
    """Whether :func:`runs_onednn` may take it: 2-D with a stride above 1, or 3-D, and a
    right crop at most ``stride - 1`` shorter than the left one."""


# From this stride on, a 1-D kernel that is a whole number of strides long is computed as
# one GEMM against the Keras kernel plus an overlap-add of stride-long rows.
ROWS_MIN_STRIDE = 4


def gemm_method(args: ConvTransposeArgs) -> str | None:
    """The GEMM formulation that computes these arguments, if one beats torch's operator.

    ``"tiles"`` when every kernel is as long as its stride (the taps of
    neighbouring inputs never overlap: a GEMM and a depth-to-space), in 1-D,
    and in 2-D on channels_first inputs; ``"rows"`` for one axis whose kernel
    is ``q >= 1`` strides long, with a stride of at least ``ROWS_MIN_STRIDE``
    (a GEMM and ``q`` shifted adds). Both read the Keras kernel as a
    ``(taps * filters, in)`` matrix, without the relayout torch's operator
    needs. Where torch's operator was measured as fast or faster (2-D
    channels_last inputs, which it runs in its channels_last memory format,
    and 3-D) it keeps the call. The choice depends on the arguments alone, not
    on the input's length, so a layer can lay its kernel out for it.

    Example:
        >>> gemm_method(ConvTransposeArgs.normalize(2, 2, strides=2, data_format="channels_first"))
        'tiles'
        >>> gemm_method(ConvTransposeArgs.normalize(2, 2, strides=2)) is None  # channels_last
        True
        >>> gemm_method(ConvTransposeArgs.normalize(1, 16, strides=8, padding="same"))
        'rows'
        >>> gemm_method(ConvTransposeArgs.normalize(1, 5, strides=2, padding="same")) is None
        True
    """
    axes = list(zip(args.kernel_size, args.strides, args.dilation_rate))
    if any(dilation != 1 and kernel > 1 for kernel, _, dilation in axes):
        return None
    tiles = all(k == s for k, s, _ in axes) and any(s > 1 for _, s, _ in axes)
    if tiles and (args.rank == 1 or (args.rank == 2 and args.data_format == "channels_first")):
        return "tiles"
    (kernel, stride, _), *others = axes
    if not others and stride >= ROWS_MIN_STRIDE and kernel % stride == 0:
        return "rows"
    return None


def kernel_layout(args: ConvTransposeArgs) -> tuple[int, ...]:
    """The order in memory of the Keras kernel's axes that these arguments read without a copy.

    torch's operator wants ``(in, filters, *kernel_size)`` contiguous; the GEMM
    methods read Keras's own ``(*kernel_size, filters, in)``. A kernel of
    Keras's shape stored in this order (see :func:`laid_out`) is passed as is;
    any other layout gives the same values after a relayout on every call.
    On an input in channels_last memory torch's kernels want the weight in
    channels_last memory, and a training step copies it so once
    (:func:`_weight_copied`): storing it so was no faster within the
    noise, and the copy would move to the calls that run channels_first memory.

    Example:
        >>> kernel_layout(ConvTransposeArgs.normalize(2, 3, strides=2))
        (3, 2, 0, 1)
        >>> kernel_layout(ConvTransposeArgs.normalize(1, 4, strides=4))
        (0, 1, 2)
    """
    if gemm_method(args) is not None:
        return tuple(range(args.rank + 2))
    return _TORCH_ORDERS[args.rank]


def laid_out(tensor: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """The same values and shape, with the axes stored in memory in ``order`` (outermost first).

    Example:
        >>> import torch
        >>> laid_out(torch.zeros(2, 3, 4), (2, 0, 1)).stride()
        (3, 1, 6)
    """
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return tensor.permute(order).contiguous().permute(inverse)


TORCH_MAX_ARGUMENT = 2**31 - 1
"""torch's convolutions keep strides, dilations and paddings in 32-bit integers."""


def _launch(args: ConvTransposeArgs, spatial: tuple[int, ...]) -> Launch:
    """How to compute one input shape.

    Raises:
        ValueError: for a stride, dilation or crop beyond :data:`TORCH_MAX_ARGUMENT`
            (torch would overflow it; the NumPy backend computes such calls).
    """
    plans = args.axis_plans(spatial)
    crops = tuple(max(abs(p.crop_left), abs(p.crop_right)) for p in plans)
    if max(*args.strides, *args.dilation_rate, *crops) > TORCH_MAX_ARGUMENT:
        raise ValueError(
            "Expected strides, dilation rates and crops of at most 2**31 - 1 on the torch "
            "backend, whose convolutions keep them in 32-bit integers. Received: "
            f"strides={args.strides}, dilation_rate={args.dilation_rate}, crops={crops}"
        )
    method = gemm_method(args)
    channels_last = args.data_format == "channels_last"
    if method is not None:  # the full scatter is computed
        produced = [p.full_length for p in plans]
        return _window_launch(method, plans, produced, channels_last)
    windows = [torch_window(p) for p in plans]
    produced = [p.full_length - 2 * w.padding + w.output_padding
                for p, w in zip(plans, windows)]
    launch = _window_launch("operator", plans, produced, channels_last, windows)
    launch = replace(launch, onednn=(len(plans) == 3 or (
        len(plans) == 2 and max(launch.stride) > 1)) and all(
        p.crop_left - p.crop_right < p.stride for p in plans))
    if (len(plans) == 1 or max(launch.stride) == 1 or max(launch.dilation) > 1
            or any(p.kernel_size < p.stride for p in plans)):
        return launch
    taps = [-(-p.kernel_size // p.stride) for p in plans]
    produced = [(n + q - 1) * p.stride for n, q, p in zip(spatial, taps, plans)]
    phases = _window_launch("phases", plans, produced, channels_last)
    return replace(launch, phases=replace(phases, padding=tuple(q - 1 for q in taps)))


def _window_launch(method: str, plans: tuple[AxisPlan, ...], produced: list[int],
                   channels_last: bool, windows: list[TorchWindow] | None = None) -> Launch:
    """The launch of ``method``, which computes ``produced`` elements per axis.

    Given torch's ``windows``, these start at Keras's window; otherwise they
    are the full scatter from its first element on, and may end early.
    """
    if windows is None:
        windows = [TorchWindow(0, 0, *_window_of(p, n)) for p, n in zip(plans, produced)]
        start = [p.crop_left for p in plans]
    else:
        start = [0] * len(plans)
    keep = tuple(slice(a, a + w.keep) for a, w in zip(start, windows))
    zeros = [w.zeros for w in windows]
    batch_and_channels = (slice(None),) * (1 if channels_last else 2)
    return Launch(
        rank=len(plans),
        method=method,
        output_spatial=tuple(p.output_length for p in plans),
        produced=tuple(produced),
        kernel_size=tuple(p.kernel_size for p in plans),
        stride=tuple(p.stride for p in plans),
        padding=tuple(w.padding for w in windows),
        output_padding=tuple(w.output_padding for w in windows),
        dilation=tuple(p.dilation for p in plans),
        keep=None if [(k.start, k.stop) for k in keep] == [(0, n) for n in produced]
        else batch_and_channels + keep,
        zeros=tuple([0, 0] * channels_last + [n for z in reversed(zeros) for n in (0, z)])
        if any(zeros) else None,
        crops=tuple((p.crop_left, p.crop_right) for p in plans),
    )


def _window_of(plan: AxisPlan, produced: int) -> tuple[int, int]:
    """(kept, zeros appended) of Keras's window on the first ``produced`` elements of an
    axis's full scatter."""
    keep = min(produced - plan.crop_left, plan.output_length)
    return keep, plan.output_length - keep


def _keras_window(out: torch.Tensor, launch: Launch) -> torch.Tensor:
    """The computed result cut to Keras's window (a view) and zero-extended where it ends."""
    if launch.keep is not None:
        out = out[launch.keep]
    if launch.zeros is not None:
        out = F.pad(out, launch.zeros)
    return out


# oneDNN's channels_first transposed convolution on the CPU was measured 1.1-4x
# slower than its channels_last one in inference on large strided inputs
# (128 x 128 pixels or 32^3 voxels and up, and 3-D images of 2^19 elements,
# channels included, such as 16^3 voxels of 128 channels); with stride 1 it was
# faster, and with few filters (an RGB output layer) the call is too cheap to pay
# for converting the input (docs/architecture.md, "The torch backend").
CHANNELS_LAST_MIN_PIXELS = 128 * 128
CHANNELS_LAST_MIN_VOLUME_ELEMENTS = 2**19
CHANNELS_LAST_MIN_FILTERS = 16
_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}
_CONVOLUTIONS = {2: F.conv2d, 3: F.conv3d}


def runs_channels_last(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether a channels_first input goes to torch's operator in channels_last memory.

    Only in inference (no gradient recorded): in training the step was
    measured 0.48-1.19x, slower where the output's gradient arrives
    channels_first and has to be converted too. The values and shape are the
    same; the output keeps the channels_last strides, as torch's own
    convolution does when given a channels_last input.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 3, strides=2, data_format="channels_first")
        >>> launch = _launch(args, (128, 128))
        >>> runs_channels_last(torch.zeros(1, 8, 128, 128), torch.zeros(3, 3, 32, 8), launch)
        True
        >>> runs_channels_last(torch.zeros(1, 8, 128, 128), torch.zeros(3, 3, 3, 8), launch)
        False
    """
    return (max(launch.stride) > 1 and launch.rank in _CHANNELS_LAST  # fixed by the launch
            and not _records_gradient(x, kernel)
            and x.is_cpu and kernel.shape[launch.rank] >= CHANNELS_LAST_MIN_FILTERS
            and _large_image(x, launch.rank) and not _vmapping())


CHANNELS_FIRST_MIN_CHANNELS = 128
CHANNELS_FIRST_MIN_KERNEL = 3
CHANNELS_FIRST_MAX_PIXELS = 1024
CHANNELS_FIRST_MIN_MACS = 2**25


def runs_channels_first(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether a channels_first-shaped ``x`` in channels_last memory goes to torch's operator
    as a channels_first copy, its output copied back to channels_last memory.

    That is a Keras-format input (``data_format="channels_last"``) as it arrives. On
    the CPU, oneDNN's stride-1 transposed convolution on channels_last memory ran
    1.2-1.7x the time of the channels_first one on ``dcgan_s1``'s layer (16 images of
    7 x 7 x 256 to 128 filters, kernel 5). The rule: float32 on the CPU, 2-D, every
    stride 1, a kernel at least :data:`CHANNELS_FIRST_MIN_KERNEL` long on each axis,
    at least :data:`CHANNELS_FIRST_MIN_CHANNELS` channels and half as many filters,
    at most :data:`CHANNELS_FIRST_MAX_PIXELS` pixels over all samples, and at least
    :data:`CHANNELS_FIRST_MIN_MACS` multiply-adds. Larger images lost in inference
    (up to 2x from 2048 pixels), kernels of 2 and fewer channels were mixed, a
    quarter or an eighth as many filters as channels lost up to 1.44x in inference,
    and calls of about 0.5 ms lost up to 1.17x to the copies. Training steps and
    inference alike. Not while ``torch.compile`` traces, nor under
    ``torch.func.vmap``.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 5, padding="same")
        >>> launch = _launch(args, (7, 7))
        >>> keras_input = torch.zeros(16, 7, 7, 256).movedim(-1, 1)
        >>> runs_channels_first(keras_input, torch.zeros(5, 5, 128, 256), launch)
        True
        >>> runs_channels_first(keras_input.contiguous(), torch.zeros(5, 5, 128, 256), launch)
        False
    """
    return (launch.rank == 2 and max(launch.stride) == 1 and x.is_cpu
            and x.dtype == torch.float32 and min(launch.kernel_size) >= CHANNELS_FIRST_MIN_KERNEL
            and x.shape[1] >= CHANNELS_FIRST_MIN_CHANNELS
            and 2 * kernel.shape[launch.rank] >= x.shape[1]
            and x.shape[0] * math.prod(x.shape[2:]) <= CHANNELS_FIRST_MAX_PIXELS
            and x.numel() * (kernel.numel() // kernel.shape[-1]) >= CHANNELS_FIRST_MIN_MACS
            and _suggests_channels_last(x)
            and not torch.compiler.is_compiling() and not _vmapping())


def _suggests_channels_last(x: torch.Tensor) -> bool:
    """Whether torch's convolutions run a 2-D or 3-D ``x`` in channels_last memory: in it,
    and not also contiguous (as with one channel or one pixel)."""
    return (x.dim() in (4, 5) and not x.is_contiguous()
            and x.is_contiguous(memory_format=_CHANNELS_LAST[x.dim() - 2]))


def _in_channels_last_memory(out: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``out`` (shaped as ``data_format`` says) copied to channels_last memory."""
    return out.contiguous() if channels_last else out.contiguous(
        memory_format=torch.channels_last)


def _vmapping() -> bool:
    """Whether ``torch.func.vmap`` runs this call: its batched tensors refuse channels_last
    memory, so the routes that need it stand aside."""
    if torch.compiler.is_compiling():  # Dynamo traces vmap itself
        return False
    stack = torch._C._functorch.get_interpreter_stack() or ()
    return any(level.key() == torch._C._functorch.TransformType.Vmap for level in stack)


def _records_gradient(x: torch.Tensor, kernel: torch.Tensor) -> bool:
    """Whether autograd records this call (a training step, not inference)."""
    return torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad)


def _large_image(x: torch.Tensor, rank: int) -> bool:
    """True when each image of a channels_first ``x`` is large enough for the channels_last
    rule: :data:`CHANNELS_LAST_MIN_PIXELS` pixels, or in 3-D also
    :data:`CHANNELS_LAST_MIN_VOLUME_ELEMENTS` elements, channels included."""
    return math.prod(x.shape[2:]) >= CHANNELS_LAST_MIN_PIXELS or (
        rank == 3 and math.prod(x.shape[1:]) >= CHANNELS_LAST_MIN_VOLUME_ELEMENTS)


# torch computes a float32 transposed convolution on the CPU with its own native
# kernels instead of oneDNN's when one sample is small by its heuristic (`use_mkldnn`
# in ATen's ConvUtils.h: batch 1, channels times the first two spatial lengths at
# most 20480, and not both of the kernel's last two axes longer than 3). In 3-D
# those kernels ran 1.5-25x slower than oneDNN's from 12^3 voxels on; convt then
# calls oneDNN's transposed convolution itself, on channels_last memory. Where torch
# runs oneDNN itself it does so on channels_first memory and the full scatter; with a
# stride and 16 filters the direct call ran 3-D batches 0.13-1.05x its time, single
# 3-D samples from 16^3 voxels 0.74-1.07x, and 2-D inputs of 2048 pixels (all samples)
# with at least half as many filters as channels 0.19-1.04x (docs/architecture.md,
# "The torch backend").
TORCH_NATIVE_MAX_ELEMENTS = 20480
ONEDNN_MIN_VOXELS = 12**3
ONEDNN_MIN_VOXELS_TRAINING = 16**3
ONEDNN_MIN_SAMPLE_VOXELS = 16**3
ONEDNN_MIN_PIXELS = 2048
# Below ONEDNN_MIN_PIXELS, where torch's operator would compute the last axis from its
# first element and cut its left crop afterwards (:func:`_left_cut_after`), the direct call
# (which keeps its right crop) ran 2-D forward passes mostly in 0.80-0.97x the operator
# route's time with at most 64 channels or 4 pixels (all samples) per channel (``dcgan_s2``,
# 784 pixels of 128 channels: 0.85-0.88x, training 0.95-0.98x; two shapes of 128 channels
# and kernel 4 read 1.01-1.06x and 0.97-1.24x), but 1.03-1.40x on fewer pixels of 128-512
# channels (docs/architecture.md, "The torch backend").
ONEDNN_CUT_MAX_CHANNELS = 64
ONEDNN_CUT_PIXELS_PER_CHANNEL = 4


def runs_onednn(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether a channels_first-shaped ``x`` goes to oneDNN's transposed convolution directly.

    2-D or 3-D float32 on the CPU, with oneDNN available and enabled, and a
    right crop at most ``stride - 1`` shorter than the left one (oneDNN refuses
    a longer zero tail, which torch's ``output_padding`` allows up to the
    dilation). Then either of:

    - in 3-D, one sample small by torch's heuristic
      (:data:`TORCH_NATIVE_MAX_ELEMENTS`), which torch would give its native
      kernels, of at least :data:`ONEDNN_MIN_VOXELS` voxels, or
      :data:`ONEDNN_MIN_VOXELS_TRAINING` when a gradient is recorded (below
      that, training steps with 16 filters and kernel 2 lost up to 1.22x);
    - what torch gives oneDNN itself, with a stride above 1 and at least
      :data:`CHANNELS_LAST_MIN_FILTERS` filters (stride 1 lost up to 1.33x, 1-4
      filters up to 1.42x): in 3-D a batch, or one sample of at least
      :data:`ONEDNN_MIN_SAMPLE_VOXELS` voxels (single 8^3 samples lost up to
      1.14x); in 2-D half as many filters as channels (an eighth as many lost up
      to 1.42x) and at least :data:`ONEDNN_MIN_PIXELS` pixels over all samples
      (fewer lost up to 1.14x), or fewer when the operator would cut the last
      axis's left crop afterwards, with at most :data:`ONEDNN_CUT_MAX_CHANNELS`
      channels or :data:`ONEDNN_CUT_PIXELS_PER_CHANNEL` pixels per channel. Not
      where torch's operator gives Keras's window itself and
      :func:`runs_channels_last` hands it channels_last memory: the same
      computation, 4-7% faster there (``big_2d``'s forward).

    Not while ``torch.compile`` traces (compiled graphs keep torch's operator), nor
    under ``torch.func.vmap`` (:func:`_vmapping`).

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(3, 3, strides=2, data_format="channels_first")
        >>> launch = _launch(args, (16, 16, 16))
        >>> runs_onednn(torch.zeros(1, 64, 16, 16, 16), torch.zeros(3, 3, 3, 32, 64), launch)
        True
        >>> runs_onednn(torch.zeros(2, 64, 16, 16, 16), torch.zeros(3, 3, 3, 32, 64), launch)
        True
        >>> runs_onednn(torch.zeros(2, 64, 16, 16, 16), torch.zeros(3, 3, 3, 1, 64), launch)
        False
    """
    if (not launch.onednn or not x.is_cpu or x.dtype != torch.float32
            or torch.compiler.is_compiling()):  # first: Dynamo warns of the lru_cache below
        return False
    return _onednn_suits(x, kernel, launch) and _onednn_enabled()


def _onednn_enabled() -> bool:
    """Whether oneDNN's transposed convolution can be called directly here: available,
    enabled and not under ``torch.func.vmap``. Asked after the shapes, which rule out most
    calls for less: asked first, these queries of torch's global state cost ``conv_ae``
    1.05-1.08x torch's forward time and 1.06-1.10x its training step, asked after 1.00-1.05x
    and 0.98-1.07x (interleaved, six runs of 21 samples; a process whose allocator
    returned freed outputs to the system, as the benchmark's does)."""
    return (_onednn_transposed() is not None and torch.backends.mkldnn.enabled
            and not _vmapping())


def _onednn_suits(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """The shape part of :func:`runs_onednn`'s rule."""
    batch, channels = x.shape[:2]
    points = math.prod(x.shape[2:])
    if not _operator_is_native(x, launch):  # torch's operator runs oneDNN itself
        filters = kernel.shape[launch.rank]
        if (max(launch.stride) == 1 or filters < CHANNELS_LAST_MIN_FILTERS
                or (launch.keep is None and launch.zeros is None
                    and runs_channels_last(x, kernel, launch))):
            return False
        if launch.rank == 3:
            return batch > 1 or points >= ONEDNN_MIN_SAMPLE_VOXELS
        return 2 * filters >= channels and (batch * points >= ONEDNN_MIN_PIXELS or (
            _left_cut_after(launch.stride, launch.padding[-1]) > 0
            and (channels <= ONEDNN_CUT_MAX_CHANNELS
                 or batch * points >= ONEDNN_CUT_PIXELS_PER_CHANNEL * channels)))
    if launch.rank == 2:  # 2-D images this small lost on 8 x 8 and were mixed on 16 x 16
        return False
    return points >= (ONEDNN_MIN_VOXELS_TRAINING if _records_gradient(x, kernel)
                      else ONEDNN_MIN_VOXELS)


def _operator_is_native(x: torch.Tensor, launch: Launch) -> bool:
    """Whether torch's operator gives a float32 call of this channels_first-shaped ``x`` on
    the CPU its native kernels rather than oneDNN (:data:`TORCH_NATIVE_MAX_ELEMENTS`)."""
    batch, channels, *spatial = x.shape
    unit = [1] * (2 - launch.rank)  # torch computes a 1-D call as 2-D, its first axis 1 long
    first, second = (*unit, *spatial)[:2]
    return (batch == 1 and channels * first * second <= TORCH_NATIVE_MAX_ELEMENTS
            and min((*unit, *launch.kernel_size)[-2:]) <= 3)


@functools.lru_cache(maxsize=1)
def _onednn_transposed() -> Callable[..., torch.Tensor] | None:
    """oneDNN's transposed convolution as torch registers it for its compiler, or None."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_transpose_pointwise.default
    except (AttributeError, RuntimeError):
        return None


class _CutAfter(torch.autograd.Function):
    """A transposed convolution computed uncut on the last axis's left side, and the view
    of it that is Keras's window (:func:`_left_cut_after`): subclasses define the static
    methods ``uncut(x, weight, launch)``, ``window(uncut, launch)`` and ``backward``.

    The call is bilinear, so its forward derivative is two more uncut calls, cut
    to the output's view layout as forward AD requires. torch derives the vmap
    rule from the forward, so ``torch.func`` works as through torch's operator.
    """

    generate_vmap_rule = True

    @classmethod
    def apply(cls, x: torch.Tensor, weight: torch.Tensor, launch: Launch) -> torch.Tensor:
        """``Function.apply`` without its per-call ``inspect.signature`` binding of the
        arguments to :meth:`forward` (which has no defaults to fill), outside ``torch.func``
        transforms; they take torch's own path. The binding cost 15-55 us a call, a
        quarter of a small layer's time (docs/architecture.md, "The torch backend")."""
        if torch._C._are_functorch_transforms_active():
            return super().apply(x, weight, launch)
        arguments = torch._functorch.utils.unwrap_dead_wrappers((x, weight, launch))
        return super(torch.autograd.Function, cls).apply(*arguments)

    @classmethod
    def forward(cls, x: torch.Tensor, weight: torch.Tensor, launch: Launch) -> torch.Tensor:
        return cls.window(cls.uncut(x, weight, launch), launch)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, weight, ctx.launch = inputs
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)

    @classmethod
    def jvp(cls, ctx: Any, x_tangent: torch.Tensor | None, weight_tangent: torch.Tensor | None,
            _: None) -> torch.Tensor:
        x, weight = ctx.saved_tensors
        parts = [cls.uncut(a, b, ctx.launch) for a, b in (
            (x_tangent, weight), (x, weight_tangent)) if a is not None and b is not None]
        return cls.window(functools.reduce(operator.add, parts), ctx.launch)


class _OneDnnTransposed(_CutAfter):
    """Keras's window of oneDNN's transposed convolution of channels_first-shaped tensors, run
    in channels_last memory; the output keeps channels_last strides.

    oneDNN crops each side of an axis by its own amount: torch's op takes the
    left crop as ``padding`` and the right one as ``padding - output_padding``,
    where a negative ``output_padding`` is a longer right crop (Keras's
    ``"same"`` cuts one more element on the right when the kernel outgrows the
    stride by an odd amount). The window is then computed once, with no slice
    whose gradient fills a zero tensor of the full scatter, except the last
    axis's left crop, which is cut afterwards (:func:`_left_cut_after`).

    The gradients are the adjoint convolutions, asked of torch as a forward
    convolution (the input's) and a convolution's weight gradient, both of
    which it runs with oneDNN. They crop both sides alike, so the output's
    gradient is first padded (or cut) on one side to the symmetric part of the
    crops. Both are differentiable, so second derivatives work as through
    torch's operator.
    """

    @staticmethod
    def uncut(x: torch.Tensor, weight: torch.Tensor, launch: Launch) -> torch.Tensor:
        """oneDNN's call without the last axis's left crop when it is cut afterwards."""
        crops = list(launch.crops)
        crops[-1] = (crops[-1][0] - _left_cut_after(launch.stride, crops[-1][0]), crops[-1][1])
        return _onednn_transposed()(
            x.contiguous(memory_format=_CHANNELS_LAST[launch.rank]), weight, None,
            [left for left, _ in crops], [left - right for left, right in crops],
            launch.stride, launch.dilation, 1, "none", [], "")

    @staticmethod
    def window(uncut: torch.Tensor, launch: Launch) -> torch.Tensor:
        cut = _left_cut_after(launch.stride, launch.crops[-1][0])
        return uncut.narrow(-1, cut, uncut.shape[-1] - cut)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        launch = ctx.launch
        if gemm_gradients_suit(x, weight, grad, launch):
            return *_gemm_gradients(x, weight, grad, launch, ctx.needs_input_grad[:2]), None
        padding = [max(0, min(crop)) for crop in launch.crops]
        pads = [side - p for crop, p in zip(reversed(launch.crops), reversed(padding))
                for side in crop]
        if any(pads):
            grad = F.pad(grad, pads)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = _CONVOLUTIONS[launch.rank](grad, weight, None, launch.stride, padding,
                                                launch.dilation)
        if ctx.needs_input_grad[1]:
            grad_weight = _weight_gradient(x, weight, grad, launch, padding)
        return grad_x, grad_weight, None


# oneDNN's weight gradient of a 2-D call whose input is in channels_last memory is slow on
# one or two large images. There it runs as the transposed convolution's own weight
# gradient on the input copied to channels_first memory (the output's gradient passed as
# it is): whole training steps took 0.51-0.97x the time of the channels_last one
# (22 shapes: batches 1-2, 48-256 channels, kernels 3-5, stride 2; ``big_2d``'s 0.68x).
# Mixed or slower, so left out: 16 channels times 16 filters (1.01-1.49x), 32 times 16
# (0.96-1.36x), 32 times 32 (0.79-1.09x), below 2^28 multiply-adds (0.84-1.36x), batches
# of 3-16 (0.73-1.10x) and 3-D (1.06-1.49x) (docs/architecture.md, "The torch backend").
WEIGHT_GRADIENT_FIRST_MAX_BATCH = 2
WEIGHT_GRADIENT_FIRST_MIN_CHANNEL_PAIRS = 2048
WEIGHT_GRADIENT_FIRST_MIN_MACS = 2**28


def weight_gradient_in_channels_first(x: torch.Tensor, weight: torch.Tensor,
                                      launch: Launch) -> bool:
    """Whether :class:`_OneDnnTransposed`'s weight gradient runs on ``x`` copied to
    channels_first memory: a 2-D ``x`` in channels_last memory, of at most
    :data:`WEIGHT_GRADIENT_FIRST_MAX_BATCH` samples, with at least
    :data:`WEIGHT_GRADIENT_FIRST_MIN_CHANNEL_PAIRS` input channels times filters and
    :data:`WEIGHT_GRADIENT_FIRST_MIN_MACS` multiply-adds in the gradient.

    Example:
        >>> import torch
        >>> launch = _launch(ConvTransposeArgs.normalize(
        ...     2, 4, strides=2, data_format="channels_first"), (128, 128))
        >>> image, weight = torch.zeros(1, 64, 128, 128), torch.zeros(64, 64, 4, 4)
        >>> in_last = image.contiguous(memory_format=torch.channels_last)
        >>> weight_gradient_in_channels_first(in_last, weight, launch)
        True
        >>> weight_gradient_in_channels_first(image, weight, launch)  # channels_first already
        False
    """
    batch, channels = x.shape[:2]
    pairs = channels * weight.shape[1]
    return (launch.rank == 2 and batch <= WEIGHT_GRADIENT_FIRST_MAX_BATCH
            and pairs >= WEIGHT_GRADIENT_FIRST_MIN_CHANNEL_PAIRS
            and x.numel() // channels * pairs * math.prod(launch.kernel_size)
            >= WEIGHT_GRADIENT_FIRST_MIN_MACS
            and _suggests_channels_last(x))


def _weight_gradient(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, launch: Launch,
                     padding: list[int]) -> torch.Tensor:
    """The kernel's gradient of :class:`_OneDnnTransposed`, ``grad`` padded to the
    symmetric ``padding``: the weight gradient of the adjoint convolution of ``grad``, or,
    by :func:`weight_gradient_in_channels_first`, the transposed convolution's own."""
    transposed = weight_gradient_in_channels_first(x, weight, launch)
    if transposed:  # a channels_last weight would make torch run it in channels_last memory
        output_gradient, given, weight = grad, x.contiguous(), weight.contiguous()
    else:
        output_gradient, given = x, grad
    return torch.ops.aten.convolution_backward(
        output_gradient, given, weight, None, launch.stride, padding, launch.dilation,
        transposed, [0] * launch.rank, 1, [False, True, False])[1]


# A training step's gradients of a oneDNN call (:class:`_OneDnnTransposed`) whose output
# gradient arrives in channels_last memory, as it does between layers that keep oneDNN's
# layout, are two GEMMs on the gradient's im2col where some kernel is not a whole number of
# strides: 24 random 2-D and 3-D shapes within the bounds below (input and gradient in
# channels_last memory) took 0.62-1.04x the time of a step whose gradients are oneDNN's
# adjoint convolutions, geometric mean 0.86 (``unet_same``'s shape 0.77x). Kernels of two or
# more strides lost (up to 1.64x); channels_first gradients, which the im2col reads with a
# stride, were mixed with kernels of 3 and 5 (0.84-1.32x), and so were fewer channels or
# positions and larger im2cols (1.01-1.18x). Where every kernel is its stride, the im2col is
# the gradient itself reordered, and oneDNN's weight gradient is slow: 2-D and 3-D steps of
# 64-512 channels took 0.55-0.91x oneDNN's time (``unet_up``'s shape 0.69-0.78x; one 2-D
# shape read 0.98x in one of two runs), with no upper bound on the channels or the im2col
# (docs/architecture.md, "The torch backend").
GEMM_GRADIENTS_MIN_CHANNELS = 64
GEMM_GRADIENTS_MAX_CHANNELS = 256
GEMM_GRADIENTS_MIN_POSITIONS = 2048
GEMM_GRADIENTS_MAX_COLUMNS = 2**23


def gemm_gradients_suit(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor,
                        launch: Launch) -> bool:
    """Whether :class:`_OneDnnTransposed`'s gradients are computed by :func:`_gemm_gradients`.

    ``x`` and ``grad`` are the input and the output's gradient (channels_first
    shapes), ``weight`` the kernel in torch's order. The output's gradient is in
    channels_last memory, no dilation, at least :data:`GEMM_GRADIENTS_MIN_CHANNELS`
    input channels and :data:`GEMM_GRADIENTS_MIN_POSITIONS` input positions (all
    samples). Then either every kernel axis is as long as its stride (the im2col is
    the gradient reordered), or some kernel axis is not a whole number of strides,
    with at most :data:`GEMM_GRADIENTS_MAX_CHANNELS` input channels and an im2col of
    at most :data:`GEMM_GRADIENTS_MAX_COLUMNS` elements.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 3, strides=2, padding="same",
        ...                                    data_format="channels_first")
        >>> launch = _launch(args, (32, 32))
        >>> x, weight = torch.zeros(8, 128, 32, 32), torch.zeros(128, 64, 3, 3)
        >>> grad = torch.zeros(8, 64, 64, 64)
        >>> gemm_gradients_suit(x, weight, grad.contiguous(memory_format=torch.channels_last),
        ...                     launch)
        True
        >>> gemm_gradients_suit(x, weight, grad, launch)  # channels_first memory
        False
    """
    positions = x.shape[0] * math.prod(x.shape[2:])
    if (x.shape[1] < GEMM_GRADIENTS_MIN_CHANNELS or positions < GEMM_GRADIENTS_MIN_POSITIONS
            or max(launch.dilation) > 1
            or not grad.is_contiguous(memory_format=_CHANNELS_LAST[launch.rank])):
        return False
    if launch.kernel_size == launch.stride:
        return True
    columns = positions * weight.shape[1] * math.prod(launch.kernel_size)
    return (x.shape[1] <= GEMM_GRADIENTS_MAX_CHANNELS and columns <= GEMM_GRADIENTS_MAX_COLUMNS
            and any(k % s for k, s in zip(launch.kernel_size, launch.stride)))


def _gradient_columns(grad: torch.Tensor, launch: Launch) -> torch.Tensor:
    """The output's gradient ``grad`` as an im2col matrix ``(N * L, prod(kernel_size) *
    filters)``: a row per input position (``L`` per sample), holding the
    gradient at each element of the full scatter that its taps reach, taps before filters."""
    pads = [side for crop in reversed(launch.crops) for side in crop]
    scatter = F.pad(grad, pads) if any(pads) else grad  # negative pads cut a zero tail away
    for axis, (k, s, d) in enumerate(zip(launch.kernel_size, launch.stride, launch.dilation), 2):
        scatter = scatter.unfold(axis, (k - 1) * d + 1, s)  # the full scatter: n windows
    rank = launch.rank
    windows = scatter[(..., *(slice(None, None, d) for d in launch.dilation))]
    return windows.permute(0, *range(2, 2 * rank + 2), 1).reshape(  # (N, *S, *k, filters)
        -1, math.prod(launch.kernel_size) * grad.shape[1])


def _gemm_gradients(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, launch: Launch,
                    needs: tuple[bool, bool]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The input's and the weight's gradients of the transposed convolution, each one GEMM
    on :func:`_gradient_columns`, the input's in channels_last memory; both
    differentiable (second derivatives go through them)."""
    channels = weight.shape[0]
    columns = _gradient_columns(grad, launch)
    grad_x = grad_weight = None
    if needs[0]:
        taps = weight.movedim(1, -1).reshape(channels, -1)  # (in, *k, filters)
        grad_x = (columns @ taps.T).view(x.shape[0], *x.shape[2:], channels).movedim(-1, 1)
    if needs[1]:
        rows = x.movedim(1, -1).reshape(-1, channels)
        grad_weight = (rows.T @ columns).view(
            channels, *launch.kernel_size, weight.shape[1]).movedim(-1, 1)
    return grad_x, grad_weight


def _left_cut_after(stride: tuple[int, ...], left_crop: int) -> int:
    """How much of the last axis's left crop to cut after oneDNN's strided transposed
    convolution rather than ask of it: all of it when any stride is above 1.

    torch 2.13's oneDNN (3.12, ``brgconv_strided`` on AVX-512 and on AVX2) returns wrong
    values at the left border of the last axis for some shapes when it crops
    there itself: with two threads, in 1-D (2 samples of 431 channels and 131
    steps, kernel 5, stride 2, crop 1; 33 of 1500 random batches of such
    shapes, none of the same inputs computed uncropped) and, more rarely, 2-D.
    Its stride-1 kernels were not affected (docs/architecture.md).
    """
    return left_crop if left_crop > 0 and max(stride) > 1 else 0


class _OperatorCutAfter(_CutAfter):
    """torch's operator on a channels_first ``x`` (CPU, float32), its last axis's padding
    taken by a slice afterwards (:func:`_left_cut_after`).

    The result is torch's padded one (a view of the larger output); its
    gradients are those torch computes for the padded call, which were right.
    Under ``torch.compile`` the forward is traced as plain operations (Dynamo
    breaks the graph at a Function with a ``jvp``), whose slice autograd then
    differentiates.
    """

    @staticmethod
    def uncut(x: torch.Tensor, weight: torch.Tensor, launch: Launch) -> torch.Tensor:
        """torch's operator without the last axis's padding."""
        tail = max(0, launch.output_padding[-1] - launch.padding[-1])  # at most output_padding
        return _FUNCTIONS[launch.rank](
            x, weight, None, launch.stride, (*launch.padding[:-1], 0),
            (*launch.output_padding[:-1], tail), 1, launch.dilation)

    @staticmethod
    def window(uncut: torch.Tensor, launch: Launch) -> torch.Tensor:
        """The view of :meth:`uncut`'s result that the padded call returns."""
        cut, extra = launch.padding[-1], launch.output_padding[-1]
        return uncut.narrow(-1, cut, uncut.shape[-1] - cut - max(0, cut - extra))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        launch = ctx.launch
        grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, launch.stride, launch.padding, launch.dilation, True,
            launch.output_padding, 1, [*ctx.needs_input_grad[:2], False])
        return grad_x, grad_weight, None


# In inference on the CPU, a strided transposed convolution with few filters (an RGB
# output layer) is one stride-1 convolution that computes every output phase
# (:func:`_phases`). With 1-4 filters and every kernel at least as long as its stride,
# 2-D inputs of 1024 pixels and 2^17 elements (all samples) and 3-D batches ran it in
# 0.18-1.10x torch's operator's time (288 shapes, geometric mean 0.57; the same call on
# both sides read 0.82-1.26x in that run). Smaller 2-D inputs were mixed (up to 1.43x),
# 8 filters too (0.59-1.22x) and 16 lost; so did kernels shorter than the stride (phases
# without taps, up to 1.9x), single 3-D samples (up to 2.4x: torch gives their
# convolution its native kernels), training steps (up to 1.3x), 1-D (up to 3x against
# the GEMM methods, mixed against the operator) and float64, which torch computes with
# neither oneDNN call (2-12x) (docs/architecture.md, "The torch backend").
PHASES_MAX_FILTERS = 4
PHASES_MIN_PIXELS = 1024
PHASES_MIN_ELEMENTS = 2**17


def runs_phases(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether a channels_first-shaped ``x`` is computed by :func:`_phases`.

    In float32 inference on the CPU (float16 and bfloat16 are computed in
    float32 there), with at most :data:`PHASES_MAX_FILTERS` filters,
    where the launch allows it (2-D or 3-D, a stride above 1, no dilation, every
    kernel at least as long as its stride); in 2-D from
    :data:`PHASES_MIN_PIXELS` pixels and :data:`PHASES_MIN_ELEMENTS` elements
    over all samples, in 3-D for a batch.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 4, strides=2, padding="same",
        ...                                    data_format="channels_first")
        >>> launch = _launch(args, (14, 14))
        >>> runs_phases(torch.zeros(16, 64, 14, 14), torch.zeros(4, 4, 3, 64), launch)
        True
        >>> runs_phases(torch.zeros(16, 64, 14, 14), torch.zeros(4, 4, 16, 64), launch)
        False
    """
    if (launch.phases is None or kernel.shape[launch.rank] > PHASES_MAX_FILTERS
            or not x.is_cpu or x.dtype != torch.float32 or _records_gradient(x, kernel)):
        return False
    if launch.rank == 3:
        return x.shape[0] > 1
    return (x.shape[0] * x.shape[2] * x.shape[3] >= PHASES_MIN_PIXELS
            and x.numel() >= PHASES_MIN_ELEMENTS)


def _phase_weight(kernel: torch.Tensor, launch: Launch, channels_last: bool) -> torch.Tensor:
    """The Keras kernel as the weight of one stride-1 convolution that computes every phase.

    Along an axis of stride ``s``, the outputs ``m * s + r`` (phase ``r``)
    receive taps ``r, r + s, r + 2s, ...`` from inputs ``m, m - 1, m - 2, ...``:
    a correlation with those taps in reverse, ``q = ceil(k / s)`` of them
    (zeros past the kernel's end). Returns ``(prod(s) * filters, in, *q)``, the
    output channels ordered as depth to space reads them: ``(filters, *s)``
    for a channels_first output, ``(*s, filters)`` for a channels_last one
    (whose convolution runs in channels_last memory, so that the phases of a
    pixel are then contiguous).
    """
    rank, stride = launch.rank, launch.stride
    taps = [p + 1 for p in launch.padding]
    weight = kernel.permute(rank, rank + 1, *range(rank))  # (filters, in, *k)
    tails = [q * s - k for q, s, k in zip(taps, stride, launch.kernel_size)]
    if any(tails):
        weight = F.pad(weight, [n for tail in reversed(tails) for n in (0, tail)])
    weight = weight.reshape(*weight.shape[:2], *(n for q, s in zip(taps, stride) for n in (q, s)))
    weight = weight.flip([2 + 2 * axis for axis in range(rank)])
    phases = [3 + 2 * axis for axis in range(rank)]
    channels = [*phases, 0] if channels_last else [0, *phases]
    return weight.permute(*channels, 1, *(2 + 2 * axis for axis in range(rank))).reshape(
        -1, weight.shape[1], *taps)


def _phases(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
            channels_last: bool) -> torch.Tensor:
    """Every output phase of a channels_first-shaped ``x`` as the channels of one stride-1
    convolution, interleaved into place (depth to space); Keras's window of them.

    ``launch`` is the phase launch (``Launch.phases``): its ``padding`` is
    ``q - 1`` per axis, which computes the phases of the full scatter and a
    tail of zeros up to a whole number of strides.
    """
    rank, stride, batch = launch.rank, launch.stride, x.shape[0]
    weight = _phase_weight(kernel, launch, channels_last)
    phases = _CONVOLUTIONS[rank](x, weight, None, 1, launch.padding)
    counts = phases.shape[2:]
    full = [m * s for m, s in zip(counts, stride)]
    if channels_last:  # (N, *m, *s, filters), a view of channels_last memory
        grid = phases.movedim(1, -1).reshape(batch, *counts, *stride, -1)
        interleaved = [a for axis in range(rank) for a in (1 + axis, 1 + rank + axis)]
        out = grid.permute(0, *interleaved, 2 * rank + 1).reshape(batch, *full, -1)
    else:  # (N, filters, *s, *m)
        grid = phases.reshape(batch, -1, *stride, *counts)
        if _pairs(grid, stride[-1]):  # as (N, *s, filters, *m)
            out = _depth_to_space_in_pairs(grid.movedim(1, 1 + rank), rank)
        else:
            interleaved = [a for axis in range(rank) for a in (2 + rank + axis, 2 + axis)]
            out = grid.permute(0, 1, *interleaved).reshape(batch, -1, *full)
    return _keras_window(out, launch)


# On the CPU, a 1-D or 2-D call with few filters on an input small for its channels is one GEMM
# (every input position times every tap) summed into place by torch's col2im
# (``F.fold``, whose gradient is ``unfold``), where torch would give oneDNN the call, whose
# fixed cost and vectorization over the filters outweigh the GEMM's and col2im's passes
# there. With 1-4 filters, every kernel longer than its stride and no dilation, random
# shapes within the rule ran training steps in 0.28-0.86x the previous route's time
# (48 channels_first shapes; ``dcgan_out`` 0.43x) and 0.30-0.92x (30 channels_last ones),
# forward passes in 0.15-0.91x on 74 of 78 shapes; the phases kept 3 large inputs faster
# (1.11-1.42x) and one small one read 1.03x. Up to twice the rule's bound, one training
# step of 13 lost (1.10x); at twice it, up to 1.53x in training and 1.38x forward, and far
# beyond 2.6x and 6.1x. Single samples that torch gives its native kernels (themselves a
# GEMM and col2im) lost 1.11-1.42x. With 8-128 filters, forward passes won within a
# quarter of the bound but training steps lost up to 1.15x from 256 pixels. In 1-D
# (computed as 2-D with a first axis of 1), 68 training steps ran in 0.26-0.75x and 55
# forward passes in 0.10-0.71x within the rule; from just past it (4.5 times the
# channels) training lost up to 1.16x, and single samples on torch's native kernels
# 1.10-1.66x (docs/architecture.md, "The torch backend").
FOLD_MAX_FILTERS = 4
FOLD_PIXELS_PER_CHANNEL = 256


def runs_fold(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether a channels_first-shaped ``x`` is computed by :func:`_fold`.

    1-D or 2-D float32 on the CPU, every kernel longer than its stride, no dilation,
    at most :data:`FOLD_MAX_FILTERS` filters, where torch's operator would run
    oneDNN (:func:`_operator_is_native`), and ``positions * filters**2`` (the
    pixels or steps of all samples) below :data:`FOLD_PIXELS_PER_CHANNEL` times
    the input channels. In training and inference alike.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 5, strides=2, padding="same",
        ...                                    data_format="channels_first")
        >>> launch = _launch(args, (14, 14))
        >>> runs_fold(torch.zeros(16, 64, 14, 14), torch.zeros(5, 5, 1, 64), launch)
        True
        >>> runs_fold(torch.zeros(16, 64, 14, 14), torch.zeros(5, 5, 3, 64), launch)
        False
    """
    filters, channels = kernel.shape[launch.rank], x.shape[1]
    return (filters <= FOLD_MAX_FILTERS and launch.rank < 3 and x.is_cpu
            and x.dtype == torch.float32 and max(launch.dilation) == 1
            and all(k > s for k, s in zip(launch.kernel_size, launch.stride))
            and math.prod(x.shape[2:]) * x.shape[0] * filters**2
            < FOLD_PIXELS_PER_CHANNEL * channels
            and not _operator_is_native(x, launch))


def _fold(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
          channels_last: bool) -> torch.Tensor:
    """Every input position of a channels_first-shaped ``x`` times every tap, summed into
    the operator's output by ``F.fold``; Keras's window of it (:func:`runs_fold`).

    ``F.fold`` takes the launch's ``padding`` and ``output_padding`` as the
    operator does: with a kernel longer than its stride, ``output_padding`` is
    below the stride, so the output size it is given holds as many kernel
    placements as the input has positions.
    """
    rank = launch.rank
    by_filter = kernel.permute(rank, *range(rank), rank + 1)  # (filters, *k, in): fold's order
    if channels_last:  # (N, *S, filters, *k) -> (N, filters * prod(k), prod(S))
        columns = _tap_columns(x.movedim(1, -1), by_filter, rank, True)
        columns = columns.flatten(1, rank).flatten(2).transpose(1, 2)
    else:  # (N, filters, *k, *S) -> (N, filters * prod(k), prod(S))
        columns = _tap_columns(x, by_filter, rank, False).flatten(1, rank + 1).flatten(2)
    unit = (1,) * (2 - rank)  # F.fold is 2-D: a 1-D axis is the second of two
    out = F.fold(columns, (*unit, *launch.produced), (*unit, *launch.kernel_size), 1,
                 ((0,) * (2 - rank)) + launch.padding, (*unit, *launch.stride))
    out = out.reshape(*out.shape[:2], *launch.produced)
    return _keras_window(out.movedim(1, -1) if channels_last else out, launch)


# torch 2.13's backward of a 2-D transposed convolution with a 1 x 1 kernel, 1-7 filters
# and an output_padding (Keras's "same" with a stride asks one), given channels_last
# strides, returns a wrong kernel gradient or corrupts the heap (double free, segfault or
# a hang; oneDNN "could not execute a primitive"). Probed in subprocesses, three steps
# each: 9 of 36 random such shapes and 20 of 20 chosen ones failed; 70 random 1 x 1
# shapes with 8-48 filters (strides 1-4, 3-256 channels, up to 64 x 64) and 150 shapes
# with other kernels did not. From 8 filters on, torch's channels_last path is kept: a
# contiguous copy made those training steps 1.30-2.51x slower (docs/architecture.md,
# "A torch backward bug with 1 x 1 kernels").
ONE_BY_ONE_COPY_MAX_FILTERS = 7

_ONE_BY_ONE = ((1,), (1, 1))
"""The kernel sizes of that bug: torch runs a 1-D call as 2-D, and a 1-D input of one
channel in channels_last failed the same way (85 of 100 kernel gradients wrong, 3 filters;
with 8 channels, or 3-D, none). The 1-D inputs of more channels that the copy now also
serves were right without it."""


@dataclass(frozen=True)
class OperatorRoute:
    """How :func:`_operator` computes a call: which of its computations, and the copies
    torch's operator is given."""

    method: str
    """``"fold"`` (:func:`_fold`), ``"phases"`` (:func:`_phases`), ``"onednn"``
    (:func:`runs_onednn`) or ``"operator"`` (torch's own)."""
    contiguous_input: bool = False
    channels_last_input: bool = False
    channels_first_input: bool = False
    """:func:`runs_channels_first`: the input copied to channels_first memory, the output
    copied back to channels_last memory."""
    weight_memory_format: torch.memory_format | None = None
    """The memory format the weight is copied to first (:func:`_weight_copied`), or None
    to hand it over as it is."""
    cut_after: bool = False
    """Whether the operator computes the last axis from its first element and
    :class:`_OperatorCutAfter` cuts its left crop afterwards."""


def operator_route(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
                   channels_last: bool) -> OperatorRoute:
    """The route of a call of the ``"operator"`` method, ``x`` channels_first-shaped.

    Example:
        >>> import torch
        >>> args = ConvTransposeArgs.normalize(2, 3, strides=2, data_format="channels_first")
        >>> launch = _launch(args, (7, 7))
        >>> operator_route(torch.zeros(2, 8, 7, 7), torch.zeros(3, 3, 16, 8), launch, False)
        OperatorRoute(method='operator', contiguous_input=False, channels_last_input=False, \
channels_first_input=False, weight_memory_format=None, cut_after=False)
    """
    if runs_fold(x, kernel, launch):
        return OperatorRoute("fold")
    filters = kernel.shape[launch.rank]
    # torch 2.13's backward of a channels_last-strided input: with one filter, it computes
    # the input's gradient from uninitialized memory when the last spatial axis is 1 (and
    # its stride above 1), and corrupts the heap in 3-D; in 2-D with a 1 x 1 kernel and
    # few filters, see ONE_BY_ONE_COPY_MAX_FILTERS; compiled with symbolic sizes,
    # Inductor cannot order its strides (pytorch#185510: every 2-D channels_last training
    # step failed once an input size changed, as torch's own convolutions do; Dynamo
    # does not tell traced code which sizes are symbolic). A contiguous copy is safe. With
    # one channel, channels_last strides are contiguous too, and torch still takes them for
    # channels_last: the copy is made whenever the strides are not the standard ones.
    contiguous = (not _has_standard_strides(x) and _records_gradient(x, kernel) and (
        filters == 1 or torch.compiler.is_compiling()
        or (launch.kernel_size in _ONE_BY_ONE and filters <= ONE_BY_ONE_COPY_MAX_FILTERS)))
    if runs_phases(x, kernel, launch):
        return OperatorRoute("phases", contiguous)
    if runs_onednn(x, kernel, launch):
        # a channels_first x's gradient often arrives channels_first too: its weight as is
        in_last = _weight_copied(x, kernel, launch) and _suggests_channels_last(x)
        return OperatorRoute("onednn", contiguous, weight_memory_format=(
            _CHANNELS_LAST[launch.rank] if in_last else None))
    channels_last_input = not channels_last and runs_channels_last(x, kernel, launch)
    channels_first_input = runs_channels_first(x, kernel, launch)
    return OperatorRoute(
        "operator",
        contiguous,
        channels_last_input=channels_last_input,
        channels_first_input=channels_first_input,
        weight_memory_format=_operator_weight_memory_format(
            x, kernel, launch, channels_last_input or (
                _suggests_channels_last(x) and not (contiguous or channels_first_input))),
        cut_after=bool(x.is_cpu and x.dtype == torch.float32
                       and _left_cut_after(launch.stride, launch.padding[-1])))


def _weight_copied(x: torch.Tensor, kernel: torch.Tensor, launch: Launch) -> bool:
    """Whether the weight goes to torch in the memory format of the input it runs: in 2-D
    and 3-D training steps on the CPU (CUDA's convolutions were not measured), outside
    ``torch.compile`` (Inductor lays out its own) and ``torch.func`` transforms.

    torch's CPU convolutions run the weight in the input's memory format, and copied a
    weight stored otherwise again in the backward, which saved it as given; the copy
    made first is what autograd saves. A Keras-format step of oneDNN's direct call made
    four copies of its weight instead of two (``dcgan_s2``'s 819 KB kernel), one of
    torch's operator three instead of two (docs/architecture.md, "The weight in the
    input's memory format"). In inference torch makes the one copy itself.
    """
    return (launch.rank > 1 and x.is_cpu and _records_gradient(x, kernel)
            and not torch.compiler.is_compiling()
            and not torch._C._are_functorch_transforms_active())


def _operator_weight_memory_format(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
                                   runs_channels_last_memory: bool
                                   ) -> torch.memory_format | None:
    """The memory format torch's operator is given the weight in (None: as it is), the
    input handed to it in channels_last memory or not.

    Contiguous with one channel (torch's backward refuses the permuted layout) and in a
    training step that ``torch.compile`` traces (with symbolic channels Inductor cannot
    order its strides, as the input's in :func:`operator_route`); else the input's,
    by :func:`_weight_copied`.
    """
    if kernel.shape[-1] == 1 or (torch.compiler.is_compiling() and _records_gradient(x, kernel)):
        return torch.contiguous_format
    if not _weight_copied(x, kernel, launch):
        return None
    return _CHANNELS_LAST[launch.rank] if runs_channels_last_memory else torch.contiguous_format


def _has_standard_strides(x: torch.Tensor) -> bool:
    """True when ``x``'s strides are the row-major ones of its shape, as a contiguous
    copy's are (``is_contiguous`` also accepts any stride on an axis of length one)."""
    expected, stride = [], 1
    for length in reversed(x.shape):
        expected.append(stride)
        stride *= length
    return x.stride() == tuple(reversed(expected))


def _operator(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
              channels_last: bool, route: OperatorRoute) -> torch.Tensor:
    """torch's own operator (or oneDNN's, see :func:`runs_onednn`), given the kernel in its
    layout; Keras's window of it. Few filters: :func:`_fold` on small inputs, in inference
    :func:`_phases` on large ones. ``route`` is :func:`operator_route`'s."""
    if channels_last:
        x = x.movedim(-1, 1)
    if route.method == "fold":
        return _fold(x, kernel, launch, channels_last)
    if route.contiguous_input:  # a copy even where x.contiguous() would return x
        x = x.clone(memory_format=torch.contiguous_format)
    if route.method == "phases":
        return _phases(x, kernel, launch.phases, channels_last)
    weight = to_torch_kernel(kernel, launch.rank)
    if route.weight_memory_format is not None:
        weight = weight.contiguous(memory_format=route.weight_memory_format)
    if route.method == "onednn":
        out = _OneDnnTransposed.apply(x, weight, launch)
        return out.movedim(1, -1) if channels_last else out
    if route.channels_last_input:
        x = x.contiguous(memory_format=_CHANNELS_LAST[launch.rank])
    if route.channels_first_input:
        x = x.contiguous()
    if route.cut_after:
        out = (_OperatorCutAfter.forward  # Dynamo breaks the graph at a Function with a jvp
               if torch.compiler.is_compiling() else _OperatorCutAfter.apply)(x, weight, launch)
    else:
        out = _FUNCTIONS[launch.rank](  # positional: keywords cost a small layer's time
            x, weight, None, launch.stride, launch.padding, launch.output_padding, 1,
            launch.dilation)
    out = _keras_window(out.movedim(1, -1) if channels_last else out, launch)
    return _in_channels_last_memory(out, channels_last) if route.channels_first_input else out


def _tap_columns(x: torch.Tensor, kernel: torch.Tensor, rank: int,
                 channels_last: bool) -> torch.Tensor:
    """Every input position times every tap, from one GEMM on the Keras kernel.

    Returns ``(N, *spatial, *kernel_size, filters)`` for channels_last inputs
    and ``(N, *kernel_size, filters, *spatial)`` for channels_first ones.
    """
    taps = kernel.reshape(-1, kernel.shape[-1])  # (prod(kernel_size) * filters, in): a view
    if channels_last:
        columns = x.reshape(-1, x.shape[-1]) @ taps.T
        return columns.view(*x.shape[:-1], *kernel.shape[:-1])
    batched = x.reshape(x.shape[0], x.shape[1], -1)
    if x.shape[0] == 1:  # one GEMM; the kernel's gradient needs no sum over a broadcast batch
        columns = (taps @ batched[0]).unsqueeze(0)
    else:  # bmm on the broadcast matrix: matmul would copy both operands to fold the batch
        columns = torch.bmm(taps.expand(x.shape[0], *taps.shape), batched)
    return columns.view(x.shape[0], *kernel.shape[:-1], *x.shape[2:])


def _tiles(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
           channels_last: bool) -> torch.Tensor:
    """kernel == stride: each input position owns a tile of the output (depth to space);
    Keras's window of it."""
    rank = launch.rank
    columns = _tap_columns(x, kernel, rank, channels_last)
    if channels_last:  # (N, *S, *k, f) -> (N, S1, k1, S2, k2, ..., f)
        n, *spatial = columns.shape[:rank + 1]
        order = [0, *(a for i in range(rank) for a in (1 + i, 1 + rank + i)), 2 * rank + 1]
        tiled = columns.permute(order).reshape(
            n, *(s * k for s, k in zip(spatial, launch.kernel_size)), kernel.shape[rank])
    elif _pairs(columns, launch.kernel_size[-1]):
        tiled = _depth_to_space_in_pairs(columns, rank)
    else:
        tiled = _tiled_channels_first(columns, rank)
    return _keras_window(tiled, launch)


def _tiled_channels_first(columns: torch.Tensor, rank: int) -> torch.Tensor:
    """Channels_first columns ``(N, *k, f, *S)`` as the output ``(N, f, S1 * k1, ...)``
    they tile, by a permuted copy."""
    n, *kernel, filters = columns.shape[:rank + 2]
    spatial = columns.shape[rank + 2:]
    order = [0, rank + 1, *(a for i in range(rank) for a in (rank + 2 + i, 1 + i))]
    return columns.permute(order).reshape(n, filters, *(s * k for s, k in zip(spatial, kernel)))


# Below this many output elements the paired layout's extra calls cost about what they save
# over the permuted copy they replace (``keras_doc``'s 40960: 1.01-1.18x its forward time).
PAIRED_MIN_ELEMENTS = 2**18


def _pairs(planes: torch.Tensor, last: int) -> bool:
    """Whether the depth-to-space of ``planes``, ``last`` of them along the output's last
    axis, is written by :func:`_depth_to_space_in_pairs`: two of them, in inference (no gradient
    recorded, no forward-mode tangent) on the CPU, where it was measured, float32 or float64
    with at least :data:`PAIRED_MIN_ELEMENTS` (``out=`` is not differentiable), and no
    ``torch.compile`` trace or ``torch.func`` transform, which keep the permuted copy as
    they were tested with it."""
    return (last == 2 and planes.numel() >= PAIRED_MIN_ELEMENTS
            and planes.dtype in _FULL_PRECISION and planes.is_cpu
            and not (planes.requires_grad and torch.is_grad_enabled()) and not _forward_ad()
            and not torch.compiler.is_compiling()
            and not torch._C._are_functorch_transforms_active())


def _forward_ad() -> bool:
    """Whether a forward-mode AD level is open (``torch.autograd.forward_ad.dual_level``);
    True where this torch does not say."""
    return getattr(torch.autograd.forward_ad, "_current_level", 0) >= 0


def _depth_to_space_in_pairs(columns: torch.Tensor, rank: int) -> torch.Tensor:
    """The depth-to-space of channels_first planes ``(N, *k, f, *S)``, ``k`` of them per axis
    (a kernel's taps in :func:`_tiles`, a stride's phases in :func:`_phases`) and 2 along the
    last: output ``(N, f, S1 * k1, ..., S_r * 2)``.

    Along the output's last axis the two planes alternate. torch's permuted
    copy runs its innermost loop over those two elements; here each pair is
    written as one complex number, the real part from one plane and the
    imaginary part from the other, into a complex view of the output. Not
    differentiable (``out=``): inference only (:func:`_pairs`).
    """
    batch, *kernel, filters = columns.shape[:rank + 2]
    spatial = columns.shape[rank + 2:]
    tile_axes = [n for pair in zip(spatial, kernel) for n in pair]  # S1, k1, ..., S_r, 2
    out = columns.new_empty(batch, filters, *(s * k for s, k in zip(spatial, kernel)))
    pairs = torch.view_as_complex(out.view(batch, filters, *tile_axes))  # (N, f, S1, k1, ..., S_r)
    for lead in itertools.product(*map(range, kernel[:-1])):
        place = [slice(None)] * 2 + [n for tap in lead for n in (slice(None), tap)]
        torch.complex(columns[(slice(None), *lead, 0)], columns[(slice(None), *lead, 1)],
                      out=pairs[tuple(place)])
    return out


def _rows(x: torch.Tensor, kernel: torch.Tensor, launch: Launch,
          channels_last: bool) -> torch.Tensor:
    """1-D, kernel = q strides: q stride-long rows per input, added at q offsets; Keras's
    window of them."""
    (stride,), (kernel_size,) = launch.stride, launch.kernel_size
    columns = _tap_columns(x, kernel, 1, channels_last)
    n, filters, q = x.shape[0], kernel.shape[1], kernel_size // stride
    if channels_last:  # columns (N, L, q * s, f) -> q parts (N, L, s, f), rows on axis 1
        parts = columns.view(n, -1, q, stride, filters).unbind(2)
    else:  # columns (N, q * s, f, L) -> q parts (N, f, L, s), rows on axis 2
        parts = columns.view(n, q, stride, filters, -1).permute(0, 1, 3, 4, 2).unbind(1)
    out = _shifted_sum(parts, 1 if channels_last else 2, _records_gradient(x, kernel))
    full = (x.shape[1 if channels_last else 2] + q - 1) * stride
    return _keras_window(out.reshape(n, full, filters) if channels_last
                         else out.reshape(n, filters, full), launch)


def _shifted_sum(parts: tuple[torch.Tensor, ...], axis: int,
                 records_gradient: bool) -> torch.Tensor:
    """The sum of ``parts``, part ``i`` moved ``i`` rows down ``axis`` (``len(parts) - 1``
    rows longer than each part).

    In training each part is zero-padded into place and the parts are summed:
    the backward pass is then only slices. Otherwise the first part is copied
    into one buffer and the others added in place, two passes fewer over the
    output (``melgan_up``'s forward 0.95x, docs/architecture.md).
    """
    shifts = len(parts) - 1
    if records_gradient:
        after = [0, 0] * (parts[0].dim() - 1 - axis)  # F.pad's order: the last axis first
        return functools.reduce(operator.add, (
            F.pad(part, [*after, shift, shifts - shift]) for shift, part in enumerate(parts)))
    rows = parts[0].shape[axis]
    shape = [*parts[0].shape[:axis], rows + shifts, *parts[0].shape[axis + 1:]]
    out = parts[0].new_empty(shape)
    out.narrow(axis, 0, rows).copy_(parts[0])
    out.narrow(axis, rows, shifts).zero_()
    for shift, part in enumerate(parts[1:], 1):
        out.narrow(axis, shift, rows).add_(part)
    return out


_METHODS = {"tiles": _tiles, "rows": _rows}


_launch_memory = functools.lru_cache(maxsize=1024)(_launch)


def _unless_compiling(
    remembered: Callable[..., Any], direct: Callable[..., Any]
) -> Callable[..., Any]:
    """``remembered``; ``direct`` while ``torch.compile`` traces.

    A training loop asks the same shape questions every step, so their
    answers are cached; Dynamo does not trace caches, so under compilation
    the question is answered directly (once, at compile time).
    """
    return direct if torch.compiler.is_compiling() else remembered


def plan(
    input_shape: tuple[int, ...], kernel_shape: tuple[int, ...], **kwargs: Any
) -> tuple[ConvTransposeArgs, tuple[int | None, ...]]:
    """:func:`convt._shapes.remembered_plan`, planned directly under ``torch.compile``."""
    return _unless_compiling(remembered_plan, plan_conv_transpose)(
        input_shape, kernel_shape, **kwargs)
