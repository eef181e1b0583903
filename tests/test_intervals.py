"""Prediction intervals and quantiles: coverage of a known distribution on new series, monotone quantiles,
statsforecast's column names in the user's column names, and the interval metrics against utilsforecast."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fewcast import FewShotForecaster, intervals, metrics
from fewcast.errors import InputError
from tests.conftest import TINY, cli


def noisy_frame(n: int, length: int, h: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Series of Gaussian noise (each its own spread) around a seasonal pattern: the history, and the next
    ``h`` values of each series drawn from the same process."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + h)
    level = rng.uniform(50, 150, (n, 1))
    sigma = rng.uniform(0.5, 5.0, (n, 1))  # each series' own volatility
    y = level + 10 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6, (n, 1))) + sigma * rng.normal(size=(n, len(t)))
    ds = pd.date_range("2010-01-01", periods=length + h, freq="MS")
    ids = np.array([f"u{i:03d}" for i in range(n)])
    full = pd.DataFrame({"store": np.repeat(ids, length + h), "month": np.tile(ds, n), "sales": y.reshape(-1)})
    future = full.groupby("store").tail(h)
    return full.drop(future.index), future


@pytest.fixture(scope="module")
def gaussian():
    """A forecaster fitted on 150 noisy seasonal series; 400 new series of the same process and their truth."""
    history, _ = noisy_frame(150, 48, 6, seed=1)
    fc = FewShotForecaster(model="mlp", learner="metasgd", **{**TINY, "iterations": 20, "pretrain_iterations": 40,
                                                               "classical": ["naive", "seasonal_naive"]})
    fc.fit(history, "store", "month", "sales")
    new, truth = noisy_frame(400, 48, 6, seed=2)
    return fc, new, truth


def test_the_80_and_95_percent_intervals_cover_new_series_as_promised(gaussian):
    fc, new, truth = gaussian
    out = fc.predict(new, level=[80, 95])
    assert list(out.columns) == ["store", "month", "fewcast", "fewcast-lo-80", "fewcast-hi-80", "fewcast-lo-95",
                                 "fewcast-hi-95"]
    y = truth["sales"].to_numpy()  # rows in the same order: series, then step
    assert (out["store"].to_numpy() == truth["store"].to_numpy()).all()
    cover80 = np.mean((y >= out["fewcast-lo-80"]) & (y <= out["fewcast-hi-80"]))
    cover95 = np.mean((y >= out["fewcast-lo-95"]) & (y <= out["fewcast-hi-95"]))
    assert 0.75 <= cover80 <= 0.85 and 0.91 <= cover95 <= 0.98, (cover80, cover95)
    # each series' own volatility: the interval of a calm series is narrower than that of a wild one
    width = (out["fewcast-hi-80"] - out["fewcast-lo-80"]).groupby(out["store"]).mean()
    spread = new.groupby("store")["sales"].apply(lambda s: np.mean(np.abs(np.diff(s.to_numpy(), 12))))
    assert np.corrcoef(width, spread.loc[width.index])[0, 1] > 0.8


def test_quantiles_are_monotone_and_named_like_statsforecast_in_user_columns(gaussian):
    fc, new, _ = gaussian
    taus = [0.1, 0.25, 0.5, 0.75, 0.9]
    out = fc.predict(new, level=[50, 80, 95], quantiles=taus, combine=["naive"])
    q = out[[f"fewcast-q-{t:g}" for t in (10, 25, 50, 75, 90)]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert (out["fewcast-lo-95"] <= out["fewcast-lo-80"]).all() and (out["fewcast-lo-80"] <= out["fewcast-lo-50"]).all()
    assert (out["fewcast-hi-50"] <= out["fewcast-hi-80"]).all() and (out["fewcast-hi-80"] <= out["fewcast-hi-95"]).all()
    assert {"fewcast+naive-lo-80", "fewcast+naive-hi-95", "fewcast+naive-q-50"} <= set(out.columns)
    with pytest.raises(InputError, match="level 120 is not a percentage"):
        fc.predict(new, level=[120])
    with pytest.raises(InputError, match=r"quantile 1\.2 is outside"):
        fc.predict(new, quantiles=[1.2])
    with pytest.raises(InputError, match=r"level '80' is not a number; use e.g. level=\[80, 95\]"):
        fc.predict(new, level=["80"])
    pd.testing.assert_frame_equal(fc.predict(new, level=np.int64(80), quantiles=None, combine=None),
                                  fc.predict(new, level=[80]))


def test_every_forecast_fewcast_makes_has_intervals_and_they_survive_save_and_load(gaussian, tmp_path):
    fc, new, _ = gaussian
    assert set(fc.methods()) <= set(fc.calibration)
    fc.save(tmp_path / "model")
    again = FewShotForecaster.load(tmp_path / "model")
    for method in ("pretrained_finetune", "metasgd_zeroshot", "theta"):
        a = fc.predict(new.head(480), method=method, level=[80])
        b = again.predict(new.head(480), method=method, level=[80])
        pd.testing.assert_frame_equal(a, b, check_exact=True)  # the calibration is saved as it was made
    assert again.selection is not None and again.selection.chosen == fc.selection.chosen
    pd.testing.assert_frame_equal(again.selection.table, fc.selection.table, check_dtype=False)
    # a cold start: histories shorter than every validation history, scaled by the saved short-history entry
    assert intervals.SHORT in fc.calibration and intervals.SHORT in again.calibration
    short = new.groupby("store").tail(20).head(200)
    a, b = fc.predict(short, level=[80]), again.predict(short, level=[80])
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)
    without = {k: v for k, v in fc.calibration.items() if k != intervals.SHORT}
    width = (a["fewcast-hi-80"] - a["fewcast-lo-80"]).groupby(a["store"]).mean()
    fc.calibration, kept = without, fc.calibration
    try:
        plain = fc.predict(short, level=[80])
    finally:
        fc.calibration = kept
    plain_width = (plain["fewcast-hi-80"] - plain["fewcast-lo-80"]).groupby(plain["store"]).mean()
    assert not np.allclose(width, plain_width)  # the short-history entry changes a cold start's intervals
    chosen = fc.selection.chosen  # its short-history table, where it has one, gives a cold start's intervals
    fc.calibration = {**kept, intervals.short_name(chosen): 2 * kept[chosen]}
    try:
        doubled = fc.predict(short, level=[80])
    finally:
        fc.calibration = kept
    pd.testing.assert_series_equal(doubled["fewcast-hi-80"] - doubled["fewcast-lo-80"],
                                   2 * (a["fewcast-hi-80"] - a["fewcast-lo-80"]), rtol=1e-6)


def test_forecast_command_writes_interval_columns(gaussian, tmp_path):
    fc, new, _ = gaussian
    fc.save(tmp_path / "run" / "checkpoint")
    new.head(480).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = cli("forecast", tmp_path / "run", "--data", tmp_path / "new.csv", "--out", tmp_path / "f.csv",
                       "--level", "80", "95", "--quantiles", "0.1", "0.5", "0.9")
    assert code == 0, err
    out = pd.read_csv(tmp_path / "f.csv")
    assert list(out.columns)[3:] == ["fewcast-lo-80", "fewcast-hi-80", "fewcast-lo-95", "fewcast-hi-95",
                                     "fewcast-q-10", "fewcast-q-50", "fewcast-q-90"]


@settings(max_examples=50, deadline=None, derandomize=True)
@given(errors=arrays(np.float64, (30, 4), elements=st.floats(-1e3, 1e3)),
       yhat=arrays(np.float64, (3, 4), elements=st.floats(-1e6, 1e6)),
       scale=arrays(np.float64, (3,), elements=st.floats(0, 1e3)),
       taus=st.lists(st.floats(0.005, 0.995), min_size=2, max_size=6))
def test_quantiles_never_cross(errors, yhat, scale, taus):
    table = intervals.calibrate(errors, {"m": np.zeros_like(errors)}, np.ones(30))["m"]
    q = intervals.quantiles(yhat, scale, table, sorted(taus))
    assert (np.diff(q, axis=2) >= -1e-9 * np.maximum(1, np.abs(q[:, :, 1:]))).all()


def test_a_history_shorter_than_the_validation_histories_takes_its_converted_recent_volatility():
    """A cold start: the volatility a long history would show, as its recent volatility (the last
    ``input_size + season_length`` points) times the validation histories' median ratio of whole to recent;
    a history as long as theirs keeps its whole history's (the MASE scale), and so does every history under
    a calibration from before the short-history entry. Hand computations."""
    from fewcast.engine import Layout
    from fewcast.frame import from_frame

    t = np.arange(40)
    grow = 1.05 ** t * (2 + t % 4)  # seasonal differences growing with time (season 4)
    calm = 10 + np.sin(t) + (t % 4)
    frame = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 40), "ds": np.tile(t, 2), "y": np.r_[grow, calm]})
    panel, lay = from_frame(frame, "unique_id", "ds", "y"), Layout(input_size=8, h=2, season_length=4)

    def mad(y):  # mean absolute seasonal difference
        return np.mean(np.abs(y[4:] - y[:-4]))

    entry = intervals.short_history(panel, lay)  # the validation histories: both series, 40 points each
    ends = [int(np.ceil(e * 40)) for e in intervals.RATIO_ENDS]  # each history ended at 20 ... 40 points
    ratios = [mad(y[:n]) / mad(y[:n][-12:]) for y in (grow, calm) for n in ends]
    np.testing.assert_allclose(entry, [[40.0, np.median(ratios)]], rtol=1e-6)  # float32 values
    calibration = {"m": np.zeros((len(intervals.TAUS), 2)), intervals.SHORT: entry}
    assert intervals.calibrated(calibration) == ["m"]
    np.testing.assert_allclose(intervals.volatility(panel, lay, calibration), [mad(grow), mad(calm)], rtol=1e-6)
    short = panel.tail(20)  # shorter than every validation history: converted
    np.testing.assert_allclose(intervals.volatility(short, lay, calibration),
                               [entry[0, 1] * mad(grow[-12:]), entry[0, 1] * mad(calm[-12:])], rtol=1e-6)
    np.testing.assert_allclose(intervals.volatility(short, lay, {"m": calibration["m"]}),
                               [mad(grow[-20:]), mad(calm[-20:])], rtol=1e-6)  # an older calibration: whole


def test_a_short_history_takes_its_methods_short_history_calibration_where_there_is_one():
    """:func:`intervals.bands`: the histories shorter than the calibration's :data:`SHORT` length take the
    method's short-history table, the others its table; a method without one keeps its table for both."""
    from fewcast.frame import from_frame

    frame = pd.DataFrame({"unique_id": np.repeat(["long", "short"], [30, 10]),
                          "ds": np.r_[np.arange(30), np.arange(10)], "y": np.arange(40.0)})
    panel = from_frame(frame, "unique_id", "ds", "y")
    table = np.tile(np.linspace(-1, 1, len(intervals.TAUS))[:, None], (1, 2))  # (taus, h)
    calibration = {"m": table, "n": table, intervals.short_name("m"): 3 * table, intervals.SHORT: [[20.0, 1.0]]}
    assert intervals.calibrated(calibration) == ["m", "n"]
    short = intervals.shorter(panel, calibration)
    assert short.tolist() == [False, True]
    yhat, scale, floor = np.zeros((2, 2)), np.array([1.0, 2.0]), np.full(2, -np.inf)
    taus = [0.005, 0.5, 0.995]
    m = intervals.bands(yhat, scale, calibration, "m", taus, floor, short)  # (series, h, taus)
    np.testing.assert_allclose(m[0], intervals.quantiles(yhat[:1], scale[:1], table, taus)[0])
    np.testing.assert_allclose(m[1], intervals.quantiles(yhat[1:], scale[1:], 3 * table, taus)[0])
    np.testing.assert_allclose(m[1, :, [0, 2]].T, [[-6.0, 6.0], [-6.0, 6.0]])  # 2 (scale) x 3 x the table's -1, 1
    n = intervals.bands(yhat, scale, calibration, "n", taus, floor, short)
    np.testing.assert_allclose(n, intervals.quantiles(yhat, scale, table, taus))
    assert not intervals.shorter(panel, {"m": table}).any()  # a calibration without the entry: nothing is short


