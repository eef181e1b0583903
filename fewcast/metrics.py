"""Forecast accuracy on the horizon, per series, then averaged over series.

``y`` and ``yhat`` are ``(series, h)`` arrays. sMAPE follows the M4 competition (in percent, a term whose
truth and forecast are both zero counts as zero error); MASE scales the mean absolute error by the
in-sample mean absolute seasonal difference of each series' visible history (lag ``season_length``,
falling back to lag 1 when the history is too short for a seasonal difference).
"""

from __future__ import annotations

import numpy as np

from fewcast.panel import Panel


def smape(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Per-series sMAPE in %: ``200 / h * sum |y - yhat| / (|y| + |yhat|)``."""
    denom = np.abs(y) + np.abs(yhat)
    terms = np.divide(2 * np.abs(y - yhat), denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)
    return 100 * terms.mean(-1)


def mae(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    return np.abs(y - yhat).mean(-1)


def rmse(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    return np.sqrt(((y - yhat) ** 2).mean(-1))


def seasonal_scale(history: Panel, season_length: int) -> np.ndarray:
    """Per-series mean absolute seasonal difference of the visible history (the MASE denominator)."""
    values = history.values.astype(np.float64)
    lengths = history.lengths
    lag = np.where(lengths > season_length, season_length, 1)  # (series,)
    pos = np.arange(len(values)) - np.repeat(history.offsets[:-1], lengths)  # position inside its series
    lag_of = np.repeat(lag, lengths)
    valid = pos >= lag_of
    diffs = np.zeros_like(values)
    idx = np.flatnonzero(valid)
    diffs[idx] = np.abs(values[idx] - values[idx - lag_of[idx]])
    sums = np.add.reduceat(diffs, history.offsets[:-1]) if len(values) else np.zeros(0)
    counts = np.maximum(lengths - lag, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mase(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-series MASE; NaN where the history has no variation to scale by."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, mae(y, yhat) / scale, np.nan)


def score(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """Series-averaged sMAPE, MASE, MAE, RMSE and the number of series scored."""
    m = mase(y, yhat, scale)
    return {
        "smape": float(np.mean(smape(y, yhat))),
        "mase": float(np.nanmean(m)) if np.isfinite(m).any() else float("nan"),
        "mae": float(np.mean(mae(y, yhat))),
        "rmse": float(np.mean(rmse(y, yhat))),
        "n_series": len(y),
    }


# -- intervals and quantiles: y (series, h), quantile forecasts q (series, h, len(taus)) --------------------

QUANTILES = tuple(np.round(np.arange(1, 10) / 10, 1))  # 0.1 ... 0.9, as fev and GluonTS score them


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """The share of values inside ``[lo, hi]`` (utilsforecast's ``coverage``, over every series and step)."""
    return float(np.mean((y >= lo) & (y <= hi)))


def msis(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, alpha: float = 0.05) -> float:
    """The M4 competition's mean scaled interval score of the ``1 - alpha`` interval: per series the mean
    Winkler score ``(hi - lo) + 2/alpha (lo - y)+ + 2/alpha (y - hi)+`` over the steps, divided by the series'
    scale; averaged over the series with a scale."""
    winkler = (hi - lo) + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))  # (series, h)
    ok = np.isfinite(scale) & (scale > 0)
    return float(np.mean(winkler[ok].mean(axis=1) / scale[ok])) if ok.any() else float("nan")


def pinball(y: np.ndarray, q: np.ndarray, taus) -> np.ndarray:
    """The quantile (pinball) loss of each quantile forecast: ``(series, h, taus)``."""
    taus = np.asarray(taus, dtype=np.float64)
    diff = y[:, :, None] - q  # (series, h, taus)
    return np.maximum(taus * diff, (taus - 1) * diff)


def sql(y: np.ndarray, q: np.ndarray, taus, scale: np.ndarray) -> float:
    """fev's scaled quantile loss: per series twice the mean pinball loss over steps and quantiles, divided
    by the series' scale (at the median alone, MASE); averaged over the series with a scale."""
    per_series = 2 * pinball(y, q, taus).mean(axis=(1, 2))  # (series,)
    ok = np.isfinite(scale) & (scale > 0)
    return float(np.mean(per_series[ok] / scale[ok])) if ok.any() else float("nan")


def wql(y: np.ndarray, q: np.ndarray, taus) -> float:
    """GluonTS's mean weighted quantile loss: per quantile twice the summed pinball loss over the summed
    absolute values, averaged over the quantiles."""
    total = np.abs(y).sum()
    return float(np.mean(2 * pinball(y, q, taus).sum(axis=(0, 1)) / total)) if total > 0 else float("nan")
