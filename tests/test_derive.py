"""Settings derived from the data: every embedded panel trains with the defaults, a given setting is kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewcast import datasets
from fewcast.config import Settings
from fewcast.derive import derive
from fewcast.panel import Panel
from fewcast.tasks import task_windows
from fewcast.windows import Windows


@pytest.mark.parametrize("name, input_size, shots", [
    ("m3-monthly", 24, 20),  # the defaults tuned on it
    ("m3-quarterly", 12, 9),
    ("m3-yearly", 8, 5),
    ("m1-yearly", 4, 1),  # a quarter of the series have 16 points before the cut: a shorter input
    ("tourism-yearly", 6, 6),
    ("game", 14, 20),
])
def test_every_embedded_panel_gets_settings_that_train(name, input_size, shots):
    data = datasets.load(name)
    settings, reasons = derive(Settings(), data.train, data.h, data.season_length)
    assert (settings.data.input_size, settings.train.shots, settings.data.h) == (input_size, shots, data.h)
    assert len(reasons) >= 3 and all(":" in line for line in reasons)
    cut = data.train.slice(0, data.train.lengths - data.h)  # the validation cut, where training is shortest
    counts = Windows(cut, input_size, data.h).counts
    assert (counts >= task_windows(shots, data.h)).mean() >= 0.25  # a quarter of the series hold a task


def hourly(n_series: int, days: int, low: float = 0.0) -> Panel:
    t = pd.date_range("2024-01-01", periods=24 * days, freq="h").to_numpy()
    rng = np.random.default_rng(0)
    wave = low + 10 + 5 * np.sin(np.arange(len(t)) * 2 * np.pi / 24)
    series = [wave + rng.normal(size=len(t)) for _ in range(n_series)]
    return Panel.from_arrays(np.array([f"s{i}" for i in range(n_series)]), series, ds=[t] * n_series, freq="h")


def test_sub_daily_data_sees_a_week_when_its_series_hold_one():
    settings, reasons = derive(Settings(), hourly(3, 60), 48, 24)
    assert settings.data.input_size == 168 and any("a week" in line for line in reasons)
    short, _ = derive(Settings(), hourly(3, 10), 48, 24)  # ten days: a week leaves too few windows
    assert short.data.input_size == 72  # three days: two seasons and 4/3 of h, in whole days


def test_a_setting_given_is_kept_and_negative_values_swap_log_for_asinh():
    given = Settings.from_dict({"data": {"input_size": 30, "h": 6, "season_length": 12}, "train": {"shots": 3}})
    settings, reasons = derive(given, hourly(2, 20, low=-30.0), 6, 12)
    assert (settings.data.input_size, settings.train.shots) == (30, 3) and given.model.ensemble_transforms[1] == "log"
    assert settings.model.ensemble_transforms == ["identity", "asinh", "last"]
    assert reasons == ["ensemble_transforms: asinh instead of log, the panel has values below zero"]
