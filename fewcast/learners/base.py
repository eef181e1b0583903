"""The shared core of the gradient-based meta-learners: one inner loop, vectorized over tasks.

A task's inner loop takes ``inner_steps`` SGD steps on its support windows, starting from the model's
parameters; the meta-loss is the query loss of the adapted parameters, averaged over tasks. Everything is
written per task and mapped over the task axis with ``torch.func.vmap``; the inner gradient is
``torch.func.grad``, which stays differentiable with respect to the model's parameters, so
``meta_loss(...).backward()`` gives the exact second-order meta-gradient (``first_order=True`` detaches
the inner gradients: FOMAML).

Options shared by MAML, ANIL and Meta-SGD (MAML++, Antoniou et al. 2019):

- ``multi_step_loss``: the meta-loss weighs the query loss after every inner step, with weights annealed
  toward the last step over ``msl_iterations`` outer iterations;
- ``learn_inner_lr``: a learned inner learning rate per parameter tensor (layer) and per step (LSLR);
- ``first_order_iterations``: derivative-order annealing, first-order for the first N iterations;
- ``adapt_params="head"``: adapt only the model's head (ANIL's restriction, available to every learner).

With an :class:`~fewcast.models.Ensemble` model, predictions carry a leading member axis: the inner loop
sums the members' support losses (each member's gradient is its own, so each adapts as if alone), the
meta-loss averages them, and :meth:`GradientLearner.forecast` returns the members' mean forecast. A member
that works on logs (``ensemble_transforms``) is scored against the log of the scaled targets, a ``last``
member against the targets minus the window's last input.

The outer learning-rate schedule (cosine annealing) belongs to :class:`~fewcast.learners.MetaTrainer`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from fewcast.errors import InputError
from fewcast.models import Ensemble, head_names


def _mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((pred - y) ** 2).mean(-1)


def _mae(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred - y).abs().mean(-1)


def _smape(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (2 * (pred - y).abs() / (pred.abs() + y.abs() + 1e-8)).mean(-1)


LOSSES = {"mse": _mse, "mae": _mae, "smape": _smape}


def window_loss(name: str):
    """Per-window loss ``(..., h), (..., h) -> (...)`` by name: ``mse``, ``mae`` or ``smape``."""
    if name not in LOSSES:
        raise InputError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def _key(name: str) -> str:
    """Parameter names as ParameterDict keys ('.' is not allowed there)."""
    return name.replace(".", "__")


class GradientLearner(nn.Module):
    """MAML-family learner: adapt ``adapt_names`` by SGD on the support, score the query.

    Subclasses choose which parameters adapt (:meth:`select_adapted`) and how the inner learning rate is
    made (:meth:`inner_lr`); the inner loop, the vectorization and the meta-loss are shared.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        loss: str = "mse",
        multi_step_loss: bool = False,
        msl_iterations: int = 100,
        learn_inner_lr: bool = False,
        first_order_iterations: int = 0,
        adapt_params: str = "all",
    ):
        super().__init__()
        if adapt_params not in ("all", "head"):
            raise InputError(f"adapt_params must be 'all' or 'head' (got {adapt_params!r})")
        if inner_steps < 0:
            raise InputError(f"inner_steps must be 0 or more (got {inner_steps})")
        self.model = model
        self.inner_lr_init = float(inner_lr)
        self.inner_steps = int(inner_steps)
        self.first_order = bool(first_order)
        self.loss_name = loss
        self.loss_fn = window_loss(loss)
        self.multi_step_loss = bool(multi_step_loss)
        self.msl_iterations = int(msl_iterations)
        self.first_order_iterations = int(first_order_iterations)
        self.iteration = 0  # the outer iteration, set by the trainer (annealing schedules read it)
        self._compiled = None
        self.adapt_params = adapt_params
        names = [n for n, _ in model.named_parameters()]
        self.adapt_names = self.select_adapted(names)
        self.lslr = None
        if learn_inner_lr:
            shapes = max(self.inner_steps, 1)
            self.lslr = nn.ParameterDict(
                {_key(n): nn.Parameter(torch.full((shapes,), self.inner_lr_init)) for n in self.adapt_names}
            )

    # -- what subclasses change ---------------------------------------------------------------------
    def select_adapted(self, names: list[str]) -> list[str]:
        """The parameters the inner loop adapts: all of them, or the model's head with ``adapt_params="head"``."""
        return head_names(self.model) if self.adapt_params == "head" else names

    def inner_lr(self, name: str, step: int):
        """The inner learning rate of parameter ``name`` at inner step ``step`` (scalar or tensor)."""
        if self.lslr is not None:
            return self.lslr[_key(name)][step]
        return self.inner_lr_init

    # -- the per-task pieces (run under vmap) -------------------------------------------------------
    def window_losses(self, pred: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-window losses of the model's outputs ``pred`` for inputs ``x`` against scaled targets ``y``:
        ``(n,)``, or ``(members, n)`` for an ensemble, each member scored in its own space (see
        ``Ensemble.targets``)."""
        if isinstance(self.model, Ensemble):
            y = self.model.targets(y, x)  # (members, n, h) when a member works on logs or changes
        return self.loss_fn(pred, y)

    def _support_loss(self, adapted: dict, fixed: dict, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor):
        pred = functional_call(self.model, {**fixed, **adapted}, (x,))  # (shots, h) or (members, shots, h)
        per_window = self.window_losses(pred, y, x)  # (shots,) or (members, shots)
        return ((per_window * mask).sum(-1) / mask.sum().clamp(min=1)).sum()  # summed over members

    def _query_loss(self, adapted: dict, fixed: dict, x: torch.Tensor, y: torch.Tensor):
        pred = functional_call(self.model, {**fixed, **adapted}, (x,))  # ([members,] query_shots, h)
        return self.window_losses(pred, y, x).mean()  # averaged over members

    def _inner_step(self, adapted, fixed, x_spt, y_spt, m_spt, first_order: bool, step: int) -> dict:
        """One SGD step on the support of one task, at inner step ``step`` (which picks learned rates)."""
        grads = grad(self._support_loss)(adapted, fixed, x_spt, y_spt, m_spt)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        lr_step = min(step, max(self.inner_steps - 1, 0))  # extra steps reuse the last step's rate
        return {n: p - self.inner_lr(n, lr_step) * grads[n] for n, p in adapted.items()}

    def _inner_loop(self, adapted, fixed, x_spt, y_spt, m_spt, first_order: bool, steps: int | None = None):
        """The adapted parameters before and after each inner step, for one task: a list of dicts."""
        trajectory = [adapted]
        for step in range(self.inner_steps if steps is None else steps):
            adapted = self._inner_step(adapted, fixed, x_spt, y_spt, m_spt, first_order, step)
            trajectory.append(adapted)
        return trajectory

    def _predict(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        """One task's forecasts ``(n, h)`` of ``x (n, input_size)``; an ensemble's member mean (of scaled
        values, whatever space each member works in)."""
        pred = functional_call(self.model, params, (x,))  # (n, h) or (members, n, h)
        return self.model.values(pred, x).mean(0) if isinstance(self.model, Ensemble) else pred

    def _split(self) -> tuple[dict, dict]:
        params = dict(self.model.named_parameters())
        params.update(dict(self.model.named_buffers()))
        adapted = {n: params.pop(n) for n in self.adapt_names}
        return adapted, params

    # -- the public API -----------------------------------------------------------------------------
    def use_first_order(self) -> bool:
        return self.first_order or self.iteration < self.first_order_iterations

    def step_weights(self) -> torch.Tensor:
        """Weights of the query losses after steps 1..N (MAML++'s annealed multi-step loss)."""
        n = self.inner_steps
        if not self.multi_step_loss or n <= 1:
            w = torch.zeros(max(n, 1))
            w[-1] = 1.0
            return w
        decay = 1.0 / n / max(self.msl_iterations, 1)
        floor = 0.03 / n
        w = torch.full((n,), 1.0 / n)
        w[:-1] = torch.clamp(w[:-1] - self.iteration * decay, min=floor)
        w[-1] = min(1.0 / n + self.iteration * (n - 1) * decay, 1.0 - (n - 1) * floor)
        return w

    def meta_loss(self, x_spt, y_spt, x_qry, y_qry, m_spt=None) -> torch.Tensor:
        """Mean query loss over tasks after adaptation, differentiable in the model and learned rates.

        ``x_spt (tasks, shots, input_size)``, ``y_spt (tasks, shots, h)``, ``x_qry (tasks, query_shots,
        input_size)``, ``y_qry (tasks, query_shots, h)``; ``m_spt (tasks, shots)`` marks the support
        windows a task really has (1) and padding (0), all 1 by default.
        """
        if m_spt is None:
            m_spt = x_spt.new_ones(x_spt.shape[:2])
        weights = self.step_weights().to(x_spt.device)  # a tensor: its values never trigger a recompile
        args = (x_spt, y_spt, x_qry, y_qry, m_spt, weights, self.use_first_order())
        if self._compiled is not None:
            try:
                return self._compiled(*args)
            except Exception as exc:  # torch.compile cannot handle everything: fall back, once, loudly
                warnings.warn(f"torch.compile failed on the meta-loss ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); running eagerly", stacklevel=2)
                self._compiled = None
        return self._meta_loss(*args)

    def compile(self, **options) -> None:
        """Run the meta-loss through ``torch.compile`` (falls back to eager if it does not compile)."""
        self._compiled = torch.compile(self._meta_loss, **options)

    def _meta_loss(self, x_spt, y_spt, x_qry, y_qry, m_spt, weights, first_order: bool) -> torch.Tensor:
        adapted, fixed = self._split()
        every_step = self.multi_step_loss and self.inner_steps > 1

        def task(xs, ys, ms, xq, yq):  # one task: (shots, input_size), (shots, h), (shots,), ...
            trajectory = self._inner_loop(adapted, fixed, xs, ys, ms, first_order)
            scored = trajectory[1:] if every_step else trajectory[-1:]
            return torch.stack([self._query_loss(fast, fixed, xq, yq) for fast in scored])  # (steps,) or (1,)

        losses = vmap(task)(x_spt, y_spt, m_spt, x_qry, y_qry)  # (tasks, steps) or (tasks, 1)
        if every_step:
            return (losses * weights).sum(-1).mean()
        return losses[:, -1].mean()

    def meta_backward(self, x_spt, y_spt, x_qry, y_qry, m_spt=None) -> torch.Tensor:
        """Accumulate the meta-gradient into ``.grad`` of every meta-parameter; returns the loss."""
        loss = self.meta_loss(x_spt, y_spt, x_qry, y_qry, m_spt)
        loss.backward()
        return loss.detach()

    def adapt(self, x_spt, y_spt, m_spt=None, steps: int | None = None) -> dict[str, torch.Tensor]:
        """Adapted parameters for every task: a dict of tensors with a leading task axis.

        Parameters that do not adapt (ANIL's body) are expanded along the task axis without copying.
        ``steps`` overrides ``inner_steps`` (for learning curves); rates beyond the learned steps reuse the
        last step's.
        """
        if m_spt is None:
            m_spt = x_spt.new_ones(x_spt.shape[:2])
        adapted, fixed = self._split()
        first_order = self.use_first_order()

        def task(xs, ys, ms):
            return self._inner_loop(adapted, fixed, xs, ys, ms, first_order, steps)[-1]

        fast = vmap(task)(x_spt, y_spt, m_spt)
        tasks = x_spt.shape[0]
        out = {n: p.expand(tasks, *p.shape) for n, p in fixed.items()}
        out.update(fast)
        return out

    def forecast(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Forecasts ``(tasks, n, h)`` of ``x (tasks, n, input_size)`` with per-task ``params`` (an
        ensemble's: the mean of its members' forecasts)."""
        return vmap(self._predict)(params, x)

    def adapt_curve(self, x_spt, y_spt, x, m_spt=None, steps: int | None = None, every_step: bool = True):
        """Forecasts of ``x (tasks, n, input_size)`` and mean support losses after 0, 1, ..., ``steps``
        inner steps, in one pass over the steps: ``(steps + 1, tasks, n, h)`` and ``(steps + 1, tasks)``.
        Equal to calling :meth:`adapt` with each number of steps, at the cost of the longest.
        ``every_step=False``: after the last step only, ``(1, tasks, n, h)`` and ``(1, tasks)``."""
        if m_spt is None:
            m_spt = x_spt.new_ones(x_spt.shape[:2])
        adapted, fixed = self._split()
        first_order = self.use_first_order()
        n_steps = self.inner_steps if steps is None else steps

        def task(xs, ys, ms, xi):
            fast, preds, losses = adapted, [], []
            for step in range(n_steps + 1):
                if every_step or step == n_steps:
                    params = {**fixed, **fast}
                    preds.append(self._predict(params, xi))  # (n, h)
                    per_window = self.loss_fn(self._predict(params, xs), ys)  # (shots,)
                    losses.append((per_window * ms).sum() / ms.sum().clamp(min=1))
                if step < n_steps:
                    fast = self._inner_step(fast, fixed, xs, ys, ms, first_order, step)
            return torch.stack(preds), torch.stack(losses)  # (steps + 1, n, h), (steps + 1,)

        preds, losses = vmap(task)(x_spt, y_spt, m_spt, x)  # (tasks, steps + 1, ...)
        return preds.transpose(0, 1), losses.transpose(0, 1)
