"""An experiment: a panel split by series into what the networks train on, validate on and are scored on.

Protocols:

- ``holdout`` (cold start): series are split by ``unique_id`` into meta-train / meta-validation /
  meta-test. Training sees the visible part of meta-train series only; meta-validation forecasts the last
  ``h`` visible points of its series from what precedes them; meta-test series are forecast on their
  horizon (embedded panels: the official test horizon; user data: the last ``h`` points).
- ``all-series``: every series' visible part is training data (except the last ``h`` visible points of the
  meta-validation series, kept for early stopping), and every series is forecast on its horizon, as in the
  published competition tables.

``staleness=S`` ends the training data ``S`` points before each series' visible end: a network trained a
while ago and deployed since; from ``S = h`` on, nothing trained on overlaps the validation horizon.
:meth:`Experiment.train` is the one training sequence (pre-train, then meta-train) of ``fit``, ``fewcast
train`` and ``fewcast demo``; :class:`Hooks` is what a run on disk adds to it. Nothing of the horizon is
passed to a model: the held-out series' truth is used only for scoring (:mod:`fewcast.evaluation`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch

from fewcast import distributed, seasonal
from fewcast.config import Settings
from fewcast.data import PanelData, resolved
from fewcast.engine import Layout, Problems, make_problems, problems_as_tasks
from fewcast.errors import InputError
from fewcast.learners import GradientLearner, MetaTrainer, Pretrain, build_learner
from fewcast.models import build_from_config, check_log_values
from fewcast.panel import Panel
from fewcast.tasks import Split, Tasks, TaskSampler, WindowSampler, eligible_series, shots_that_fit, split_series
from fewcast.windows import Windows


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but PyTorch sees no CUDA device here; use `device=cpu`")
    return torch.device(name)


class Hooks:
    """What a training run on disk adds to :meth:`Experiment.train`: nothing here. :class:`fewcast.run.TrainingRun`
    logs every iteration, writes checkpoints, stops on a signal and resumes from a checkpoint."""

    start = "pretrained"  # the phase to start in: "pretrained", or a learner's name when resuming after it

    def trainer_options(self, phase: str, pretrained: Pretrain | None) -> dict:
        """Keyword arguments of the phase's :class:`~fewcast.learners.MetaTrainer` (its callbacks)."""
        return {}

    def restore(self, phase: str, trainer: MetaTrainer) -> None:
        """Put a resumed phase's trainer back where the checkpoint left it."""

    def restore_pretrained(self, pretrained: Pretrain) -> None:
        """Load the pre-trained network of a run resumed after pre-training."""
        raise NotImplementedError

    def finished(self, phase: str, pretrained: Pretrain, learner: GradientLearner | None = None) -> None:
        """Called when pre-training is done (``phase``: the next one) and when everything is (``"done"``)."""


