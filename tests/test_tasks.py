"""Task sampling against a brute-force loop, the no-leakage rule, and the series split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewcast.errors import InputError
from fewcast.frame import from_frame
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler, split_series
from fewcast.windows import Windows, scale


@pytest.fixture
def panel(frame) -> Panel:
    return from_frame(frame)


def test_tasks_match_loop(panel):
    w = Windows(panel, 12, 3)
    sampler = TaskSampler(w, shots=5, query_shots=2, scaler="none", seed=3)
    tasks = sampler.sample(64)
    assert tasks.x_spt.shape == (64, 5, 12) and tasks.y_spt.shape == (64, 5, 3)
    assert tasks.x_qry.shape == (64, 2, 12) and tasks.y_qry.shape == (64, 2, 3)
    for t, (i, k) in enumerate(zip(tasks.series, tasks.k)):
        s = panel.series(i)
        spt = [k + j for j in range(5)]
        qry = [k + 4 + 3 + j for j in range(2)]  # h steps after the last support window
        for j, start in enumerate(spt):
            np.testing.assert_array_equal(tasks.x_spt[t, j].numpy(), s[start : start + 12])
            np.testing.assert_array_equal(tasks.y_spt[t, j].numpy(), s[start + 12 : start + 15])
        for j, start in enumerate(qry):
            np.testing.assert_array_equal(tasks.x_qry[t, j].numpy(), s[start : start + 12])
            np.testing.assert_array_equal(tasks.y_qry[t, j].numpy(), s[start + 12 : start + 15])
        assert qry[-1] + 15 <= len(s)


@pytest.mark.parametrize("drop_zero", [False, True])
def test_no_query_target_at_or_before_a_support_target(drop_zero):
    rng = np.random.default_rng(0)
    series = [np.where(rng.random(n) < 0.3, 0.0, rng.random(n) + 0.5) for n in rng.integers(30, 90, 40)]
    panel = Panel.from_arrays(np.array([f"u{i}" for i in range(40)]), series)
    input_size, h = 7, 4
    w = Windows(panel, input_size, h, drop_zero_target=drop_zero)
    sampler = TaskSampler(w, shots=6, query_shots=3, seed=0)
    tasks = sampler.sample(500)
    pos_spt = w.position(tasks.series[:, None], tasks.k[:, None] + np.arange(6))
    pos_qry = w.position(tasks.series[:, None], tasks.k[:, None] + 6 - 1 + h + np.arange(3))
    last_support_target = pos_spt.max(1) + input_size + h - 1  # (tasks,) flat position
    first_query_target = pos_qry.min(1) + input_size
    assert np.all(first_query_target > last_support_target)
    # every window stays inside its own series
    ends = panel.offsets[tasks.series + 1]
    assert np.all(pos_qry.max(1) + input_size + h <= ends)
    assert np.all(pos_spt.min(1) >= panel.offsets[tasks.series])


def test_sampling_is_seeded_and_resumable(panel):
    w = Windows(panel, 12, 1)
    a = TaskSampler(w, 4, seed=7)
    b = TaskSampler(w, 4, seed=7)
    torch.testing.assert_close(a.sample(16).x_spt, b.sample(16).x_spt)
    state = a.state_dict()
    nxt = a.sample(16)
    c = TaskSampler(w, 4, seed=123)
    c.load_state_dict(state)
    torch.testing.assert_close(c.sample(16).y_qry, nxt.y_qry)
    assert not torch.equal(TaskSampler(w, 4, seed=8).sample(16).x_spt, b.sample(16).x_spt)


def test_tasks_are_scaled_per_window(panel):
    w = Windows(panel, 12, 2)
    raw = TaskSampler(w, 3, scaler="none", seed=1).sample(8)
    scaled = TaskSampler(w, 3, scaler="mean_abs", seed=1).sample(8)
    xs, ys, _ = scale(raw.x_spt, raw.y_spt)
    torch.testing.assert_close(scaled.x_spt, xs)
    torch.testing.assert_close(scaled.y_spt, ys)
    torch.testing.assert_close(scaled.x_qry.abs().mean(-1), torch.ones(8, 1))


def test_only_series_long_enough_hold_tasks():
    panel = Panel.from_arrays(np.array(["a_short", "b_long"]), [np.arange(10.0) + 1, np.arange(40.0) + 1])
    w = Windows(panel, 5, 2)  # a_short has 4 windows, b_long 34
    sampler = TaskSampler(w, shots=3, query_shots=1)  # a task needs 3 + 2 - 1 + 1 = 5 windows
    assert list(sampler.eligible) == [1]
    assert set(sampler.sample(20).series) == {1}
    restricted = TaskSampler(w, 1, series=np.array([0]))
    assert set(restricted.sample(5).series) == {0}
    with pytest.raises(InputError, match="no series has the 37 windows a task needs"):
        TaskSampler(w, shots=30, query_shots=6)
    with pytest.raises(InputError, match="the longest has 34: `shots=32` fits it"):
        TaskSampler(w, shots=40)
    assert list(TaskSampler(w, shots=32).eligible) == [1]  # the advice is exact: 32 + 2 - 1 + 1 = 34
    with pytest.raises(InputError, match="the longest has 34: lower `input_size` or `h`"):
        TaskSampler(w, shots=1, query_shots=40)


def test_every_cut_is_reachable():
    panel = Panel.from_arrays(np.array(["a"]), [np.arange(20.0) + 1])
    w = Windows(panel, 3, 1)  # 17 windows; a task of 4 shots and 1 query needs 5: cuts 0..12
    ks = TaskSampler(w, 4, seed=0).sample(3000).k
    assert set(ks) == set(range(13))


def test_split_disjoint_and_complete():
    ids = np.array([f"id{i}" for i in range(1000)])
    split = split_series(ids, val_frac=0.1, test_frac=0.3, seed=5)
    assert (len(split.train), len(split.val), len(split.test)) == (600, 100, 300)
    assert not set(split.train) & set(split.val)
    assert not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)
    assert set(split.train) | set(split.val) | set(split.test) == set(ids)
    again = split_series(ids[::-1], 0.1, 0.3, seed=5)
    np.testing.assert_array_equal(again.test, split.test)
    assert not np.array_equal(split_series(ids, 0.1, 0.3, seed=6).test, split.test)
    with pytest.raises(InputError):
        split_series(ids, 0.5, 0.5)


def test_latest_task_forecasts_the_last_h_points(panel):
    w = Windows(panel, 12, 3)
    sampler = TaskSampler(w, shots=4, query_shots=1, scaler="none")
    tasks = sampler.latest()
    assert len(tasks.series) == panel.n_series
    for t, i in enumerate(tasks.series):
        s = panel.series(i)
        np.testing.assert_array_equal(tasks.y_qry[t, 0].numpy(), s[-3:])  # the query target: the last h values
        np.testing.assert_array_equal(tasks.x_qry[t, 0].numpy(), s[-15:-3])
        np.testing.assert_array_equal(tasks.y_spt[t, -1].numpy(), s[-6:-3])  # support targets end right before


def test_window_sampler_draws_uniform_windows(panel):
    from fewcast.tasks import WindowSampler

    w = Windows(panel, 12, 2)
    sampler = WindowSampler(w, scaler="none", seed=0, series=np.array([0, 3]))
    batch = sampler.sample(4000)
    assert batch.x_spt.shape == (4000, 1, 12) and batch.x_qry.shape == (4000, 0, 12)
    assert set(batch.series) == {0, 3}
    share = np.mean(batch.series == 0)
    assert share == pytest.approx(w.counts[0] / (w.counts[0] + w.counts[3]), abs=0.03)
    for t in range(0, 4000, 397):
        s = panel.series(batch.series[t])
        np.testing.assert_array_equal(batch.x_spt[t, 0].numpy(), s[batch.k[t] : batch.k[t] + 12])
    full = WindowSampler(w, scaler="none", series=np.array([1]), full_batch=True).sample(1)
    assert full.x_spt.shape[0] == w.counts[1]
