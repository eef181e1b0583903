"""Scoring: no forecast sees its horizon, and each method scored is what it says it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewcast import baselines, intervals
from fewcast.engine import forecast
from fewcast.evaluation import SCORED_TAUS, evaluate, run
from fewcast.experiment import Experiment
from fewcast.learners import MAML
from tests.conftest import panel_data, tiny_settings


@pytest.mark.parametrize("protocol,deseasonalize", [("holdout", False), ("all-series", False), ("holdout", True),
                                                    ("all-series", True)])
def test_poisoned_horizon_changes_no_forecast(protocol, deseasonalize):
    settings = tiny_settings(protocol)
    settings.update("data", {"deseasonalize": deseasonalize})
    clean = run(Experiment(settings, panel_data(poison=False), log=lambda *_: None))
    poisoned = run(Experiment(settings, panel_data(poison=True), log=lambda *_: None))
    assert set(clean.forecasts) == set(poisoned.forecasts)
    assert {"metasgd", "metasgd_zeroshot", "maml", "maml_zeroshot", "pretrained", "pretrained_finetune",
            "pretrained_finetune_all", "metasgd_auto", "scratch", "naive", "seasonal_naive", "theta",
            "metasgd+theta", "metasgd_auto+theta", "pretrained_finetune_all+theta", "fewcast"} == set(clean.forecasts)
    assert clean.selection.chosen == poisoned.selection.chosen  # chosen on the visible part alone
    np.testing.assert_allclose(clean.forecasts["pretrained_finetune_all+theta"],
                               (clean.forecasts["pretrained_finetune_all"] + clean.forecasts["theta"]) / 2)
    for method, yhat in clean.forecasts.items():
        np.testing.assert_array_equal(yhat, poisoned.forecasts[method], err_msg=method)
    for name in clean.logs:  # training and validation never touched the horizon either
        np.testing.assert_array_equal(pd.DataFrame(clean.logs[name]).drop(columns=["seconds", "tasks_per_second"]),
                                      pd.DataFrame(poisoned.logs[name]).drop(columns=["seconds", "tasks_per_second"]))
    assert not np.allclose(clean.table["smape"], poisoned.table["smape"])
    # the intervals too: calibrated on the visible part, built from each series' history
    assert set(clean.selection.calibration) == set(poisoned.selection.calibration)
    if protocol == "all-series":  # enough validation series to calibrate
        assert "fewcast" in clean.bands and {"autoets", "seasonal_naive"} & set(clean.bands)
    for name, table in clean.selection.calibration.items():
        np.testing.assert_array_equal(table, poisoned.selection.calibration[name], err_msg=name)
    assert set(clean.bands) == set(poisoned.bands)
    for name, band in clean.bands.items():
        np.testing.assert_array_equal(band, poisoned.bands[name], err_msg=name)


def test_finetune_all_is_plain_sgd_on_every_window_and_can_be_turned_off():
    settings = tiny_settings()
    settings.update("forecast", {"finetune_all_shots": 9, "finetune_all_steps": 3, "finetune_all_lr": 0.02})
    settings.update("eval", {"classical": ["naive"], "combine": []})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    pretrained, learners = exp.train()
    results = evaluate(exp, pretrained, learners)
    by_hand = MAML(pretrained.model, inner_lr=0.02, inner_steps=3, loss=settings.learner.loss)
    expected = forecast(by_hand, exp.problems(9), settings.data.scaler)[0]
    np.testing.assert_allclose(results.forecasts["pretrained_finetune_all"], expected, rtol=1e-6)
    assert not np.allclose(expected, results.forecasts["pretrained_finetune"])  # 3 windows, 1 step: another method
    exp.settings.update("forecast", {"finetune_all_shots": 0})
    assert "pretrained_finetune_all" not in evaluate(exp, pretrained, learners).forecasts


def test_auto_fine_tunes_series_with_many_windows_and_lets_the_learner_adapt_the_others():
    settings = tiny_settings()
    settings.update("eval", {"classical": ["naive"], "combine": ["naive"]})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    pretrained, learners = exp.train()
    counts = exp.test_history.lengths - (12 + 6 - 1)  # windows of 12 -> 6 each held-out series holds, by hand
    middle = int(np.median(counts))
    exp.settings.update("forecast", {"finetune_all_min_shots": middle})
    f = evaluate(exp, pretrained, learners).forecasts
    long = counts >= middle
    assert long.any() and not long.all()
    np.testing.assert_array_equal(f["metasgd_auto"][long], f["pretrained_finetune_all"][long])
    np.testing.assert_array_equal(f["metasgd_auto"][~long], f["metasgd"][~long])
    np.testing.assert_allclose(f["metasgd_auto+naive"], (f["metasgd_auto"] + f["naive"]) / 2)


def test_a_combination_is_the_mean_of_the_learner_and_the_classical_forecast():
    exp = Experiment(tiny_settings(), panel_data(poison=False), log=lambda *_: None)
    res = run(exp)
    yhat = res.forecasts["metasgd+theta"]
    np.testing.assert_allclose(yhat, (res.forecasts["metasgd"] + res.forecasts["theta"]) / 2)
    by_hand = np.mean(200 * np.abs(exp.test_truth - yhat) / (np.abs(exp.test_truth) + np.abs(yhat)))
    assert res.table.set_index("method").loc["metasgd+theta", "smape"] == pytest.approx(by_hand)


def test_autoets_is_fitted_once_for_its_forecast_and_its_own_intervals(monkeypatch):
    """With intervals scored, AutoETS's point forecast is the median of the fit that gives its intervals:
    statsforecast fits it once, and the forecast is the one a plain fit gives, to the last digit."""
    settings = tiny_settings()
    settings.update("eval", {"classical": ["seasonal_naive", "autoets"], "combine": ["autoets"]})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    pretrained, learners = exp.train(exp.learner_names())
    want = baselines.classical_forecasts(exp.test_history, 6, 12, ["autoets"])["autoets"]  # (series, h)
    fits, real = [], baselines.run_statsforecast

    def counted(history, h, models, *args, **kw):
        fits.append([m.alias for m in models])
        return real(history, h, models, *args, **kw)

    monkeypatch.setattr(baselines, "run_statsforecast", counted)
    calibration = {"metasgd": np.tile(np.linspace(-2, 2, len(intervals.TAUS))[:, None], (1, 6))}  # (taus, h)
    res = evaluate(exp, pretrained, learners, calibration=calibration)
    assert sum("autoets" in f for f in fits) == 1
    np.testing.assert_array_equal(res.forecasts["autoets"], want)
    np.testing.assert_array_equal(res.bands["autoets"][:, :, SCORED_TAUS.index(0.5)], want)
    np.testing.assert_array_equal(res.forecasts["metasgd+autoets"], (res.forecasts["metasgd"] + want) / 2)
    assert np.isfinite(res.table.set_index("method").loc["autoets", "msis"])
