"""Ways to forecast a panel: each one an object with a name, a description and one ``forecast`` method.

A method forecasts the ``h`` points after every series of a history, ``(series, h)``. :class:`Adapted`
adapts a network to each series' own latest windows and forecasts all series at once; :class:`Auto` takes
one method's forecast for a series with many windows and another's for the others; :class:`Classical` is
a statistical baseline; :class:`Combined` averages a method with a classical one. :class:`Forecasts` makes
each method's forecasts of one history once, so that a combination reuses its parts'. ``predict``,
``evaluate``, ``fewcast forecast`` and the benchmarks all forecast through here, under the method names of
the results tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fewcast.baselines import CLASSICAL, classical_forecasts
from fewcast.config import ForecastConfig, Settings
from fewcast.engine import Layout, forecast_series
from fewcast.errors import InputError
from fewcast.intervals import floors
from fewcast.learners import MAML, GradientLearner, Pretrain
from fewcast.panel import Panel
from fewcast.windows import Windows


class Forecasts:
    """The forecasts of one history by method, each made once, on ``device``. No forecast of a series that
    has never been below zero goes below zero (:func:`~fewcast.intervals.floors`, as its quantiles do not)."""

    def __init__(self, history: Panel | None, layout: Layout, device="cpu"):
        self.history = history
        self.layout = layout
        self.device = device
        self.made: dict[str, np.ndarray] = {}  # method name -> (series, h)
        self.floor = None if history is None else floors(history)[:, None]  # (series, 1): 0 or -inf

    def _floored(self, yhat: np.ndarray) -> np.ndarray:
        return yhat if self.floor is None else np.maximum(yhat, self.floor)

    def __getitem__(self, method: Method) -> np.ndarray:
        if method.name not in self.made:
            self.made[method.name] = self._floored(method.forecast(self))
        return self.made[method.name]

    def known(self, forecasts: dict[str, np.ndarray]) -> Forecasts:
        """Take forecasts made elsewhere (method name -> ``(series, h)``, e.g. fitted once for several
        horizons) for the methods not made yet; ``self``."""
        for name, yhat in forecasts.items():
            if name not in self.made:
                self.made[name] = self._floored(yhat)
        return self

    def make(self, methods: list[Method]) -> dict[str, np.ndarray]:
        """Every method's forecasts by name; the classical ones they need, not made yet, in one statsforecast
        run."""
        classical = list(dict.fromkeys(m.name for m in _classical(methods) if m.name not in self.made))
        if classical:
            made = classical_forecasts(self.history, self.layout.h, self.layout.season_length, classical)
            self.made.update({name: self._floored(yhat) for name, yhat in made.items()})
        return {m.name: self[m] for m in methods}

    def part(self, rows: np.ndarray) -> Forecasts:
        """Forecasts of the series at ``rows`` only."""
        return Forecasts(self.history.take(rows), self.layout, self.device)


@dataclass(frozen=True, eq=False)
class Method:
    """A way to forecast: its name in results tables, what it does in a sentence, and :meth:`forecast`."""

    name: str
    description: str

    def forecast(self, f: Forecasts) -> np.ndarray:
        """``(series, h)`` forecasts of the history of ``f``."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Adapted(Method):
    """``learner`` adapted on each series' last ``shots`` windows for ``steps`` steps (None: its own), then
    forecasting; ``steps=0`` is a zero-shot forecast."""

    learner: GradientLearner
    shots: int
    steps: int | None = None

    def forecast(self, f: Forecasts) -> np.ndarray:
        return forecast_series(self.learner, f.history, f.layout, self.shots, self.steps, f.device)


@dataclass(frozen=True, eq=False)
class Auto(Method):
    """``long`` for a series with at least ``threshold`` windows, ``short`` for the others. When both are
    already made for every series (a results table scores both), it takes their forecasts; otherwise each
    forecasts its own series only."""

    long: Method
    short: Method
    threshold: int

    def forecast(self, f: Forecasts) -> np.ndarray:
        rows = Windows(f.history, f.layout.input_size, f.layout.h).counts >= self.threshold  # (series,)
        if self.long.name in f.made and self.short.name in f.made:
            return np.where(rows[:, None], f.made[self.long.name], f.made[self.short.name])
        out = np.empty((f.history.n_series, f.layout.h))
        for method, pick in ((self.long, rows), (self.short, ~rows)):
            if pick.any():
                out[pick] = f.part(np.flatnonzero(pick))[method]
        return out


CLASSICAL_DESCRIPTIONS = {
    "naive": "repeats each series' last value",
    "seasonal_naive": "repeats each series' last season",
    "autoets": "statsforecast's AutoETS, fitted to each series alone",
    "autoces": "statsforecast's AutoCES (complex exponential smoothing), fitted to each series alone",
    "theta": "statsforecast's Theta, fitted to each series alone",
}


@dataclass(frozen=True, eq=False)
class Classical(Method):
    """A classical method of :mod:`fewcast.baselines` by name, given exactly the history the networks see."""

    def forecast(self, f: Forecasts) -> np.ndarray:
        return f.make([self])[self.name]


@dataclass(frozen=True, eq=False)
class Combined(Method):
    """The average of ``base``'s forecast and a classical method's."""

    base: Method
    other: Classical

    def forecast(self, f: Forecasts) -> np.ndarray:
        return (f[self.base] + f[self.other]) / 2


@dataclass(frozen=True, eq=False)
class Mean(Method):
    """The average of several methods' forecasts, named by theirs joined with commas (``a,b``)."""

    parts: tuple[Method, ...]

    def forecast(self, f: Forecasts) -> np.ndarray:
        return np.mean([f[m] for m in self.parts], axis=0)


