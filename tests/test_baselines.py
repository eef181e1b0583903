"""Classical baselines fitted by statsforecast: the choice's fit-once forecasts of several horizons against
statsforecast's own models fitted and applied one series at a time."""

from __future__ import annotations

import numpy as np
from statsforecast.models import AutoETS, Theta

from fewcast import baselines
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
