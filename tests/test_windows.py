"""Windowing and scaling against brute-force loops and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewcast.errors import InputError
from fewcast.frame import from_frame
from fewcast.panel import Panel
from fewcast.windows import Windows, scale, unscale


def brute_windows(panel: Panel, input_size: int, h: int, drop_zero: bool = False):
    xs, ys, owners = [], [], []
    for i in range(panel.n_series):
        s = panel.series(i)
        for start in range(len(s) - input_size - h + 1):
            x, y = s[start : start + input_size], s[start + input_size : start + input_size + h]
            if drop_zero and np.all(y == 0):
                continue
            xs.append(x)
            ys.append(y)
            owners.append(i)
    return np.array(xs).reshape(-1, input_size), np.array(ys).reshape(-1, h), np.array(owners, dtype=int)


@pytest.mark.parametrize(("input_size", "h"), [(1, 1), (12, 3), (30, 1), (45, 20)])
def test_windows_match_loop(frame, input_size, h):
    panel = from_frame(frame)
    w = Windows(panel, input_size, h)
    x, y = w.arrays()
    bx, by, owners = brute_windows(panel, input_size, h)
    np.testing.assert_array_equal(x, bx)
    np.testing.assert_array_equal(y, by)
    assert len(w) == len(bx)
    np.testing.assert_array_equal(w.series_of(np.arange(len(w))), owners)
    np.testing.assert_array_equal(w.counts, np.bincount(owners, minlength=panel.n_series))


def test_series_too_short_have_no_windows():
    panel = Panel.from_arrays(np.array(["a", "b"]), [np.arange(5.0), np.arange(20.0)])
    w = Windows(panel, 4, 2)
    assert list(w.counts) == [0, 15]
    x, y = w.arrays()
    np.testing.assert_array_equal(x[0], [0, 1, 2, 3])  # first window of b (its values start at 0)
    np.testing.assert_array_equal(y[-1], [18, 19])


def test_drop_zero_target_matches_loop():
    rng = np.random.default_rng(1)
    series = [np.where(rng.random(n) < 0.4, 0.0, rng.random(n)) for n in (30, 8, 50)]
    panel = Panel.from_arrays(np.array(["a", "b", "c"]), series)
    for h in (1, 2):
        w = Windows(panel, 5, h, drop_zero_target=True)
        x, y = w.arrays()
        bx, by, owners = brute_windows(panel, 5, h, drop_zero=True)
        np.testing.assert_array_equal(x, bx)
        np.testing.assert_array_equal(y, by)
        np.testing.assert_array_equal(w.series_of(np.arange(len(w))), owners)
        assert np.all(np.any(y != 0, axis=1))
    assert len(Windows(panel, 5, 1)) > len(Windows(panel, 5, 1, drop_zero_target=True))


def test_windows_are_views_of_the_panel(frame):
    panel = from_frame(frame)
    w = Windows(panel, 10, 2)
    assert np.shares_memory(w.view, panel.values)


def test_bad_sizes():
    panel = Panel.from_arrays(np.array(["a"]), [np.arange(5.0)])
    with pytest.raises(InputError, match="at least 1"):
        Windows(panel, 0, 1)


def test_scale_mean_abs_by_hand():
    x = torch.tensor([[1.0, -3.0, 2.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([[4.0], [5.0]])
    xs, ys, stats = scale(x, y)  # mean |x| = 2 for the first window; the all-zero one keeps scale 1
    torch.testing.assert_close(xs, torch.tensor([[0.5, -1.5, 1.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(ys, torch.tensor([[2.0], [5.0]]))
    torch.testing.assert_close(unscale(ys, stats), y)


def test_scale_standard_by_hand():
    x = torch.tensor([[2.0, 4.0, 6.0, 8.0]])  # mean 5, population std sqrt(5)
    y = torch.tensor([[10.0, 0.0]])
    xs, ys, stats = scale(x, y, "standard")
    sd = 5**0.5
    torch.testing.assert_close(xs, (x - 5) / sd)
    torch.testing.assert_close(ys, (y - 5) / sd)
    torch.testing.assert_close(unscale(ys, stats), y)
    xs, ys, _ = scale(torch.full((1, 3), 7.0), torch.tensor([[8.0]]), "standard")  # constant input
    torch.testing.assert_close(ys, torch.tensor([[1.0]]))


def test_scale_uses_input_only():
    x = torch.rand(4, 6) + 1
    _, _, a = scale(x, torch.zeros(4, 2))
    _, _, b = scale(x, torch.full((4, 2), 1e6))
    torch.testing.assert_close(a[1], b[1])


def test_scale_none_and_unknown():
    x = torch.rand(2, 3)
    xs, _, _ = scale(x, None, "none")
    torch.testing.assert_close(xs, x)
    with pytest.raises(InputError, match="unknown scaler 'log'"):
        scale(x, None, "log")
