"""Classical baselines, each given exactly the history the networks see: ``(series, h)`` forecasts.

``naive`` repeats the last value; ``seasonal_naive`` repeats the last season (the last value when the
history is shorter than a season); ``autoets``, ``autoces`` and ``theta`` are statsforecast's ``AutoETS``,
``AutoCES`` (complex exponential smoothing) and ``Theta`` (a series they cannot fit falls back to ``naive``
through statsforecast's ``fallback_model``), fitted to a series' last :data:`FIT_POINTS` points or 20
seasons, whichever is longer: on a long high-frequency series (16,000 hourly points) a fit on all of it
takes seconds per series and a level from years ago. :func:`statistical_cuts` forecasts several
consecutive horizons at the end of each series with one fit per series, before the earliest of them (the
validation of :mod:`fewcast.selection`), and a fit of its own where that fit's forecast diverges.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fewcast.errors import InputError
from fewcast.panel import Panel

CLASSICAL = ("naive", "seasonal_naive", "autoets", "autoces", "theta")
STATISTICAL = ("autoets", "autoces", "theta")  # fitted by statsforecast
FIT_POINTS = 1000
DIVERGED = 3.0  # a forecast this many of its history's ranges outside that range is refitted (refit_diverged)


def naive(history: Panel, h: int) -> np.ndarray:
    last = history.values[history.offsets[1:] - 1].astype(np.float64)  # (series,)
    return np.repeat(last[:, None], h, axis=1)


def seasonal_naive(history: Panel, h: int, season_length: int) -> np.ndarray:
    lengths = history.lengths
    m = np.where(lengths >= season_length, season_length, 1)[:, None]  # (series, 1)
    step = np.arange(h)[None, :]  # (1, h)
    # forecast t (0-based) repeats the value m - (t mod m) steps before the end
    pos = history.offsets[1:, None] - m + (step % m)  # (series, h)
    return history.values[pos].astype(np.float64)


def _fit_part(history: Panel, season_length: int, before: int = 0) -> Panel:
    """Each series' last :data:`FIT_POINTS` points or 20 seasons, whichever is longer, before its last ``before``
    points (and those ``before`` points)."""
    keep = max(FIT_POINTS, 20 * season_length) + before
    if history.n_series and history.lengths.max() > keep:
        history = history.tail(keep)
    return history


def _frame(history: Panel) -> pd.DataFrame:
    """``history`` as statsforecast's long frame, series numbered in order, integer steps."""
    lengths = history.lengths
    return pd.DataFrame({
        "unique_id": np.repeat(np.arange(history.n_series), lengths),
        "ds": np.arange(len(history.values)) - np.repeat(history.offsets[:-1], lengths),  # integer steps
        "y": history.values.astype(np.float64),
    })


def _makers(names, season_length: int) -> list:
    """statsforecast's models of :data:`STATISTICAL` by name, each aliased by its name."""
    from statsforecast.models import AutoCES, AutoETS, Theta

    makers = {"autoets": AutoETS, "autoces": AutoCES, "theta": Theta}
    return [makers[m](season_length=season_length, alias=m) for m in names]


