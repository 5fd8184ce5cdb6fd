"""The named benchmark cases: real models' layers and slowdowns users reported.

Every case is channels_last with Keras arguments. ``Case.tiny()`` shrinks a
case so that CI can run every one of them with the correctness check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from convt._shapes import plan_conv_transpose


@dataclass(frozen=True)
class Case:
    """One transposed convolution to time."""

    name: str
    input_shape: tuple[int, ...]
    filters: int
    kernel_size: int
    strides: int
    padding: str
    output_padding: int | None = None
    dilation_rate: int = 1

    @property
    def rank(self) -> int:
        return len(self.input_shape) - 2

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return (*(self.kernel_size,) * self.rank, self.filters, self.input_shape[-1])

    @property
    def op_kwargs(self) -> dict:
        """Keyword arguments of ``convt.ops.conv_transpose`` for this case."""
        return dict(strides=self.strides, padding=self.padding,
                    output_padding=self.output_padding, dilation_rate=self.dilation_rate)

    @property
    def output_shape(self) -> tuple[int, ...]:
        _, shape = plan_conv_transpose(self.input_shape, self.kernel_shape, **self.op_kwargs)
        return shape

    @property
    def useful_flops(self) -> int:
        """2 * N * prod(in_spatial) * C_in * C_out * prod(kernel)."""
        batch, *spatial, channels = self.input_shape
        return (2 * batch * math.prod(spatial) * channels * self.filters
                * self.kernel_size**self.rank)

    def arrays(self, seed: int = 0, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
        """Random inputs and kernel for this case."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.input_shape).astype(dtype)
        w = (rng.standard_normal(self.kernel_shape) / math.sqrt(
            self.input_shape[-1] * self.kernel_size**self.rank)).astype(dtype)
        return x, w

    def tiny(self) -> Case:
        """The same arguments on a batch of 1, short spatial axes and few channels.

        Kernels longer than 16 shrink together with their stride, keeping the ratio.
        """
        batch, *spatial, channels = self.input_shape
        shrink = max(1, self.kernel_size // 16)
        return replace(
            self,
            input_shape=(1, *(min(n, 5) for n in spatial), min(channels, 4)),
            filters=min(self.filters, 3),
            kernel_size=self.kernel_size // shrink,
            strides=max(1, self.strides // shrink),
        )


CASES = {
    case.name: case
    for case in [
        Case("keras_doc", (4, 10, 8, 128), 32, 2, 2, "valid"),
        Case("dcgan_s1", (16, 7, 7, 256), 128, 5, 1, "same"),
        Case("dcgan_s2", (16, 7, 7, 128), 64, 5, 2, "same"),
        Case("dcgan_out", (16, 14, 14, 64), 1, 5, 2, "same"),
        Case("unet_up", (8, 32, 32, 256), 128, 2, 2, "valid"),
        Case("unet_same", (8, 32, 32, 128), 64, 3, 2, "same"),
        Case("conv_ae", (32, 7, 7, 64), 32, 3, 2, "same"),
        Case("outpad", (8, 15, 15, 64), 32, 3, 2, "valid", output_padding=1),
        Case("stride1_same", (8, 32, 32, 64), 64, 3, 1, "same"),
        Case("dilated", (4, 32, 32, 32), 32, 3, 1, "valid", dilation_rate=2),
        Case("melgan_up", (1, 200, 512), 256, 16, 8, "same"),
        Case("istft_like", (1, 224, 1026), 1, 1024, 256, "valid"),
        Case("unet3d_up", (1, 16, 16, 16, 128), 64, 2, 2, "valid"),
        Case("vnet3d_same", (1, 16, 16, 16, 64), 32, 3, 2, "same"),
        Case("big_2d", (1, 128, 128, 64), 64, 4, 2, "same"),
    ]
}
