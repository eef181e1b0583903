"""Where data comes from: an embedded dataset's name or a file's path, with its horizon held out."""

from __future__ import annotations

import numpy as np
import pytest

from fewcast import datasets
from fewcast.config import Settings
from fewcast.data import load_panel_data, read_source, resolved
from fewcast.errors import InputError
from tests.conftest import seasonal_panel


def given(**data) -> Settings:
    return Settings.from_dict({"data": data})


def test_an_embedded_name_gives_its_visible_part_and_official_horizon():
    panel, dataset = read_source("m3-yearly")
    assert dataset.name == "m3-yearly" and panel.n_series == 645
    data = load_panel_data("m3-yearly", given())
    assert (data.h, data.season_length) == (6, 1)
    np.testing.assert_array_equal(data.visible.values, dataset.train.values)
    np.testing.assert_array_equal(data.horizon.values, dataset.test.values)
    shorter = load_panel_data("m3-yearly", given(h=2))  # the first 2 points of the official horizon
    np.testing.assert_array_equal(shorter.horizon.values.reshape(-1, 2), dataset.test.values.reshape(-1, 6)[:, :2])
    with pytest.raises(InputError, match="h=7 is longer than m3-yearly's official horizon of 6"):
        load_panel_data("m3-yearly", given(h=7))


def test_a_file_holds_out_its_last_h_points_and_wins_over_an_embedded_name(tmp_path, monkeypatch):
    panel = seasonal_panel(5)
    monkeypatch.chdir(tmp_path)
    panel.to_frame().to_csv(tmp_path / "game", index=False)  # a file named like an embedded dataset
    assert not datasets.is_embedded("game")
    with pytest.raises(InputError, match="not a CSV or Parquet file"):
        read_source("game")
    panel.to_frame().to_csv(tmp_path / "game.csv", index=False)
    with pytest.raises(InputError, match="your own data needs a forecast horizon: set `h`"):
        load_panel_data("game.csv", given())
    data = load_panel_data("game.csv", given(h=4))
    np.testing.assert_array_equal(data.visible.lengths, panel.lengths - 4)
    np.testing.assert_array_equal(data.horizon_values(np.arange(5)).ravel(), panel.tail(4).values)
    assert data.season_length == 1 and data.name == "game.csv"  # integer steps: no season to guess


def test_a_run_records_the_horizon_and_season_it_used():
    data = load_panel_data("m3-quarterly", given())
    settings = Settings()
    recorded, _ = resolved(settings, data)
    assert (recorded.data.h, recorded.data.season_length) == (8, 4)
    assert (settings.data.h, settings.data.season_length) == (0, 0)  # the settings given are left as they were
