"""The panel: many series held as flat arrays, with views and slices that never loop over series.

A :class:`Panel` holds ``values`` (float32, all series back to back, each sorted by ``ds``), ``ds`` (the
time stamps, datetime64 or int64) and ``offsets`` (series ``i`` is ``values[offsets[i]:offsets[i + 1]]``),
with series sorted by ``unique_id``. Time stamps with a time zone are held naive (see
:class:`~fewcast.calendar.Zone`) and given back in their zone by :meth:`Panel.to_frame` and the forecasts.
Build one from a long data frame with :func:`fewcast.frame.from_frame` or :func:`fewcast.frame.read_panel`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fewcast.calendar import Zone, infer_freq
from fewcast.errors import InputError, PanelWarning, describe_ids


@dataclass(frozen=True)
class Columns:
    """Names of the id, time and target columns in the user's frame."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])`` without the loop.

    Built in place as the running sum of steps (1 inside a range, a jump between ranges), so the only
    large allocation is the result itself.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    nonempty = lengths > 0
    starts, lengths = starts[nonempty], lengths[nonempty]
    total = int(lengths.sum())
    out = np.ones(total, dtype=np.int64)
    if total == 0:
        return out
    begins = np.cumsum(lengths) - lengths  # where each range begins in the output
    out[0] = starts[0]
    # at a range's first element, step from the previous range's last value to this range's start
    out[begins[1:]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    np.cumsum(out, out=out)
    return out


class Panel:
    """A validated panel of series: flat float32 values with per-series offsets.

    Build one with :func:`~fewcast.frame.from_frame` (a pandas frame), :func:`~fewcast.frame.read_panel` (a CSV or
    Parquet file) or :meth:`Panel.from_arrays`; the constructor itself trusts its arguments.
    """

    def __init__(
        self,
        ids: np.ndarray,
        values: np.ndarray,
        ds: np.ndarray,
        offsets: np.ndarray,
        columns: Columns = Columns(),
        freq: str | int | None = None,
        zone: Zone | None = None,
    ):
        self.ids = np.asarray(ids)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.ds = np.asarray(ds)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.columns = columns
        self.freq = freq if freq is not None else infer_freq(self.ds, self.offsets)
        self.zone = zone  # set when the input's time stamps had a time zone

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        ids,
        series: list[np.ndarray],
        ds: list[np.ndarray] | None = None,
        columns: Columns = Columns(),
        freq: str | int | None = None,
    ) -> Panel:
        """A panel from one array per series (ids already unique); ``ds`` defaults to 1, 2, ... each."""
        lengths = np.array([len(s) for s in series], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        values = np.concatenate(series).astype(np.float32) if len(series) else np.zeros(0, np.float32)
        if ds is None:
            times = concat_ranges(np.ones(len(series), dtype=np.int64), lengths)
        else:
            times = np.concatenate(ds)
        order = np.argsort(np.asarray(ids), kind="stable")
        panel = cls(np.asarray(ids), values, times, offsets, columns, freq if freq is not None else 1)
        if np.any(order != np.arange(len(order))):
            panel = panel.take(order)
        return panel

    # -- shape --------------------------------------------------------------------------------------
    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_series(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return self.n_series

    def __repr__(self) -> str:
        lengths = self.lengths
        span = f"{lengths.min()}..{lengths.max()}" if len(lengths) else "-"
        return f"Panel({self.n_series} series, lengths {span}, freq={self.freq!r})"

    def series(self, i: int) -> np.ndarray:
        """Values of the ``i``-th series (a view)."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def constant_levels(self) -> np.ndarray:
        """``(series,)`` the value of each series whose observations are all equal, NaN for the others."""
        out = np.full(self.n_series, np.nan)
        rows = np.flatnonzero(self.lengths > 0)
        if len(rows):
            low = np.minimum.reduceat(self.values, self.offsets[rows])  # (nonempty series,)
            high = np.maximum.reduceat(self.values, self.offsets[rows])
            out[rows] = np.where(low == high, low, np.nan)
        return out

    def times(self, i: int) -> np.ndarray:
        return self.ds[self.offsets[i] : self.offsets[i + 1]]

    def index_of(self, ids) -> np.ndarray:
        """Positions of the given ``unique_id`` values; an InputError names any that are absent.

        Works whether or not the series are sorted by id (a memory-mapped panel keeps file order).
        """
        ids = np.asarray(ids)
        order = None if np.all(self.ids[1:] >= self.ids[:-1]) else np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids if order is None else self.ids[order]
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(self.n_series - 1, 0))
        missing = ids[(self.n_series == 0) | (sorted_ids[pos] != ids)]
        if len(missing):
            raise InputError(f"column '{self.columns.id_col}': unknown series {describe_ids(missing)}")
        return pos if order is None else order[pos]

    # -- slicing (all vectorized) -------------------------------------------------------------------
    def take(self, idx) -> Panel:
        """The panel restricted to series positions ``idx`` (kept in the order given)."""
        idx = np.asarray(idx, dtype=np.int64)
        starts, lengths = self.offsets[idx], self.lengths[idx]
        rows = concat_ranges(starts, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return Panel(self.ids[idx], self.values[rows], self.ds[rows], offsets, self.columns, self.freq, self.zone)

    def select(self, ids) -> Panel:
        """The panel restricted to the given ``unique_id`` values."""
        return self.take(self.index_of(ids))

    def slice(self, start: np.ndarray, stop: np.ndarray) -> Panel:
        """Series ``i`` cut to its positions ``start[i]:stop[i]`` (each clipped to the series)."""
        lengths = self.lengths
        start = np.clip(np.broadcast_to(np.asarray(start, dtype=np.int64), lengths.shape), 0, lengths)
        stop = np.clip(np.broadcast_to(np.asarray(stop, dtype=np.int64), lengths.shape), start, lengths)
        rows = concat_ranges(self.offsets[:-1] + start, stop - start)
        offsets = np.concatenate([[0], np.cumsum(stop - start)])
        return Panel(self.ids, self.values[rows], self.ds[rows], offsets, self.columns, self.freq, self.zone)

    def split_last(self, h: int) -> tuple[Panel, Panel]:
        """(all but the last ``h`` points, the last ``h`` points) of every series."""
        cut = self.lengths - h
        return self.slice(0, cut), self.slice(cut, self.lengths)

    def tail(self, n: int) -> Panel:
        """The last ``n`` observations of every series."""
        return self.slice(self.lengths - n, self.lengths)

    def drop_short(self, min_length: int) -> Panel:
        """Series shorter than ``min_length`` dropped with a counted warning; an error if none is left."""
        short = self.lengths < min_length
        if not short.any():
            return self
        if short.all():
            raise InputError(
                f"column '{self.columns.target_col}': every series is shorter than {min_length} points "
                f"(the longest has {self.lengths.max()}); lower `input_size` or `h`"
            )
        warnings.warn(
            f"dropped {short.sum()} of {self.n_series} series shorter than {min_length} points: "
            f"{describe_ids(self.ids[short])}",
            PanelWarning,
            stacklevel=2,
        )
        return self.take(np.flatnonzero(~short))

    # -- back to a frame ----------------------------------------------------------------------------
    def stamps(self, ds: np.ndarray):
        """Naive time stamps of this panel (``ds`` itself, or forecast dates) as the input gave them: back
        in its time zone when it had one."""
        return self.zone.aware(ds) if self.zone is not None else ds

    def to_frame(self, columns: Columns | None = None) -> pd.DataFrame:
        c = columns or self.columns
        return pd.DataFrame(
            {
                c.id_col: np.repeat(self.ids, self.lengths),
                c.time_col: self.stamps(self.ds),
                c.target_col: self.values,
            }
        )
