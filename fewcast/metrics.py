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
