"""The evaluation protocols: no forecast sees its horizon, held-out series stay held out, and the demo
writes every artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fewcast.config import Settings, load_toml
from fewcast.errors import InputError
from fewcast.experiment import Experiment, PanelData, forecast, make_problems, problems_as_tasks
from fewcast.learners import MAML
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler, split_series
from fewcast.windows import Windows


def seasonal_panel(n: int = 30, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    series = []
    for _ in range(n):
        t = np.arange(rng.integers(40, 61))
        series.append(50 + rng.uniform(5, 20) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6)) + 0.3 * t)
    return Panel.from_arrays(np.array([f"s{i:02d}" for i in range(n)]), series)


def tiny_settings(protocol: str = "holdout") -> Settings:
    return Settings.from_dict({
        "data": {"dataset": "synthetic", "input_size": 12, "h": 6, "season_length": 12, "val_frac": 0.2,
                 "test_frac": 0.3},
        "model": {"hidden": 16},
        "learner": {"name": "metasgd", "inner_steps": 1, "shots": 3, "inner_lr": 0.01},
        "train": {"iterations": 6, "pretrain_iterations": 6, "meta_batch_size": 8, "val_every": 3},
        "eval": {"protocol": protocol, "classical": ["naive", "seasonal_naive", "theta"], "combine": ["theta"],
                 "curve_steps": 2,
                 "shots_curve": [0, 2], "plot_series": 2},
    })


def panel_data(poison: bool) -> PanelData:
    visible, horizon = seasonal_panel().split_last(6)
    if poison:  # a horizon no sane forecast could produce: if anything saw it, the outputs would change
        horizon = Panel(horizon.ids, np.full_like(horizon.values, 1e9), horizon.ds, horizon.offsets)
    return PanelData("synthetic", visible, horizon, 6, 12)


@pytest.mark.parametrize("protocol,deseasonalize", [("holdout", False), ("all-series", False), ("holdout", True),
                                                    ("all-series", True)])
def test_poisoned_horizon_changes_no_forecast(protocol, deseasonalize):
    settings = tiny_settings(protocol)
    settings.update("data", {"deseasonalize": deseasonalize})
    clean = Experiment(settings, panel_data(poison=False), log=lambda *_: None).run()
    poisoned = Experiment(settings, panel_data(poison=True), log=lambda *_: None).run()
    assert set(clean.forecasts) == set(poisoned.forecasts)
    assert {"metasgd", "metasgd_zeroshot", "maml", "maml_zeroshot", "pretrained", "pretrained_finetune",
            "pretrained_finetune_all", "metasgd_auto", "scratch", "naive", "seasonal_naive", "theta",
            "metasgd+theta", "metasgd_auto+theta", "pretrained_finetune_all+theta"} == set(clean.forecasts)
    np.testing.assert_allclose(clean.forecasts["pretrained_finetune_all+theta"],
                               (clean.forecasts["pretrained_finetune_all"] + clean.forecasts["theta"]) / 2)
    for method, yhat in clean.forecasts.items():
        np.testing.assert_array_equal(yhat, poisoned.forecasts[method], err_msg=method)
    for name in clean.logs:  # training and validation never touched the horizon either
        np.testing.assert_array_equal(pd.DataFrame(clean.logs[name]).drop(columns=["seconds", "tasks_per_second"]),
                                      pd.DataFrame(poisoned.logs[name]).drop(columns=["seconds", "tasks_per_second"]))
    assert not np.allclose(clean.table["smape"], poisoned.table["smape"])


def test_holdout_series_are_never_trained_on():
    exp = Experiment(tiny_settings("holdout"), panel_data(False), log=lambda *_: None)
    test_ids = set(exp.test_history.ids)
    assert test_ids == set(exp.split.test) and len(test_ids) == 9
    assert not test_ids & set(exp.train_panel.ids)
    assert not set(exp.split.val) & set(exp.train_panel.ids)
    all_series = Experiment(tiny_settings("all-series"), panel_data(False), log=lambda *_: None)
    assert all_series.test_history.n_series == 30
    # all-series trains on every series, but not on the validation series' last h visible points
    val_pos = all_series.data.visible.index_of(all_series.split.val)
    np.testing.assert_array_equal(all_series.train_panel.lengths[val_pos],
                                  all_series.data.visible.lengths[val_pos] - 6)


@pytest.mark.parametrize("protocol", ["holdout", "all-series"])
def test_staleness_ends_training_data_before_the_validation_horizon(protocol):
    settings = tiny_settings(protocol)
    settings.update("data", {"staleness": 9})
    exp = Experiment(settings, panel_data(False), log=lambda *_: None)
    visible = exp.data.visible
    pos = visible.index_of(exp.train_panel.ids)
    np.testing.assert_array_equal(exp.train_panel.lengths, visible.lengths[pos] - 9)
    # every training window ends at least 9 points (more than h = 6) before its series' visible end
    ends = exp.windows.series_of(np.arange(len(exp.windows)))  # series of each window
    last = np.zeros(exp.train_panel.n_series, int)
    np.maximum.at(last, ends, np.arange(len(exp.windows)) - exp.windows.first[ends] + 12 + 6)
    assert (last <= exp.train_panel.lengths).all() and last.max() > 0
    # the meta-validation horizon (the validation series' last 6 visible points) is after all of it
    assert exp.validation is not None and exp.validation.y_qry.shape[1:] == (1, 6)


def test_problems_use_the_last_windows_and_pad_short_series():
    history = Panel.from_arrays(np.array(["long", "short", "tiny"]),
                                [np.arange(30.0), np.arange(100.0, 110.0), np.array([7.0, 8.0])])
    truth = np.zeros((3, 2))
    p = make_problems(history, truth, input_size=4, h=2, shots=3, season_length=1)
    # long: 25 windows, the last 3 start at 22, 23, 24; their targets end at the last observation
    np.testing.assert_array_equal(p.x_spt[0].numpy(), [[22, 23, 24, 25], [23, 24, 25, 26], [24, 25, 26, 27]])
    np.testing.assert_array_equal(p.y_spt[0, -1].numpy(), [28, 29])
    np.testing.assert_array_equal(p.x_fc[0, 0].numpy(), [26, 27, 28, 29])
    # short: 10 points hold 5 windows: all 3 slots used; tiny: no window, no support, padded input
    np.testing.assert_array_equal(p.shots_used, [3, 3, 0])
    np.testing.assert_array_equal(p.x_fc[2, 0].numpy(), [7, 7, 7, 8])
    few = make_problems(history, truth, input_size=4, h=2, shots=8, season_length=1)
    np.testing.assert_array_equal(few.m_spt[1].numpy(), [0, 0, 0, 1, 1, 1, 1, 1])  # right-aligned
    np.testing.assert_array_equal(few.x_spt[1, -1].numpy(), [104, 105, 106, 107])
    # slots beyond the most windows any series has would be padding everywhere: they are not made
    bounded = make_problems(history.take([1, 2]), truth[:2], input_size=4, h=2, shots=200, season_length=1)
    assert bounded.x_spt.shape == (2, 5, 4)
    np.testing.assert_array_equal(bounded.shots_used, [5, 0])
    np.testing.assert_array_equal(bounded.x_spt[0].numpy(), few.x_spt[1, 3:].numpy())


def test_adapt_shots_sets_the_support_of_every_forecast_not_of_meta_training():
    settings = tiny_settings()
    settings.update("eval", {"adapt_shots": 9})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    p = exp.problems()
    assert p.m_spt.shape[1] == 9 and (p.shots_used == 9).all()  # the synthetic series hold 9 windows and more
    again = exp.problems(shots=settings.learner.shots)
    np.testing.assert_array_equal(p.x_spt[:, -3:].numpy(), again.x_spt.numpy())  # the latest 3 of the 9
    assert exp.validation.x_spt.shape[1] == settings.learner.shots  # meta-training's tasks keep their shots


def test_finetune_all_is_plain_sgd_on_every_window_and_can_be_turned_off():
    settings = tiny_settings()
    settings.update("eval", {"finetune_all_shots": 9, "finetune_all_steps": 3, "finetune_all_lr": 0.02,
                             "classical": ["naive"], "combine": []})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    pretrained, learners = exp.train(extra=False)
    results = exp.evaluate(pretrained, learners)
    by_hand = MAML(pretrained.model, inner_lr=0.02, inner_steps=3, loss=settings.learner.loss)
    expected = forecast(by_hand, exp.problems(9), settings.data.scaler)[0]
    np.testing.assert_allclose(results.forecasts["pretrained_finetune_all"], expected, rtol=1e-6)
    assert not np.allclose(expected, results.forecasts["pretrained_finetune"])  # 3 windows, 1 step: another method
    settings.update("eval", {"finetune_all_shots": 0})
    assert "pretrained_finetune_all" not in exp.evaluate(pretrained, learners).forecasts


def test_auto_fine_tunes_series_with_many_windows_and_lets_the_learner_adapt_the_others():
    settings = tiny_settings()
    settings.update("eval", {"classical": ["naive"], "combine": ["naive"]})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    pretrained, learners = exp.train(extra=False)
    counts = exp.test_history.lengths - (12 + 6 - 1)  # windows of 12 -> 6 each held-out series holds, by hand
    middle = int(np.median(counts))
    settings.update("eval", {"finetune_all_min_shots": middle})
    f = exp.evaluate(pretrained, learners).forecasts
    long = counts >= middle
    assert long.any() and not long.all()
    np.testing.assert_array_equal(f["metasgd_auto"][long], f["pretrained_finetune_all"][long])
    np.testing.assert_array_equal(f["metasgd_auto"][~long], f["metasgd"][~long])
    np.testing.assert_allclose(f["metasgd_auto+naive"], (f["metasgd_auto"] + f["naive"]) / 2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``fewcast demo`` on a small CSV with renamed columns and tiny settings, run once for the module."""
    from tests.conftest import cli

    tmp = tmp_path_factory.mktemp("demo")
    frame = seasonal_panel().to_frame().rename(columns={"unique_id": "id", "y": "sales"})
    data = tmp / "sales.csv"
    frame.to_csv(data, index=False)
    out = tmp / "run"
    code, stdout, err = cli(
        "demo", "--dataset", data, "--id-col", "id", "--target-col", "sales", "--out", out, "--quiet",
        "--h", 6, "--input-size", 12, "--season-length", 12, "--hidden", 16, "--inner-steps", 1, "--shots", 3,
        "--iterations", 6, "--pretrain-iterations", 6, "--meta-batch-size", 8, "--val-every", 3,
        "--classical", "naive,seasonal_naive", "--combine", "seasonal_naive",
        "--curve-steps", 2, "--shots-curve", "0,2", "--plot-series", 2,
    )
    assert code == 0, err
    return data, out, stdout


