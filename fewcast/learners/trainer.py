"""The one outer loop every learner shares.

Each iteration samples ``meta_batch_size`` tasks, lets the learner write its meta-gradient into ``.grad``
(``learner.meta_backward``), clips the gradient norm and takes an Adam step with ``outer_lr`` (optionally
cosine-annealed). Every ``val_every`` iterations it scores a fixed set of meta-validation tasks
(``validation``: adapt on their support, score their query);
with ``patience`` it stops when that score has not improved for that many validations, and it always ends
on the best-validating weights. Every iteration appends a row to ``history``.

With ``ema`` (a decay in (0, 1)) the trainer also keeps an exponential moving average of the weights,
``avg = d * avg + (1 - d) * w`` after every step with ``d = min(ema, (1 + n) / (10 + n))`` at step ``n``
(short memory at first, so the average does not hold on to the initialization); validation, keep-the-best
and the result use the averaged weights, the optimizer goes on from the raw ones.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from fewcast import distributed
from fewcast.checkpoint import section
from fewcast.errors import InputError
from fewcast.learners.base import GradientLearner
from fewcast.tasks import Tasks, TaskSampler


class TrainingDiverged(RuntimeError):
    """The meta-loss became NaN or infinite."""


class TrainingInterrupted(RuntimeError):
    """Training was asked to stop (Ctrl-C, SIGTERM); the state was checkpointed first."""


@dataclass
class MetaTrainer:
    learner: GradientLearner
    sampler: TaskSampler
    validation: Tasks | None = None
    outer_lr: float = 1e-3
    meta_batch_size: int = 32
    iterations: int = 1000
    clip: float | None = 10.0
    val_every: int = 50
    patience: int | None = None
    cosine: bool = False
    device: str | torch.device = "cpu"
    on_iteration: Callable[[dict], None] | None = None
    checkpoint_every: int = 0
    on_checkpoint: Callable[[MetaTrainer], None] | None = None
    should_interrupt: Callable[[], bool] | None = None
    dist: distributed.Dist | None = None
    compile: bool = False
    ema: float = 0.0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.learner.to(self.device)
        if self.compile:
            self.learner.compile()
        if self.dist is not None:
            if self.meta_batch_size % self.dist.world:
                raise ValueError(f"meta_batch_size {self.meta_batch_size} is not a multiple of {self.dist.world} ranks")
            distributed.broadcast_module(self.learner)  # the same starting weights everywhere
        self.params = [p for p in self.learner.parameters() if p.requires_grad]  # frozen ones stay as they are
        self.optimizer = torch.optim.Adam(self.params, lr=self.outer_lr)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(self.iterations, 1))
            if self.cosine
            else None
        )
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"ema must be a decay in [0, 1) (got {self.ema}; `pretrain_ema`); "
                             f"0 turns the average off")
        # the weights' moving average (floating-point state only: buffers such as integer flags are not averaged)
        self.averaged: dict[str, torch.Tensor] | None = (
            {k: v.detach().clone() for k, v in self.learner.state_dict().items() if v.is_floating_point()}
            if self.ema else None
        )
        self.iteration = 0
        self.best_val = math.inf
        self.best_state: dict | None = None
        self.bad_validations = 0
        self._val = self.validation.to(self.device) if self.validation is not None else None
        self._sampler_states: list | None = None  # every rank's sampler state, gathered at a checkpoint

    def validate(self) -> float:
        """Mean query loss on the fixed meta-validation tasks (adaptation included, no outer graph)."""
        t = self._val
        with torch.no_grad():
            params = self.learner.adapt(t.x_spt, t.y_spt, t.m_spt)
            pred = self.learner.forecast(params, t.x_qry)
            return float(self.learner.loss_fn(pred, t.y_qry).mean())

    def step(self) -> dict:
        """One outer iteration; returns its log row."""
        started = time.perf_counter()
        self.learner.iteration = self.iteration
        share = self.meta_batch_size // (self.dist.world if self.dist else 1)  # this rank's tasks
        tasks = self.sampler.sample(share).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(self.learner.meta_backward(tasks.x_spt, tasks.y_spt, tasks.x_qry, tasks.y_qry, tasks.m_spt))
        if self.dist is not None:  # every rank takes the same step with the mean meta-gradient
            distributed.average_gradients(self.params, self.dist.world)
            loss = distributed.average_scalar(loss, self.device)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the meta-loss became {loss} at iteration {self.iteration + 1}; "
                f"lower the learning rates (outer_lr={self.outer_lr}, inner_lr={self.learner.inner_lr_init})"
            )
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.iteration += 1
        self._update_average()
        row = {"iteration": self.iteration, "train_loss": loss, "val_loss": math.nan,
               "outer_lr": self.optimizer.param_groups[0]["lr"]}
        if self._val is not None and (self.iteration % self.val_every == 0 or self.iteration == self.iterations):
            with self.averaged_weights():
                row["val_loss"] = self.validate()
                if row["val_loss"] < self.best_val:
                    self.best_val = row["val_loss"]
                    self.best_state = copy.deepcopy(self.learner.state_dict())
                    self.bad_validations = 0
                else:
                    self.bad_validations += 1
        row["seconds"] = time.perf_counter() - started
        row["tasks_per_second"] = self.meta_batch_size / row["seconds"]
        self.history.append(row)
        if self.on_iteration is not None and self.is_main:
            self.on_iteration(row)
        return row

    def _update_average(self) -> None:
        if self.averaged is None:
            return
        decay = min(self.ema, (1 + self.iteration) / (10 + self.iteration))
        with torch.no_grad():
            current = self.learner.state_dict()
            for key, avg in self.averaged.items():
                avg.lerp_(current[key], 1 - decay)  # avg = decay * avg + (1 - decay) * w

    @contextlib.contextmanager
    def averaged_weights(self):
        """Inside the block the learner holds the averaged weights (no-op without ``ema``)."""
        if self.averaged is None:
            yield
            return
        raw = {k: v.detach().clone() for k, v in self.learner.state_dict().items() if k in self.averaged}
        self.learner.load_state_dict(self.averaged, strict=False)
        try:
            yield
        finally:
            self.learner.load_state_dict(raw, strict=False)

    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.main

    def _checkpoint(self) -> None:
        """Every rank contributes its sampler state; rank 0 writes."""
        if self.on_checkpoint is None:
            return
        if self.dist is not None:
            self._sampler_states = distributed.gather(self.sampler.state_dict())
        if self.is_main:
            self.on_checkpoint(self)

    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_validations >= self.patience

    def fit(self, progress: bool = False) -> list[dict]:
        """Run until ``iterations`` (or early stopping); end on the best-validating weights.

        The starting weights are validated first, so training can only end on weights that validate at
        least as well as the ones it started from.
        """
        if self._val is not None and self.best_state is None:
            self.best_val = self.validate()
            self.best_state = copy.deepcopy(self.learner.state_dict())
        bar = None
        if progress and self.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.iterations, initial=self.iteration, unit="it", dynamic_ncols=True)
        try:
            while self.iteration < self.iterations:
                row = self.step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['train_loss']:.4f}", tasks_s=f"{row['tasks_per_second']:.0f}")
                if self.should_stop():
                    break
                if self.checkpoint_every and self.iteration % self.checkpoint_every == 0:
                    self._checkpoint()
                stop = self.should_interrupt is not None and self.should_interrupt()
                if self.dist is not None:
                    stop = distributed.any_rank(stop, self.device)
                if stop:
                    self._checkpoint()
                    raise TrainingInterrupted(f"interrupted at iteration {self.iteration}")
        finally:
            if bar is not None:
                bar.close()
        if self.best_state is not None:
            self.learner.load_state_dict(self.best_state)
        elif self.averaged is not None:  # no validation: end on the average
            self.learner.load_state_dict(self.averaged, strict=False)
        return self.history

    # -- resumable state (tensors for safetensors, the rest JSON-able) ------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything needed to continue exactly: weights, optimizer, schedule, sampler and RNG state."""
        tensors = {f"learner.{k}": v for k, v in self.learner.state_dict().items()}
        opt = self.optimizer.state_dict()
        scalars: dict = {}
        for idx, entry in opt["state"].items():
            for key, value in entry.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{idx}.{key}"] = value
                else:
                    scalars[f"{idx}.{key}"] = value
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        if self.averaged is not None:
            tensors.update({f"averaged.{k}": v for k, v in self.averaged.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        state = {
            "iteration": self.iteration,
            "best_val": self.best_val if math.isfinite(self.best_val) else None,
            "bad_validations": self.bad_validations,
            "optimizer_groups": opt["param_groups"],
            "optimizer_scalars": scalars,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "sampler": self._sampler_states if self.dist else self.sampler.state_dict(),
        }
        return tensors, state

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        self.learner.load_state_dict(section(tensors, "learner."), strict=True)
        opt_state: dict = {}
        for key, value in section(tensors, "optimizer.").items():
            idx, name = key.split(".", 1)
            opt_state.setdefault(int(idx), {})[name] = value
        for key, value in state["optimizer_scalars"].items():
            idx, name = key.split(".", 1)
            opt_state.setdefault(int(idx), {})[name] = value
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer_groups"]})
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        best = section(tensors, "best.")
        self.best_state = best or None
        if self.averaged is not None:
            averaged = section(tensors, "averaged.")
            if set(averaged) != set(self.averaged):
                raise InputError("this checkpoint holds no moving average of the weights; resume it with the ema "
                                 "setting it was written with")
            self.averaged = {k: v.clone() for k, v in averaged.items()}
        self.best_val = state["best_val"] if state["best_val"] is not None else math.inf
        self.bad_validations = state["bad_validations"]
        self.iteration = state["iteration"]
        sampler = state["sampler"]
        if isinstance(sampler, list):  # one state per rank of a distributed run
            if self.dist is None or len(sampler) != self.dist.world:
                raise ValueError(f"this checkpoint was written by {len(sampler)} ranks; resume it with as many")
            sampler = sampler[self.dist.rank]
        self.sampler.load_state_dict(sampler)
        torch.set_rng_state(tensors["rng.torch"])