def test_earlier_cuts_give_the_shape_and_the_latest_cut_the_level():
    """Errors at an earlier cut twice those of the latest (shorter histories): the intervals are those of the
    latest cut's errors, as if each had been measured twice; with one cut, the cut changes nothing."""
    rng = np.random.default_rng(0)
    z = rng.standard_t(4, (40, 5)) * np.linspace(1, 3, 5)  # (series, h): heavy tails, spread growing with h
    two_cuts = intervals.calibrate(np.r_[z, 2 * z], {"m": np.zeros((80, 5))}, np.ones(80), np.repeat([1, 2], 40))
    latest_twice = intervals.calibrate(np.r_[z, z], {"m": np.zeros((80, 5))}, np.ones(80))
    np.testing.assert_allclose(two_cuts["m"], latest_twice["m"], rtol=1e-12)
    one = intervals.calibrate(z, {"m": np.zeros((40, 5))}, np.ones(40))
    np.testing.assert_allclose(intervals.calibrate(z, {"m": np.zeros((40, 5))}, np.ones(40), np.full(40, 3))["m"],
                               one["m"], rtol=1e-12)


def test_other_rows_lend_the_shape_of_their_errors_and_the_own_rows_the_level():
    """Training series' rows (not ``own``) with errors three times the validation series' and the same shape:
    the intervals are the validation errors' as if each had been measured twice (their level kept), with two
    cuts too (the latest cut's own level); with a different shape and seven times the size (Gaussian beside
    heavy tails), the tails thin and the size stays."""
    rng = np.random.default_rng(2)
    z = rng.standard_t(4, (40, 5)) * np.linspace(1, 3, 5)  # (series, h) the validation series' errors
    own = np.repeat([True, False], 40)
    lent = intervals.calibrate(np.r_[z, 3 * z], {"m": np.zeros((80, 5))}, np.ones(80), own=own)["m"]
    twice = intervals.calibrate(np.r_[z, z], {"m": np.zeros((80, 5))}, np.ones(80))["m"]
    np.testing.assert_allclose(lent, twice, rtol=1e-12)
    g = rng.normal(size=(400, 5)) * np.linspace(1, 3, 5) * 7  # a calmer shape, another level
    mixed = intervals.calibrate(np.r_[z, g], {"m": np.zeros((440, 5))}, np.ones(440),
                                own=np.arange(440) < 40)["m"]
    alone = intervals.calibrate(z, {"m": np.zeros((40, 5))}, np.ones(40))["m"]
    assert np.abs(mixed).mean() == pytest.approx(np.abs(z).mean(), rel=0.05)  # the validation errors' size, not 7x
    assert (mixed[-1] < alone[-1]).all()  # the 99.5 % quantile: the Gaussian's thinner tail
    at = np.repeat([1, 2, 1, 2], 40)  # two cuts: own rows at both, other rows at both, each its own level
    cuts = intervals.calibrate(np.r_[z, 2 * z, 5 * z, 9 * z], {"m": np.zeros((160, 5))}, np.ones(160), at,
                               own=np.arange(160) < 80)["m"]
    np.testing.assert_allclose(cuts, intervals.calibrate(np.tile(z, (4, 1)), {"m": np.zeros((160, 5))},
                                                         np.ones(160))["m"], rtol=1e-12)
    few = intervals.calibrate(np.r_[z[:9], g], {"m": np.zeros((409, 5))}, np.ones(409),
                              own=np.arange(409) < 9)
    assert few == {}  # fewer than MIN_ERRORS own rows: no calibration, however many others


