"""convt's building blocks on torch tensors: activations, regularizers, constraints.

The layers keep the convt objects (for ``get_config``) and compute with their
torch counterparts found here, so that outputs, penalties and projections stay
differentiable tensors on the weights' device. Each counterpart follows the
NumPy definition in :mod:`convt.activations`, :mod:`convt.regularizers` and
:mod:`convt.constraints`. A callable that is not one of convt's built-ins is
used as it is and must take and return torch tensors.

Example:
    >>> import torch
    >>> from convt import activations
    >>> torch_activation(activations.get("leaky_relu"))(torch.tensor([-1.0, 2.0]))
    tensor([-0.2000,  2.0000])
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from convt import activations as A
from convt import constraints as C
from convt import regularizers as R

TensorFunction = Callable[[torch.Tensor], torch.Tensor]

_EPSILON = 1e-7  # keras.backend.epsilon(), as in convt.constraints


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x / 6 + 0.5, 0, 1)


def _hard_silu(x: torch.Tensor) -> torch.Tensor:
    return x * _hard_sigmoid(x)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(x, torch.zeros_like(x))


def _sparse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(0.5 * (x + 1), 0, 1)


def _squareplus(x: torch.Tensor) -> torch.Tensor:
    return (x + torch.sqrt(x * x + 4)) / 2


def _sparse_plus(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= -1, 0, torch.where(x < 1, 0.25 * (x + 1) ** 2, x))


def _glu(x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] % 2:
        raise ValueError(
            "Expected the size of `axis` to be divisible by 2. "
            f"Received: x.shape={tuple(x.shape)} with axis=-1"
        )
    return F.glu(x, dim=-1)


_ACTIVATIONS: dict[Any, TensorFunction] = {
    A.linear: _identity,
    A.relu: torch.relu,
    A.leaky_relu: partial(F.leaky_relu, negative_slope=0.2),
    A.relu6: partial(torch.clamp, min=0, max=6),
    A.sigmoid: torch.sigmoid,
    A.tanh: torch.tanh,
    A.softmax: partial(torch.softmax, dim=-1),
    A.log_softmax: partial(torch.log_softmax, dim=-1),
    A.gelu: F.gelu,
    A.elu: F.elu,
    A.selu: torch.selu,
    A.softplus: _softplus,
    A.softsign: F.softsign,
    A.silu: F.silu,
    A.hard_sigmoid: _hard_sigmoid,
    A.hard_silu: _hard_silu,
    A.hard_tanh: partial(torch.clamp, min=-1, max=1),
    A.exponential: torch.exp,
    A.mish: F.mish,
    A.tanh_shrink: F.tanhshrink,
    A.celu: F.celu,
    A.glu: _glu,
    A.log_sigmoid: F.logsigmoid,
    A.sparse_sigmoid: _sparse_sigmoid,
    A.sparse_plus: _sparse_plus,
    A.squareplus: _squareplus,
    A.soft_shrink: partial(F.softshrink, lambd=0.5),
    A.hard_shrink: partial(F.hardshrink, lambd=0.5),
}


def torch_activation(activation: Callable[..., Any]) -> TensorFunction:
    """The torch function computing a convt activation; a user's callable is checked on use.

    Raises:
        ValueError: for a NumPy function, which cannot compute on tensors.
    """
    if activation in _ACTIVATIONS:
        return _ACTIVATIONS[activation]
    if getattr(activation, "__module__", "").split(".")[0] in ("numpy", "convt"):
        raise ValueError(
            "Expected an activation that computes on torch tensors: a convt activation "
            f"name or a torch function. Received: activation={activation!r}"
        )
    return _TensorsOnly(activation, "activation")


def _l1_l2(regularizer: R.L1L2, weight: torch.Tensor) -> torch.Tensor:
    penalty = weight.new_zeros(())
    if regularizer.l1:
        penalty = penalty + regularizer.l1 * weight.abs().sum()
    if regularizer.l2:
        penalty = penalty + regularizer.l2 * weight.square().sum()
    return penalty


def torch_regularizer(regularizer: Any) -> TensorFunction | None:
    """A function from a weight tensor to its differentiable penalty (a 0-d tensor).

    An ``OrthogonalRegularizer`` never comes here: the layers refuse it when they are made
    (:func:`convt.regularizers.refuse_for_conv_transpose`).
    """
    if regularizer is None:
        return None
    if isinstance(regularizer, R.L1L2):
        return partial(_l1_l2, regularizer)
    return _TensorsOnly(regularizer, "regularizer")


def _non_negative(weight: torch.Tensor) -> torch.Tensor:
    return weight.clamp_min(0)


def _rescale_norms(
    weight: torch.Tensor, axis: Any, *, min_value: float, max_value: float, rate: float
) -> torch.Tensor:
    norms = weight.square().sum(dim=axis, keepdim=True).sqrt()
    desired = rate * norms.clamp(min_value, max_value) + (1 - rate) * norms
    return weight * desired / (_EPSILON + norms)


def torch_constraint(constraint: Any) -> TensorFunction | None:
    """A function from a weight tensor to its projection, a tensor of the same shape."""
    if constraint is None:
        return None
    if isinstance(constraint, C.NonNeg):
        return _non_negative
    bounds = {
        C.MaxNorm: lambda c: (0.0, c.max_value, 1.0),
        C.MinMaxNorm: lambda c: (c.min_value, c.max_value, c.rate),
        C.UnitNorm: lambda c: (1.0, 1.0, 1.0),
    }.get(type(constraint))
    if bounds is None:
        return _TensorsOnly(constraint, "constraint")
    low, high, rate = bounds(constraint)
    return partial(_rescale_norms, axis=constraint.axis, min_value=low, max_value=high, rate=rate)


class _TensorsOnly:
    """A user's callable, with a clear error when it does not return a torch tensor.

    An object rather than a closure, so that a layer holding one pickles. A
    constraint gets the weight detached from autograd (it is a projection
    applied between steps), so that a NumPy function fails with this error
    too rather than on a parameter that requires grad.
    """

    def __init__(self, function: Callable[..., Any], argument: str) -> None:
        self.function = function
        self.argument = argument

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        result = self.function(x.detach() if self.argument == "constraint" else x)
        if not isinstance(result, torch.Tensor):
            raise TypeError(
                f"Expected the {self.argument} of a convt.torch layer to take and return torch "
                f"tensors (use a convt built-in by name, or a torch function). "
                f"Received: {self.argument}={self.function!r} returning {type(result).__name__}"
            )
        return result
