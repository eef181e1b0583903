"""Choosing the forecast on validation: leak-free (nothing it trains on lies in the scored period), ranked
by a criterion checked by hand, recorded in the run and used by forecast, predict and evaluate's row."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from fewcast import intervals
from fewcast.baselines import statistical_cuts
from fewcast.data import PanelData
from fewcast.errors import InputError
from fewcast.experiment import Experiment
from fewcast.forecaster import FewShotForecaster
from fewcast.intervals import SHORT, calibrate, calibrated
from fewcast.metrics import seasonal_scale
from fewcast.panel import Panel
from fewcast.selection import candidate_names, cuts, earlier, rank, select
from fewcast.tasks import split_series
from tests.conftest import TINY, fewcast, monthly_frame, panel_data, tiny_settings


def test_the_validation_cut_is_h_points_before_the_visible_end():
    data = panel_data(poison=False)
    cut = earlier(data)
    np.testing.assert_array_equal(cut.visible.lengths, data.visible.lengths - 6)
    np.testing.assert_array_equal(cut.horizon.values, data.visible.tail(6).values)


def test_nothing_trained_on_lies_in_the_scored_period():
    """Poisoning the last h visible points (what the validation scores) changes the scores, and not one
    training or validation loss of the networks behind them."""
    data = panel_data(poison=False)
    tail = data.visible.slice(data.visible.lengths - 6, data.visible.lengths)  # each series' last 6 points
    rows = np.isin(np.arange(len(data.visible.values)),
                   np.concatenate([np.arange(a - 6, a) for a in data.visible.offsets[1:]]))  # (rows,) the same
    assert np.array_equal(data.visible.values[rows], tail.values)
    values = np.where(rows, data.visible.values * 3, data.visible.values)
    poisoned = PanelData("synthetic", Panel(data.visible.ids, values, data.visible.ds, data.visible.offsets),
                         data.horizon, 6, 12)
    runs = {}
    for label, d in (("clean", data), ("poisoned", poisoned)):
        runs[label] = select(Experiment(tiny_settings(), d, log=lambda *_: None))
    clean, dirty = runs["clean"], runs["poisoned"]
    for phase in clean.logs:
        for column in ("train_loss", "val_loss"):
            np.testing.assert_array_equal(pd.DataFrame(clean.logs[phase])[column],
                                          pd.DataFrame(dirty.logs[phase])[column], err_msg=f"{phase} {column}")
    scores = clean.table.set_index("method")  # first the average of the two best (select_top = 2), then each
    assert scores.index[0] == clean.chosen == ",".join(scores.index[1:3])
    assert set(scores.index[1:]) == set(candidate_names("metasgd")) and (clean.series, clean.h) == (6, 6)
    names = candidate_names("metasgd")
    assert not np.allclose(scores.loc[names, "smape"], dirty.table.set_index("method").loc[names, "smape"])


def test_under_holdout_the_choice_also_ranks_on_training_series_and_calibrates_their_shape_only(monkeypatch):
    """``train.select_training``: each cut also scores up to ``select_training // cuts`` training series after
    the validation series (horizons the cut's networks did not train on); the ranking counts every row, the
    intervals' calibration every row's errors with the validation series' level (the tiny panel's 6
    validation series calibrated: ``MIN_ERRORS`` lowered)."""
    monkeypatch.setattr(intervals, "MIN_ERRORS", 5)
    data = panel_data(poison=False)
    settings = tiny_settings()
    settings.update("train", {"select_training": 200})
    split = Experiment(settings, data, log=lambda *_: None).split
    kept = select(Experiment(settings, data, log=lambda *_: None), keep=True)
    alone = tiny_settings()
    alone.update("train", {"select_training": 0})
    plain = select(Experiment(alone, data, log=lambda *_: None), keep=True)
    k, n, m = kept.cuts, kept.series, kept.training
    assert (n, m, plain.series, plain.training) == (len(split.val), min(200 // k, len(split.train)), n, 0) and m > 0
    own = kept.scored["validation"]  # (rows,) validation series first in each cut, then training series
    np.testing.assert_array_equal(own, np.tile(np.arange(n + m) < n, k))
    ids = kept.scored["history"][0].ids
    assert set(ids[:n]) == set(split.val) and set(ids[n:]) <= set(split.train)
    made, truth = kept.scored["forecasts"], kept.scored["truth"]
    scale = np.concatenate([seasonal_scale(p, 12) for p in kept.scored["history"]])
    names = candidate_names("metasgd")
    expected = rank({name: made[name] for name in names}, truth, scale).set_index("method")["score"]
    got = kept.table.set_index("method").loc[names, "score"]
    np.testing.assert_allclose(got, expected.loc[names])
    for name, yhat in plain.scored["forecasts"].items():  # the validation rows are forecast as before
        np.testing.assert_allclose(made[name][own], yhat, rtol=1e-6)
    assert set(kept.calibration) == set(plain.calibration)
    cut = kept.scored["cut"]
    want = calibrate(truth, made, scale, cut, own=own)
    alone = calibrate(truth[own], {name: yhat[own] for name, yhat in made.items()}, scale[own], cut[own])
    assert len(calibrated(kept.calibration)) > len(names)  # every method made, candidate or not
    differ = [name for name in names if not np.allclose(want[name], alone[name])]
    assert differ == names[:-1]  # the training rows' shape counts (seasonal naive's errors: one constant here)
    for name in calibrated(kept.calibration):
        np.testing.assert_allclose(np.asarray(kept.calibration[name]), want[name])
        np.testing.assert_allclose(np.asarray(plain.calibration[name]), alone[name], rtol=1e-6)
    np.testing.assert_allclose(kept.calibration[SHORT], plain.calibration[SHORT])  # validation histories alone
    assert "short" not in kept.scored and not any(name.startswith(f"{SHORT}:") for name in kept.calibration)
    assert f"of {n} validation series and {m} training series" in kept.reason()
    again = type(kept).from_csv(io.StringIO(kept.to_csv()))
    assert (again.series, again.training, again.chosen) == (n, m, kept.chosen)


def test_with_several_cuts_the_statistical_methods_are_fitted_once_before_the_earliest_horizon():
    """As the networks are trained once, before the earliest horizon the choice scores, AutoETS, AutoCES and
    Theta are fitted once per scored series, there, and forecast every later horizon from its longer history
    (:func:`fewcast.baselines.statistical_cuts`, checked against statsforecast's own models in
    test_baselines); the methods averaged with them take those forecasts."""
    rng = np.random.default_rng(1)
    series = [50 + rng.uniform(5, 20) * np.sin(2 * np.pi * np.arange(n) / 12 + rng.uniform(0, 6)) + 0.3 * np.arange(n)
              for n in rng.integers(100, 121, 30)]
    visible, horizon = Panel.from_arrays(np.array([f"s{i:02d}" for i in range(30)]), series).split_last(6)
    data = PanelData("longer", visible, horizon, 6, 12)
    kept = select(Experiment(tiny_settings(), data, log=lambda *_: None), keep=True)
    k, ids, made = kept.cuts, kept.scored["history"][0].ids, kept.scored["forecasts"]
    assert k == 3 and all((p.ids == ids).all() for p in kept.scored["history"])
    want = statistical_cuts(data.visible.take(data.visible.index_of(ids)), 6, 12, k)
    for name in ("autoets", "autoces", "theta"):
        np.testing.assert_allclose(made[name].reshape(k, len(ids), 6), want[name], rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(made["metasgd+theta"], (made["metasgd"] + made["theta"]) / 2, rtol=1e-6)


def test_the_same_horizons_forecast_from_short_histories_calibrate_a_short_historys_intervals(monkeypatch):
    """Validation histories longer than :func:`intervals.short_length` (lowered to 20 points for the tiny
    panel): every cut's rows are forecast a second time from their last 20 points, and each method's
    short-history table is the calibration of those forecasts' errors scaled as a short history's volatility
    is (:func:`intervals.volatility`); the choice and the whole histories' tables are as before."""
    from fewcast import selection

    monkeypatch.setattr(intervals, "MIN_ERRORS", 5)
    data, settings = panel_data(poison=False), tiny_settings()
    plain = select(Experiment(settings, data, log=lambda *_: None), keep=True)
    monkeypatch.setattr(selection, "short_length", lambda layout: 20)
    kept = select(Experiment(settings, data, log=lambda *_: None), keep=True)
    pd.testing.assert_frame_equal(kept.table, plain.table)
    short, made, own = kept.scored["short"], kept.scored["forecasts"], kept.scored["validation"]
    assert len(short["history"]) == kept.cuts and all((p.lengths == 20).all() for p in short["history"])
    for p, whole in zip(short["history"], kept.scored["history"]):
        np.testing.assert_array_equal(p.values, whole.tail(20).values)
    layout = Experiment(settings, data, log=lambda *_: None).layout
    scale = np.concatenate([intervals.volatility(p, layout, kept.calibration) for p in short["history"]])
    want = calibrate(kept.scored["truth"], short["forecasts"], scale, kept.scored["cut"], own=own)
    assert set(short["forecasts"]) == set(made) and kept.chosen in want  # the chosen average's too
    for name in ("pretrained_finetune_all", "theta"):  # fewer windows; a shorter fit
        assert not np.allclose(short["forecasts"][name], made[name])
    for name in calibrated(kept.calibration):
        np.testing.assert_allclose(kept.calibration[intervals.short_name(name)], want[name])
        np.testing.assert_allclose(kept.calibration[name], plain.calibration[name])