def test_a_few_diverging_validation_forecasts_set_neither_the_level_nor_the_shape():
    """200 validation rows and 400 training rows of errors; one validation forecast in 200 diverges (errors of
    10,000). Its errors widen the outermost quantiles, as any error does, but not the 10 % ... 90 % ones, which
    stay within 3 % of those without it; with nothing left out (``trim=0``) they grow 10-fold."""
    rng = np.random.default_rng(3)
    z = rng.standard_t(4, (200, 5)) * np.linspace(1, 3, 5)  # (series, h) the validation series' errors
    g = rng.normal(size=(400, 5)) * np.linspace(1, 3, 5) * 2  # the training series'
    own = np.arange(600) < 200
    wild = z.copy()
    wild[7] = 1e4  # one diverging forecast
    middle = (intervals.TAUS >= 0.1) & (intervals.TAUS <= 0.9)

    def table(errors, **kw):
        return intervals.calibrate(np.r_[errors, g], {"m": np.zeros((600, 5))}, np.ones(600), own=own, **kw)["m"]

    clean, diverged = table(z), table(wild)
    np.testing.assert_allclose(diverged[middle], clean[middle], rtol=0.03, atol=0.02)
    assert (np.abs(table(wild, trim=0.0)[middle]).max(axis=0) > 10 * np.abs(clean[middle]).max(axis=0)).all()


