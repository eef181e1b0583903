"""Classical baselines fitted by statsforecast: the choice's fit-once forecasts of several horizons against
statsforecast's own models fitted and applied one series at a time."""

from __future__ import annotations

import numpy as np
from statsforecast.models import AutoETS, Theta

from fewcast import baselines
from fewcast.datasets import game_panel
from fewcast.panel import Panel


def test_several_horizons_are_forecast_by_models_fitted_once_before_the_earliest(monkeypatch):
    """Each series' model is fitted on the last ``FIT_POINTS`` points (lowered to 30 here; 20 seasons are 40)
    before the earliest of the ``cuts`` horizons, and each horizon is that model applied to everything from the
    fit's first point up to it (statsforecast's ``forward``), the latest horizon first; the earliest horizon's
    forecast is the plain fit's."""
    monkeypatch.setattr(baselines, "FIT_POINTS", 30)
    rng = np.random.default_rng(0)
    h, season, k = 6, 2, 3
    series = [20 + np.cumsum(rng.normal(0.2, 1, n)) + 3 * (np.arange(n) % 2) for n in (50, 64, 81)]
    panel = Panel.from_arrays(np.array(["a", "b", "c"]), series)
    got = baselines.statistical_cuts(panel, h, season, k, models=("autoets", "theta"), n_jobs=1)
    assert got["theta"].shape == (k, 3, h)
    for name, model in (("autoets", AutoETS), ("theta", Theta)):
        for i, y in enumerate(series):
            y = y.astype(np.float32).astype(np.float64)  # as the panel holds it
            start = max(0, len(y) - k * h - 40)  # the fit's first point: 40 points before the earliest horizon
            fit = model(season_length=season).fit(y[start:len(y) - k * h])
            for j in range(1, k + 1):  # j horizons before the end
                want = fit.forward(y[start:len(y) - j * h], h=h)["mean"]
                np.testing.assert_allclose(got[name][j - 1, i], want, rtol=1e-6, err_msg=f"{name} {i} {j}")
        earliest = Panel.from_arrays(panel.ids, [y[:len(y) - k * h] for y in series])
        plain = baselines.statistical(earliest, h, season, (name,), n_jobs=1)[name]
        np.testing.assert_allclose(got[name][k - 1], plain, rtol=1e-4)


def test_a_horizon_whose_carried_fit_diverges_is_forecast_by_a_fit_of_its_own(monkeypatch):
    """Six ``game`` users (daily play, many zero days) whose AutoCES fitted before the earliest of 8 one-day
    horizons and carried forward forecasts 20 to 300 times their largest day: each such horizon is forecast
    by AutoCES fitted on what precedes it, as a forecast from that history is, and stays in range."""
    panel = game_panel()
    ids = np.array(["user_0035", "user_0074", "user_0109", "user_0230", "user_0285", "user_0318"])
    users = panel.take(panel.index_of(ids))
    users = users.slice(0, users.lengths - 8)
    k = 8
    history = baselines._fit_part(users, 7, before=k)
    monkeypatch.setattr(baselines, "refit_diverged", lambda history, h, season, got, n_jobs: got)
    raw = baselines.statistical_cuts(users, 1, 7, k, models=("autoces",), n_jobs=1)["autoces"]  # the carried fit
    monkeypatch.undo()
    got = baselines.statistical_cuts(users, 1, 7, k, models=("autoces",), n_jobs=1)["autoces"]  # (cuts, series, 1)
    top = np.maximum.reduceat(users.values, users.offsets[:-1])  # (series,)
    assert (raw[: k - 1, :, 0].max(axis=0) > 20 * top).all()  # every user diverges at some later horizon
    np.testing.assert_array_equal(got[k - 1], raw[k - 1])  # the fit's own horizon is kept
    for c in range(k - 1):
        part = history.slice(0, history.lengths - (c + 1))
        bad = baselines.diverged(part, raw[c])
        own = baselines.statistical(part, 1, 7, ("autoces",), n_jobs=1)["autoces"]
        np.testing.assert_allclose(got[c][bad], own[bad], rtol=1e-6)
        np.testing.assert_array_equal(got[c][~bad], raw[c][~bad])
        assert not baselines.diverged(part, got[c]).any()


def test_a_forecast_diverges_when_it_leaves_its_history_by_more_than_three_ranges():
    """Range 10 (values 5 ... 15): 44 is 2.9 ranges above, 46 is 3.1; a flat history's range is its level;
    NaN diverges."""
    history = Panel.from_arrays(np.array(["a", "b", "c", "d", "e"]),
                                [np.array([5.0, 15.0, 10.0])] * 4 + [np.array([2.0, 2.0])])
    yhat = np.array([[10.0, 44.0], [10.0, 46.0], [-24.0, 10.0], [np.nan, 10.0], [7.9, 8.1]])
    np.testing.assert_array_equal(baselines.diverged(history, yhat), [False, True, False, True, True])


def test_seasonal_naive_has_no_interval_from_one_season_or_less():
    """statsforecast gives seasonal naive no interval (NaN) from less than a season and a zero-width one from
    exactly one: both are left out (NaN), so that a zero-width band is never scored as an interval."""
    rng = np.random.default_rng(1)
    season, h = 12, 3
    series = [50 + 5 * np.sin(np.arange(n)) + rng.normal(0, 1, n) for n in (8, 12, 13, 30)]
    panel = Panel.from_arrays(np.array(["a_short", "b_season", "c_one_more", "d_long"]), series)
    taus = [0.1, 0.5, 0.9]
    got = baselines.statistical_quantiles(panel, h, season, taus, n_jobs=1)
    assert np.isnan(got["seasonal_naive"][:2]).all()
    naive = got["seasonal_naive"][2:]  # (2, h, taus)
    assert np.isfinite(naive).all() and (naive[:, :, 0] < naive[:, :, 2]).all()
    np.testing.assert_allclose(naive[1, :, 1], series[3][-season:][:h].astype(np.float32), rtol=1e-6)  # the point
    assert np.isfinite(got["autoets"]).all() and (got["autoets"][:, :, 0] < got["autoets"][:, :, 2]).all()
