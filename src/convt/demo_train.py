"""The main job, part two: train a digit generator of Conv2DTranspose layers in PyTorch.

A conditional autoencoder on scikit-learn's 8x8 handwritten digits (shipped
inside scikit-learn, no download): an encoder squeezes each image to a
4-number style code, and the generator, ``[style, one-hot label] -> dense ->
2x2x128 -> Conv2DTranspose 4x4x64 -> Conv2DTranspose 8x8x1``, draws the digit
back. Afterwards the generator draws every label with the average style, a
digit it was never shown. A fixed seed and torch's deterministic algorithms
make the same seed give the same picture. Needs the ``demo`` extra (torch,
scikit-learn, matplotlib).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STYLE = 4
BATCH = 64
LEARNING_RATE = 3e-3


@dataclass
class TrainResult:
    """What the training demo produced, for printing, pictures and tests."""

    losses: list[float]
    originals: np.ndarray
    reconstructions: np.ndarray
    generated: np.ndarray
    seconds: float


def load_digits_tensors():
    """scikit-learn's digits as ``(images (n, 8, 8, 1) in [0, 1], labels (n,))`` tensors."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(-1)
    return images, torch.tensor(digits.target)


def build_models():
    """(encoder, generator); the generator's upsampling is two convt.torch layers."""
    import torch

    import convt.torch as ct

    encoder = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, STYLE)
    )
    generator = torch.nn.Sequential(
        torch.nn.Linear(STYLE + 10, 2 * 2 * 128),
        torch.nn.ReLU(),
        torch.nn.Unflatten(1, (2, 2, 128)),
        ct.Conv2DTranspose(64, 3, 2, "same", activation="relu", input_shape=(2, 2, 128)),
        ct.Conv2DTranspose(1, 4, 2, "same", activation="sigmoid", input_shape=(4, 4, 64)),
    )
    return encoder, generator


def _batches(count: int, steps: int, generator) -> Iterator:
    """``steps`` index batches of ``BATCH``, reshuffled each epoch by ``generator``."""
    import torch

    order = torch.randperm(count, generator=generator)
    position = 0
    for _ in range(steps):
        if position + BATCH > count:
            order, position = torch.randperm(count, generator=generator), 0
        yield order[position : position + BATCH]
        position += BATCH


def _progress(step: int, steps: int, loss: float, start: float) -> None:
    """One line, redrawn in place: a bar, the step, the loss and the time."""
    done = int(30 * step / steps)
    sys.stdout.write(
        f"\r  [{'#' * done}{'.' * (30 - done)}] step {step:>5}/{steps}  "
        f"loss {loss:.4f}  {time.perf_counter() - start:5.1f} s"
    )
    sys.stdout.flush()


def train(steps: int, *, seed: int = 0, report: bool = False) -> TrainResult:
    """Trains the encoder and generator for ``steps`` Adam steps on the digits.

    Args:
        steps: optimizer steps (batches of 64).
        seed: the seed of torch's generator (initial weights and batches).
        report: draw a progress bar and print the loss ten times as it falls.

    Returns:
        The mean squared error of every step, ten originals (one per label),
        their reconstructions, and the ten digits generated from the average style.
    """
    import torch
    import torch.nn.functional as F

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        start = time.perf_counter()
        torch.manual_seed(seed)
        images, labels = load_digits_tensors()
        encoder, generator = build_models()
        one_hot = F.one_hot(labels, 10).float()
        parameters = [*encoder.parameters(), *generator.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=LEARNING_RATE)
        shuffle = torch.Generator().manual_seed(seed)
        losses = []
        for step, index in enumerate(_batches(len(images), steps, shuffle), start=1):
            style = encoder(images[index])
            drawn = generator(torch.cat([style, one_hot[index]], dim=1))
            loss = F.mse_loss(drawn, images[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if report and (step % max(1, steps // 200) == 0 or step == steps):
                _progress(step, steps, losses[-1], start)
                if step % max(1, steps // 10) == 0:
                    print()
        with torch.no_grad():
            firsts = torch.stack([torch.nonzero(labels == d)[0, 0] for d in range(10)])
            styles = encoder(images)
            mean_style = styles.mean(0, keepdim=True).expand(10, STYLE)
            reconstructions = generator(torch.cat([styles[firsts], one_hot[firsts]], dim=1))
            generated = generator(torch.cat([mean_style, torch.eye(10)], dim=1))
        return TrainResult(
            losses=losses,
            originals=images[firsts, ..., 0].numpy(),
            reconstructions=reconstructions[..., 0].numpy(),
            generated=generated[..., 0].numpy(),
            seconds=time.perf_counter() - start,
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def mosaic(rows: list[np.ndarray], gap: int = 1) -> np.ndarray:
    """Rows of ``(10, 8, 8)`` images tiled into one picture, ``gap`` blank pixels between.

    Example:
        >>> mosaic([np.ones((10, 8, 8))] * 3).shape
        (26, 89)
    """
    count, height, width = rows[0].shape
    picture = np.zeros((len(rows) * (height + gap) - gap, count * (width + gap) - gap))
    for row, images in enumerate(rows):
        for column, image in enumerate(images):
            top, left = row * (height + gap), column * (width + gap)
            picture[top : top + height, left : left + width] = image
    return picture


def save_figure(result: TrainResult, path: Path) -> None:
    """The digits (real, redrawn, generated from the label alone) and the loss curve, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (digits, curve) = plt.subplots(
        1, 2, figsize=(14, 4.4), gridspec_kw={"width_ratios": [3.2, 1]}
    )
    picture = mosaic([result.originals, result.reconstructions, result.generated])
    digits.imshow(picture, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    digits.set_xticks([3.5 + 9 * d for d in range(10)], [str(d) for d in range(10)])
    digits.set_yticks([3.5, 12.5, 21.5], ["real", "redrawn", "from label"])
    digits.set_title("8x8 digits: real, redrawn from style + label, drawn from the label alone")
    curve.plot(np.arange(1, len(result.losses) + 1), result.losses, linewidth=0.6)
    curve.set_yscale("log")
    curve.set_xlabel("step")
    curve.set_title("mean squared error")
    figure.suptitle("convt.torch: a generator of two Conv2DTranspose layers, trained on the CPU")
    figure.tight_layout()
    figure.savefig(path, dpi=80, format="png")
    plt.close(figure)


def main(output: str = "convt_digits.png", steps: int = 4000, seed: int = 0) -> Path | None:
    """Trains with a progress bar, writes the PNG and prints what it did.

    Returns None (after saying why) when torch or scikit-learn is missing.
    """
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        print(f"skipping the training demo ({error.name} is missing): "
              "pip install 'convt[demo]' or run `make demo`")
        return None
    print(f"training a digit generator (Conv2DTranspose x2, convt.torch) for {steps} steps")
    result = train(steps, seed=seed, report=True)
    path = Path(output)
    save_figure(result, path)
    first, last = result.losses[0], float(np.mean(result.losses[-20:]))
    print(f"loss {first:.4f} -> {last:.4f} in {result.seconds:.1f} s; wrote {path.resolve()}")
    return path
