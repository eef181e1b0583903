"""Classical multiplicative deseasonalization, for every series of a panel at once.

A network that sees the last ``input_size`` points of a series has to infer its seasonal pattern from
two or three cycles of noisy data; a classical decomposition estimates it from the whole visible history.
As in the Theta method and the M4 competition's benchmarks, a series is deseasonalized when it is long
enough (``3 * season_length`` points), strictly positive, and seasonal by the 90% autocorrelation test at
lag ``season_length``; its seasonal indices are the phase means of ``y / centered moving average``,
normalized to mean 1. The network then works on ``y / index`` and its forecasts are multiplied back.

Phases are counted from the end of each series: the last visible point has phase ``season_length - 1``
and forecast step ``j`` (0-based) has phase ``j % season_length``, so the indices of a history carry over
to its horizon without any calendar. Everything is computed from the panel it is given: the history of a
series, never its horizon.
"""

from __future__ import annotations

import numpy as np

from fewcast.panel import Panel

T_CRIT = 1.645  # 90% two-sided normal quantile, as in the M4 benchmarks' seasonality test


def _layout(panel: Panel):
    """Per flat point: its series, its position inside the series, and that series' length."""
    lengths = panel.lengths
    sid = np.repeat(np.arange(panel.n_series), lengths)  # (points,)
    pos = np.arange(len(panel.values)) - panel.offsets[:-1][sid]  # (points,)
    return sid, pos, lengths[sid]


def seasonal_test(panel: Panel, m: int) -> np.ndarray:
    """Per series: is the autocorrelation at lag ``m`` significant (90%, Bartlett's variance)?"""
    n = panel.n_series
    if m <= 1 or n == 0:
        return np.zeros(n, bool)
    v = panel.values.astype(np.float64)
    sid, pos, length = _layout(panel)
    lengths = panel.lengths
    mean = np.bincount(sid, v, n) / np.maximum(lengths, 1)  # (series,)
    d = v - mean[sid]
    denom = np.bincount(sid, d * d, n)  # (series,)
    acf = np.zeros((n, m + 1))  # (series, lags)
    for k in range(1, m + 1):  # a loop over lags, not series
        i = np.flatnonzero(pos < length - k)  # pairs (t, t + k) inside one series
        acf[:, k] = np.bincount(sid[i], d[i] * d[i + k], n)
    acf /= np.where(denom > 0, denom, 1)[:, None]
    limit = T_CRIT * np.sqrt((1 + 2 * (acf[:, 1:m] ** 2).sum(1)) / np.maximum(lengths, 1))
    return (np.abs(acf[:, m]) > limit) & (denom > 0)


def seasonal_indices(panel: Panel, m: int) -> np.ndarray:
    """``(series, m)`` multiplicative seasonal indices by phase from the end; 1 where not adjusted."""
    n = panel.n_series
    out = np.ones((n, max(m, 1)))
    if m <= 1 or n == 0:
        return out
    v = panel.values.astype(np.float64)
    sid, pos, length = _layout(panel)
    positive = np.bincount(sid, v <= 0, n) == 0
    use = (panel.lengths >= 3 * m) & positive & seasonal_test(panel, m)  # (series,)
    if not use.any():
        return out
    c = np.concatenate([[0.0], np.cumsum(v)])  # flat prefix sums: c[b] - c[a] = v[a:b]
    half = m // 2
    t = np.flatnonzero(use[sid] & (pos >= half) & (pos < length - half))  # where the centered average exists
    if m % 2:  # odd: a plain m-point average
        trend = (c[t + half + 1] - c[t - half]) / m
    else:  # even: 2 x m average, half weight on the two ends
        trend = (c[t + half + 1] - c[t - half] - 0.5 * v[t - half] - 0.5 * v[t + half]) / m
    phase = (pos[t] - length[t]) % m  # (points,)
    key = sid[t] * m + phase
    total = np.bincount(key, v[t] / trend, n * m).reshape(n, m)
    count = np.bincount(key, minlength=n * m).reshape(n, m)
    idx = total[use] / np.maximum(count[use], 1)  # (adjusted series, m)
    out[use] = idx / idx.mean(1, keepdims=True)
    return out


def deseasonalize(panel: Panel, indices: np.ndarray) -> Panel:
    """The panel divided by its seasonal indices (phases counted from each series' end)."""
    m = indices.shape[1]
    sid, pos, length = _layout(panel)
    values = panel.values / indices[sid, (pos - length) % m]
    return Panel(panel.ids, values, panel.ds, panel.offsets, panel.columns, panel.freq, panel.zone)


def adjust(panel: Panel, m: int) -> tuple[Panel, np.ndarray]:
    """``(deseasonalized panel, its (series, m) indices)``, each series by its own history."""
    indices = seasonal_indices(panel, m)
    return deseasonalize(panel, indices), indices


def horizon_factors(indices: np.ndarray, h: int) -> np.ndarray:
    """``(series, h)`` indices of the ``h`` points after each series' end, to multiply forecasts by."""
    return indices[:, np.arange(h) % indices.shape[1]]
