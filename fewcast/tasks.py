"""Tasks for meta-learning: one series is one task, split into support and query windows in time.

A task's support set is ``shots`` consecutive windows of one series; its query set is the
``query_shots`` windows that follow, starting ``h`` steps after the last support window, so that every
query target lies strictly after every support target (the model adapted on the support never saw a
query target). That mirrors a forecast: adapt on the most recent windows, predict what comes next.

Series are split into meta-train / meta-validation / meta-test by ``unique_id``, disjoint and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fewcast.errors import InputError
from fewcast.panel import concat_ranges
from fewcast.windows import Windows, scale


@dataclass(frozen=True)
class Split:
    """Disjoint ``unique_id`` sets for meta-training, meta-validation and meta-testing."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_series(ids, val_frac: float = 0.1, test_frac: float = 0.3, seed: int = 0) -> Split:
    """Split series ids into disjoint train / val / test sets, reproducibly for a given seed.

    The sizes are rounded fractions of the number of series; the order within each set is sorted.
    """
    ids = np.unique(np.asarray(ids))
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise InputError(f"split fractions must be in [0, 1) and sum below 1 (val={val_frac}, test={test_frac})")
    n = len(ids)
    n_test = round(test_frac * n)
    n_val = round(val_frac * n)
    perm = np.random.default_rng(seed).permutation(n)
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    if len(train) == 0:
        raise InputError(f"no series left for meta-training out of {n}; lower the val and test fractions")
    return Split(np.sort(ids[train]), np.sort(ids[val]), np.sort(ids[test]))


def recorded_split(ids, recorded: dict) -> Split:
    """The split recorded at training (``{"train": [...], "val": [...], "test": [...]}``) on the series
    ``ids`` of new data: a series it trained or validated on keeps its set; every other one, a meta-test
    series or one it never saw, is a test series. Ids match by their text (a CSV's ``7`` is the recorded
    ``"7"``)."""
    ids = np.unique(np.asarray(ids))
    key = ids.astype(str)
    train = np.isin(key, np.asarray(recorded.get("train", [])).astype(str))
    val = np.isin(key, np.asarray(recorded.get("val", [])).astype(str)) & ~train
    return Split(ids[train], ids[val], ids[~(train | val)])


@dataclass
class Tasks:
    """A meta-batch of tasks as float32 tensors (already scaled per window).

    ``x_spt (tasks, shots, input_size)``, ``y_spt (tasks, shots, h)``,
    ``x_qry (tasks, query_shots, input_size)``, ``y_qry (tasks, query_shots, h)``; ``series`` gives each
    task's series position in the panel and ``k`` its first support window. ``m_spt (tasks, shots)`` is 1
    for a real support window and 0 for padding (tasks with fewer windows than ``shots``), or None.
    """

    x_spt: torch.Tensor
    y_spt: torch.Tensor
    x_qry: torch.Tensor
    y_qry: torch.Tensor
    series: np.ndarray
    k: np.ndarray
    m_spt: torch.Tensor | None = None

    def to(self, device) -> Tasks:
        move = {f: getattr(self, f).to(device) for f in ("x_spt", "y_spt", "x_qry", "y_qry")}
        mask = self.m_spt.to(device) if self.m_spt is not None else None
        return Tasks(**move, series=self.series, k=self.k, m_spt=mask)


def task_windows(shots: int, h: int, query_shots: int = 1) -> int:
    """Windows one task needs: ``shots`` support windows, the ``h - 1`` whose targets would overlap the
    query's, and ``query_shots`` query windows."""
    return shots - 1 + h + query_shots


def shots_that_fit(windows: int, h: int, query_shots: int = 1) -> int:
    """The most shots a series with ``windows`` windows can hold in one task (below 1: none)."""
    return windows - task_windows(0, h, query_shots)


def eligible_series(windows: Windows, shots: int, query_shots: int = 1, series: np.ndarray | None = None):
    """Positions of the series (of ``series``, default all) with the :func:`task_windows` one task needs;
    an InputError saying what would fit when there is none."""
    need = task_windows(shots, windows.h, query_shots)
    candidates = np.arange(windows.panel.n_series) if series is None else np.asarray(series)
    out = candidates[windows.counts[candidates] >= need]
    if len(out) == 0:
        longest = int(windows.counts[candidates].max()) if len(candidates) else 0
        fits = shots_that_fit(longest, windows.h, query_shots)
        advice = f"`shots={fits}` fits it" if fits >= 1 else "lower `input_size` or `h`"
        raise InputError(
            f"no series has the {need} windows a task needs (shots={shots}, h={windows.h}, "
            f"query_shots={query_shots}, input_size={windows.input_size}); the longest has {longest}: {advice}"
        )
    return out


