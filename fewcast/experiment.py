"""The experiment done right: meta-train on a panel, forecast series the model has never seen.

Protocols:

- ``holdout`` (cold start): series are split by ``unique_id`` into meta-train / meta-validation /
  meta-test. Meta-training sees the visible part of meta-train series only; meta-validation forecasts the
  last ``h`` visible points of its series from what precedes them; meta-test series are forecast on their
  horizon (embedded panels: the official test horizon; user data: the last ``h`` points).
- ``all-series``: every series' visible part is training data (except the last ``h`` visible points of the
  meta-validation series, kept for early stopping), and every series is forecast on its horizon, as in the
  published competition tables.

Meta-validation forecasts the last ``h`` visible points of the validation series. By default the networks
train on every visible point of the other series, which cover the same stretch of time: common shocks
seen there make validation optimistic (on m3-monthly by 0.6 sMAPE against a leak-free check,
BENCHMARKS.md). ``staleness=S`` ends the training data ``S`` points before each series' visible end: a
network trained a while ago and deployed since; from ``S = h`` on, nothing trained on overlaps the
validation horizon.

A forecast adapts on the last ``shots`` windows that lie inside what the model sees (fewer for short
series, down to none: a zero-shot forecast) and predicts the ``h`` values after the last ``input_size``
observations (left-padded with the first observation when the history is shorter). Nothing of the
horizon is ever passed to a model or a baseline: ``Problems`` holds it apart, used only for scoring.

Methods scored: the meta-learners adapted and zero-shot, the pre-trained network zero-shot and
fine-tuned, the network from scratch, the classical baselines, and each ``combine`` method averaged with
the adapted default learner (``metasgd+autoets``: a forecast combination, reported beside its parts), with
``metasgd_auto`` and with ``pretrained_finetune_all`` (``pretrained_finetune_all+autoets``).
``pretrained_finetune`` adapts exactly as the meta-learner does (the seed's comparison);
``pretrained_finetune_all`` is the strongest plain fine-tuning found on validation, many small SGD steps on
every window of a series (``eval.finetune_all_*``), the reference a meta-learner has to beat to be worth it;
``<learner>_auto`` takes its forecast for a series with at least ``eval.finetune_all_min_shots`` windows and
the learner's for the others.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewcast import datasets, distributed, seasonal
from fewcast.baselines import check_methods, classical_forecasts
from fewcast.config import ADAPTATIONS, EvalConfig, Settings
from fewcast.errors import InputError, describe_ids
from fewcast.learners import MAML, GradientLearner, MetaTrainer, Pretrain, build_learner
from fewcast.metrics import score, seasonal_scale, smape
from fewcast.models import build_from_config, uses_transform
from fewcast.panel import Panel, read_panel
from fewcast.tasks import Split, Tasks, TaskSampler, WindowSampler, eligible_series, split_series
from fewcast.windows import Windows, scale, unscale

PROTOCOLS = ("holdout", "all-series")
SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1, "A": 1}


@dataclass
class PanelData:
    """What models may see of every series (``visible``) and the ``h`` points after it (``horizon``)."""

    name: str
    visible: Panel
    horizon: Panel | None
    h: int
    season_length: int
    cut: np.ndarray | None = None  # memory-mapped data: ``visible`` is the whole panel, series i visible up to cut[i]

    @classmethod
    def from_panel(cls, name: str, panel: Panel, h: int, season_length: int = 0) -> PanelData:
        """Every series' last ``h`` points held out as its horizon; the season guessed when 0."""
        visible, horizon = panel.split_last(h)
        return cls(name, visible, horizon, h, season_length or guess_season(panel.freq))

    def visible_part(self, pos: np.ndarray) -> Panel:
        """The visible part of the series at ``pos`` (a copy of those series only)."""
        part = self.visible.take(pos)
        return part if self.cut is None else part.slice(0, self.cut[pos])

    def horizon_values(self, pos: np.ndarray) -> np.ndarray:
        """``(len(pos), h)`` values of the horizon of the series at ``pos``."""
        if self.cut is None:
            part = self.horizon.take(pos)
        else:
            part = self.visible.take(pos).slice(self.cut[pos], self.cut[pos] + self.h)
        return part.values.reshape(len(pos), self.h).astype(np.float64)


