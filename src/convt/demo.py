"""The main job: transposed convolution upsampling a real picture, and why it checkers.

Run it with ``python -m convt demo`` (or ``make demo``). It needs matplotlib,
which also ships the picture used (``grace_hopper.jpg``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convt import ops
from convt.layers import Conv2DTranspose


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """A ``(size, size, channels, channels)`` kernel that upsamples each channel bilinearly.

    With ``strides = size // 2`` and ``padding="same"`` (``size`` even) the
    layer interpolates linearly between input pixels, channel by channel.

    Example:
        >>> bilinear_kernel(4, 1)[:, 0, 0, 0]
        array([0.0625, 0.1875, 0.1875, 0.0625])
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - center) / factor
    kernel = np.zeros((size, size, channels, channels))
    for channel in range(channels):
        kernel[:, :, channel, channel] = np.outer(ramp, ramp)
    return kernel


MIN_SIDE, MAX_SIDE = 8, 512
"""The sides the demo takes: the sample photograph is 600 x 512 pixels."""


def load_picture(side: int) -> np.ndarray:
    """matplotlib's sample photograph, box-downsampled to ``(1, side, side, 3)`` in [0, 1].

    Raises:
        ValueError: for a side outside ``MIN_SIDE..MAX_SIDE``.
    """
    if not MIN_SIDE <= side <= MAX_SIDE:
        raise ValueError(
            f"Expected `side` from {MIN_SIDE} to {MAX_SIDE} (the sample photograph's shorter "
            f"side). Received: side={side}"
        )
    from matplotlib import cbook
    from matplotlib import image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as file:
        picture = mpimg.imread(file, format="jpg").astype(np.float32) / 255.0
    crop = min(picture.shape[:2]) // side * side
    picture = picture[:crop, :crop, :3]
    block = crop // side
    small = picture.reshape(side, block, side, block, 3).mean(axis=(1, 3))
    return small[None]


@dataclass
class DemoResult:
    """What the demo computed, for printing and for tests."""

    picture: np.ndarray
    bilinear: np.ndarray
    uneven: np.ndarray
    overlap: np.ndarray
    seconds: float


def run(side: int = 96) -> DemoResult:
    """Upsamples the picture 2x twice (bilinear k=4, and box k=3) and counts overlaps."""
    start = time.perf_counter()
    picture = load_picture(side)
    bilinear = Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False)
    bilinear.build(picture.shape)
    bilinear.set_weights([bilinear_kernel(4, 3)])
    uneven = Conv2DTranspose(3, 3, strides=2, padding="same", use_bias=False)
    uneven.build(picture.shape)
    uneven.set_weights([np.eye(3)[None, None] * np.ones((3, 3, 1, 1)) / 4.0])
    overlap = ops.conv_transpose(
        np.ones((1, side, side, 1), np.float32), np.ones((3, 3, 1, 1), np.float32),
        strides=2, padding="same",
    )
    return DemoResult(
        picture=picture[0],
        bilinear=bilinear(picture)[0],
        uneven=uneven(picture)[0],
        overlap=overlap[0, :, :, 0],
        seconds=time.perf_counter() - start,
    )


def save_figure(result: DemoResult, path: Path) -> None:
    """Writes the four panels side by side as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    panels = [
        (result.picture, f"input {result.picture.shape[0]}x{result.picture.shape[1]}"),
        (result.bilinear, "Conv2DTranspose k=4 s=2, bilinear kernel"),
        (result.uneven, "Conv2DTranspose k=3 s=2, box kernel"),
        (result.overlap, "taps per output pixel, k=3 s=2"),
    ]
    for axis, (image, title) in zip(axes, panels):
        shown = np.clip(image, 0.0, 1.0) if image.ndim == 3 else image
        axis.imshow(shown, interpolation="nearest", cmap=None if image.ndim == 3 else "magma")
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    zoom = axes[3].inset_axes([0.62, 0.62, 0.36, 0.36])
    zoom.imshow(result.overlap[:8, :8], interpolation="nearest", cmap="magma")
    for (row, col), value in np.ndenumerate(result.overlap[:8, :8]):
        zoom.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=6, color="cyan")
    zoom.set_xticks([])
    zoom.set_yticks([])
    figure.suptitle("convt: transposed convolution upsampling, and the checkerboard of k % s != 0")
    figure.tight_layout()
    figure.savefig(path, dpi=80, format="png")
    plt.close(figure)


def main(output: str = "convt_demo.png", side: int = 96) -> Path:
    """Runs the demo, writes the PNG and prints what it did."""
    result = run(side)
    path = Path(output)
    save_figure(result, path)
    counts, frequency = np.unique(result.overlap, return_counts=True)
    print(f"input picture        {result.picture.shape}")
    print(f"bilinear k=4, s=2 -> {result.bilinear.shape}  (smooth: every pixel gets 4 taps)")
    print(f"box k=3, s=2      -> {result.uneven.shape}  (checkerboard)")
    print("taps per pixel, k=3 s=2: " + ", ".join(
        f"{c:.0f} taps x {n}" for c, n in zip(counts, frequency)))
    print(f"computed in {result.seconds:.2f} s; wrote {path.resolve()}")
    return path