class TaskSampler:
    """Draws meta-batches of tasks from the windows of a panel with a seeded generator.

    Only series with at least ``shots + h - 1 + query_shots`` windows can hold a task; ``eligible``
    lists them (positions in the panel), optionally restricted to ``series``.
    """

    def __init__(
        self,
        windows: Windows,
        shots: int,
        query_shots: int = 1,
        scaler: str = "mean_abs",
        seed: int = 0,
        series: np.ndarray | None = None,
    ):
        if shots < 1 or query_shots < 1:
            raise InputError(f"shots and query_shots must be at least 1 (got {shots}, {query_shots})")
        self.windows = windows
        self.shots = shots
        self.query_shots = query_shots
        self.scaler = scaler
        self.rng = np.random.default_rng(seed)
        # window offsets of the query set relative to the first support window
        self.qry_shift = shots - 1 + windows.h
        self.need = task_windows(shots, windows.h, query_shots)  # windows a series must have to hold one task
        self.eligible = eligible_series(windows, shots, query_shots, series)
        self._spt_offsets = np.arange(shots)
        self._qry_offsets = self.qry_shift + np.arange(query_shots)

    def sample(self, n_tasks: int) -> Tasks:
        """``n_tasks`` tasks: series drawn uniformly (with replacement), a uniform time cut in each."""
        rng = self.rng
        series = self.eligible[rng.integers(len(self.eligible), size=n_tasks)]  # (tasks,)
        room = self.windows.counts[series] - self.need + 1  # admissible first support windows
        k = (rng.random(n_tasks) * room).astype(np.int64)  # (tasks,)
        return self.tasks_at(series, k)

    def tasks_at(self, series: np.ndarray, k: np.ndarray) -> Tasks:
        """The tasks whose first support window is window ``k[t]`` of series ``series[t]``."""
        w = self.windows
        series = np.asarray(series)
        k = np.asarray(k)
        pos_spt = w.position(series[:, None], k[:, None] + self._spt_offsets)  # (tasks, shots)
        pos_qry = w.position(series[:, None], k[:, None] + self._qry_offsets)  # (tasks, query_shots)
        x_spt, y_spt = w.gather(pos_spt)  # (tasks, shots, input_size), (tasks, shots, h)
        x_qry, y_qry = w.gather(pos_qry)  # (tasks, query_shots, input_size), (tasks, query_shots, h)
        x_spt, y_spt, _ = scale(torch.from_numpy(x_spt), torch.from_numpy(y_spt), self.scaler)
        x_qry, y_qry, _ = scale(torch.from_numpy(x_qry), torch.from_numpy(y_qry), self.scaler)
        return Tasks(x_spt, y_spt, x_qry, y_qry, series, k)

    def latest(self, series: np.ndarray | None = None) -> Tasks:
        """One task per series at its latest cut: the query is the series' last window.

        With ``query_shots=1`` that is a forecast of the series' last ``h`` values from the ``shots``
        windows just before them: the validation version of the forecast protocol. ``series`` defaults
        to every eligible series.
        """
        series = self.eligible if series is None else np.asarray(series)
        return self.tasks_at(series, self.windows.counts[series] - self.need)

    def state_dict(self) -> dict:
        """The generator's state, so that a resumed run draws the same tasks."""
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class WindowSampler:
    """Batches of single windows drawn uniformly from the windows of ``series``, for conventional training.

    ``sample(n)`` returns ``n`` windows as tasks of one support window and an empty query; with
    ``full_batch`` it returns every window of those series each time (the seed's pre-training).
    """

    def __init__(self, windows: Windows, scaler: str = "mean_abs", seed: int = 0, series: np.ndarray | None = None,
                 full_batch: bool = False):
        self.windows = windows
        self.scaler = scaler
        self.rng = np.random.default_rng(seed)
        self.series = np.arange(windows.panel.n_series) if series is None else np.asarray(series)
        self.first = np.concatenate([[0], np.cumsum(windows.counts[self.series])])  # (series + 1,)
        if self.first[-1] == 0:
            raise InputError("the series given hold no window: lower input_size or h")
        self.full_batch = full_batch
        self.size = int(self.first[-1])  # the windows of these series: a full batch's size
        self._all: Tasks | None = None

    def _tasks(self, positions: np.ndarray, series: np.ndarray, k: np.ndarray) -> Tasks:
        x, y = self.windows.gather(positions[:, None])  # (n, 1, input_size), (n, 1, h)
        x, y, _ = scale(torch.from_numpy(x), torch.from_numpy(y), self.scaler)
        empty_x, empty_y = x[:, :0], y[:, :0]
        return Tasks(x, y, empty_x, empty_y, series, k)

    def sample(self, n: int) -> Tasks:
        if self.full_batch:
            if self._all is None:
                counts = self.windows.counts[self.series]
                series = np.repeat(self.series, counts)
                k = concat_ranges(np.zeros(len(counts), dtype=np.int64), counts)
                self._all = self._tasks(self.windows.position(series, k), series, k)
            return self._all
        g = self.rng.integers(self.first[-1], size=n)  # uniform over all windows of these series
        j = np.searchsorted(self.first, g, side="right") - 1
        series, k = self.series[j], g - self.first[j]
        return self._tasks(self.windows.position(series, k), series, k)

    def state_dict(self) -> dict:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state
