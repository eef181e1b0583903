"""The Python API: fit, predict (ids, future timestamps, lengths), save/load, and evaluate's agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewcast import FewShotForecaster
from fewcast.engine import Layout
from fewcast.errors import InputError, PanelWarning
from fewcast.forecasting import Forecasts, classical
from fewcast.frame import from_frame
from tests.conftest import TINY, monthly_frame


def test_predict_ids_future_timestamps_and_lengths(fitted):
    fc, _frame = fitted
    new = monthly_frame(n=5, seed=7)
    new = new.assign(store=new["store"].str.replace("s", "new"))
    out = fc.predict(new)
    assert list(out.columns) == ["store", "month", "fewcast"]
    assert sorted(out["store"].unique()) == sorted(new["store"].unique())
    for store, part in out.groupby("store"):
        last = new.loc[new.store == store, "month"].max()
        expected = pd.date_range(last, periods=7, freq="MS")[1:]
        assert list(part["month"]) == list(expected)
        assert np.isfinite(part["fewcast"]).all()
    assert len(fc.predict(new, h=3)) == 5 * 3
    categorical = fc.predict(new.astype({"store": "category"}))
    assert categorical["store"].dtype == new["store"].astype("category").dtype
    np.testing.assert_allclose(categorical["fewcast"], out["fewcast"])
    with pytest.raises(InputError, match="longer than the trained horizon 6"):
        fc.predict(new, h=7)
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(InputError, match=r"h=.*: give the number of steps ahead as a whole number from 1 to 6"):
            fc.predict(new, h=bad)
    assert len(fc.predict(new, h=np.int64(2))) == 5 * 2


def test_predict_dates_zoned_data_in_its_zone(fitted):
    # month starts in Paris (in UTC: 23:00 or 22:00 the day before): forecasts are dated at the next Paris
    # month starts, through the change to summer time, and equal those of the same data without a zone
    fc, _ = fitted
    new = monthly_frame(n=3, seed=4)
    zoned = new.assign(month=new["month"].dt.tz_localize("Europe/Paris"))
    out, plain = fc.predict(zoned), fc.predict(new)
    assert str(out["month"].dt.tz) == "Europe/Paris"
    pd.testing.assert_series_equal(out["month"].dt.tz_localize(None), plain["month"])
    np.testing.assert_allclose(out["fewcast"], plain["fewcast"])


def test_predict_refuses_data_of_another_frequency(fitted):
    fc, _ = fitted
    new = monthly_frame(n=3, seed=5)
    weekly = new.assign(month=new.groupby("store").cumcount().map(lambda k: pd.Timestamp("2020-01-05")
                                                                    + pd.Timedelta(weeks=k)))
    with pytest.raises(InputError, match=r"column 'month': the data is at a frequency of W-SUN \(weekly\), but "
                                         r"the model was trained on MS \(monthly\) data"):
        fc.predict(weekly)
    weekly_panel = monthly_frame(seed=5)
    weekly_panel["month"] = weekly_panel.groupby("store").cumcount().map(
        lambda k: pd.Timestamp("2020-01-05") + pd.Timedelta(weeks=k))
    with pytest.raises(InputError, match=r"the data is at a frequency of W-SUN \(weekly\)"):
        fc.evaluate(weekly_panel)
    assert fc.state["freq"] == "MS"  # scoring does not change what the model was trained on
    ends = new.assign(month=new["month"] + pd.offsets.MonthEnd(0))  # month ends: the same frequency
    out = fc.predict(ends)
    assert out["month"].dt.is_month_end.all()
    steps = new.assign(month=new.groupby("store").cumcount())  # integer steps carry no unit: not compared
    assert np.isfinite(fc.predict(steps)["fewcast"]).all()


def test_predict_refuses_negative_values_for_the_log_member(fitted):
    fc, _ = fitted
    assert fc.settings.model.ensemble_transforms == ["identity", "log", "last"]  # the default: member 1 on logs
    new = monthly_frame(n=2, seed=3)
    new.loc[new.store == "s01", "sales"] -= 1000
    with pytest.raises(InputError, match=r"column 'sales': negative values in series 's01' \(1 series\)"):
        fc.predict(new)
    zeros = new.assign(sales=np.where(new.store == "s01", 0.0, new.sales))  # zeros are fine: floored on logs
    assert np.isfinite(fc.predict(zeros)["fewcast"]).all()


def test_no_forecast_goes_below_zero_for_a_series_never_below_it(fitted):
    """Series falling steadily toward zero: every method's trend would carry them below it; a series that
    never went below zero is forecast at zero or more, one that did keeps its negative forecasts."""
    fc, _ = fitted
    months = pd.date_range("2015-01-01", periods=60, freq="MS")
    rng = np.random.default_rng(2)
    falling = pd.concat([pd.DataFrame({"store": f"f{i}", "month": months,
                                       "sales": np.linspace(120 + 10 * i, 1, 60) + rng.normal(0, 0.5, 60)})
                         for i in range(3)])
    falling["sales"] = falling["sales"].clip(lower=0.2)
    for method in ("theta", "autoets", "pretrained_finetune_all", "metasgd+theta", None):
        out = fc.predict(falling, method=method)
        assert (out["fewcast"] >= 0).all(), method
        assert (out["fewcast"] == 0).any() or method not in ("theta", "autoets"), method  # their trends reach it
    signed = from_frame(falling.assign(sales=falling["sales"] - 3), "store", "month", "sales")  # below zero at its end
    assert (Forecasts(signed, Layout.of(fc.settings.data))[classical("theta")] < 0).any()


def test_short_series_are_padded_and_forecast_zero_shot(fitted):
    fc, _ = fitted
    short = pd.DataFrame({"store": ["x"] * 5, "month": pd.date_range("2020-01-01", periods=5, freq="MS"),
                          "sales": [10.0, 11, 12, 13, 14]})
    with pytest.warns(PanelWarning, match="1 of 1 series are too short"):
        out = fc.predict(short)
    assert len(out) == 6 and np.isfinite(out["fewcast"]).all()
    assert out["month"].iloc[0] == pd.Timestamp("2020-06-01")


def assert_predict_matches_evaluate(fc, frame):
    run = fc.evaluate_run(frame)
    assert "metasgd" in set(run.table["method"]) and set(run.table["n_series"]) == {9}
    test_ids = run.test_ids
    ordered = frame.sort_values(["store", "month"])
    from_end = ordered.groupby("store").cumcount(ascending=False)
    visible = ordered[from_end >= 6]  # all but each series' last h points, as evaluate sees them
    new = visible[visible.store.isin(test_ids)]
    for method in ("metasgd", "pretrained_finetune_all", "metasgd_auto"):
        out = fc.predict(new, method=method).sort_values(["store", "month"])
        assert list(out["store"].unique()) == list(test_ids)
        got = out["fewcast"].to_numpy().reshape(len(test_ids), 6)
        np.testing.assert_allclose(got, run.forecasts[method], rtol=1e-5, atol=1e-4, err_msg=method)
    assert set(test_ids) == set(fc.state["split"]["test"])
    assert not set(test_ids) & set(fc.state["split"]["train"])


def test_predict_matches_evaluate_forecasts(fitted):
    assert_predict_matches_evaluate(*fitted)


def test_evaluate_on_other_data_scores_the_recorded_test_series_and_new_ones_only(fitted):
    """Another frame is split as the model was trained, not drawn again: its meta-test series and series the
    model never saw are scored, never one it trained or validated on."""
    fc, frame = fitted
    split = fc.state["split"]
    dropped = split["test"][0]
    part = frame[frame.store != dropped]
    assert set(fc.evaluate_run(part).test_ids) == set(split["test"]) - {dropped}
    new = monthly_frame(n=2, seed=8).assign(store=lambda d: d["store"].str.replace("s", "new"))
    run = fc.evaluate_run(pd.concat([part, new]))
    assert set(run.test_ids) == set(split["test"]) - {dropped} | {"new00", "new01"}
    assert set(run.table["n_series"]) == {len(split["test"]) + 1}
    assert set(fc.evaluate_run(new).test_ids) == {"new00", "new01"}  # no series it trained on: still scored
    seen = frame[frame.store.isin(split["train"] + split["val"])]
    with pytest.raises(InputError, match="no series to score: the holdout protocol scores the series held out"):
        fc.evaluate_run(seen)


def test_a_deseasonalizing_forecaster_predicts_as_it_evaluates_and_reloads(tmp_path):
    frame = monthly_frame()
    # adapt_steps sets the learner's steps at forecast time, never those of finetune_all (checked in there);
    # auto fine-tunes the held-out series with 27 windows and more (of 17-37), the learner adapts the others
    options = {**TINY, "deseasonalize": True, "adapt_steps": 2, "finetune_all_min_shots": 27}
    fc = FewShotForecaster(**options).fit(frame, "store", "month", "sales")
    assert_predict_matches_evaluate(fc, frame)
    fc.save(tmp_path / "deseasonalized")
    again = FewShotForecaster.load(tmp_path / "deseasonalized")
    assert again.settings.data.deseasonalize
    pd.testing.assert_frame_equal(again.predict(frame), fc.predict(frame))


def test_save_and_load_give_identical_forecasts(fitted, tmp_path):
    fc, _frame = fitted
    fc.save(tmp_path / "model")
    again = FewShotForecaster.load(tmp_path / "model")
    new = monthly_frame(n=4, seed=3)
    pd.testing.assert_frame_equal(fc.predict(new), again.predict(new))
    assert again.settings.to_dict() == fc.settings.to_dict()


def test_predict_combines_with_a_classical_method(fitted):
    fc, _frame = fitted
    new = monthly_frame(n=3, seed=5)
    out = fc.predict(new, h=4, combine=["naive"])
    last = new.sort_values(["store", "month"]).groupby("store")["sales"].last()  # naive repeats the last value
    np.testing.assert_allclose(out["fewcast+naive"], (out["fewcast"] + out["store"].map(last)) / 2, rtol=1e-6)
    with pytest.raises(InputError, match="unknown classical method arima"):
        fc.predict(new, combine=["arima"])
    with pytest.raises(InputError, match="unknown method 'sgd'; choose one of metasgd, metasgd_zeroshot, pretrained, "):
        fc.predict(new, method="sgd")
    with pytest.raises(InputError, match=r"'scratch' is evaluate's reference row .* not a forecast a run makes"):
        fc.predict(new, method="metasgd,scratch")


def test_the_settings_given_are_copied_not_changed(fitted):
    from fewcast.config import Settings

    given = Settings()
    fc = FewShotForecaster(h=6, settings=given, hidden=8)
    assert fc.settings.model.hidden == 8 and fc.settings.data.h == 6
    assert given == Settings()  # the caller's settings stay as they were
    fitted_fc, frame = fitted
    before = fitted_fc.settings.to_dict()
    fitted_fc.evaluate_run(frame)
    assert fitted_fc.settings.to_dict() == before  # scoring does not change what was trained


def test_column_names_given_as_settings_are_the_ones_fit_reads():
    frame = monthly_frame(n=12)
    fc = FewShotForecaster(**{**TINY, "select": False}, id_col="store", time_col="month", target_col="sales")
    fc.fit(frame)
    assert fc.state["columns"] == ["store", "month", "sales"]
    assert list(fc.predict(frame).columns) == ["store", "month", "fewcast"]


def test_unfitted_and_unknown_settings():
    with pytest.raises(InputError, match="not fitted"):
        FewShotForecaster(h=3).predict(monthly_frame(2))
    with pytest.raises(InputError, match="unknown setting 'inner_rate'"):
        FewShotForecaster(h=3, inner_rate=0.1)


def test_an_ensemble_forecaster_fits_saves_and_loads(tmp_path):
    frame = monthly_frame()
    fc = FewShotForecaster(model="mlp", learner="metasgd", **{**TINY, "ensemble": 3}).fit(frame, "store", "month",
                                                                                          "sales")
    assert fc.learner.model.net.head.weight.shape[0] == 3
    out = fc.predict(frame)
    fc.save(tmp_path / "ensemble")
    again = FewShotForecaster.load(tmp_path / "ensemble")
    pd.testing.assert_frame_equal(again.predict(frame), out)


def test_a_run_trained_on_a_gpu_evaluates_on_the_cpu(fitted, tmp_path):
    """A checkpoint whose settings name a CUDA device is scored here on the CPU (no CUDA on the test machines),
    and the settings it reports are still the run's."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    fc, frame = fitted
    fc.save(tmp_path / "gpu")
    again = FewShotForecaster.load(tmp_path / "gpu")
    again.settings.update("train", {"device": "cuda"})
    run = again.evaluate_run(frame)
    expected = fc.evaluate_run(frame)
    np.testing.assert_allclose(run.forecasts["metasgd"], expected.forecasts["metasgd"], rtol=1e-5)
    assert run.settings.train.device == "cuda"


