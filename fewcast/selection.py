"""Choosing the forecast on validation: every candidate scored on a leak-free cut, the best one recorded.

The networks are trained a second time on the panel as it was ``k`` horizons earlier: every series'
visible part ends at its visible end ``T`` minus ``k h`` (``k`` from 1 to 8: a fifth of a typical series,
:func:`cuts`). Each candidate then forecasts each of the last ``k`` horizons ``(T - j h, T - (j - 1) h]``
from what precedes it: under the ``holdout`` protocol, of the validation series (series never trained on,
as the held-out series are) and of up to ``train.select_training`` training series over the cuts (their
earlier windows trained the networks, as the validation series' never did); under ``all-series``, of every
series. Nothing trained or validated on lies in the scored period. As the networks are trained once, before
the earliest of those horizons, so are AutoETS, AutoCES and Theta fitted once per series; each later horizon
is forecast with the same fitted parameters from its longer history. The intervals' width is calibrated on
the validation series' errors, the shape of their distribution on the training series' as well; a second
calibration, for short histories, on the same rows forecast from their last
:func:`fewcast.intervals.short_length` points.

The candidates: the adapted learner, ``pretrained_finetune_all`` and ``<learner>_auto``, each alone and
averaged with AutoETS and with Theta, and AutoETS, Theta and seasonal naive alone. The chosen one has the
lowest mean of its sMAPE and its MASE, each relative to seasonal naive's on the same series; with
``train.select_top`` above 1, the forecast is the average of that many best candidates (``a,b``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fewcast.baselines import CLASSICAL, statistical_cuts
from fewcast.data import PanelData
from fewcast.errors import InputError
from fewcast.experiment import Experiment, Hooks
from fewcast.forecasting import Forecasts, Mean, catalog, classical, combined, mean
from fewcast.intervals import SHORT, calibrate, short_history, short_length, short_name, volatility
from fewcast.learners import TrainingDiverged, TrainingInterrupted
from fewcast.metrics import mase, seasonal_scale, smape

COLUMNS = ["method", "smape", "mase", "score", "rank"]
MAX_CUTS = 8
COMBINED_WITH = ("autoets", "theta")
BASELINE = "seasonal_naive"


def candidate_names(learner: str) -> list[str]:
    """What the validation chooses from, in the order of ties."""
    networks = [learner, "pretrained_finetune_all", f"{learner}_auto"]
    return [*networks, *(f"{n}+{c}" for n in networks for c in COMBINED_WITH), *COMBINED_WITH, BASELINE]


@dataclass
class Selection:
    """The validation ranking (``table``, best first), the method chosen, and what was scored."""

    table: pd.DataFrame
    chosen: str
    series: int  # how many series the cut scored
    h: int
    seconds: float = 0.0
    logs: dict = field(default_factory=dict)  # the training curves of the networks trained for it
    cuts: int = 1  # how many horizons before the visible end it scored, one after the other
    calibration: dict = field(default_factory=dict)  # method -> its scaled errors' quantiles; intervals.SHORT
    scored: dict = field(default_factory=dict, repr=False)  # what was scored, when kept: see :func:`select`
    training: int = 0  # training series ranked on as well (holdout protocol; train.select_training)

    def reason(self) -> str:
        if self.table.empty:
            return f"{self.chosen}: no series to score on validation"
        row = self.table.iloc[0]
        parts = len(self.chosen.split(","))
        best = "the lowest mean of sMAPE and MASE relative to seasonal naive"
        how = f"the average of the {parts} candidates with {best} (its own " if parts > 1 else f"{best} ("
        return (f"{self.chosen}: {how}{row['score']:.3f}; "
                f"sMAPE {row['smape']:.2f}, MASE {row['mase']:.3f}) on the last {self.cuts * self.h} points before "
                f"the visible end of {self.scored_series()}, forecast {self.h} at a time by networks trained on the "
                f"data before them")

    def scored_series(self) -> str:
        if not self.training:
            return f"{self.series} series"
        return (f"{self.series} validation series and {self.training} training series (whose earlier points the "
                f"networks trained on)")

    def to_csv(self) -> str:
        """The ranking, best first, with how many series and points it scored."""
        return self.table[COLUMNS].assign(series=self.series, training=self.training, h=self.h,
                                          cuts=self.cuts).to_csv(index=False)

    @classmethod
    def from_csv(cls, path) -> Selection | None:
        """The ranking :meth:`to_csv` wrote; None where it holds no row (no series to choose on)."""
        table = pd.read_csv(path)
        if table.empty:
            return None
        first = table.iloc[0]
        return cls(table[COLUMNS], str(first["method"]), int(first["series"]), int(first["h"]),
                   cuts=int(first.get("cuts", 1)), training=int(first.get("training", 0)))


def cuts(data: PanelData) -> int:
    """How many horizons the validation scores: a fifth of a typical series' visible part (1 to
    :data:`MAX_CUTS`), and as many as leave every series at least 2 points to forecast from."""
    lengths = data.visible.lengths if data.cut is None else np.asarray(data.cut)
    if data.cut is not None or not len(lengths):
        return 1
    typical = int(0.2 * float(np.median(lengths)) // data.h)
    return int(max(1, min(MAX_CUTS, typical, (int(lengths.min()) - 2) // data.h)))


def earlier(data: PanelData, shift: int | None = None) -> PanelData:
    """``data`` as it was ``shift`` points before (default: ``h``): every series' visible part ``shift`` points
    shorter, the ``h`` after it its horizon."""
    h, shift = data.h, shift or data.h
    if data.cut is not None:  # memory-mapped: the same panel, each series visible up to earlier
        return PanelData(data.name, data.visible, None, h, data.season_length, cut=np.maximum(data.cut - shift, 1))
    lengths = data.visible.lengths
    return PanelData(data.name, data.visible.slice(0, lengths - shift),
                     data.visible.slice(lengths - shift, lengths - shift + h), h, data.season_length)


class _Interruptible(Hooks):
    def __init__(self, stop):
        self.stop = stop

    def trainer_options(self, phase, pretrained) -> dict:
        return {"should_interrupt": self.stop} if self.stop is not None else {}


def select(run: Experiment, stop=None, keep: bool = False) -> Selection:
    """Train the networks on the ``run``'s data as it was :func:`cuts` horizons before, with the run's
    settings (shots lowered to what the shorter series hold), score every candidate
    on each of those horizons from what precedes it, and rank them. ``stop``: a callable that asks training
    to stop (Ctrl-C), which raises :class:`TrainingInterrupted`. With ``keep``, the selection's ``scored`` keeps
    what was scored, cut after cut (the latest first): ``forecasts`` (method -> ``(rows, h)``), ``truth``,
    ``cut`` (each row's), ``history`` (one panel per cut) and ``validation`` (whether a row is a validation
    series'; ``short``, where the validation histories are longer than a short one: the ``forecasts`` from
    the last :func:`fewcast.intervals.short_length` points of each ``history``). Under the holdout protocol
    the candidates are ranked on the validation series and on
    ``train.select_training // cuts`` training series (a seeded sample; the networks trained on their earlier
    windows, not on these horizons), which follow the validation series in each cut; the intervals take their
    level from the validation series' errors alone (:func:`fewcast.intervals.calibrate`)."""
    settings, data, progress, log = run.settings, run.data, run.progress, run.log
    started, h, k = time.perf_counter(), data.h, cuts(data)
    if progress:
        log(f"choosing the forecast: training on the data up to {k * h} points before the end, scoring the rest")
    try:
        exp = Experiment(settings, earlier(data, k * h), progress=progress, log=log, fit_shots=True)
    except InputError as exc:  # the series hold no task k h points before their end: the learner, unchosen
        log(f"note: no forecast chosen on validation: the series {k * h} points before their end are too short "
            f"to train on ({exc}); forecasting with the adapted learner")
        return _unchosen(settings.learner.name, h, started)
    if exp.settings.train.shots < settings.train.shots:
        log(f"note: choosing the forecast with networks trained on {exp.settings.train.shots} shots (the run's "
            f"{settings.train.shots} do not fit the series before the validation cut)")
    try:
        pretrained, learners = exp.train(hooks=_Interruptible(stop))
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(f"{exc} while choosing the forecast") from None
    except TrainingDiverged as exc:  # the run's own networks trained: choose among the classical methods
        log(f"note: the networks diverged on the validation cut ({exc}); choosing among the classical methods")
        pretrained, learners = None, None
    s = exp.settings
    pos = data.visible.index_of(exp.split.val) if s.eval.protocol == "holdout" else np.arange(data.visible.n_series)
    validation = len(pos)  # each cut's first rows: the validation series
    if s.eval.protocol == "holdout" and s.train.select_training and validation:
        train = np.random.default_rng(0).permutation(data.visible.index_of(exp.split.train))
        pos = np.concatenate([pos, np.sort(train[:s.train.select_training // k])])
    if not len(pos):
        log("note: no series to choose the forecast on; forecasting with the adapted learner")
        return _unchosen(s.learner.name, h, started)
    names = candidate_names(s.learner.name)
    if learners is None:
        names = [name for name in names if "+" not in name and name in CLASSICAL]
        offered = {name: classical(name) for name in CLASSICAL}
    else:
        offered = catalog(s, learners[s.learner.name], pretrained, exp.device)
    offered.update({c.name: c for c in (combined(classical(a), b) for a in CLASSICAL for b in CLASSICAL if a != b)})
    methods = list(offered.values())  # every method (and classical pairs): each is calibrated; candidates ranked
    made, truths, scales, histories = {m.name: [] for m in methods}, [], [], []
    shorts, short_made = [], {m.name: [] for m in methods}  # the same rows forecast from a short history
    short = short_length(exp.layout)
    # (k, rows, h) each: the statistical methods fitted once, before the earliest horizon, as the networks are
    fitted = statistical_cuts(data.visible_part(pos), h, exp.layout.season_length, k) if k > 1 else {}
    for j in range(1, k + 1):  # the horizon j horizons before the visible end
        cut = earlier(data, j * h)
        history, truth = cut.visible_part(pos), cut.horizon_values(pos)
        forecasts = Forecasts(history, exp.layout, exp.device).known({n: every[j - 1] for n, every in fitted.items()})
        for name, yhat in forecasts.make(methods).items():
            made[name].append(yhat)
        if j == 1:  # validation histories no longer than a short one: no short-history calibration
            by_short = history.lengths[:validation].min() > short
        if by_short:
            shorts.append(history.tail(short))
            for name, yhat in Forecasts(shorts[-1], exp.layout, exp.device).make(methods).items():
                short_made[name].append(yhat)
        truths.append(truth)
        histories.append(history)
        scales.append(seasonal_scale(history, exp.layout.season_length))
    made = {n: np.concatenate(v) for n, v in made.items()}
    short_made = {n: np.concatenate(v) for n, v in short_made.items()} if shorts else {}
    truth, scale = np.concatenate(truths), np.concatenate(scales)
    own = np.tile(np.arange(len(pos)) < validation, k)  # (rows,) the validation series': the intervals' level
    table = rank({n: made[n] for n in names}, truth, scale)
    best = mean([offered[str(n)] for n in table["method"].iloc[:s.train.select_top]])
    if isinstance(best, Mean):  # the average of the best, first in the table, and averaged with each classical
        for every in (made, short_made) if shorts else (made,):  # every cut's rows: its parts are all made
            pooled = Forecasts(None, exp.layout, exp.device).known(every)
            every.update(pooled.make([best, *(combined(best, c) for c in CLASSICAL)]))
        averaged = rank({best.name: made[best.name], BASELINE: made[BASELINE]}, truth, scale)
        table = pd.concat([averaged[averaged["method"] != BASELINE], table], ignore_index=True)
        table["rank"] = np.arange(1, len(table) + 1)
    cut_of = np.repeat(np.arange(1, k + 1), len(pos))  # (rows,) each row's cut, 1 the latest
    scored = {"forecasts": made, "truth": truth, "cut": cut_of, "history": histories, "validation": own} if keep else {}
    calibration = calibrate(truth, made, scale, cut_of, own=own)  # the level the validation series', not the shape
    if calibration:  # how a history shorter than these is scaled (intervals.volatility)
        calibration[SHORT] = short_history(histories[0].take(np.arange(validation)), exp.layout)
    if calibration and shorts:  # the same horizons forecast from short histories, scaled as a short history is
        scale = np.concatenate([volatility(p, exp.layout, calibration) for p in shorts])  # (rows,)
        calibration.update({short_name(n): t for n, t in calibrate(truth, short_made, scale, cut_of, own=own).items()})
        if keep:
            scored["short"] = {"forecasts": short_made, "history": shorts}
    return Selection(table, str(table["method"].iloc[0]), validation, h, time.perf_counter() - started, exp.logs, k,
                     calibration, scored, training=len(pos) - validation)


def _unchosen(learner: str, h: int, started: float) -> Selection:
    """No ranking: the adapted ``learner`` is the forecast."""
    return Selection(pd.DataFrame(columns=COLUMNS), learner, 0, h, time.perf_counter() - started)


def rank(forecasts: dict[str, np.ndarray], truth: np.ndarray, scale: np.ndarray) -> pd.DataFrame:
    """Every method's sMAPE and MASE on ``truth`` (``(forecasts, h)``, MASE scaled by ``scale``) and their mean
    relative to seasonal naive's, best first."""
    scores = {}
    for name, yhat in forecasts.items():
        m = mase(truth, yhat, scale)
        scores[name] = (float(np.mean(smape(truth, yhat))), float(np.nanmean(m)) if np.isfinite(m).any() else np.nan)
    base = scores[BASELINE]
    rows = []
    for name, (a, b) in scores.items():
        ratios = [a / base[0] if base[0] else np.nan, b / base[1] if base[1] > 0 else np.nan]
        finite = [r for r in ratios if np.isfinite(r)]
        rows.append({"method": name, "smape": a, "mase": b, "score": float(np.mean(finite)) if finite else np.nan})
    table = pd.DataFrame(rows).sort_values("score", kind="stable", na_position="last").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[COLUMNS]