def test_the_ranking_is_the_mean_of_smape_and_mase_relative_to_seasonal_naive():
    truth = np.array([[13.0, 14.0], [8.0, 7.0]])
    scale = np.array([1.0, 2.0])
    forecasts = {"good": np.array([[12.5, 13.0], [8.0, 8.0]]), "bad": np.full((2, 2), 50.0),
                 "seasonal_naive": np.array([[12.0, 12.0], [9.0, 9.0]])}
    table = rank(forecasts, truth, scale).set_index("method")

    def by_hand(yhat):
        smape = np.mean(200 * np.abs(truth - yhat) / (np.abs(truth) + np.abs(yhat)), axis=1).mean()
        return smape, (np.abs(truth - yhat).mean(1) / scale).mean()

    (smape, mase), (base_smape, base_mase) = by_hand(forecasts["good"]), by_hand(forecasts["seasonal_naive"])
    assert table.loc["good", "smape"] == pytest.approx(smape) and table.loc["good", "mase"] == pytest.approx(mase)
    assert table.loc["good", "score"] == pytest.approx((smape / base_smape + mase / base_mase) / 2)
    assert table.loc["seasonal_naive", "score"] == pytest.approx(1.0)
    assert list(table.index) == ["good", "seasonal_naive", "bad"] and list(table["rank"]) == [1, 2, 3]