def run_statsforecast(history: Panel, h: int, models: list, level=None, n_jobs: int = -1) -> tuple[pd.DataFrame, int]:
    """statsforecast's ``models`` on every series at once (``n_jobs`` processes, -1: one per core), fitted to
    each series' last :data:`FIT_POINTS` points or 20 seasons; the forecast frame sorted by series and step."""
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    history = _fit_part(history, max(getattr(m, "season_length", 1) for m in models))
    frame = _frame(history)
    sf = StatsForecast(models=models, freq=1, n_jobs=n_jobs, fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = sf.forecast(df=frame, h=h, level=level) if level else sf.forecast(df=frame, h=h)
    return out.sort_values(["unique_id", "ds"]), history.n_series


def statistical(history: Panel, h: int, season_length: int, models=STATISTICAL,
                n_jobs: int = -1) -> dict[str, np.ndarray]:
    """statsforecast's ``models`` (of :data:`STATISTICAL`) on every series at once."""
    out, n = run_statsforecast(history, h, _makers(models, season_length), n_jobs=n_jobs)
    return {m: out[m].to_numpy(np.float64).reshape(n, h) for m in models}


def statistical_cuts(history: Panel, h: int, season_length: int, cuts: int, models=STATISTICAL,
                     n_jobs: int = -1) -> dict[str, np.ndarray]:
    """Each of the ``cuts`` horizons at the end of every series forecast from what precedes it, by
    statsforecast's ``models`` fitted once per series, on what precedes the earliest of them: the later ones
    apply the fitted parameters to the longer history (statsforecast's ``forward``; the fit's first point
    kept). ``(cuts, series, h)`` each, the latest horizon first. Every series must be longer than
    ``cuts * h``."""
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    history = _fit_part(history, season_length, before=cuts * h)
    n = history.n_series
    sf = StatsForecast(models=_makers(models, season_length), freq=1, n_jobs=n_jobs, fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = sf.cross_validation(h=h, df=_frame(history), n_windows=cuts, step_size=h, refit=False)
    out = out.sort_values(["unique_id", "cutoff", "ds"])  # per series, the earliest horizon first
    got = {m: out[m].to_numpy(np.float64).reshape(n, cuts, h)[:, ::-1].transpose(1, 0, 2).copy() for m in models}
    return refit_diverged(history, h, season_length, got, n_jobs)


def refit_diverged(history: Panel, h: int, season_length: int, got: dict[str, np.ndarray],
                   n_jobs: int = -1) -> dict[str, np.ndarray]:
    """:func:`statistical_cuts`' forecasts ``got`` (``(cuts, series, h)`` each, the latest horizon first) with
    every later horizon's forecast that left its history's range by more than :data:`DIVERGED` ranges (or is
    not finite) made again by a fit on that history: parameters fitted on a shorter history can make a
    model's forward pass unstable on the points after it (AutoCES on series of many zeros: forecasts 100
    times the largest value seen), where a fit of its own does not."""
    cuts = next(iter(got.values())).shape[0] if got else 0
    for c in range(cuts - 1):  # the earliest horizon (c = cuts - 1) is the fit's own
        part = history.slice(0, history.lengths - (c + 1) * h)  # what precedes horizon c
        for m, yhat in got.items():
            bad = np.flatnonzero(diverged(part, yhat[c]))
            if len(bad):
                yhat[c, bad] = statistical(part.take(bad), h, season_length, (m,), n_jobs)[m]
    return got


def diverged(history: Panel, yhat: np.ndarray) -> np.ndarray:
    """``(series,)``: whether a forecast ``yhat`` ``(series, h)`` is not finite or lies farther outside its
    history's range than :data:`DIVERGED` times that range (its size where the history is flat)."""
    values = history.values.astype(np.float64)
    if not len(values):
        return np.zeros(len(yhat), dtype=bool)
    lo = np.minimum.reduceat(values, history.offsets[:-1])  # (series,)
    hi = np.maximum.reduceat(values, history.offsets[:-1])
    width = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    with np.errstate(invalid="ignore"):
        beyond = np.maximum(yhat.max(axis=1) - hi, lo - yhat.min(axis=1)) / width  # (series,) ranges outside
    return ~np.isfinite(yhat).all(axis=1) | ~(beyond <= DIVERGED)


def statistical_quantiles(history: Panel, h: int, season_length: int, taus, n_jobs: int = -1) -> dict[str, np.ndarray]:
    """statsforecast's own prediction intervals of AutoETS and seasonal naive as quantiles ``taus``:
    ``(series, h, len(taus))`` each (the quantile ``tau`` bounds the ``|200 tau - 100|`` % interval; 0.5 is
    the point forecast). Seasonal naive's are NaN for a history of one season or less: with no seasonal
    difference to measure its errors by, statsforecast gives it none (NaN) or a zero-width one."""
    from statsforecast.models import AutoETS, SeasonalNaive

    models = [AutoETS(season_length=season_length, alias="autoets"),
              SeasonalNaive(season_length=season_length, alias="seasonal_naive")]
    levels = sorted({round(abs(200 * t - 100), 6) for t in taus if t != 0.5})
    out, n = run_statsforecast(history, h, models, level=[_level(lv) for lv in levels], n_jobs=n_jobs)
    result = {}
    for alias in ("autoets", "seasonal_naive"):
        cols = [alias if t == 0.5 else f"{alias}-{'lo' if t < 0.5 else 'hi'}-{_level(abs(200 * t - 100))}"
                for t in taus]
        result[alias] = out[cols].to_numpy(np.float64).reshape(n, h, len(taus))
    result["seasonal_naive"][history.lengths <= season_length] = np.nan
    return result


def _level(value: float):
    """A level as statsforecast names its columns: 80, 97.5."""
    value = round(value, 6)
    return int(value) if value == int(value) else value


def check_methods(methods) -> None:
    """An InputError naming any method that is not one of :data:`CLASSICAL`."""
    unknown = [m for m in methods if m not in CLASSICAL]
    if unknown:
        raise InputError(f"unknown classical method {', '.join(unknown)}; choose from {', '.join(CLASSICAL)}")


def classical_forecasts(history: Panel, h: int, season_length: int, methods=CLASSICAL) -> dict[str, np.ndarray]:
    """Every requested classical method's ``(series, h)`` forecasts from ``history``."""
    check_methods(methods)
    out: dict[str, np.ndarray] = {}
    if "naive" in methods:
        out["naive"] = naive(history, h)
    if "seasonal_naive" in methods:
        out["seasonal_naive"] = seasonal_naive(history, h, season_length)
    stats = tuple(m for m in STATISTICAL if m in methods)
    if stats:
        out.update(statistical(history, h, season_length, stats))
    return out
