"""Training helpers: Keras's weight constraints after each torch optimizer step."""

from __future__ import annotations

import torch
from torch.utils.hooks import RemovableHandle


def register_constraints(
    optimizer: torch.optim.Optimizer, module: torch.nn.Module
) -> RemovableHandle:
    """Applies the kernel/bias constraints of ``module``'s layers after every ``optimizer.step()``.

    Keras's optimizers project constrained weights after each update; torch's
    do not. This registers an ``Optimizer.register_step_post_hook`` that calls
    ``apply_constraints()`` on every submodule that has one (the convt.torch
    layers, or any module of yours), under ``torch.no_grad``.

    Args:
        optimizer: the optimizer whose steps are followed.
        module: the model (a ``DistributedDataParallel`` wrapper works too).

    Returns:
        A handle whose ``remove()`` stops it.

    Example:
        >>> import torch
        >>> import convt.torch as ct
        >>> layer = ct.Conv1DTranspose(2, 3, kernel_constraint="non_neg", input_shape=(4, 1))
        >>> optimizer = torch.optim.SGD(layer.parameters(), lr=10.0)
        >>> handle = register_constraints(optimizer, layer)
        >>> layer(torch.ones(1, 4, 1)).sum().backward()
        >>> optimizer.step()
        >>> bool((layer.kernel >= 0).all())
        True
    """
    constrained = [m for m in module.modules() if callable(getattr(m, "apply_constraints", None))]

    def apply(*_: object) -> None:
        with torch.no_grad():
            for layer in constrained:
                layer.apply_constraints()

    return optimizer.register_step_post_hook(apply)
