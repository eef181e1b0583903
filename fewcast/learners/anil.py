"""ANIL (Raghu et al. 2020): almost no inner loop. Only the head adapts; the body is shared.

The head is what the model declares in ``head_prefixes`` (the built-in models do; for another module,
its last layer). The body still learns in the outer loop, through the meta-gradient of the head's
adaptation. Cheaper than MAML, and often as good when tasks differ mainly in scale and final mapping.
"""

from __future__ import annotations

from fewcast.learners.base import GradientLearner
from fewcast.models import head_names


class ANIL(GradientLearner):
    """``ANIL(model, inner_lr=0.1, inner_steps=5, ...)``: MAML restricted to the model's head."""

    def select_adapted(self, names: list[str]) -> list[str]:
        return head_names(self.model)
