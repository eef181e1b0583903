"""ANIL (Raghu et al. 2020): almost no inner loop. Only the head adapts; the body is shared.

The head is what the model declares in ``head_prefixes`` (the built-in models do; for another module,
its last layer). The body still learns in the outer loop, through the meta-gradient of the head's
adaptation. Cheaper than MAML, and often as good when tasks differ mainly in scale and final mapping.
"""

from __future__ import annotations

from torch import nn

from fewcast.learners.base import GradientLearner


class ANIL(GradientLearner):
    """``ANIL(model, inner_lr=0.1, inner_steps=5, ...)``: MAML restricted to the model's head."""

    def __init__(self, model: nn.Module, inner_lr: float = 0.1, inner_steps: int = 5, **options):
        options["adapt_params"] = "head"
        super().__init__(model, inner_lr, inner_steps, **options)