class Experiment:
    """A panel split by series, the networks' training data and validation tasks, and their training."""

    def __init__(self, settings: Settings, data: PanelData, progress: bool = False,
                 log: Callable[..., None] = print, trained: bool = False, fit_shots: bool = False,
                 split: Split | None = None):
        """``trained``: the settings are those of networks already trained (scoring them): nothing is derived;
        ``split``: the series split those networks were trained on (default: drawn from the settings' seed).
        ``fit_shots``: shots more than the training series hold are lowered to what they hold, even when given
        (the validation cut's networks: a run's settings on series a few horizons shorter); otherwise only
        shots left to the data are."""
        settings.check()  # before any training: a typo must not cost a run
        self.settings, self.derived = (settings, []) if trained else resolved(settings, data)
        self.given = settings
        self.trained = trained
        self.fit_shots = fit_shots
        self.progress = progress
        self.log = log
        self.data = data
        self.device = resolve_device(settings.train.device)
        self.dist = distributed.from_env(self.device)  # None unless launched by torchrun with several ranks
        self.rank_seed = (settings.train.seed + 7919 * settings.train.model_seed
                          + 1009 * (self.dist.rank if self.dist else 0))
        self.h = data.h
        self.layout = Layout.of(self.settings.data, data.h, data.season_length)
        self.timings: dict[str, float] = {}
        self.logs: dict[str, list[dict]] = {}
        self._prepare(split)

    # -- data ---------------------------------------------------------------------------------------
    def _prepare(self, split: Split | None) -> None:
        s, d, t = self.settings, self.data, self.settings.train
        h = self.h
        check_log_values(d.visible, s.model, s.data.target_col)
        if split is None:
            split = split_series(d.visible.ids, t.val_frac, t.test_frac if s.eval.protocol == "holdout" else 0.0,
                                 t.seed)
        self.split: Split = split
        visible = d.visible
        val_pos = visible.index_of(split.val)
        self.train_series: np.ndarray | None = None  # the series the samplers draw from (None: all)
        stop = None  # per-series usable length of train_panel (memory-mapped data only)
        stale = t.staleness
        if d.cut is not None:  # memory-mapped: train on the mapped panel itself, nothing copied
            if s.eval.protocol != "holdout":
                raise InputError("memory-mapped data (`memmap`) supports the holdout protocol only")
            train_panel, stop = visible, np.maximum(d.cut - stale, 0)
            self.train_series = visible.index_of(split.train)
            test_pos = visible.index_of(split.test)
        elif s.eval.protocol == "holdout":
            train_panel = visible.select(split.train)
            if stale:
                train_panel = train_panel.slice(0, np.maximum(train_panel.lengths - stale, 0))
            test_pos = visible.index_of(split.test)
        else:  # all-series: train on everything but the validation series' last h visible points
            keep = visible.lengths - stale
            keep[val_pos] = visible.lengths[val_pos] - max(stale, h)
            train_panel = visible.slice(0, np.maximum(keep, 0))
            test_pos = np.arange(visible.n_series)
        if s.data.deseasonalize and d.cut is not None:
            raise InputError("`deseasonalize` needs data in memory; it does not work with `memmap`")
        train_panel = self._adjusted(train_panel)  # indices from the training part only
        self.train_panel = train_panel
        self.windows: Windows | None = None  # what training draws from; scoring a trained run needs neither
        self.validation: Tasks | None = None
        if not self.trained:
            self._training_data(train_panel, stop, val_pos)
        history = d.visible_part(test_pos)
        if s.eval.history:
            history = history.tail(s.eval.history)
        self.test_history = history
        self.test_truth = d.horizon_values(test_pos)

    def _training_data(self, train_panel: Panel, stop, val_pos: np.ndarray) -> None:
        """The windows training draws from, the shots a task takes from them and the validation tasks; an
        InputError where the training series hold no window or no task."""
        s, t, h = self.settings, self.settings.train, self.h
        input_size = s.data.input_size
        self.windows = Windows(train_panel, input_size, h, drop_zero_target=t.drop_zero_target, stop=stop)
        if len(self.windows) == 0:
            longest = int(train_panel.lengths.max()) if train_panel.n_series else 0
            raise InputError(f"no meta-train series is long enough for one window of {input_size} -> {h}: it needs "
                             f"{input_size + h} points, the longest has {longest} (each series' last {h} held "
                             f"back); lower " + ("`h`" if input_size <= 1 else "`input_size` or `h`"))
        if self.fit_shots or not self.given.train.shots:  # derived on the whole panel: what training series hold
            counts = self.windows.counts if self.train_series is None else self.windows.counts[self.train_series]
            fits = shots_that_fit(int(counts.max()), h, t.query_shots)
            if 1 <= fits < t.shots:
                t.shots = fits
                self.derived.append(f"shots = {fits}: what the longest meta-training series holds")
        # meta-training needs whole tasks: say so now, not after pre-training
        eligible_series(self.windows, t.shots, t.query_shots, self.train_series)
        self.validation = self._validation(val_pos) if len(val_pos) else None

    def _validation(self, val_pos: np.ndarray) -> Tasks | None:
        """Each validation series' latest task; series too short for a whole task are validated as they will
        be forecast, on fewer support windows."""
        s, h = self.settings, self.h
        val_part = self._adjusted(self.data.visible_part(val_pos))
        try:
            return TaskSampler(Windows(val_part, s.data.input_size, h), s.train.shots, 1, s.data.scaler,
                               s.train.seed).latest()
        except InputError:
            val_part = val_part.take(np.flatnonzero(val_part.lengths > h))
            if not val_part.n_series:
                self.log("note: no meta-validation series is longer than h; no early stopping")
                return None
            hist, truth = val_part.split_last(h)
            problems = make_problems(hist, truth.values.reshape(-1, h), s.data.input_size, h, s.train.shots,
                                     self.data.season_length)
            self.log(f"note: no meta-validation series has the windows of a whole task; validating on "
                     f"{val_part.n_series} series with {problems.shots_used.mean():.1f} support windows "
                     f"on average (shots={s.train.shots})")
            return problems_as_tasks(problems, s.data.scaler)

    def _adjusted(self, panel: Panel) -> Panel:
        """``panel`` deseasonalized series by series when ``data.deseasonalize`` is on, else as it is."""
        if not self.settings.data.deseasonalize:
            return panel
        return seasonal.adjust(panel, self.data.season_length)[0]

    def problems(self, shots: int | None = None) -> Problems:
        """The held-out series' forecast problems, adapting on ``shots`` windows (default: a forecast's)."""
        s, lay = self.settings, self.layout
        shots = s.adapt_shots() if shots is None else shots
        return make_problems(self.test_history, self.test_truth, lay.input_size, lay.h, shots, lay.season_length,
                             lay.deseasonalize)

    # -- training -----------------------------------------------------------------------------------
    def new_model(self, seed_offset: int = 0) -> torch.nn.Module:
        s = self.settings
        torch.manual_seed(s.train.seed + 7919 * s.train.model_seed + seed_offset)
        return build_from_config(s.model, s.data.input_size, self.h)

    def trainer(self, label: str, learner: GradientLearner, sampler, iterations: int, lr: float,
                batch: int, patience: int = 0, **hooks) -> MetaTrainer:
        t = self.settings.train
        if self.progress and (self.dist is None or self.dist.main):
            unit = "windows" if isinstance(learner, Pretrain) else "tasks"
            stop = f", stopping after {patience} validations without improvement" if patience else ""
            self.log(f"training {label}: {'up to ' if patience else ''}{iterations} iterations of {batch} {unit}{stop}")
        return MetaTrainer(learner, sampler, self.validation, outer_lr=lr, meta_batch_size=batch,
                           iterations=iterations, clip=t.clip or None, val_every=t.val_every,
                           patience=patience or None, cosine=t.cosine, device=self.device,
                           checkpoint_every=t.checkpoint_every, dist=self.dist, compile=t.compile, **hooks)

    def fit(self, label: str, trainer: MetaTrainer) -> GradientLearner:
        started = time.perf_counter()
        trainer.fit(progress=self.progress)
        self.logs[label] = trainer.history
        self.timings[f"train {label}"] = self.timings.get(f"train {label}", 0.0) + time.perf_counter() - started
        return trainer.learner

    def pretrain_trainer(self, **hooks) -> MetaTrainer:
        t = self.settings.train
        learner = Pretrain(self.new_model(), loss=self.settings.learner.loss)
        full = t.pretrain_batch_size == -1
        sampler = WindowSampler(self.windows, self.settings.data.scaler, self.rank_seed, series=self.train_series,
                                full_batch=full)
        batch = sampler.size if full else t.pretrain_batch_size or t.meta_batch_size * (t.shots + t.query_shots)
        return self.trainer("pretrained", learner, sampler, t.pretrain_iterations, t.pretrain_lr, batch,
                            t.pretrain_patience, ema=t.pretrain_ema, **hooks)

    def meta_trainer(self, name: str, pretrained: Pretrain | None, **hooks) -> MetaTrainer:
        """Meta-train learner ``name``: the run's learner with every setting, any other as the plain
        algorithm (all parameters adapt, except ANIL's body; no MAML++ options) with the run's inner rate,
        inner steps, loss, shots and initialization."""
        s, t = self.settings, self.settings.train
        init = copy.deepcopy(pretrained.model) if t.init == "pretrained" and pretrained else self.new_model()
        options = s.learner.options()
        if name != s.learner.name:
            options.update(adapt_params="all", multi_step_loss=False, learn_inner_lr=False, first_order_iterations=0)
        learner = build_learner(name, init, **options)
        if t.outer_params == "rates" and name == s.learner.name:
            if not any(True for n, _ in learner.named_parameters() if not n.startswith("model.")):
                raise InputError(f"`outer_params=rates` needs learned inner rates: {name} has none "
                                 f"(use metasgd or `learn_inner_lr`)")
            learner.model.requires_grad_(False)  # the initialization stays; only the inner rates learn
        sampler = TaskSampler(self.windows, t.shots, t.query_shots, s.data.scaler, self.rank_seed,
                              series=self.train_series)
        return self.trainer(name, learner, sampler, t.iterations, t.outer_lr, t.meta_batch_size, t.patience, **hooks)

    def learner_names(self) -> list[str]:
        """The run's learner, ``maml`` and ``eval.extra_learners``: what ``fewcast demo`` meta-trains."""
        s = self.settings
        return list(dict.fromkeys([s.learner.name, "maml", *s.eval.extra_learners]))

    def train(self, names: list[str] | None = None,
              hooks: Hooks | None = None) -> tuple[Pretrain, dict[str, GradientLearner]]:
        """Pre-train, then meta-train each learner of ``names`` (default: the run's learner) from the
        pre-trained network: the one training sequence of ``fit``, ``fewcast train`` and ``fewcast demo``."""
        hooks = hooks or Hooks()
        names = names or [self.settings.learner.name]
        if hooks.start == "pretrained":
            trainer = self.pretrain_trainer(**hooks.trainer_options("pretrained", None))
            hooks.restore("pretrained", trainer)
            pretrained = self.fit("pretrained", trainer)
            hooks.finished(names[0], pretrained)
        else:  # resumed after pre-training
            pretrained = Pretrain(self.new_model(), loss=self.settings.learner.loss).to(self.device)
            hooks.restore_pretrained(pretrained)
        learners = {}
        for name in names:
            trainer = self.meta_trainer(name, pretrained, **hooks.trainer_options(name, pretrained))
            hooks.restore(name, trainer)
            learners[name] = self.fit(name, trainer)
        hooks.finished("done", pretrained, learners[names[0]])
        return pretrained, learners
