"""Experiments: held-out series stay held out, training data ends where it should, and settings that
cannot work are refused before any training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewcast.data import PanelData
from fewcast.errors import InputError
from fewcast.evaluation import evaluate
from fewcast.experiment import Experiment
from fewcast.panel import Panel
from fewcast.tasks import split_series
from tests.conftest import panel_data, tiny_settings


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
    settings.update("train", {"staleness": 9})
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


def test_adapt_shots_sets_the_support_of_every_forecast_not_of_meta_training():
    settings = tiny_settings()
    settings.update("forecast", {"adapt_shots": 9})
    exp = Experiment(settings, panel_data(poison=False), log=lambda *_: None)
    p = exp.problems()
    assert p.m_spt.shape[1] == 9 and (p.shots_used == 9).all()  # the synthetic series hold 9 windows and more
    again = exp.problems(shots=settings.train.shots)
    np.testing.assert_array_equal(p.x_spt[:, -3:].numpy(), again.x_spt.numpy())  # the latest 3 of the 9
    assert exp.validation.x_spt.shape[1] == settings.train.shots  # meta-training's tasks keep their shots


@pytest.mark.parametrize("section,values,message", [
    ("eval", {"classical": ["theta", "arima"]}, "unknown classical method arima"),
    ("eval", {"classical": ["naive"], "combine": ["autoets"]},
     "combine lists autoets, which classical does not compute"),
    ("data", {"scaler": "standard"}, "ensemble_transforms 'log' .* 'standard' scaler"),
    ("train", {"shots": 40}, r"no series has the 46 windows a task needs .*the longest has \d+: `shots=\d+` fits"),
])
def test_settings_that_cannot_work_are_refused_before_training(section, values, message):
    settings = tiny_settings()
    settings.update("model", {"ensemble_transforms": ["identity", "log"]})
    settings.update(section, values)
    with pytest.raises(InputError, match=message):
        Experiment(settings, panel_data(poison=False), log=lambda *_: None)


def test_short_validation_series_still_validate():
    """Validation series too short for a whole task are scored as they will be forecast (fewer support
    windows, padded), instead of training without any validation."""
    data = panel_data(poison=False)
    settings = tiny_settings()
    settings.update("train", {"shots": 20})
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


def test_a_panel_with_values_below_zero_trains_its_log_members_on_asinh():
    data = panel_data(poison=False)
    values = data.visible.values.copy()
    second = slice(data.visible.offsets[1], data.visible.offsets[2])
    values[second] -= values[second].max() + 1  # the second series entirely below zero
    visible = Panel(data.visible.ids, values, data.visible.ds, data.visible.offsets)
    negative = PanelData("synthetic", visible, data.horizon, 6, 12)
    settings = tiny_settings()
    settings.update("model", {"ensemble_transforms": ["identity", "log"]})
    exp = Experiment(settings, negative, log=lambda *_: None)
    assert exp.settings.model.ensemble_transforms == ["identity", "asinh"]
    assert any("asinh instead of log" in line for line in exp.derived)
    assert settings.model.ensemble_transforms == ["identity", "log"]  # the settings given are left as they were
    pretrained, learners = exp.train()
    assert np.isfinite(evaluate(exp, pretrained, learners).forecasts["metasgd"]).all()
    with pytest.raises(InputError, match=r"column 'y': negative values in series .* log ensemble member cannot"):
        Experiment(settings, negative, log=lambda *_: None, trained=True)  # networks trained with a log member


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


def test_pre_training_stops_on_its_own_patience_and_meta_training_runs_on():
    """``pretrain_patience``: pre-training ends after that many validations without improvement (its rate 0:
    the starting weights stay the best), so its length follows the panel; meta-training keeps its own
    ``patience`` (0: every iteration)."""
    settings = tiny_settings("holdout")
    settings.update("train", {"pretrain_iterations": 60, "pretrain_lr": 0.0, "pretrain_patience": 2,
                              "iterations": 9})
    exp = Experiment(settings, panel_data(False), log=lambda *_: None)
    exp.train()
    assert len(exp.logs["pretrained"]) == 6  # validations at iterations 3 and 6 did not improve
    assert len(exp.logs["metasgd"]) == 9


def test_full_batch_pre_training_logs_its_batch_of_every_window():
    """``pretrain_batch_size = -1`` (the seed's full-batch pre-training): the log line and the throughput count
    every training window, not -1."""
    settings = tiny_settings("holdout")
    settings.update("train", {"pretrain_batch_size": -1, "pretrain_iterations": 2})
    lines = []
    exp = Experiment(settings, panel_data(False), progress=True, log=lines.append)
    trainer = exp.pretrain_trainer()
    windows = int(exp.windows.counts[exp.train_series].sum())
    assert any(f"2 iterations of {windows} windows" in line for line in lines)
    trainer.fit()
    assert all(row["tasks_per_second"] > 0 for row in trainer.history)
    assert trainer.meta_batch_size == windows