def test_the_conformal_widening_counts_forecasts_or_errors():
    """Twenty forecasts of five steps: the quantile levels widened by 21/20 about the median, or by 101/100
    when every error counts (``count="errors"``), as a hand computation of the pooled quantiles gives."""
    z = np.random.default_rng(1).normal(size=(20, 5))  # (series, h) spread 1 at every step
    spread = np.mean(np.abs(z), axis=0)  # (h,)
    pooled = (z / spread).reshape(-1)
    for count, n in (("rows", 20), ("errors", 100)):
        taus = np.clip(0.5 + (intervals.TAUS - 0.5) * (n + 1) / n, 0, 1)
        want = np.quantile(pooled, taus)[:, None] * spread[None, :]
        got = intervals.calibrate(z, {"m": np.zeros((20, 5))}, np.ones(20), count=count)["m"]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_interval_metrics_match_utilsforecast_and_a_hand_computation():
    from utilsforecast import losses

    rng = np.random.default_rng(0)
    y = rng.normal(10, 2, (4, 3))
    q = np.sort(y[:, :, None] + rng.normal(0, 1.5, (4, 3, 9)), axis=2)  # (series, h, quantiles 0.1 .. 0.9)
    taus = list(metrics.QUANTILES)
    lo, hi = q[:, :, 0], q[:, :, -1]
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(4), 3), "ds": np.tile(np.arange(3), 4),
                          "y": y.reshape(-1), "m": q[:, :, 4].reshape(-1), "m-lo-80": lo.reshape(-1),
                          "m-hi-80": hi.reshape(-1)})
    assert metrics.coverage(y, lo, hi) == pytest.approx(losses.coverage(frame, ["m"], level=80)["m"].mean())
    winkler = losses.winkler_score(frame, ["m"], level=80)["m"].to_numpy()  # per series
    assert metrics.msis(y, lo, hi, np.ones(4), alpha=0.2) == pytest.approx(winkler.mean())
    scale = np.array([1.0, 2.0, 0.5, 4.0])
    assert metrics.msis(y, lo, hi, scale, alpha=0.2) == pytest.approx(np.mean(winkler / scale))
    # by hand: the pinball loss of the median is half the absolute error
    median = q[:, :, 4:5]
    assert metrics.sql(y, median, [0.5], scale) == pytest.approx(np.mean(np.abs(y - median[:, :, 0]).mean(1) / scale))
    by_hand = np.mean([2 * np.sum(np.maximum(t * (y - q[:, :, k]), (t - 1) * (y - q[:, :, k]))) / np.abs(y).sum()
                       for k, t in enumerate(taus)])
    assert metrics.wql(y, q, taus) == pytest.approx(by_hand)