def guess_season(freq) -> int:
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1
    alias = str(freq).lstrip("0123456789")
    if alias.startswith("min"):
        return 60
    return SEASONS.get(alias[:1], 1)


def load_panel_data(settings: Settings) -> PanelData:
    """The panel named by ``settings.data.dataset`` (embedded name or file), horizon held out."""
    cfg = settings.data
    if cfg.dataset in datasets.DATASETS and not Path(cfg.dataset).exists():
        data = datasets.load(cfg.dataset)
        h = cfg.h or data.h
        if h > data.h:
            raise InputError(f"h={h} is longer than {cfg.dataset}'s official horizon of {data.h}")
        horizon = data.test.slice(0, h)
        return PanelData(cfg.dataset, data.train, horizon, h, cfg.season_length or data.season_length)
    if not cfg.h:
        raise InputError("your own data needs a forecast horizon: pass --h N (or set data.h in the config)")
    if cfg.memmap:
        from fewcast.store import open_cache

        panel = open_cache(cfg.dataset, cfg.id_col, cfg.time_col, cfg.target_col, progress=True)
        short = panel.lengths < cfg.h + 2
        if short.any():
            raise InputError(f"column '{cfg.target_col}': series shorter than h + 2 = {cfg.h + 2} points: "
                             f"{describe_ids(panel.ids[short])}; drop them from the data (memory-mapped data "
                             f"is used as it is)")
        return PanelData(Path(cfg.dataset).name, panel, None, cfg.h, cfg.season_length or guess_season(panel.freq),
                         cut=panel.lengths - cfg.h)
    panel = read_panel(cfg.dataset, cfg.id_col, cfg.time_col, cfg.target_col, fill=cfg.fill, min_length=cfg.h + 2)
    return PanelData.from_panel(Path(cfg.dataset).name, panel, cfg.h, cfg.season_length)


# ---------------------------------------------------------------------------------------------------
# Forecast problems


@dataclass
class Problems:
    """One forecast per series: support windows and forecast input (raw), and the truth for scoring."""

    history: Panel
    truth: np.ndarray  # (series, h), never shown to a model
    x_spt: torch.Tensor  # (series, slots, input_size)
    y_spt: torch.Tensor  # (series, slots, h)
    m_spt: torch.Tensor  # (series, slots): 1 for a real support window, 0 for padding
    x_fc: torch.Tensor  # (series, 1, input_size)
    mase_scale: np.ndarray  # (series,)
    factor: np.ndarray | None = None  # (series, h) seasonal indices the forecasts are multiplied by

    @property
    def shots_used(self) -> np.ndarray:
        return self.m_spt.sum(1).numpy().astype(int)


def make_problems(history: Panel, truth: np.ndarray, input_size: int, h: int, shots: int,
                  season_length: int, deseasonalize: bool = False) -> Problems:
    """Support = the last ``shots`` windows inside ``history``; forecast input = its last ``input_size``.
    Series with fewer windows are padded (``m_spt``) up to the most any series has, at most ``shots``.

    ``deseasonalize``: windows and forecast input come from the history divided by its own seasonal
    indices (:mod:`fewcast.seasonal`), and the forecasts are multiplied back by them."""
    raw, factor = history, None
    if deseasonalize:
        history, indices = seasonal.adjust(history, season_length)  # indices: (series, season_length)
        factor = seasonal.horizon_factors(indices, h)
    w = Windows(history, input_size, h)
    longest = int(w.counts.max()) if history.n_series else 0
    slots = max(min(shots, longest), 1)  # no slot that every series would pad
    real = np.minimum(w.counts, shots)  # (series,)
    j = np.arange(slots)[None, :]  # (1, slots)
    valid = j >= slots - real[:, None]  # right-aligned: the most recent windows last
    pos = history.offsets[:-1, None] + np.maximum(w.counts[:, None] - slots + j, 0)  # (series, slots)
    if len(w.view):
        x_spt, y_spt = w.gather(np.clip(pos, 0, len(w.view) - 1))
    else:
        x_spt = np.zeros((history.n_series, slots, input_size), np.float32)
        y_spt = np.zeros((history.n_series, slots, h), np.float32)
    x_spt = np.where(valid[..., None], x_spt, 0.0).astype(np.float32)
    y_spt = np.where(valid[..., None], y_spt, 0.0).astype(np.float32)
    fpos = history.offsets[1:, None] - input_size + np.arange(input_size)[None, :]  # (series, input_size)
    fpos = np.maximum(fpos, history.offsets[:-1, None])  # left-pad with the first observation
    x_fc = history.values[fpos][:, None, :]  # (series, 1, input_size)
    return Problems(raw, np.asarray(truth, dtype=np.float64), torch.from_numpy(x_spt), torch.from_numpy(y_spt),
                    torch.from_numpy(valid.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(x_fc)),
                    seasonal_scale(raw, season_length), factor)


