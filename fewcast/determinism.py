"""Bit-for-bit repeatable arithmetic across processes.

Intel MKL (PyTorch's CPU BLAS on x86) picks its kernels lazily, on its first call. When that first call
is already multi-threaded (a meta-batch's batched products), its threads can race through that
initialization and one of them computes the call with another kernel: the process's first meta-gradient
then differs from every later one in its last bits (measured: 15 of 100 fresh processes), so a resumed
run drifted from an uninterrupted one. One small product on the importing thread initializes MKL before
any threads share it.
"""

from __future__ import annotations

import torch


def initialize_blas() -> None:
    """Initialize the CPU BLAS on this thread (a 2 x 2 product: single-threaded, microseconds)."""
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))
