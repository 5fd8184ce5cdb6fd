"""convt's layers as ``torch.nn.Module``s: Keras-exact transposed convolutions in PyTorch.

Importing this package imports torch. ``convt.ops.conv_transpose`` also takes
torch tensors directly, without this package.

Example:
    >>> import torch
    >>> import convt.torch as ct
    >>> layer = ct.Conv2DTranspose(8, 3, strides=2, padding="same")
    >>> layer(torch.zeros(2, 5, 5, 4)).shape
    torch.Size([2, 10, 10, 8])
    >>> layer.kernel.shape
    torch.Size([3, 3, 8, 4])
"""

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised without torch installed
    raise ImportError(
        "convt.torch needs PyTorch. Install it with `pip install torch` "
        "(convt is tested with torch==2.13.0)."
    ) from error

from convt.torch.convert import from_torch, to_torch
from convt.torch.layers import ConvTranspose
from convt.torch.ranks import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
)
from convt.torch.training import register_constraints

__all__ = [
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "ConvTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "from_torch",
    "register_constraints",
    "to_torch",
]
