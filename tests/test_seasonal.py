"""Classical deseasonalization: the vectorized panel code against a per-series loop, and known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fewcast.engine import make_problems
from fewcast.panel import Panel
from fewcast.seasonal import deseasonalize, horizon_factors, seasonal_indices, seasonal_test

PATTERN = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7])


def reference(y: np.ndarray, m: int) -> np.ndarray:
    """One series, written out the textbook way: ACF test, 2 x m (or m) centered average, phase means."""
    n = len(y)
    d = y - y.mean()
    if n < 3 * m or np.any(y <= 0) or not np.any(d):
        return np.ones(m)
    acf = [np.sum(d[: n - k] * d[k:]) / np.sum(d * d) for k in range(m + 1)]
    limit = 1.645 * np.sqrt((1 + 2 * sum(a * a for a in acf[1:m])) / n)
    if abs(acf[m]) <= limit:
        return np.ones(m)
    weights = np.ones(m + 1) / m if m % 2 == 0 else np.ones(m) / m
    if m % 2 == 0:
        weights[0] = weights[-1] = 0.5 / m
    half = m // 2
    ratios = {p: [] for p in range(m)}
    for t in range(half, n - half):
        trend = np.dot(weights, y[t - half : t - half + len(weights)])
        ratios[(t - n) % m].append(y[t] / trend)
    idx = np.array([np.mean(ratios[p]) for p in range(m)])
    return idx / idx.mean()


def mixed_panel(seed: int = 0) -> Panel:
    """Seasonal, trending, noisy, short, non-positive and constant series of different lengths."""
    rng = np.random.default_rng(seed)
    series = []
    for i in range(40):
        n = int(rng.integers(20, 90))
        t = np.arange(n)
        kind = i % 5
        if kind == 0:  # strongly seasonal, multiplicative, random phase
            y = (100 + 0.5 * t) * np.roll(PATTERN, int(rng.integers(12)))[t % 12] + rng.normal(0, 1, n)
        elif kind == 1:  # weakly seasonal: the test decides
            y = 100 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, n)
        elif kind == 2:  # random walk, no seasonality
            y = 200 + np.cumsum(rng.normal(0, 1, n))
        elif kind == 3:  # seasonal but crosses zero: never adjusted
            y = 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, n)
        else:
            y = np.full(n, 7.0)
        series.append(y)
    return Panel.from_arrays(np.array([f"s{i:02d}" for i in range(len(series))]), series)


@pytest.mark.parametrize("m", [12, 7, 4])
def test_indices_match_a_per_series_loop(m):
    panel = mixed_panel()
    got = seasonal_indices(panel, m)
    want = np.stack([reference(panel.series(i).astype(np.float64), m) for i in range(panel.n_series)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    adjusted = (~np.all(want == 1, 1)).sum()
    assert adjusted >= 5  # the comparison covers adjusted series, not only the untouched ones


def test_a_pure_seasonal_series_becomes_flat_and_its_horizon_carries_the_pattern():
    n, m, h = 61, 12, 18  # a length that is not a multiple of m: phases count from the end
    t = np.arange(n + h)
    y = 50 * PATTERN[t % m]
    panel = Panel.from_arrays(np.array(["a"]), [y[:n]])
    idx = seasonal_indices(panel, m)
    np.testing.assert_allclose(deseasonalize(panel, idx).values, 50, rtol=1e-5)
    np.testing.assert_allclose(50 * horizon_factors(idx, h)[0], y[n:], rtol=1e-6)


def test_series_that_are_short_non_positive_or_not_seasonal_are_left_alone():
    rng = np.random.default_rng(1)
    t = np.arange(48)
    series = [50 * PATTERN[t[:30] % 12],  # shorter than 3 seasons
              50 * PATTERN[t % 12] - 45,  # seasonal but not positive
              100 + rng.normal(0, 1, 48)]  # white noise
    panel = Panel.from_arrays(np.array(["a", "b", "c"]), series)
    assert not seasonal_test(panel, 12)[2]
    np.testing.assert_array_equal(seasonal_indices(panel, 12), 1.0)
    np.testing.assert_array_equal(seasonal_indices(panel, 1), 1.0)  # no season: nothing to do


def test_problems_forecast_in_adjusted_space_and_score_the_raw_history():
    t = np.arange(60)
    y = (100 + t) * PATTERN[t % 12]
    panel = Panel.from_arrays(np.array(["a"]), [y])
    plain = make_problems(panel, np.zeros((1, 6)), 12, 6, 3, 12)
    adj = make_problems(panel, np.zeros((1, 6)), 12, 6, 3, 12, deseasonalize=True)
    idx = seasonal_indices(panel, 12)[0]
    phase = (np.arange(60) - 60) % 12
    np.testing.assert_allclose(adj.x_fc[0, 0].numpy(), (y / idx[phase])[-12:], rtol=1e-5)
    np.testing.assert_allclose(adj.factor[0], idx[:6])
    assert plain.factor is None
    assert adj.mase_scale[0] == plain.mase_scale[0]  # MASE scales by the raw history
    np.testing.assert_array_equal(adj.history.values, panel.values)
