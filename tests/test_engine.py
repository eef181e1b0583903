"""Forecast problems: each series' latest support windows and forecast input, and their tasks."""

from __future__ import annotations

import numpy as np
import torch

from fewcast.engine import forecast, make_problems, problems_as_tasks
from fewcast.learners import MAML
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler
from fewcast.windows import Windows
from tests.conftest import seasonal_panel


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


def test_a_series_that_never_moved_forecasts_its_own_level():
    history = Panel.from_arrays(np.array(["a_zero", "b_flat", "c_moving"]),
                                [np.zeros(30), np.full(30, 7.5), np.arange(30.0)])
    p = make_problems(history, np.zeros((3, 6)), input_size=12, h=6, shots=3, season_length=1)
    learner = MAML(torch.nn.Linear(12, 6), inner_lr=0.01, inner_steps=1)
    torch.nn.init.constant_(learner.model.bias, 0.3)  # a network that forecasts 0.3 from an all-zero input
    yhat = forecast(learner, p, "mean_abs")[0]
    np.testing.assert_array_equal(yhat[0], np.zeros(6))
    np.testing.assert_array_equal(yhat[1], np.full(6, 7.5))
    assert not np.allclose(yhat[2], yhat[2, 0])
