"""The torch kernels of transposed convolution: torch's own operator, Keras's window.

``torch.nn.functional.conv_transpose{1,2,3}d`` computes the same scatter as
Keras (input element ``n`` and tap ``j`` land at ``n * s + j * d``, no kernel
flip); only the window differs. Per axis, Keras's window starts ``crop_left``
into the full scatter and ends ``crop_right`` before its end (negative: zeros
appended). torch crops ``padding`` on both sides and appends ``output_padding``
(``< max(stride, dilation)``) on the right, so each axis is given
``padding = crop_left`` and, when ``crop_right < crop_left``, the difference as
``output_padding``; what torch cannot express is finished here, a surplus on
the right by a slice (a view, no copy) and a long zero tail by ``pad``.

Everything stays on the tensors' device with no host synchronisation, and
autograd differentiates through it. float16 and bfloat16 are computed in
float32 on the CPU (rounded once at the end, as the NumPy backend does) and
natively on accelerators.

This module imports torch; :mod:`convt.ops` imports it only when a torch
tensor is passed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from convt._shapes import AxisPlan, ConvTransposeArgs, plan_conv_transpose

_FUNCTIONS = {
    1: F.conv_transpose1d,
    2: F.conv_transpose2d,
    3: F.conv_transpose3d,
}
_LOW_PRECISION = (torch.float16, torch.bfloat16)


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


def to_torch_kernel(kernel: torch.Tensor, rank: int) -> torch.Tensor:
    """Keras's ``(*kernel_size, filters, in)`` as torch's ``(in, filters, *kernel_size)``."""
    return kernel.permute(rank + 1, rank, *range(rank))


def from_torch_kernel(weight: torch.Tensor, rank: int) -> torch.Tensor:
    """torch's ``(in, filters, *kernel_size)`` as Keras's ``(*kernel_size, filters, in)``."""
    return weight.permute(*range(2, rank + 2), 1, 0)


def as_tensors(inputs: Any, kernel: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both arguments as tensors; a non-tensor goes to the device of the tensor one."""
    if not isinstance(inputs, torch.Tensor):
        inputs = torch.as_tensor(inputs, device=kernel.device)
    if not isinstance(kernel, torch.Tensor):
        kernel = torch.as_tensor(kernel, device=inputs.device)
    return inputs, kernel


def compute_dtypes(inputs: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(dtype computed in, dtype returned), as the NumPy backend decides.

    Raises:
        TypeError: for complex tensors.
    """
    result = torch.result_type(inputs, kernel)
    if not result.is_floating_point:
        if result.is_complex:
            raise TypeError(
                "Expected real-valued `inputs` and `kernel` (float, int or bool). "
                f"Received: inputs.dtype={inputs.dtype}, kernel.dtype={kernel.dtype}"
            )
        return torch.float32, torch.float32
    if result in _LOW_PRECISION and inputs.device.type == "cpu":
        return torch.float32, result
    return result, result


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

    Example:
        >>> import torch
        >>> from convt._shapes import ConvTransposeArgs
        >>> args = ConvTransposeArgs.normalize(1, 3, strides=2)
        >>> conv_transpose(torch.ones(1, 3, 1), torch.ones(3, 1, 1), args)[0, :, 0]
        tensor([1., 1., 2., 1., 2., 1., 1.])
    """
    work_dtype, out_dtype = compute_dtypes(inputs, kernel)
    channels_last = args.data_format == "channels_last"
    x = inputs.movedim(-1, 1) if channels_last else inputs
    launch = _remembered(_launch, args, tuple(x.shape[2:]))
    out = _conv_transpose_channels_first(x.to(work_dtype), kernel.to(work_dtype), launch)
    if channels_last:
        out = out.movedim(1, -1)
    return out.to(out_dtype)


@dataclass(frozen=True)
class Launch:
    """The arguments of torch's call and the window still to take, for one input shape."""

    rank: int
    output_spatial: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    keep: tuple[slice, ...] | None
    """The index keeping Keras's window of torch's result; None when it is all of it."""
    zeros: list[int] | None
    """``F.pad`` sizes of the zeros appended after that; None when there are none."""


def _launch(args: ConvTransposeArgs, spatial: tuple[int, ...]) -> Launch:
    """How to compute one input shape."""
    plans = args.axis_plans(spatial)
    windows = [torch_window(p) for p in plans]
    produced = [p.full_length - 2 * w.padding + w.output_padding for p, w in zip(plans, windows)]
    return Launch(
        rank=len(plans),
        output_spatial=tuple(p.output_length for p in plans),
        stride=tuple(p.stride for p in plans),
        padding=tuple(w.padding for w in windows),
        output_padding=tuple(w.output_padding for w in windows),
        dilation=tuple(p.dilation for p in plans),
        keep=None if [w.keep for w in windows] == produced else (
            slice(None), slice(None), *(slice(0, w.keep) for w in windows)),
        zeros=[n for w in reversed(windows) for n in (0, w.zeros)] if any(
            w.zeros for w in windows) else None,
    )


_MEMORY = {_launch: functools.lru_cache(maxsize=1024)(_launch),
           plan_conv_transpose: functools.lru_cache(maxsize=1024)(plan_conv_transpose)}


def _remembered(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, remembered when the arguments are hashable.

    A training loop asks the same shape questions every step; the answers are
    pure functions of plain values. Under ``torch.compile`` the function is
    traced directly (once, at compile time), as Dynamo does not trace caches.
    """
    if torch.compiler.is_compiling():
        return function(*args, **kwargs)
    try:
        return _MEMORY[function](*args, **kwargs)
    except TypeError:  # unhashable arguments (lists): compute without remembering
        return function(*args, **kwargs)


def plan(
    input_shape: tuple[int, ...], kernel_shape: tuple[int, ...], **kwargs: Any
) -> tuple[ConvTransposeArgs, tuple[int | None, ...]]:
    """:func:`convt._shapes.plan_conv_transpose`, remembered when the arguments are hashable."""
    return _remembered(plan_conv_transpose, input_shape, kernel_shape, **kwargs)


def _conv_transpose_channels_first(
    x: torch.Tensor, kernel: torch.Tensor, launch: Launch
) -> torch.Tensor:
    if x.numel() == 0 or 0 in launch.output_spatial:
        return x.new_zeros((x.shape[0], kernel.shape[launch.rank], *launch.output_spatial))
    weight = to_torch_kernel(kernel, launch.rank)
    if weight.shape[0] == 1:  # torch's backward refuses this permuted layout for one channel
        weight = weight.contiguous()
    out = _FUNCTIONS[launch.rank](
        x, weight, stride=launch.stride, padding=launch.padding,
        output_padding=launch.output_padding, dilation=launch.dilation,
    )
    if launch.keep is not None:
        out = out[launch.keep]
    if launch.zeros is not None:
        out = F.pad(out, launch.zeros)
    return out
