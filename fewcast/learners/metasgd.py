"""Meta-SGD (Li et al. 2017): a learned inner learning rate for every parameter element.

The rates start at ``inner_lr`` and are meta-learned with the weights by the same outer optimizer. A rate
can learn to be zero (or negative), so a direction that adaptation would only spoil can be switched off:
Meta-SGD can never be forced to do worse after adaptation than the initialization it learns.
"""

from __future__ import annotations

import torch
from torch import nn

from fewcast.learners.base import GradientLearner, _key


class MetaSGD(GradientLearner):
    """``MetaSGD(model, inner_lr=0.01, inner_steps=1, ...)``; the rates live in ``learner.lrs``."""

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1, **options):
        options.pop("learn_inner_lr", None)  # the per-element rates replace the per-layer ones
        super().__init__(model, inner_lr, inner_steps, **options)
        params = dict(model.named_parameters())
        self.lrs = nn.ParameterDict(
            {_key(n): nn.Parameter(torch.full_like(params[n].detach(), self.inner_lr_init)) for n in self.adapt_names}
        )

    def inner_lr(self, name: str, step: int):
        return self.lrs[_key(name)]
