"""MAML (Finn et al. 2017): second-order by default; ``first_order=True`` is FOMAML.

Every parameter adapts with ``inner_steps`` SGD steps of rate ``inner_lr`` on the task's support windows;
the outer loop minimizes the query loss of the adapted parameters. With the MAML++ options of
:class:`~fewcast.learners.base.GradientLearner` (multi-step loss, learned per-layer per-step rates,
derivative-order annealing).

Unlike the seed experiment's code, the inner gradient here is taken with the graph kept
(``torch.func.grad`` composes with autograd), so the meta-gradient has its second-order terms, and the
loss after adaptation is measured on query windows that come after the support in time.
"""

from __future__ import annotations

from fewcast.learners.base import GradientLearner


class MAML(GradientLearner):
    """``MAML(model, inner_lr=0.01, inner_steps=1, first_order=False, loss="mse", ...)``.

    >>> learner = MAML(build_model("mlp", 30, 1), inner_lr=0.01, inner_steps=1)
    >>> loss = learner.meta_loss(x_spt, y_spt, x_qry, y_qry)   # scalar, second-order
    >>> params = learner.adapt(x_spt, y_spt)                  # dict, leading task axis
    """