def mean(parts: list[Method]) -> Method:
    """The average of ``parts`` (one part: itself)."""
    if len(parts) == 1:
        return parts[0]
    names = [m.name for m in parts]
    return Mean(",".join(names), f"the average of {', '.join(names)}", tuple(parts))


def named(methods: dict[str, Method], name: str) -> Method:
    """The method ``name`` of ``methods``, or the average of several (``a,b``); an InputError for any other."""
    name = ",".join(part.strip() for part in name.split(","))  # "a, b" is "a,b"
    unknown = [n for n in name.split(",") if n not in methods]
    if unknown:
        what = {"scratch": "'scratch' is evaluate's reference row (a network never trained, fine-tuned on each "
                           "series, to show what training adds), not a forecast a run makes",
                "fewcast": "'fewcast' (the chosen forecast) stands alone; average it with a classical method by "
                           "`combine`"}.get(unknown[0], f"unknown method {unknown[0]!r}")
        raise InputError(f"{what}; choose one of {', '.join(methods)}, or several joined by commas to average them")
    return methods[name] if name in methods else mean([methods[n] for n in name.split(",")])


def _classical(methods: list[Method]):
    """The classical methods among ``methods`` and their parts."""
    for m in methods:
        if isinstance(m, Classical):
            yield m
        elif isinstance(m, Combined):
            yield from _classical([m.base, m.other])
        elif isinstance(m, Mean):
            yield from _classical(list(m.parts))


def classical(name: str) -> Classical:
    if name not in CLASSICAL:
        raise InputError(f"unknown classical method {name}; choose from {', '.join(CLASSICAL)}")
    return Classical(name, CLASSICAL_DESCRIPTIONS[name])


def combined(base: Method, other: str) -> Combined:
    """``base`` averaged with classical method ``other``: ``base+other``, ``(a,b)+other`` for an average."""
    label = f"({base.name})" if isinstance(base, Mean) else base.name
    return Combined(f"{label}+{other}", f"the average of {base.name} and {other}", base, classical(other))


def finetuner(model: torch.nn.Module, s: Settings, device="cpu") -> MAML:
    """Plain SGD fine-tuning that adapts exactly as the meta-learner does: the same parameters (all, or the
    head), inner steps and (initial) inner rate, without anything meta-learned."""
    c = s.learner
    scope = "head" if c.name == "anil" else c.adapt_params
    return MAML(model, inner_lr=c.inner_lr, inner_steps=c.inner_steps, loss=c.loss, adapt_params=scope).to(device)


def network_methods(s: Settings, learners: dict[str, GradientLearner], pretrained: Pretrain, device="cpu",
                    scratch: torch.nn.Module | None = None) -> list[Method]:
    """The network methods, in results-table order: each learner adapted and zero-shot (the run's learner
    first), the pre-trained network zero-shot and fine-tuned as the learner adapts, a fresh network
    (``scratch``) fine-tuned alike, plain fine-tuning on every window, and the per-series switch
    ``<learner>_auto`` between that and the run's learner."""
    f, name = s.forecast, s.learner.name
    shots, steps = s.adapt_shots(), s.adapt_steps()
    how = f"adapted on each series' latest {shots} windows, {steps or 'its own'} steps"
    out: list[Method] = []
    for key, learner in learners.items():
        out += [Adapted(key, f"{key} {how}", learner, shots, steps),
                Adapted(f"{key}_zeroshot", f"{key} before adaptation", learner, shots, 0)]
    out += [Adapted("pretrained", "the same network trained conventionally, not adapted", pretrained, shots, 0),
            Adapted("pretrained_finetune", f"pretrained fine-tuned by plain SGD as {name} adapts",
                    finetuner(pretrained.model, s, device), shots, steps)]
    if scratch is not None:
        out.append(Adapted("scratch", f"a network never trained, fine-tuned as {name} adapts",
                           finetuner(scratch, s, device), shots, steps))
    every = f.finetune_all_shots or ForecastConfig.finetune_all_shots
    tuned = MAML(pretrained.model, inner_lr=f.finetune_all_lr, inner_steps=f.finetune_all_steps,
                 loss=s.learner.loss).to(device)
    finetune_all = Adapted("pretrained_finetune_all", f"pretrained fine-tuned by {f.finetune_all_steps} plain SGD "
                           f"steps at {f.finetune_all_lr:g} on up to {every} of a series' latest windows",
                           tuned, every, None)
    auto = Auto(f"{name}_auto", f"pretrained_finetune_all on a series with at least {f.finetune_all_min_shots} "
                f"windows, {name} on the others (a few windows are too few for plain fine-tuning)",
                finetune_all, next(m for m in out if m.name == name), f.finetune_all_min_shots)
    return [*out, finetune_all, auto]


def catalog(s: Settings, learner: GradientLearner, pretrained: Pretrain, device="cpu") -> dict[str, Method]:
    """Every method a trained forecaster forecasts with, by name: the network methods of
    :func:`network_methods`, the classical methods, and each network method averaged with each classical
    one (``metasgd+autoets``); :func:`named` also averages several of them (``a,b``)."""
    networks = network_methods(s, {s.learner.name: learner}, pretrained, device)
    out = {m.name: m for m in networks}
    out.update({name: classical(name) for name in CLASSICAL})
    out.update({c.name: c for c in (combined(m, name) for m in networks for name in CLASSICAL)})
    return out


__all__ = ["Adapted", "Auto", "Classical", "Combined", "Forecasts", "Mean", "Method", "catalog", "classical",
           "combined", "finetuner", "mean", "named", "network_methods"]