def test_long_series_are_scored_on_several_horizons():
    data = panel_data(poison=False)  # visible parts of 34-54 points, h = 6: one horizon
    assert cuts(data) == 1
    long = Panel.from_arrays(np.array(["a", "b"]), [np.arange(300.0), np.arange(200.0)])
    assert cuts(PanelData("long", long, None, 6, 1)) == 8  # a fifth of 250 points is 8 horizons and more
    assert cuts(PanelData("long", long, None, 24, 1)) == 2


def test_a_run_records_its_choice_and_forecasts_with_it(data, uninterrupted, tmp_path):
    ranking = pd.read_csv(uninterrupted / "selection.csv")  # the average of the two best first, then each
    assert set(ranking["method"][1:]) == set(candidate_names("metasgd")) and list(ranking["rank"]) == list(range(1, 14))
    assert ranking["method"].iloc[0] == ",".join(ranking["method"].iloc[1:3])
    chosen = ranking["method"].iloc[0]
    out = tmp_path / "f.csv"
    assert fewcast("forecast", uninterrupted, "--data", data, "--out", out).returncode == 0
    named = tmp_path / "named.csv"
    assert fewcast("forecast", uninterrupted, "--data", data, "--out", named, "--method", chosen).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(named))
    parts = []
    for part in chosen.split(","):
        assert fewcast("forecast", uninterrupted, "--data", data, "--out", named, "--method", part).returncode == 0
        parts.append(pd.read_csv(named)["fewcast"])
    np.testing.assert_allclose(pd.read_csv(out)["fewcast"], (parts[0] + parts[1]) / 2, rtol=1e-5)
    run = tmp_path / "run"
    import shutil

    shutil.copytree(uninterrupted, run)
    scored = fewcast("evaluate", run, "--classical", "naive,seasonal_naive,autoets,theta")
    assert scored.returncode == 0, scored.stderr
    table = pd.read_csv(run / "results.csv").set_index("method")
    assert np.isfinite(table.loc["fewcast", "smape"])
    report = (run / "report.html").read_text()
    row = re.search(rf"<td>{re.escape(chosen)}</td>(?:<td>[^<]*</td>){{3}}<td>([^<]*)</td>", report)
    assert row and float(row.group(1)) == pytest.approx(table.loc["fewcast", "smape"], abs=0.006)  # its test score
    assert 'id="selection"' in (run / "report.html").read_text()