def test_evaluate_scores_the_intervals_and_the_report_shows_them(gaussian, tmp_path):
    from fewcast.report import write_run

    fc, _, _ = gaussian
    history, _ = noisy_frame(150, 48, 6, seed=1)
    results = fc.evaluate_run(history, "store", "month", "sales")
    table = results.table.set_index("method")
    for row in ("fewcast", "metasgd", "seasonal_naive"):  # calibrated, and statsforecast's own
        assert 0.6 <= table.loc[row, "coverage_80"] <= 1 and table.loc[row, "coverage_95"] >= table.loc[row,
                                                                                                        "coverage_80"]
        assert table.loc[row, "msis"] > 0 and table.loc[row, "sql"] > 0 and table.loc[row, "wql"] > 0
    assert np.isnan(table.loc["scratch", "coverage_80"])  # a network no forecast uses: not calibrated
    curve = results.coverage_curve
    assert set(curve["method"]) == {"fewcast", "seasonal_naive"} and list(curve["nominal"].unique()) == [20, 40, 60,
                                                                                                          80, 95]
    paths = write_run(results, tmp_path)
    assert "calibration.png" in paths and 'id="intervals"' in paths["report.html"].read_text()
    assert "Intervals:" in paths["results.md"].read_text()
    assert all(len(s["bands"]) == 2 for s in results.samples)  # the fan chart's 80 % and 95 % bands
    assert results.short_history["series"] == 0  # held-out histories as long as the validation ones
    # a cold start: every held-out history cut to 20 points, shorter than every validation history
    evaluation = copy.deepcopy(fc.settings.eval)
    evaluation.history = 20
    cold = fc.evaluate_run(history, "store", "month", "sales", evaluation=evaluation)
    length, ratio = fc.calibration[intervals.SHORT][0]
    n = len(cold.test_ids)
    tables = intervals.short_name(fc.selection.chosen) in fc.calibration
    assert cold.short_history == {"length": int(length), "ratio": pytest.approx(ratio), "series": n, "of": n,
                                  "tables": tables}
    html = write_run(cold, tmp_path / "cold")["report.html"].read_text()
    assert f"{n} of the {n} held-out histories are shorter than the shortest validation history" in html