def problems_as_tasks(problems: Problems, scaler: str) -> Tasks:
    """Forecast problems with their truth as one scaled task per series (query = the forecast), support
    padding kept in ``m_spt``: how short validation series are scored the way they will be forecast. For a
    series with ``shots`` support windows it is the task :meth:`TaskSampler.latest` makes."""
    x_spt, y_spt, _ = scale(problems.x_spt, problems.y_spt, scaler)  # (series, slots, input_size), (..., h)
    truth = torch.from_numpy(problems.truth.astype(np.float32))[:, None, :]  # (series, 1, h)
    x_qry, y_qry, _ = scale(problems.x_fc, truth, scaler)  # (series, 1, input_size), (series, 1, h)
    n = len(problems.truth)
    return Tasks(x_spt, y_spt, x_qry, y_qry, np.arange(n), np.zeros(n, np.int64), problems.m_spt)


def check_log_values(panel: Panel, settings: Settings, column: str | None = None) -> None:
    """Refuse negative values when an ensemble member works on logs (zeros are fine: they are floored);
    the error names ``column`` (default: the settings' target column) and the series."""
    if not uses_transform(settings.model.ensemble_transforms, settings.model.ensemble) or panel.n_series == 0:
        return
    nonempty = np.flatnonzero(panel.lengths > 0)
    lowest = np.minimum.reduceat(panel.values, panel.offsets[nonempty])  # (nonempty series,)
    negative = nonempty[lowest < 0]
    if len(negative):
        raise InputError(f"column '{column or settings.data.target_col}': negative values in series "
                         f"{describe_ids(panel.ids[negative])}, which a log ensemble member cannot take: shift those "
                         f"series above zero, or train with --ensemble-transforms identity,last")


