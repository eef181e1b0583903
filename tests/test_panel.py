"""The panel container: flat arrays, offsets, and slices that never loop over series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewcast.errors import InputError, PanelWarning
from fewcast.frame import from_frame
from fewcast.panel import Panel, concat_ranges


def test_concat_ranges_matches_loop():
    starts, lengths = np.array([5, 0, 10, 3]), np.array([3, 0, 2, 1])
    expected = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    np.testing.assert_array_equal(concat_ranges(starts, lengths), expected)


def test_short_series_dropped_with_count(frame):
    short = pd.DataFrame({"unique_id": ["tiny"] * 3, "ds": pd.date_range("2020", periods=3, freq="MS"),
                          "y": [1.0, 2.0, 3.0]})
    with pytest.warns(PanelWarning, match=r"dropped 1 of 13 series shorter than 20 .*'tiny'"):
        panel = from_frame(pd.concat([frame, short]), min_length=20)
    assert "tiny" not in panel.ids and panel.n_series == 12
    with pytest.raises(InputError, match="every series is shorter than 500"):
        from_frame(frame, min_length=500)


def test_take_slice_split(frame):
    panel = from_frame(frame)
    head, tail = panel.split_last(5)
    assert np.all(tail.lengths == 5) and np.all(head.lengths == panel.lengths - 5)
    np.testing.assert_array_equal(tail.series(2), panel.series(2)[-5:])
    sub = panel.select(["s05", "s01"])
    np.testing.assert_array_equal(sub.series(0), panel.series(5))
    with pytest.raises(InputError, match="unknown series 'nope'"):
        panel.select(["nope"])


def test_from_arrays_sorts_ids():
    panel = Panel.from_arrays(np.array(["b", "a"]), [np.ones(3), np.zeros(4)])
    assert list(panel.ids) == ["a", "b"]
    np.testing.assert_array_equal(panel.series(0), np.zeros(4))
    np.testing.assert_array_equal(panel.times(1), [1, 2, 3])


# -- every bad input: its error through the API and exit code 2 through `fewcast validate` ----------