def test_load_reads_a_run_directory_as_forecast_does(uninterrupted, data):
    """``load(RUN)`` on what ``fewcast train --out RUN`` wrote: its checkpoint and its validation ranking."""
    fc = FewShotForecaster.load(uninterrupted)
    assert fc.selection is not None and fc.selection.chosen == fc.state["method"]
    frame = pd.read_csv(data)
    direct = FewShotForecaster.load(uninterrupted / "checkpoint").predict(frame)
    pd.testing.assert_frame_equal(fc.predict(frame), direct)


def test_intervals_asked_of_a_run_with_too_few_validation_series_say_why_there_are_none(uninterrupted, data):
    fc = FewShotForecaster.load(uninterrupted)
    fc.calibration = {}  # as a run whose validation series gave fewer than ten forecasts has it
    with pytest.raises(InputError, match=r"no intervals for .*: they are calibrated at training on at least 10 "
                                         r"validation forecasts, and this run's 4 validation series gave fewer"):
        fc.predict(pd.read_csv(data), level=[80])


def test_one_method_or_level_alone_is_taken_as_a_list_of_one(uninterrupted, data):
    fc = FewShotForecaster.load(uninterrupted)
    frame = pd.read_csv(data)
    one = fc.predict(frame, combine="theta")
    pd.testing.assert_frame_equal(one, fc.predict(frame, combine=["theta"]))
    assert list(one.columns) == ["unique_id", "ds", "fewcast", "fewcast+theta"]
    with pytest.raises(InputError, match="no intervals for"):  # this run has none: a level alone gets that far
        fc.predict(frame, level=80)
    fc.settings.train.select = False
    fc.calibration = {}
    with pytest.raises(InputError, match=r"calibrated by the choice on validation at training, which this run "
                                         r"skipped \(`select`\)"):
        fc.predict(frame, level=[80])
