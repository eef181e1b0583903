"""Filling gaps and missing values: inserted stamps on each series' grid, linear interpolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewcast.errors import InputError, PanelWarning
from fewcast.fill import interpolate
from fewcast.frame import from_frame


def test_fill_interpolates(frame):
    panel = from_frame(frame)
    broken = panel.to_frame()
    row = panel.offsets[3] + 5
    truth = (broken.loc[row - 1, "y"] + broken.loc[row + 1, "y"]) / 2
    broken.loc[row, "y"] = np.nan
    with pytest.warns(PanelWarning, match="interpolated 1"):
        filled = from_frame(broken, fill=True)
    assert filled.values[row] == pytest.approx(truth, rel=1e-5)


def test_fill_inserts_missing_time_stamps(frame):
    panel = from_frame(frame)
    rows = panel.to_frame()
    i = panel.offsets[4] + 7  # series s04 loses two consecutive months
    truth = rows.loc[[i - 1, i, i + 1, i + 2], "y"].to_numpy()
    holed = rows.drop(index=[i, i + 1])
    with pytest.warns(PanelWarning) as record:
        filled = from_frame(holed, fill=True)
    assert [str(w.message) for w in record] == [
        "inserted 2 missing time stamps of 'ds' in 's04' (1 series)",
        "interpolated 2 missing, NaN or infinite values of 'y' in 's04' (1 series)"]
    np.testing.assert_array_equal(filled.lengths, panel.lengths)
    np.testing.assert_array_equal(filled.ds, panel.ds)
    a, b = truth[0], truth[3]  # linear between the neighbours of the hole
    np.testing.assert_allclose(filled.values[i : i + 2], [a + (b - a) / 3, a + 2 * (b - a) / 3], rtol=1e-5)
    others = np.ones(len(panel.values), bool)
    others[i : i + 2] = False
    np.testing.assert_array_equal(filled.values[others], panel.values[others])


def test_fill_refuses_stamps_off_the_grid():
    ds = list(pd.date_range("2020-01-01", periods=30, freq="MS"))
    ds[20] = pd.Timestamp("2020-09-17")  # off the month-start grid, and a gap after it
    del ds[21:23]
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(len(ds), dtype=float)})
    regular = pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"),
                            "y": 1.0})
    with pytest.raises(InputError, match=r"series 'a' \(1 series\) are not on one MS \(monthly\) grid"):
        from_frame(pd.concat([frame, regular]), fill=True)


@pytest.mark.parametrize("freq, shift", [("MS", 0), ("MS", 14), ("ME", 0), ("QS-FEB", 9), ("QE-DEC", 0),
                                         ("YS-JUL", 3), ("B", 0), ("W-WED", 0), ("D", 0), ("h", 0),
                                         ("15min", 0), (7, 0)])
def test_fill_restores_every_missing_stamp(freq, shift):
    """Rows dropped at random from 30 regular series (the first and last kept) come back exactly, for every
    kind of period: calendar months (anchored on the 1st, the 15th or the month's end), quarters, years,
    business days, weeks, fixed lengths and integer steps."""
    rng = np.random.default_rng(5)
    full, holed = [], []
    for i in range(30):
        n = int(rng.integers(8, 60))
        if isinstance(freq, int):
            ds = 3 + i + freq * np.arange(n)
        else:
            ds = pd.date_range(pd.Timestamp("2001-01-01") + pd.Timedelta(days=11 * i), periods=n, freq=freq)
            ds = ds + pd.Timedelta(days=shift)
        keep = rng.random(n) > 0.2
        keep[[0, -1]] = True
        full.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": 1.0 + np.arange(n)}))
        holed.append(full[-1][keep])
    with pytest.warns(PanelWarning) as record:
        filled = from_frame(pd.concat(holed), fill=True)
    assert [str(w.message).split()[0] for w in record] == ["inserted", "interpolated"]
    expected = from_frame(pd.concat(full))
    np.testing.assert_array_equal(filled.ds, expected.ds)
    np.testing.assert_allclose(filled.values, expected.values, rtol=1e-6)  # a straight line interpolates exactly


def test_interpolation_matches_pandas_series_by_series():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 12, 300)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    codes = np.repeat(np.arange(300), lengths)
    y, good = rng.random(offsets[-1]), rng.random(offsets[-1]) > 0.4
    reference = (pd.DataFrame({"g": codes, "y": np.where(good, y, np.nan)}).groupby("g")["y"]
                 .transform(lambda s: s.interpolate(limit_direction="both")).to_numpy())
    got = interpolate(y, good, offsets[codes], offsets[codes + 1])
    assert np.isnan(reference).sum() > 0  # some series have no good row at all
    np.testing.assert_array_equal(np.isnan(got), np.isnan(reference))
    np.testing.assert_allclose(got[~np.isnan(got)], reference[~np.isnan(reference)])
