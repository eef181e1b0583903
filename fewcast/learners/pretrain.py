"""Conventional training as a learner: the network fitted to every window of the batch, no inner loop.

This is the ``pretrained`` baseline (and the starting point of meta-training when ``init="pretrained"``).
Written as a learner with zero inner steps, so that it shares the outer loop, validation, early stopping
and logging with the meta-learners; its ``adapt`` returns the weights unchanged (a zero-shot forecast).
"""

from __future__ import annotations

import torch
from torch import nn

from fewcast.learners.base import GradientLearner


class Pretrain(GradientLearner):
    """``Pretrain(model, loss="mse")``: minimize the mean loss over the support and query windows."""

    def __init__(self, model: nn.Module, loss: str = "mse", **_ignored):
        super().__init__(model, inner_lr=0.0, inner_steps=0, loss=loss)

    def meta_backward(self, x_spt, y_spt, x_qry, y_qry, m_spt=None) -> torch.Tensor:
        x = torch.cat([x_spt.flatten(0, 1), x_qry.flatten(0, 1)])  # (windows, input_size)
        y = torch.cat([y_spt.flatten(0, 1), y_qry.flatten(0, 1)])  # (windows, h)
        if m_spt is None:
            m_spt = x_spt.new_ones(x_spt.shape[:2])
        weight = torch.cat([m_spt.flatten(), x_qry.new_ones(x_qry.shape[0] * x_qry.shape[1])])  # (windows,)
        per_window = self.window_losses(self.model(x), y, x)  # (windows,) or (members, windows)
        loss = ((per_window * weight).sum(-1) / weight.sum().clamp(min=1)).mean()  # averaged over members
        loss.backward()
        return loss.detach()
