"""Fuzz convt's torch op against its NumPy backend on this machine's CPU kernels.

torch's CPU kernels differ by host (oneDNN picks AVX-512 or AVX2 code at run time), and
the torch bugs that convt works around were found by such fuzzes (docs/architecture.md,
end of "The torch backend"). Run it on a new kind of host::

    .venv/bin/python tools/fuzz_torch_op.py --draws 2000 --seed 0

Each draw is a random call: rank 1-3, both data formats, strides, dilations, paddings,
``output_padding``, 1-431 channels (up to 64 in 3-D), 1-64 filters, contiguous,
channels_last or sliced inputs, inference or a training step, float32 (most draws),
float64, float16 or bfloat16. The forward pass is compared with the NumPy backend in
float64, and a training step's input and kernel gradients with the torch op's own float64
ones (torch's native kernels; gradcheck covers those in the test suite). Draws run in
batches, each in a subprocess, so that a torch abort ends only its batch; a batch that
dies is reported with the draw it was on (``tools/fuzzing.py``). Arguments the op refuses
are skipped.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import fuzzing

TOLERANCES = {"float32": 2e-4, "float64": 1e-10, "float16": 1e-2, "bfloat16": 6e-2}
"""Largest error allowed per dtype, relative to the largest magnitude of the float64 result
(the inputs are rounded to the dtype, as well as the sums)."""


def draw(seed: int) -> dict[str, Any]:
    """The arguments of draw ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 4))
    stride = [int(rng.integers(1, 5)) for _ in range(rank)]
    dilation = [1] * rank if max(stride) > 1 or rng.random() < 0.5 else [
        int(rng.integers(1, 4)) for _ in range(rank)]
    largest = (40, 16, 7)[rank - 1]
    return {
        "batch": int(rng.integers(1, 4)),
        "spatial": [int(rng.integers(1, largest)) for _ in range(rank)],
        "channels": int(rng.choice([1, 2, 3, 8, 16, 31, 64, 256, 431][:7 if rank == 3 else 9])),
        "filters": int(rng.choice([1, 2, 3, 4, 7, 8, 16, 33, 64])),
        "kernel": [int(rng.integers(1, 6)) for _ in range(rank)],
        "strides": stride,
        "dilation_rate": dilation,
        "padding": str(rng.choice(["valid", "same"])),
        "output_padding": None if rng.random() < 0.6 else [
            int(rng.integers(0, s)) if s > 1 else 0 for s in stride],
        "data_format": str(rng.choice(["channels_last", "channels_first"])),
        "layout": str(rng.choice(["contiguous", "channels_last_memory", "sliced"])),
        "train": bool(rng.random() < 0.5),
        "dtype": str(rng.choice(list(TOLERANCES), p=[0.61, 0.13, 0.13, 0.13])),
    }


def run_draw(seed: int) -> str | None:
    """None when draw ``seed`` agrees with the references (or is refused), else a message."""
    import numpy as np
    import torch

    import convt

    args = draw(seed)
    rank = len(args["spatial"])
    channels_last = args["data_format"] == "channels_last"
    shape = (args["batch"], *args["spatial"], args["channels"]) if channels_last else (
        args["batch"], args["channels"], *args["spatial"])
    rng = np.random.default_rng(seed)
    x64 = rng.standard_normal(shape)
    w64 = rng.standard_normal((*args["kernel"], args["filters"], args["channels"]))
    call = {key: args[key] for key in
            ("strides", "padding", "output_padding", "data_format", "dilation_rate")}
    try:
        expected = convt.ops.conv_transpose(x64, w64, **call)
    except ValueError:
        return None
    if expected.size == 0:
        return None
    dtype = getattr(torch, args["dtype"])
    x = _laid_out(torch.tensor(x64, dtype=dtype), args["layout"], rank, channels_last)
    w = torch.tensor(w64, dtype=dtype)
    errors = {"forward": fuzzing.relative_error(_run(x, w, call, None)[0], expected)}
    if args["train"]:
        grad = rng.standard_normal(expected.shape)
        _, *grads = _run(x, w, call, torch.tensor(grad, dtype=dtype))
        x64_t = torch.tensor(x64)
        _, *grads64 = _run(x64_t, torch.tensor(w64), call, torch.tensor(grad))
        errors["input gradient"] = fuzzing.relative_error(grads[0], grads64[0].numpy())
        errors["kernel gradient"] = fuzzing.relative_error(grads[1], grads64[1].numpy())
    tolerance = TOLERANCES[args["dtype"]]
    wrong = {name: error for name, error in errors.items() if not error <= tolerance}
    return None if not wrong else f"{json.dumps(args)} {wrong}"


def _laid_out(x, layout: str, rank: int, channels_last: bool):
    """``x`` as a channels_last-memory tensor, a sliced view, or as it is."""
    import torch

    if layout == "channels_last_memory" and rank in (2, 3) and not channels_last:
        return x.contiguous(memory_format=(torch.channels_last, torch.channels_last_3d)[rank - 2])
    if layout == "sliced":
        return torch.stack([x, x], dim=-1)[..., 0]  # every stride doubled
    return x


def _run(x, w, call: dict[str, Any], grad):
    """The op's output, and with ``grad`` the input's and kernel's gradients for it."""
    import convt

    if grad is None:
        return (convt.ops.conv_transpose(x, w, **call).detach().double().numpy(),)
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    out = convt.ops.conv_transpose(x, w, **call)
    out.backward(grad)
    return out.detach(), x.grad.double(), w.grad.double()


def main(argv: list[str] | None = None) -> int:
    return fuzzing.main(argv, __file__, draw, run_draw, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
