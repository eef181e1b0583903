"""Metrics against hand computations, and the naive baselines on series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fewcast.baselines import classical_forecasts, naive, seasonal_naive
from fewcast.metrics import mae, mase, rmse, score, seasonal_scale, smape
from fewcast.panel import Panel


def test_smape_by_hand():
    y = np.array([[100.0, 200.0], [0.0, 10.0]])
    yhat = np.array([[110.0, 180.0], [0.0, 30.0]])
    # series 1: 200/2 * (10/210 + 20/380); series 2: the 0/0 term counts as 0, then 20/40
    expected = [100 * (10 / 210 + 20 / 380), 100 * (0 + 20 / 40)]
    np.testing.assert_allclose(smape(y, yhat), expected)


def test_mae_rmse_by_hand():
    y, yhat = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 2.0, 6.0]])
    assert mae(y, yhat)[0] == pytest.approx(4 / 3)
    assert rmse(y, yhat)[0] == pytest.approx(np.sqrt(10 / 3))


def test_mase_by_hand():
    history = Panel.from_arrays(np.array(["a", "b"]), [np.array([1.0, 3.0, 2.0, 6.0, 4.0]), np.array([5.0, 7.0])])
    scale = seasonal_scale(history, season_length=2)
    # a: lag-2 differences |2-1|, |6-3|, |4-2| -> mean 2; b is too short for lag 2: lag 1, |7-5| = 2
    np.testing.assert_allclose(scale, [2.0, 2.0])
    y, yhat = np.array([[5.0, 5.0], [1.0, 1.0]]), np.array([[6.0, 8.0], [1.0, 2.0]])
    np.testing.assert_allclose(mase(y, yhat, scale), [2.0 / 2.0, 0.5 / 2.0])
    flat = Panel.from_arrays(np.array(["c"]), [np.ones(6)])
    assert np.isnan(mase(np.ones((1, 2)), np.zeros((1, 2)), seasonal_scale(flat, 2)))[0]


def test_score_averages_over_series():
    y, yhat = np.array([[10.0], [20.0]]), np.array([[12.0], [20.0]])
    out = score(y, yhat, np.array([1.0, 4.0]))
    assert out["smape"] == pytest.approx((200 * 2 / 22 + 0) / 2)
    assert out["mase"] == pytest.approx((2.0 + 0.0) / 2)
    assert out["n_series"] == 2


def test_seasonal_naive_on_a_pure_seasonal_series():
    season = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    full = np.tile(season, 6)  # 42 points; history 33, horizon 9 (crosses a season boundary)
    history = Panel.from_arrays(np.array(["s", "t"]), [full[:33], np.array([2.0, 8.0])])
    fc = seasonal_naive(history, 9, season_length=7)
    np.testing.assert_array_equal(fc[0], full[33:42])
    np.testing.assert_array_equal(fc[1], np.full(9, 8.0))  # shorter than a season: the last value
    np.testing.assert_array_equal(naive(history, 3), [[full[32]] * 3, [8.0] * 3])


def test_statistical_baselines_run_and_fit_a_clean_pattern():
    t = np.arange(60)
    trend = 100 + 2.0 * t
    history = Panel.from_arrays(np.array(["trend", "flat"]), [trend[:48], np.full(48, 7.0)])
    out = classical_forecasts(history, 12, season_length=12)
    assert set(out) == {"naive", "seasonal_naive", "autoets", "autoces", "theta"}
    for yhat in out.values():
        assert yhat.shape == (2, 12) and np.isfinite(yhat).all()
    flat, linear = history.index_of(["flat", "trend"])
    for method, bound in (("autoets", 1.0), ("autoces", 2.0)):  # CES has no linear trend term: it bends a little
        np.testing.assert_allclose(out[method][flat], 7.0, rtol=1e-6)  # a constant series stays constant
        assert smape(trend[None, 48:], out[method][linear][None])[0] < bound  # a clean trend is extrapolated
