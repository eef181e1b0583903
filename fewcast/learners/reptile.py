"""Reptile (Nichol et al. 2018): move the initialization toward each task's adapted weights.

The inner loop is plain SGD on the support (first-order by nature, no graph kept). The outer update is
written as a gradient, ``meta - mean over tasks of adapted``, into ``.grad``, so the same outer
optimizer (Adam, with clipping and schedules) serves Reptile and the MAML family alike; with plain SGD of
rate ``eps`` it is exactly Reptile's ``meta += eps * (adapted - meta)``.
"""

from __future__ import annotations

import torch
from torch import nn

from fewcast.learners.base import GradientLearner


class Reptile(GradientLearner):
    """``Reptile(model, inner_lr=0.01, inner_steps=5, loss="mse")``."""

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 5, **options):
        options["first_order"] = True
        super().__init__(model, inner_lr, inner_steps, **options)

    def meta_backward(self, x_spt, y_spt, x_qry, y_qry, m_spt=None) -> torch.Tensor:
        """Write ``meta - mean(adapted)`` into ``.grad``; returns the query loss after adaptation."""
        with torch.no_grad():
            adapted = self.adapt(x_spt, y_spt, m_spt)
            for name, p in self.model.named_parameters():
                step = p - adapted[name].mean(0)
                p.grad = step if p.grad is None else p.grad + step
            pred = self.forecast(adapted, x_qry)  # (tasks, query_shots, h)
            return self.loss_fn(pred, y_qry).mean()