def forecast(learner: GradientLearner, problems: Problems, scaler: str, steps: int | None = None,
             device="cpu", chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Adapt on each series' support and forecast its horizon: ``(series, h)`` forecasts and the
    per-series support loss after adaptation (in the learner's loss, on scaled windows)."""
    preds, losses = forecast_curve(learner, problems, scaler, steps, device, chunk, every_step=False)
    return preds[-1], losses[-1]


def forecast_series(learner: GradientLearner, history: Panel, settings: Settings, h: int, season_length: int,
                    shots: int, steps: int | None = None, device="cpu", chunk: int = 8192) -> np.ndarray:
    """``(series, h)`` forecasts of every series of ``history`` adapted on its last ``shots`` windows, built
    ``chunk`` series at a time: the support windows of a large panel (up to 200 a series with finetune_all)
    are never all in memory at once."""
    d = settings.data
    out = [np.zeros((0, h))]
    for lo in range(0, history.n_series, chunk):
        part = history.take(np.arange(lo, min(lo + chunk, history.n_series)))
        problems = make_problems(part, np.zeros((part.n_series, h)), d.input_size, h, shots, season_length,
                                 d.deseasonalize)
        out.append(forecast(learner, problems, d.scaler, steps, device)[0])
    return np.concatenate(out)


def forecast_curve(learner: GradientLearner, problems: Problems, scaler: str, steps: int | None = None,
                   device="cpu", chunk: int = 2048, every_step: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts ``(steps + 1, series, h)`` and support losses ``(steps + 1, series)`` after 0, 1, ...,
    ``steps`` adaptation steps, in one pass (``every_step=False``: after the last step only, ``(1, ...)``)."""
    preds, losses = [], []
    learner.eval()
    for lo in range(0, problems.x_fc.shape[0], chunk):  # chunks of series bound the memory
        sl = slice(lo, lo + chunk)
        xs, ys, _ = scale(problems.x_spt[sl], problems.y_spt[sl], scaler)  # (n, slots, ...)
        xf, _, stats = scale(problems.x_fc[sl], None, scaler)  # (n, 1, input_size)
        xs, ys, xf, m = xs.to(device), ys.to(device), xf.to(device), problems.m_spt[sl].to(device)
        with torch.no_grad():
            pred, spt = learner.adapt_curve(xs, ys, xf, m, steps, every_step)  # (curve, n, 1, h), (curve, n)
        preds.append(torch.stack([unscale(p.cpu(), stats)[:, 0] for p in pred]))  # (steps + 1, n, h)
        losses.append(spt.cpu())
    preds = torch.cat(preds, 1).double().numpy()  # (curve, series, h)
    if problems.factor is not None:
        preds = preds * problems.factor[None]
    return preds, torch.cat(losses, 1).double().numpy()


# ---------------------------------------------------------------------------------------------------
# The experiment


def learner_options(c) -> dict:
    """The keyword arguments a learner takes from a :class:`~fewcast.config.LearnerConfig`."""
    return dict(inner_lr=c.inner_lr, inner_steps=c.inner_steps, first_order=c.first_order, loss=c.loss,
                multi_step_loss=c.multi_step_loss, msl_iterations=c.msl_iterations, learn_inner_lr=c.learn_inner_lr,
                first_order_iterations=c.first_order_iterations, adapt=c.adapt)


def adapt_shots(settings: Settings) -> int:
    """How many of a series' most recent windows a forecast adapts on: ``eval.adapt_shots``, else the
    learner's meta-training ``shots``."""
    return settings.eval.adapt_shots or settings.learner.shots


def finetune_all(model: torch.nn.Module, settings: Settings, device="cpu") -> MAML:
    """``pretrained_finetune_all``: ``model`` fine-tuned by plain SGD on a series' windows (up to
    ``eval.finetune_all_shots``), ``eval.finetune_all_steps`` steps at ``eval.finetune_all_lr``."""
    e = settings.eval
    return MAML(model, inner_lr=e.finetune_all_lr, inner_steps=e.finetune_all_steps,
                loss=settings.learner.loss).to(device)


def check_adaptation(adapt: str) -> None:
    if adapt not in ADAPTATIONS:
        raise InputError(f"unknown adaptation {adapt!r}; choose one of {', '.join(ADAPTATIONS)}")


def adaptation(settings: Settings, learner: GradientLearner, pretrained: torch.nn.Module, adapt: str = "learned",
               device="cpu") -> tuple[GradientLearner, int, int | None]:
    """How a forecast adapts: the learner, how many of a series' latest windows it adapts on, and its steps
    (None: the learner's own). ``learned``: ``learner`` on :func:`adapt_shots` windows, ``eval.adapt_steps``
    steps when set; ``finetune_all``: :func:`finetune_all` of ``pretrained`` on ``eval.finetune_all_shots``
    windows (0, which only leaves it out of results tables, falls back to the default), its own steps."""
    check_adaptation(adapt)
    if adapt == "finetune_all":
        shots = settings.eval.finetune_all_shots or EvalConfig.finetune_all_shots
        return finetune_all(pretrained, settings, device), shots, None
    if adapt == "learned":
        return learner, adapt_shots(settings), settings.eval.adapt_steps or None
    raise ValueError(f"{adapt!r} adapts each series one of the other ways: split the series with finetune_all_rows")


def finetune_all_rows(history: Panel, input_size: int, h: int, settings: Settings) -> np.ndarray:
    """Which series ``auto`` fine-tunes on every window (``(series,)`` bool): those with at least
    ``eval.finetune_all_min_shots`` windows; the learner adapts the others."""
    return Windows(history, input_size, h).counts >= settings.eval.finetune_all_min_shots


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but PyTorch sees no CUDA device here; use --device cpu")
    return torch.device(name)


@dataclass
class Results:
    """Everything an experiment measured; ``table`` is the results table."""

    settings: Settings
    table: pd.DataFrame
    logs: dict[str, list[dict]] = field(default_factory=dict)
    trajectory: pd.DataFrame | None = None
    shots_curve: pd.DataFrame | None = None
    samples: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    dataset: str = ""
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (series, h)
    test_ids: np.ndarray | None = None


class Experiment:
    """Meta-train, pre-train and score every method on series the networks have never seen."""

    def __init__(self, settings: Settings, data: PanelData | None = None, progress: bool = False, log=print):
        self.settings = settings
        self.progress = progress
        self.log = log
        if settings.eval.protocol not in PROTOCOLS:
            raise InputError(f"unknown protocol {settings.eval.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        check_methods(settings.eval.classical)  # before any training: a typo must not cost a run
        missing = [m for m in settings.eval.combine if m not in settings.eval.classical]
        if missing:
            raise InputError(f"combine lists {', '.join(missing)}, which classical does not compute: add it to "
                             f"classical (--classical) or drop it from combine (--combine '')")
        uses_log = uses_transform(settings.model.ensemble_transforms, settings.model.ensemble)
        if uses_log and settings.data.scaler == "standard":
            raise InputError("ensemble_transforms 'log' takes the log of scaled values, which the 'standard' scaler "
                             "makes negative: use --scaler mean_abs (or none) with it")
        self.data = data or load_panel_data(settings)
        self.device = resolve_device(settings.train.device)
        self.dist = distributed.from_env(self.device)  # None unless launched by torchrun with several ranks
        self.rank_seed = (settings.train.seed + 7919 * settings.train.model_seed
                          + 1009 * (self.dist.rank if self.dist else 0))
        self.h = self.data.h
        self.timings: dict[str, float] = {}
        self.logs: dict[str, list[dict]] = {}
        self._prepare()

    # -- data ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        s, d = self.settings, self.data
        input_size, h = s.data.input_size, self.h
        check_log_values(d.visible, s)
        split = split_series(d.visible.ids, s.data.val_frac, s.data.test_frac if s.eval.protocol == "holdout" else 0.0,
                             s.train.seed)
        self.split: Split = split
        visible = d.visible
        val_pos = visible.index_of(split.val)
        self.train_series: np.ndarray | None = None  # the series the samplers draw from (None: all)
        stop = None  # per-series usable length of train_panel (memory-mapped data only)
        stale = s.data.staleness
        if stale < 0:
            raise InputError(f"staleness must be 0 or more (got {stale})")
        if d.cut is not None:  # memory-mapped: train on the mapped panel itself, nothing copied
            if s.eval.protocol != "holdout":
                raise InputError("memory-mapped data (--memmap) supports the holdout protocol only")
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
            raise InputError("--deseasonalize needs data in memory; it does not work with --memmap")
        train_panel = self._adjusted(train_panel)  # indices from the training part only
        self.train_panel = train_panel
        self.windows = Windows(train_panel, input_size, h, drop_zero_target=s.data.drop_zero_target, stop=stop)
        if len(self.windows) == 0:
            raise InputError(f"no meta-train series is long enough for one window of {input_size} -> {h}; "
                             f"lower --input-size")
        # meta-training needs whole tasks: say so now, not after pre-training
        eligible_series(self.windows, s.learner.shots, s.learner.query_shots, self.train_series)
        self.validation: Tasks | None = None
        if len(val_pos):
            val_part = self._adjusted(d.visible_part(val_pos))
            val_windows = Windows(val_part, input_size, h)
            try:
                vs = TaskSampler(val_windows, s.learner.shots, 1, s.data.scaler, s.train.seed)
                self.validation = vs.latest()
            except InputError:  # short series: validate as they will be forecast, on fewer support windows
                val_part = val_part.take(np.flatnonzero(val_part.lengths > h))
                if val_part.n_series:
                    hist, truth = val_part.split_last(h)
                    problems = make_problems(hist, truth.values.reshape(-1, h), input_size, h, s.learner.shots,
                                             d.season_length)
                    self.validation = problems_as_tasks(problems, s.data.scaler)
                    self.log(f"note: no meta-validation series has the windows of a whole task; validating on "
                             f"{val_part.n_series} series with {problems.shots_used.mean():.1f} support windows "
                             f"on average (shots={s.learner.shots})")
                else:
                    self.log("note: no meta-validation series is longer than h; no early stopping")
        history = d.visible_part(test_pos)
        if s.data.history:
            history = history.tail(s.data.history)
        self.test_history = history
        self.test_truth = d.horizon_values(test_pos)

    def _adjusted(self, panel: Panel) -> Panel:
        """``panel`` deseasonalized series by series when ``data.deseasonalize`` is on, else as it is."""
        if not self.settings.data.deseasonalize:
            return panel
        return seasonal.adjust(panel, self.data.season_length)[0]

    def problems(self, shots: int | None = None) -> Problems:
        s = self.settings
        return make_problems(self.test_history, self.test_truth, s.data.input_size, self.h,
                             adapt_shots(s) if shots is None else shots, self.data.season_length, s.data.deseasonalize)

    # -- training -----------------------------------------------------------------------------------
    def new_model(self, seed_offset: int = 0) -> torch.nn.Module:
        s = self.settings
        torch.manual_seed(s.train.seed + 7919 * s.train.model_seed + seed_offset)
        return build_from_config(s.model, s.data.input_size, self.h)

    def trainer(self, label: str, learner: GradientLearner, sampler, iterations: int, lr: float,
                batch: int, **hooks) -> MetaTrainer:
        t = self.settings.train
        if self.progress and (self.dist is None or self.dist.main):
            unit = "windows" if isinstance(learner, Pretrain) else "tasks"
            self.log(f"training {label}: {iterations} iterations of {batch} {unit}")
        return MetaTrainer(learner, sampler, self.validation, outer_lr=lr, meta_batch_size=batch,
                           iterations=iterations, clip=t.clip or None, val_every=t.val_every,
                           patience=t.patience or None, cosine=t.cosine, device=self.device,
                           checkpoint_every=t.checkpoint_every, dist=self.dist, compile=t.compile, **hooks)

    def fit(self, label: str, trainer: MetaTrainer) -> GradientLearner:
        started = time.perf_counter()
        trainer.fit(progress=self.progress)
        self.logs[label] = trainer.history
        self.timings[f"train {label}"] = self.timings.get(f"train {label}", 0.0) + time.perf_counter() - started
        return trainer.learner

    def pretrain_trainer(self, **hooks) -> MetaTrainer:
        s = self.settings
        learner = Pretrain(self.new_model(), loss=s.learner.loss)
        full = s.train.pretrain_batch_size == -1
        batch = s.train.pretrain_batch_size or s.train.meta_batch_size * (s.learner.shots + s.learner.query_shots)
        sampler = WindowSampler(self.windows, s.data.scaler, self.rank_seed, series=self.train_series, full_batch=full)
        return self.trainer("pretrained", learner, sampler, s.train.pretrain_iterations, s.train.pretrain_lr,
                            batch, ema=s.train.pretrain_ema, **hooks)

    def pretrain(self) -> Pretrain:
        return self.fit("pretrained", self.pretrain_trainer())

    def meta_trainer(self, name: str, pretrained: Pretrain | None, **hooks) -> MetaTrainer:
        """Meta-train learner ``name``: the run's learner with every setting, any other as the plain
        algorithm (all parameters adapt, except ANIL's body; no MAML++ options) with the run's inner rate,
        inner steps, loss, shots and initialization."""
        s = self.settings
        init = copy.deepcopy(pretrained.model) if s.learner.init == "pretrained" and pretrained else self.new_model()
        options = learner_options(s.learner)
        if name != s.learner.name:
            options.update(adapt="all", multi_step_loss=False, learn_inner_lr=False, first_order_iterations=0)
        learner = build_learner(name, init, **options)
        if s.learner.outer_params == "rates" and name == s.learner.name:
            if not any(True for n, _ in learner.named_parameters() if not n.startswith("model.")):
                raise InputError(f"outer_params='rates' needs learned inner rates: {name} has none "
                                 f"(use metasgd or learn_inner_lr)")
            learner.model.requires_grad_(False)  # the initialization stays; only the inner rates learn
        elif s.learner.outer_params not in ("all", "rates"):
            raise InputError(f"outer_params must be 'all' or 'rates' (got {s.learner.outer_params!r})")
        sampler = TaskSampler(self.windows, s.learner.shots, s.learner.query_shots, s.data.scaler, self.rank_seed,
                              series=self.train_series)
        return self.trainer(name, learner, sampler, s.train.iterations, s.train.outer_lr, s.train.meta_batch_size,
                            **hooks)

    def meta_train(self, name: str, pretrained: Pretrain | None) -> GradientLearner:
        return self.fit(name, self.meta_trainer(name, pretrained))

    def finetuner(self, model: torch.nn.Module) -> MAML:
        """Plain SGD fine-tuning adapted exactly as the meta-learner adapts: the same parameters (all, or
        the head), shots, inner steps and (initial) inner rate, without anything meta-learned."""
        c = self.settings.learner
        adapt = "head" if c.name == "anil" else c.adapt
        return MAML(model, inner_lr=c.inner_lr, inner_steps=c.inner_steps, loss=c.loss, adapt=adapt).to(self.device)

    # -- the whole run ------------------------------------------------------------------------------
    def run(self) -> Results:
        """Pre-train, meta-train the run's learner, ``maml`` and any extra learners, then evaluate."""
        pretrained, learners = self.train()
        return self.evaluate(pretrained, learners)

    def train(self, extra: bool = True) -> tuple[Pretrain, dict[str, GradientLearner]]:
        s = self.settings
        pretrained = self.pretrain()
        names = list(dict.fromkeys([s.learner.name, "maml", *s.eval.learners])) if extra else [s.learner.name]
        return pretrained, {name: self.meta_train(name, pretrained) for name in names}

    def evaluate(self, pretrained: Pretrain, learners: dict[str, GradientLearner]) -> Results:
        """Score every method on the meta-test series (holdout) or on every series (all-series). The networks
        are moved to the experiment's device (weights loaded from a checkpoint arrive on the CPU)."""
        s = self.settings
        protocol = s.eval.protocol
        started = time.perf_counter()
        for module in (pretrained, *learners.values()):
            module.to(self.device)
        _, shots, steps = adaptation(s, learners[s.learner.name], pretrained.model)
        problems = self.problems(shots)
        rows, forecasts = [], {}
        for name, learner in learners.items():
            forecasts[name] = forecast(learner, problems, s.data.scaler, steps, self.device)[0]
            forecasts[f"{name}_zeroshot"] = forecast(learner, problems, s.data.scaler, 0, self.device)[0]
        forecasts["pretrained"] = forecast(pretrained, problems, s.data.scaler, 0, self.device)[0]
        finetune = self.finetuner(pretrained.model)
        scratch = self.finetuner(self.new_model(seed_offset=1))
        forecasts["pretrained_finetune"] = forecast(finetune, problems, s.data.scaler, steps, self.device)[0]
        forecasts["scratch"] = forecast(scratch, problems, s.data.scaler, steps, self.device)[0]
        if s.eval.finetune_all_shots:  # the strongest plain fine-tuning found on validation, as a reference
            tuned, all_shots, all_steps = adaptation(s, None, pretrained.model, "finetune_all", self.device)
            forecasts["pretrained_finetune_all"] = forecast_series(tuned, self.test_history, s, self.h,
                                                                   self.data.season_length, all_shots, all_steps,
                                                                   self.device)
            long = finetune_all_rows(self.test_history, s.data.input_size, self.h, s)  # (series,)
            forecasts[f"{s.learner.name}_auto"] = np.where(long[:, None], forecasts["pretrained_finetune_all"],
                                                           forecasts[s.learner.name])
        self.timings["forecast networks"] = time.perf_counter() - started
        started = time.perf_counter()
        forecasts.update(classical_forecasts(self.test_history, self.h, self.data.season_length, s.eval.classical))
        self.timings["classical baselines"] = time.perf_counter() - started
        every = [f"{s.learner.name}_auto", "pretrained_finetune_all"] if s.eval.finetune_all_shots else []
        networks = [s.learner.name, *every]
        for method in s.eval.combine:  # forecast combinations: each adapted network and a classical method
            for network in networks:
                forecasts[f"{network}+{method}"] = (forecasts[network] + forecasts[method]) / 2
        for method, yhat in forecasts.items():
            rows.append({"protocol": protocol, "method": method,
                         **score(problems.truth, yhat, problems.mase_scale)})
        table = pd.DataFrame(rows, columns=["protocol", "method", "smape", "mase", "mae", "rmse", "n_series"])

        started = time.perf_counter()
        default = learners[s.learner.name]
        trajectory = self.trajectory(problems, {s.learner.name: default, "pretrained": finetune, "scratch": scratch})
        shots_curve = self.shots_curve(default, finetune)
        samples = self.samples(problems, default, s.learner.name, forecasts)
        self.timings["curves"] = time.perf_counter() - started
        return Results(s, table, self.logs, trajectory, shots_curve, samples, self.timings, self.data.name,
                       forecasts, self.test_history.ids)

    def trajectory(self, problems: Problems, inits: dict[str, GradientLearner]) -> pd.DataFrame:
        """Average support loss and horizon sMAPE after 0, 1, ..., ``curve_steps`` adaptation steps."""
        rows = []
        has_support = problems.shots_used > 0
        for label, learner in inits.items():
            yhat, loss = forecast_curve(learner, problems, self.settings.data.scaler, self.settings.eval.curve_steps,
                                        self.device)  # (steps + 1, series, h), (steps + 1, series)
            for k in range(len(yhat)):
                spt = float(loss[k][has_support].mean()) if has_support.any() else np.nan  # nan: no series has one
                rows.append({"init": label, "steps": k, "support_loss": spt,
                             "smape": float(smape(problems.truth, yhat[k]).mean())})
        return pd.DataFrame(rows)

    def shots_curve(self, learner: GradientLearner, finetune: MAML) -> pd.DataFrame:
        rows = []
        steps = self.settings.eval.adapt_steps or None
        for shots in self.settings.eval.shots_curve:
            problems = self.problems(shots)
            for label, lrn in ((self.settings.learner.name, learner), ("pretrained_finetune", finetune)):
                yhat, _ = forecast(lrn, problems, self.settings.data.scaler, steps, self.device)
                rows.append({"method": label, "shots": shots, "smape": float(smape(problems.truth, yhat).mean())})
        return pd.DataFrame(rows)

    def samples(self, problems: Problems, learner: GradientLearner, name: str, forecasts: dict) -> list[dict]:
        """A seeded sample of meta-test series with history, truth and forecasts, for the per-series panels."""
        n = min(self.settings.eval.plot_series, problems.history.n_series)
        rng = np.random.default_rng(self.settings.train.seed)
        pick = np.sort(rng.choice(problems.history.n_series, size=n, replace=False))
        out = []
        for i in pick:
            out.append({
                "unique_id": str(problems.history.ids[i]),
                "history": problems.history.series(i).astype(np.float64),
                "truth": problems.truth[i],
                "shots": int(problems.shots_used[i]),
                "forecasts": {label: forecasts[key][i] for label, key in (
                    (f"{name} before adaptation", f"{name}_zeroshot"), (f"{name} adapted", name),
                    ("pretrained_finetune", "pretrained_finetune"), ("theta", "theta")) if key in forecasts},
            })
        return out
