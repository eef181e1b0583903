"""Data-parallel meta-training on PyTorch's own engine (``torch.distributed``).

Launched with ``torchrun --nproc_per_node N -m fewcast train ...`` (multi-node through torchrun's usual
rendezvous flags). Every rank holds the same weights, samples its own share of the meta-batch with its own
seeded generator, and the meta-gradients are averaged with one all-reduce before the (identical) outer
step; rank 0 alone logs, evaluates and writes checkpoints. Backend: ``nccl`` on CUDA, ``gloo`` on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(device: torch.device | str = "cpu") -> Dist | None:
    """Join the process group that torchrun describes in the environment; None when not launched so."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    if not dist.is_initialized():
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size())


def shutdown(wait: bool = True) -> None:
    """Leave the process group, if this process joined one. After a run that succeeded (``wait``) the ranks
    first wait for each other: a gloo group torn down while a peer still uses its connection, or left to
    interpreter shutdown, can abort the process (exit -6, "terminate called without an active exception").
    After a failure there is no barrier, which the other ranks might never reach."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def average_gradients(params: list[torch.Tensor], world: int) -> None:
    """Replace each parameter's ``.grad`` by its mean over the ranks (one all-reduce of a flat buffer)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (total parameters,)
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g).clone()
        offset += n


def average_scalar(value: float, device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / dist.get_world_size()


def any_rank(flag: bool, device) -> bool:
    """True on every rank when the flag is set on any (so that all ranks stop at the same iteration)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather(obj) -> list:
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank."""
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)
