"""Converters between convt's layers and ``torch.nn.ConvTranspose{1,2,3}d``.

Both directions keep the function exactly or refuse: torch crops ``padding``
from both ends of the full scatter and appends ``output_padding`` (below
``max(stride, dilation)``) on the right, Keras crops ``crop_left`` and
``crop_right`` (from :mod:`convt._shapes`). A window one side cannot express
raises ``ValueError``; nothing is clamped.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from convt import activations
from convt._shapes import axis_plan
from convt.backends.torch import from_torch_kernel, to_torch_kernel
from convt.layers.conv_transpose_config import ConvTransposeConfig
from convt.torch.ranks import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose

_TORCH_MODULES = {
    1: torch.nn.ConvTranspose1d,
    2: torch.nn.ConvTranspose2d,
    3: torch.nn.ConvTranspose3d,
}
_CONVT_LAYERS = {1: Conv1DTranspose, 2: Conv2DTranspose, 3: Conv3DTranspose}


def _crops(kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int):
    """(crop_left, crop_right) of Keras's window; they do not depend on the input length."""
    plan = axis_plan(1, kernel, stride, padding, output_padding, dilation)
    return plan.crop_left, plan.crop_right


def _torch_padding(layer: ConvTransposeConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch's (padding, output_padding) giving ``layer``'s window on every axis."""
    paddings, output_paddings = [], []
    for axis in range(layer.rank):
        kernel, stride = layer.kernel_size[axis], layer.strides[axis]
        dilation = layer.dilation_rate[axis]
        output_padding = None if layer.output_padding is None else layer.output_padding[axis]
        left, right = _crops(kernel, stride, layer.padding, output_padding, dilation)
        if not 0 <= left - right < max(stride, dilation):
            raise ValueError(
                "torch.nn.ConvTranspose crops `padding` from both ends and can append fewer "
                "than max(stride, dilation) elements; this layer's output window crops "
                f"{left} from the left and {right} from the right of axis {axis}, which it "
                f"cannot express. Received: padding={layer.padding!r}, "
                f"kernel_size={layer.kernel_size}, strides={layer.strides}, "
                f"output_padding={layer.output_padding}, dilation_rate={layer.dilation_rate}"
            )
        paddings.append(left)
        output_paddings.append(left - right)
    return tuple(paddings), tuple(output_paddings)


def to_torch(layer: ConvTransposeConfig) -> torch.nn.Module:
    """The ``torch.nn.ConvTranspose{1,2,3}d`` computing the same function as ``layer``.

    Args:
        layer: a built convt layer, torch (:mod:`convt.torch`) or NumPy
            (:mod:`convt.layers`), with ``data_format="channels_first"`` and
            no activation. Regularizers and constraints (training-time) are
            not carried over.

    Returns:
        The torch module, with the layer's weights, on the layer's device. On
        inputs for which the layer's output has an axis of length 0 (Keras's
        ``"same"`` with an even dilated kernel and ``output_padding=0`` on a
        one-element axis), the module raises torch's "Output size is too
        small" instead of returning the empty tensor the layer returns;
        elsewhere their values are equal.

    Raises:
        ValueError: if the layer is not built, is channels_last, has an
            activation, or its window has no torch equivalent (e.g.
            ``padding="same"`` with an odd ``kernel - stride``: Keras cuts
            the odd element on the right, torch can only cut both sides alike).

    Example:
        >>> import convt.torch as ct
        >>> layer = ct.Conv2DTranspose(8, 4, 2, "same", data_format="channels_first",
        ...                            input_shape=(3, None, None))
        >>> to_torch(layer)
        ConvTranspose2d(3, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
    """
    if not isinstance(layer, ConvTransposeConfig):
        raise TypeError(
            "Expected a convt Conv1DTranspose, Conv2DTranspose or Conv3DTranspose layer. "
            f"Received: layer of type {type(layer).__name__}"
        )
    if not layer.built:
        raise ValueError(
            f"Expected a built layer (call it once, or pass `input_shape`). Received: "
            f"layer={layer.name!r} with built=False"
        )
    if layer.data_format != "channels_first":
        raise ValueError(
            "torch.nn.ConvTranspose modules take channels_first inputs; build the layer with "
            f"data_format='channels_first'. Received: data_format={layer.data_format!r}"
        )
    if layer.activation is not activations.linear:
        raise ValueError(
            "torch.nn.ConvTranspose modules have no activation. Received: "
            f"activation={activations.serialize(layer.activation)!r}"
        )
    padding, output_padding = _torch_padding(layer)
    parameters = [v.value for v in layer.weights]  # a torch layer's own, bfloat16 included
    weights = [p.detach() if isinstance(p, torch.Tensor) else torch.tensor(p)
               for p in parameters]
    kernel = weights[0]
    module = _TORCH_MODULES[layer.rank](
        kernel.shape[-1], layer.filters, layer.kernel_size, stride=layer.strides,
        padding=padding, output_padding=output_padding, dilation=layer.dilation_rate,
        bias=layer.use_bias, dtype=kernel.dtype,
    )
    with torch.no_grad():
        module.weight.copy_(to_torch_kernel(kernel, layer.rank))
        if layer.use_bias:
            module.bias.copy_(weights[1])
    device = getattr(layer, "kernel", None)
    return module.to(device.device) if isinstance(device, torch.Tensor) else module


def _keras_padding(module: torch.nn.Module) -> tuple[str, tuple[int, ...] | None]:
    """Keras's (padding, output_padding) giving ``module``'s window, or ValueError."""
    wanted = [(p, p - op) for p, op in zip(module.padding, module.output_padding)]
    axes = list(zip(module.kernel_size, module.stride, module.dilation))
    for padding in ("valid", "same"):
        if all(_crops(k, s, padding, None, d) == w for (k, s, d), w in zip(axes, wanted)):
            return padding, None
        options = [
            [op for op in range(s) if _crops(k, s, padding, op, d) == w]
            for (k, s, d), w in zip(axes, wanted)
        ]
        choice = next(itertools.product(*options), None)
        if choice is not None:
            return padding, choice
    raise ValueError(
        "No Keras padding/output_padding (output_padding below strides) crops the window "
        f"this module computes. Received: padding={module.padding}, "
        f"output_padding={module.output_padding}, kernel_size={module.kernel_size}, "
        f"stride={module.stride}, dilation={module.dilation}"
    )


def from_torch(module: torch.nn.Module, **kwargs: Any) -> ConvTransposeConfig:
    """The convt.torch layer computing the same function as a ``torch.nn.ConvTranspose*d``.

    Args:
        module: a ``torch.nn.ConvTranspose1d``, ``2d`` or ``3d``.
        **kwargs: further layer arguments (``name``, ``activation``...).

    Returns:
        A built ``channels_first`` layer with the module's weights, device and dtype.

    Raises:
        ValueError: for ``groups != 1``, ``padding_mode != "zeros"``, string
            padding, or a window no Keras padding expresses (e.g. a symmetric
            crop of a "same" whose Keras split is uneven, or stride > 1 with
            dilation > 1, which the Keras layers refuse).

    Example:
        >>> import torch
        >>> module = torch.nn.ConvTranspose1d(4, 2, kernel_size=4, stride=2, padding=1)
        >>> layer = from_torch(module)
        >>> layer.padding, layer.output_padding
        ('same', None)
        >>> x = torch.randn(1, 4, 5)
        >>> bool(torch.allclose(layer(x), module(x)))
        True
    """
    rank = next((r for r, cls in _TORCH_MODULES.items() if type(module) is cls), None)
    if rank is None:
        raise ValueError(
            "Expected a torch.nn.ConvTranspose1d, 2d or 3d. "
            f"Received: module={type(module).__name__}"
        )
    if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise ValueError(
            "Keras's transposed convolutions have no groups and pad with zeros only. "
            f"Received: groups={module.groups}, padding_mode={module.padding_mode!r}, "
            f"padding={module.padding!r}"
        )
    padding, output_padding = _keras_padding(module)
    weight = module.weight.detach()
    layer = _CONVT_LAYERS[rank](
        module.out_channels, module.kernel_size, strides=module.stride, padding=padding,
        output_padding=output_padding, data_format="channels_first",
        dilation_rate=module.dilation, use_bias=module.bias is not None,
        input_shape=(module.in_channels,) + (None,) * rank, **kwargs,
    )
    # The parameters take the module's dtype (the policy follows), unless the caller asked
    # for a dtype policy of their own.
    layer.to(weight.device, None if "dtype" in kwargs else weight.dtype)
    weights = [from_torch_kernel(weight, rank)]
    if module.bias is not None:
        weights.append(module.bias.detach())
    for variable, value in zip(layer.weights, weights):
        variable.assign(value)
    return layer
