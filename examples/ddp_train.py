"""Train convt.torch layers with DistributedDataParallel, and check it against one process.

Run: ``python examples/ddp_train.py [--steps 5] [--world-size 2] [--dtype float64]``.

Each of ``world_size`` processes (gloo on the CPU, started by
``torch.multiprocessing.spawn``, rendezvous at ``MASTER_ADDR=127.0.0.1`` on a
free port) trains the same small generator on its shard of every global
batch; DDP averages the gradients, so after N steps the weights equal those
of one process trained on the whole global batch. The script trains both ways
and prints the largest weight difference. On several machines, start one
process per device with ``torchrun`` and the same ``train_step`` loop.

Two things matter with convt's lazy layers: build them before wrapping the
model in DDP (here with ``input_shape=``; a dry forward works too) so DDP sees
every parameter, and create the optimizer after that. Constraints are applied
after each step by ``convt.torch.register_constraints``, on every replica alike.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import convt.torch as ct

LATENT = 6
GLOBAL_BATCH = 8


def make_model(dtype: torch.dtype) -> torch.nn.Module:
    """latent -> dense -> 2x2x16 -> Conv2DTranspose 4x4x8 -> Conv2DTranspose 8x8x1, built."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(LATENT, 2 * 2 * 16),
        torch.nn.Unflatten(1, (2, 2, 16)),
        ct.Conv2DTranspose(8, 3, 2, "same", activation="relu", kernel_constraint="max_norm",
                           input_shape=(2, 2, 16)),
        ct.Conv2DTranspose(1, 4, 2, "same", input_shape=(4, 4, 8)),
    ).to(dtype)


def global_batch(step: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's whole batch, the same in every process."""
    generator = torch.Generator().manual_seed(1000 + step)
    latent = torch.randn(GLOBAL_BATCH, LATENT, generator=generator, dtype=dtype)
    target = torch.randn(GLOBAL_BATCH, 8, 8, 1, generator=generator, dtype=dtype)
    return latent, target


def train(model: torch.nn.Module, steps: int, dtype: torch.dtype, *, shard: slice) -> None:
    """SGD with momentum on the mean squared error of this process's shard of each batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ct.register_constraints(optimizer, model)
    for step in range(steps):
        latent, target = global_batch(step, dtype)
        optimizer.zero_grad()
        loss = (model(latent[shard]) - target[shard]).square().mean()
        loss.backward()
        optimizer.step()


def _train_replica(rank: int, world_size: int, steps: int, dtype: torch.dtype) -> dict:
    model = DistributedDataParallel(make_model(dtype))
    per_rank = GLOBAL_BATCH // world_size
    train(model, steps, dtype, shard=slice(rank * per_rank, (rank + 1) * per_rank))
    return {name: value.detach().clone() for name, value in model.module.state_dict().items()}


def _worker(rank: int, world_size: int, port: int, steps: int, dtype: str, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        weights = _train_replica(rank, world_size, steps, getattr(torch, dtype))
        # The DDP wrapper (and the optimizer hooks that refer to it) must be gone before the
        # group is: gloo aborts the process when it is torn down at interpreter exit instead.
        gc.collect()
        if rank == 0:
            torch.save(weights, out)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_distributed(steps: int, world_size: int = 2, dtype: str = "float64") -> dict:
    """Weights after ``steps`` DDP steps in ``world_size`` processes (rank 0's copy)."""
    if GLOBAL_BATCH % world_size:
        raise ValueError(
            f"Expected `world_size` to divide the global batch of {GLOBAL_BATCH}. "
            f"Received: world_size={world_size}"
        )
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "weights.pt")
        torch.multiprocessing.spawn(
            _worker, args=(world_size, free_port(), steps, dtype, out), nprocs=world_size
        )
        return torch.load(out)


def train_single(steps: int, dtype: str = "float64") -> dict:
    """Weights after ``steps`` steps of one process on the whole global batch."""
    model = make_model(getattr(torch, dtype))
    train(model, steps, getattr(torch, dtype), shard=slice(None))
    return model.state_dict()


def max_difference(first: dict, second: dict) -> float:
    return max((first[k] - second[k]).abs().max().item() for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = parser.parse_args()
    distributed = train_distributed(args.steps, args.world_size, args.dtype)
    single = train_single(args.steps, args.dtype)
    print(f"{args.world_size} processes vs 1 after {args.steps} steps: "
          f"largest weight difference {max_difference(distributed, single):.3g}")


if __name__ == "__main__":
    main()