def test_demo_writes_every_artifact(tiny_run):
    data, out, stdout = tiny_run
    for name in ("results.csv", "results.md", "config.toml", "report.html", "training_curves.png",
                 "trajectory.png", "shots_curve.png", "series.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["protocol", "method", "smape", "mase", "mae", "rmse", "n_series"]
    assert set(table["n_series"]) == {9} and "| protocol | method |" in stdout
    assert "metasgd+seasonal_naive" in set(table["method"])
    report = (out / "report.html").read_text()
    assert "<b>metasgd+seasonal_naive</b> is the average of" in report
    assert "<b>pretrained_finetune_all</b> takes 20 SGD steps at 0.003 on up to 200" in report
    assert "<b>pretrained_finetune_all+seasonal_naive</b> is its average with seasonal_naive" in report
    assert "pretrained_finetune_all+seasonal_naive" in set(table["method"])
    assert ("<b>metasgd_auto</b> (what <code>fewcast forecast --adapt auto</code> gives) is pretrained_finetune_all "
            "on a series with at least") in report
    assert "<b>metasgd_auto+seasonal_naive</b> is its average with seasonal_naive" in report
    assert {"metasgd_auto", "metasgd_auto+seasonal_naive"} <= set(table["method"])
    saved = load_toml(out / "config.toml")
    assert saved.data.dataset == str(data) and saved.data.id_col == "id" and saved.train.iterations == 6
    assert saved.learner.name == tiny_settings().learner.name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table id=\"results\">" in html


def test_report_renders_in_chromium(tiny_run):
    from tools.check_report import check, find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    _, out, _ = tiny_run
    result = check(out / "report.html")
    table = pd.read_csv(out / "results.csv")
    assert result["images"] == 4 and result["rendered"] == 4
    assert result["rows"] == len(table) and result["methods"] == list(table["method"])


def test_a_combination_is_the_mean_of_the_learner_and_the_classical_forecast():
    exp = Experiment(tiny_settings(), panel_data(poison=False), log=lambda *_: None)
    res = exp.run()
    yhat = res.forecasts["metasgd+theta"]
    np.testing.assert_allclose(yhat, (res.forecasts["metasgd"] + res.forecasts["theta"]) / 2)
    by_hand = np.mean(200 * np.abs(exp.test_truth - yhat) / (np.abs(exp.test_truth) + np.abs(yhat)))
    assert res.table.set_index("method").loc["metasgd+theta", "smape"] == pytest.approx(by_hand)


@pytest.mark.parametrize("section,values,message", [
    ("eval", {"classical": ["theta", "arima"]}, "unknown classical method arima"),
    ("eval", {"classical": ["naive"], "combine": ["autoets"]},
     "combine lists autoets, which classical does not compute"),
    ("data", {"scaler": "standard"}, "ensemble_transforms 'log' .* 'standard' scaler"),
    ("learner", {"shots": 40}, r"no series has the 46 windows a task needs .*the longest has \d+: --shots \d+ fits"),
])
def test_settings_that_cannot_work_are_refused_before_training(section, values, message):
    settings = tiny_settings()
    settings.update("model", {"ensemble_transforms": ["identity", "log"]})
    settings.update(section, values)
    with pytest.raises(InputError, match=message):
        Experiment(settings, panel_data(poison=False), log=lambda *_: None)


def test_validation_problems_are_the_latest_tasks():
    """A forecast problem with its truth, as a task, is exactly the sampler's latest task of a long series."""
    panel = seasonal_panel(8)
    hist, truth = panel.split_last(6)
    tasks = problems_as_tasks(make_problems(hist, truth.values.reshape(-1, 6), 12, 6, 4, 12), "mean_abs")
    latest = TaskSampler(Windows(panel, 12, 6), 4, 1, "mean_abs").latest()
    assert list(latest.series) == list(range(8))  # every series is long enough here
    for name in ("x_spt", "y_spt", "x_qry", "y_qry"):
        torch.testing.assert_close(getattr(tasks, name), getattr(latest, name), msg=name)
    assert tasks.m_spt.min() == 1


def test_short_validation_series_still_validate():
    """Validation series too short for a whole task are scored as they will be forecast (fewer support
    windows, padded), instead of training without any validation."""
    data = panel_data(poison=False)
    settings = tiny_settings()
    settings.update("learner", {"shots": 20})
    split = split_series(data.visible.ids, 0.2, 0.3, 0)
    keep = np.where(np.isin(data.visible.ids, split.val), 30, data.visible.lengths)  # val series: 30 points
    visible = data.visible.slice(data.visible.lengths - keep, data.visible.lengths)
    lines = []
    exp = Experiment(settings, PanelData("synthetic", visible, data.horizon, 6, 12), log=lines.append)
    # 7 support windows of 12 -> 6 fit before the last 6 points: slots stop at the most any series has
    assert exp.validation is not None and exp.validation.x_spt.shape[:2] == (len(split.val), 7)
    used = exp.validation.m_spt.sum(1)
    assert torch.all(used == 30 - 6 - 12 - 6 + 1)
    assert any("validating on 6 series with 7.0 support windows" in line for line in lines)
    log = exp.pretrain_trainer()
    log.fit()
    assert sum(np.isfinite(row["val_loss"]) for row in log.history) == 2  # validated at iterations 3 and 6


def test_negative_values_are_refused_when_a_member_works_on_logs():
    data = panel_data(poison=False)
    values = data.visible.values.copy()
    second = slice(data.visible.offsets[1], data.visible.offsets[2])
    values[second] -= values[second].max() + 1  # the second series entirely below zero
    visible = Panel(data.visible.ids, values, data.visible.ds, data.visible.offsets)
    negative = PanelData("synthetic", visible, data.horizon, 6, 12)
    settings = tiny_settings()
    settings.update("model", {"ensemble_transforms": ["identity", "log"]})
    name = repr(str(visible.ids[1]))
    advice = r"shift those series above zero, or train with --ensemble-transforms identity,last$"
    with pytest.raises(InputError, match=rf"column 'y': negative values in series {name} \(1 series\).*" + advice):
        Experiment(settings, negative, log=lambda *_: None)
    settings.update("model", {"ensemble_transforms": ["identity", "last"]})
    Experiment(settings, negative, log=lambda *_: None)  # identity and last members take any value


def test_model_seed_redraws_the_weights_on_the_same_split():
    base = Experiment(tiny_settings(), panel_data(poison=False), log=lambda *_: None)
    settings = tiny_settings()
    settings.update("train", {"model_seed": 1})
    other = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(base.split, part), getattr(other.split, part))
    first, second = base.new_model().state_dict(), other.new_model().state_dict()
    assert all(not torch.equal(first[k], second[k]) for k in first if k.endswith("weight"))
    assert base.rank_seed != other.rank_seed  # the sampled tasks differ too