def test_the_validation_cut_lowers_the_runs_shots_to_what_its_shorter_series_hold():
    """The run's shots fit its training series but not the same series a horizon shorter: the validation
    cut trains with the shots those hold instead of failing, whether the shots were derived or given."""
    settings = tiny_settings()
    settings.update("train", {"shots": 0})
    ids = np.array([f"s{i:02d}" for i in range(20)])
    train = split_series(ids, settings.train.val_frac, settings.train.test_frac, settings.train.seed).train
    lengths = np.where(np.isin(ids, train), 40, 90)  # (series,) the held-out ones long, the training ones short
    t = np.arange(lengths.max())
    values = np.concatenate([50 + 10 * np.sin(2 * np.pi * t[:n] / 12) + i for i, n in enumerate(lengths)])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ds = np.concatenate([np.arange(n) for n in lengths]).astype("datetime64[D]")
    visible, horizon = Panel(ids, values.astype(np.float32), ds, offsets).split_last(6)
    data = PanelData("synthetic", visible, horizon, 6, 12)
    notes = []
    run = Experiment(settings, data, log=notes.append)
    shots = run.settings.train.shots  # the most the 34 visible points of a training series hold: 34 - 12 - 12 + 1
    assert shots == 11 and "shots = 11: what the longest meta-training series holds" in run.derived
    with pytest.raises(InputError, match=r"no series has the 17 windows a task needs.*`shots=5` fits it"):
        Experiment(run.settings, earlier(data), log=notes.append)  # given shots: refused where they do not fit
    for chosen in (select(run), select(Experiment(run.settings, data, log=notes.append))):  # derived, given
        assert not chosen.table.empty and chosen.logs["metasgd"]
    lowered = [note for note in notes if "networks trained on 5 shots (the run's 11 do not fit" in note]
    assert len(lowered) == 2 and run.settings.train.shots == 11, notes


def test_with_select_top_the_forecast_averages_the_best_candidates_on_validation():
    """``select_top=2``: the forecast is the average of the two best candidates, ranked first under its own
    validation score; predict gives that average, names it ``a,b`` and has intervals for it."""
    frame = monthly_frame(60)
    fc = FewShotForecaster(**{**TINY, "select_top": 2}).fit(frame, "store", "month", "sales")
    table = fc.selection.table
    a, b = table["method"].iloc[1:3]
    assert fc.selection.chosen == f"{a},{b}" and list(table["rank"]) == list(range(1, 14))
    assert fc.selection.scored == {}  # the validation forecasts are not kept unless asked for
    data = fc._panel_data(frame, "store", "month", "sales", fc.settings.data.fill)
    kept = select(Experiment(fc.settings, data, log=lambda *_: None), keep=True)  # the same choice, kept
    pd.testing.assert_frame_equal(kept.table, table)
    made = kept.scored["forecasts"]
    np.testing.assert_allclose(made[fc.selection.chosen], (made[a] + made[b]) / 2)
    assert table["score"].iloc[0] == pytest.approx(rank({"x": made[fc.selection.chosen],
                                                         "seasonal_naive": made["seasonal_naive"]},
                                                        kept.scored["truth"], np.concatenate(
        [seasonal_scale(p, 12) for p in kept.scored["history"]])).set_index("method").loc["x", "score"])
    out = fc.predict(frame, level=[80])
    parts = [fc.predict(frame, method=m)["fewcast"] for m in (a, b)]
    np.testing.assert_allclose(out["fewcast"], (parts[0] + parts[1]) / 2, rtol=1e-6)
    assert (out["fewcast-lo-80"] < out["fewcast-hi-80"]).all() and fc.selection.chosen in fc.calibration
    pd.testing.assert_frame_equal(fc.predict(frame, method=f"{a},{b}"), out[list(out.columns[:3])])
    assert "the average of the 2 candidates" in fc.selection.reason()
    both = fc.predict(frame, combine=["theta"], level=[80])  # the average with a classical method: its own intervals
    theta = fc.predict(frame, method="theta")["fewcast"]
    np.testing.assert_allclose(both["fewcast+theta"], (out["fewcast"] + theta) / 2, rtol=1e-6)
    assert f"({a},{b})+theta" in fc.calibration and (both["fewcast+theta-lo-80"] < both["fewcast+theta-hi-80"]).all()
    ces = fc.predict(frame, method="autoces", level=[80])  # every classical method, not only the candidates
    assert "autoces" in fc.calibration and (ces["fewcast-lo-80"] <= ces["fewcast"]).all()
    assert (ces["fewcast"] <= ces["fewcast-hi-80"]).all() and np.isfinite(ces["fewcast"]).all()
    with pytest.raises(InputError, match="unknown method 'nope'"):
        fc.predict(frame, method=f"{a},nope")
