"""Forecasting methods: each one made once per history, combinations and the per-series switch built from
their parts, the classical parts in one run, chunks of series equal to all at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from fewcast import forecasting
from fewcast.baselines import CLASSICAL
from fewcast.engine import Layout, forecast_series
from fewcast.forecasting import Auto, Forecasts, Method, classical, combined
from fewcast.frame import from_frame
from fewcast.panel import Panel
from tests.conftest import monthly_frame


@dataclass(frozen=True, eq=False)
class Constant(Method):
    """Forecasts ``value`` plus each series' position, and counts how often it is asked to."""

    value: float = 0.0
    calls: list = None

    def forecast(self, f: Forecasts) -> np.ndarray:
        self.calls.append(f.history.n_series)
        return self.value + np.repeat(np.arange(f.history.n_series, dtype=float)[:, None], f.layout.h, 1)


def constant(name: str, value: float) -> Constant:
    return Constant(name, f"{value}", value, [])


def history() -> Panel:
    """Series holding 1, 3, 6, 10 and 0 windows of 4 -> 2."""
    lengths = [6, 8, 11, 15, 3]
    return Panel.from_arrays(np.array([f"s{i}" for i in range(5)]), [np.arange(n, dtype=float) + 1 for n in lengths])


def test_each_method_is_made_once_and_a_combination_is_the_mean_of_its_parts():
    f = Forecasts(history(), Layout(4, 2))
    net = constant("net", 10.0)
    both = combined(net, "naive")
    made = f.make([both, net, classical("naive")])
    assert net.calls == [5]  # once, though asked for twice
    np.testing.assert_array_equal(made["net+naive"], (made["net"] + made["naive"]) / 2)
    np.testing.assert_array_equal(made["naive"][:, 0], [6, 8, 11, 15, 3])  # each series' last value


def test_the_classical_parts_of_every_method_are_made_in_one_run(monkeypatch):
    calls = []
    real = forecasting.classical_forecasts

    def counted(history, h, season_length, methods):
        calls.append(list(methods))
        return real(history, h, season_length, methods)

    monkeypatch.setattr(forecasting, "classical_forecasts", counted)
    net = constant("net", 1.0)
    made = Forecasts(history(), Layout(4, 2, season_length=2)).make(
        [net, combined(net, "naive"), combined(net, "seasonal_naive"), classical("naive")])
    assert calls == [["naive", "seasonal_naive"]] and len(made) == 4


@pytest.mark.parametrize("threshold", [1, 4, 7, 11])
def test_auto_takes_each_series_from_the_method_its_windows_choose(threshold):
    long, short = constant("long", 100.0), constant("short", 0.0)
    auto = Auto("auto", "switch", long, short, threshold)
    windows = np.array([1, 3, 6, 10, 0])
    pick = windows >= threshold
    alone = Forecasts(history(), Layout(4, 2))[auto]  # each method forecasts its own series only
    assert long.calls == ([int(pick.sum())] if pick.any() else []) and short.calls == [int((~pick).sum())]
    expected = np.where(pick[:, None], 100.0 + np.cumsum(pick)[:, None] - 1, np.cumsum(~pick)[:, None] - 1)
    np.testing.assert_array_equal(alone, np.broadcast_to(expected, (5, 2)))
    made = Forecasts(history(), Layout(4, 2))
    both = made.make([long, short, auto])  # both already made for every series: taken from them
    np.testing.assert_array_equal(both["auto"], np.where(pick[:, None], both["long"], both["short"]))


def test_a_fitted_forecaster_offers_every_method_of_its_results_tables(fitted):
    fc, _ = fitted
    methods = fc.methods()
    networks = ["metasgd", "metasgd_zeroshot", "pretrained", "pretrained_finetune", "pretrained_finetune_all",
                "metasgd_auto"]
    assert list(methods)[: len(networks) + len(CLASSICAL)] == [*networks, *CLASSICAL]
    assert {f"{n}+{c}" for n in networks for c in CLASSICAL} <= set(methods)
    assert all(m.description for m in methods.values())
    assert methods["metasgd_auto"].threshold == fc.settings.forecast.finetune_all_min_shots


def test_forecasts_built_in_chunks_of_series_equal_those_built_at_once(fitted):
    fc, _frame = fitted
    panel = from_frame(monthly_frame(n=7, seed=6), "store", "month", "sales")
    layout = Layout.of(fc.settings.data)
    for name in ("metasgd", "pretrained_finetune_all"):
        method = fc.methods()[name]
        whole = forecast_series(method.learner, panel, layout, method.shots, method.steps)
        chunked = forecast_series(method.learner, panel, layout, method.shots, method.steps, chunk=3)
        np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-4)
        assert whole.shape == (7, 6)
