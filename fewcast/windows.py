"""Sliding windows over a panel and per-window scaling.

A window is ``input_size`` consecutive values (the input) followed by the next ``h`` values (the target).
:class:`Windows` indexes every window of every series without copying: the windows are rows of one
``sliding_window_view`` over the panel's flat values, and a window is named by the position where it
starts. Only the windows that are asked for are ever gathered into new arrays.

Scaling is per window, from the input alone (the target is never looked at), so the same function serves
training windows and forecasts: ``mean_abs`` (divide by the mean absolute input, the default),
``standard`` (subtract the input mean, divide by its standard deviation) and ``none``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from fewcast.errors import InputError
from fewcast.panel import Panel, concat_ranges

SCALERS = ("mean_abs", "standard", "none")


class Windows:
    """All (input, target) windows of a panel: ``input_size`` values -> the next ``h`` values.

    ``drop_zero_target`` drops the windows whose targets are all exactly zero (the seed experiment did
    this for its 1-step targets); it is off by default because zeros are real observations. ``stop``
    limits series ``i`` to its first ``stop[i]`` points without copying anything (a held-out horizon).

    Windows of series ``i`` are numbered ``0 .. counts[i] - 1`` in time order; globally, window ``g``
    belongs to the series ``i`` with ``first[i] <= g < first[i + 1]``.
    """

    def __init__(self, panel: Panel, input_size: int, h: int, drop_zero_target: bool = False,
                 stop: np.ndarray | None = None):
        if input_size < 1 or h < 1:
            raise InputError(f"input_size and h must be at least 1 (got input_size={input_size}, h={h})")
        self.panel = panel
        self.input_size = input_size
        self.h = h
        width = input_size + h
        values = panel.values
        if len(values) >= width:
            self.view = sliding_window_view(values, width)  # (positions, input_size + h), no copy
        else:
            self.view = np.zeros((0, width), dtype=np.float32)
        usable = panel.lengths if stop is None else np.minimum(np.asarray(stop), panel.lengths)  # (series,)
        counts = np.maximum(usable - width + 1, 0)  # (series,)
        self.starts: np.ndarray | None = None  # explicit positions, only when windows were dropped
        if drop_zero_target:
            self.starts, counts = _nonzero_target_windows(panel, input_size, h, counts)
        self.counts = counts
        self.first = np.concatenate([[0], np.cumsum(counts)])  # (series + 1,)

    def __len__(self) -> int:
        return int(self.first[-1])

    def __repr__(self) -> str:
        return f"Windows({len(self)} windows of {self.input_size} -> {self.h} over {self.panel.n_series} series)"

    def position(self, series: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Start positions (into ``panel.values``) of window ``k`` of series ``series`` (broadcast)."""
        series = np.asarray(series)
        if self.starts is None:
            return self.panel.offsets[series] + k
        return self.starts[self.first[series] + k]

    def series_of(self, g: np.ndarray) -> np.ndarray:
        """Which series the global window numbers ``g`` belong to."""
        return np.searchsorted(self.first, g, side="right") - 1

    def all_positions(self) -> np.ndarray:
        """Start positions of every window, in (series, time) order: ``(windows,)`` int64."""
        if self.starts is not None:
            return self.starts
        return concat_ranges(self.panel.offsets[:-1], self.counts)

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the windows starting at ``positions`` (any shape ``S``): ``S + (input_size,)``, ``S + (h,)``."""
        rows = self.view[positions]  # S + (input_size + h,)
        return rows[..., : self.input_size], rows[..., self.input_size :]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every window, materialized: ``(windows, input_size)`` and ``(windows, h)`` float32."""
        return self.gather(self.all_positions())


def _nonzero_target_windows(panel: Panel, input_size: int, h: int, counts: np.ndarray, chunk: int = 1 << 20):
    """Start positions of the windows whose targets are not all zero, and the kept count per series.

    Processed in chunks of about ``chunk`` values, so that the peak memory is the result plus one chunk.
    """
    width = input_size + h
    # positions fit in 32 bits below 2**31 values: half the memory of int64
    dtype = np.int32 if panel.offsets[-1] < 2**31 else np.int64
    kept = np.empty(int(counts.sum()), dtype=dtype)  # an upper bound, shrunk in place at the end
    n_kept, kept_counts = 0, np.zeros(panel.n_series, dtype=np.int64)
    bounds = np.searchsorted(panel.offsets, np.arange(0, panel.offsets[-1] + chunk, chunk))
    bounds = np.unique(np.clip(np.append(bounds, panel.n_series), 0, panel.n_series))
    for lo, hi in itertools.pairwise(bounds):  # chunks of whole series, not a loop over series
        base = panel.offsets[lo]
        vals = panel.values[base : panel.offsets[hi]]
        starts = concat_ranges(panel.offsets[lo:hi] - base, counts[lo:hi])  # (windows in chunk,)
        # non-zero targets in [s + input_size, s + width): a difference of cumulative counts
        nonzero = np.concatenate([[0], np.cumsum(vals != 0, dtype=np.int32)])
        keep = nonzero[starts + width] != nonzero[starts + input_size]
        owner = np.repeat(np.arange(lo, hi), counts[lo:hi])
        n = int(keep.sum())
        kept[n_kept : n_kept + n] = starts[keep] + base
        n_kept += n
        kept_counts[lo:hi] = np.bincount(owner[keep] - lo, minlength=hi - lo)
    kept.resize(n_kept, refcheck=False)
    return kept, kept_counts


def scale(x, y=None, method: str = "mean_abs", eps: float = 1e-8):
    """Scale windows by statistics of their input ``x (..., input_size)``; ``y (..., h)`` likewise.

    Returns ``(x_scaled, y_scaled or None, (loc, scale))`` with ``loc`` and ``scale`` shaped ``(..., 1)``,
    as torch tensors. A window whose input is all zero (or constant, for ``standard``) gets scale 1.
    """
    if method not in SCALERS:
        raise InputError(f"unknown scaler {method!r}; choose one of {', '.join(SCALERS)}")
    x = torch.as_tensor(x)
    if method == "none":
        loc = torch.zeros_like(x[..., :1])
        sc = torch.ones_like(x[..., :1])
    elif method == "mean_abs":
        loc = torch.zeros_like(x[..., :1])
        sc = x.abs().mean(-1, keepdim=True)  # (..., 1)
    else:
        loc = x.mean(-1, keepdim=True)  # (..., 1)
        sc = x.std(-1, keepdim=True, correction=0) if x.shape[-1] > 1 else torch.zeros_like(loc)
    sc = torch.where(sc > eps, sc, torch.ones_like(sc))
    xs = (x - loc) / sc
    ys = None if y is None else (torch.as_tensor(y) - loc) / sc
    return xs, ys, (loc, sc)


def unscale(y_scaled, stats):
    """Inverse of :func:`scale` for forecasts ``(..., h)`` with the ``(loc, scale)`` of their inputs."""
    loc, sc = stats
    return torch.as_tensor(y_scaled) * sc + loc
