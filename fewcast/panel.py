"""The panel: many series in one long data frame, validated once into contiguous arrays.

fewcast takes Nixtla's long format at every public boundary: one row per (series, time) with columns
``unique_id``, ``ds`` and ``y``; ``id_col``, ``time_col`` and ``target_col`` rename them. A :class:`Panel`
holds the validated result as flat arrays: ``values`` (float32, all series back to back, each sorted by
``ds``), ``ds`` (the timestamps, datetime64 or int64) and ``offsets`` (series ``i`` is
``values[offsets[i]:offsets[i + 1]]``), with series sorted by ``unique_id``. Time stamps with a time
zone are held naive (see :class:`Zone`) and given back in their zone by :meth:`Panel.to_frame` and the
forecasts.

Everything that can be wrong with the input is an :class:`~fewcast.errors.InputError` naming the column
and the offending series; nothing is silently coerced.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fewcast.errors import InputError, PanelWarning, describe_ids


@dataclass(frozen=True)
class Columns:
    """Names of the id, time and target columns in the user's frame."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"


@dataclass(frozen=True)
class Zone:
    """The time zone of time stamps that had one, and how the panel holds them (naive ``datetime64``).

    ``wall``: as wall-clock times in ``tz``, chosen when every stamp falls at the same time of day (daily or
    coarser data, whose calendar steps are regular in local time: Paris month starts stay month starts
    through summer time); else as UTC (sub-daily data, regular in absolute time across a change of clock).
    :meth:`aware` turns naive stamps of the panel, such as forecast dates, back into ``tz``.
    """

    tz: object  # a tzinfo or a name pandas knows ("Europe/Paris", "+01:00")
    wall: bool

    def aware(self, naive) -> pd.DatetimeIndex:
        idx = pd.DatetimeIndex(np.asarray(naive, dtype="datetime64[ns]").ravel())
        if self.wall:  # a wall-clock time that occurs twice is taken as summer time; a skipped one moves forward
            return idx.tz_localize(self.tz, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="shift_forward")
        return idx.tz_localize("UTC").tz_convert(self.tz)


def time_of_day(stamps: np.ndarray) -> np.ndarray:
    """``(rows,)`` nanoseconds since midnight of naive datetime64 stamps."""
    return np.asarray(stamps, dtype="datetime64[ns]").view(np.int64) % np.int64(86_400 * 10**9)


def zoned(utc: np.ndarray, wall: np.ndarray, tz) -> tuple[np.ndarray, Zone | None]:
    """``(stamps, zone)`` for stamps given both as naive UTC and as naive local wall-clock times (``tz``:
    their zone, or None when they came with several UTC offsets and no zone name): the wall clock when
    every stamp falls at the same time of day, else UTC (:class:`Zone`)."""
    of_day = time_of_day(wall)  # (rows,)
    if len(of_day) == 0 or (of_day == of_day[0]).all():
        return wall, (Zone(tz, True) if tz is not None else None)
    return utc, Zone(tz if tz is not None else "UTC", False)


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

    Build one with :func:`from_frame` (a pandas frame), :func:`read_panel` (a CSV or Parquet file) or
    :meth:`Panel.from_arrays`; the constructor itself trusts its arguments.
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
                f"(the longest has {self.lengths.max()}); lower --input-size or --h"
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


# ---------------------------------------------------------------------------------------------------
# Validation


def from_frame(
    df: pd.DataFrame,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    fill: bool = False,
    min_length: int = 1,
) -> Panel:
    """Validate a long frame into a :class:`Panel`.

    Raises :class:`InputError` for missing columns, a non-numeric or boolean target, NaN or infinite
    targets (unless ``fill``, which interpolates linearly inside each series), duplicate
    (``id``, ``time``) rows, gaps in a series' time stamps at the panel's frequency (:func:`time_gaps`;
    ``fill`` inserts the missing stamps and interpolates their targets), unparseable or mixed-type
    timestamps and an empty frame. Series shorter than
    ``min_length`` are dropped with a :class:`PanelWarning` that counts them, or an error if none is left.
    """
    cols = Columns(id_col, time_col, target_col)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame with columns {id_col}, {time_col}, {target_col}")
    missing = [c for c in (id_col, time_col, target_col) if c not in df.columns]
    if missing:
        flag = {id_col: "--id-col", time_col: "--time-col", target_col: "--target-col"}
        found = ", ".join(map(str, df.columns[:10])) + (", ..." if len(df.columns) > 10 else "")
        raise InputError(
            f"missing column '{missing[0]}' (columns found: {found}); "
            f"name the right one with {flag[missing[0]]}"
        )
    if len(df) == 0:
        raise InputError("the input has no rows")

    raw_ids = df[id_col]
    try:
        codes, uniques = pd.factorize(raw_ids, sort=True)
    except TypeError:  # ids of mixed types cannot be ordered: compare them as text
        codes, uniques = pd.factorize(raw_ids.where(raw_ids.isna(), raw_ids.astype(str)), sort=True)
    if (codes < 0).any():  # factorize marks missing values with -1
        raise InputError(f"column '{id_col}' has {int((codes < 0).sum())} empty values; every row needs an id")
    uniques = np.asarray(uniques)

    y = _parse_target(df[target_col], codes, uniques, target_col)
    ds, zone = _parse_time(df[time_col], codes, uniques, time_col)

    # sort by (series, time) with one integer key: series code, then the time's rank among all times
    key = ds.view(np.int64) if ds.dtype.kind == "M" else ds
    if len(key) > 1 and not _is_sorted(codes, key):
        rank, times = pd.factorize(key, sort=True)
        order = np.argsort(codes.astype(np.int64) * len(times) + rank, kind="stable")
        codes, key, ds, y = codes[order], key[order], ds[order], y[order]

    dup = (codes[1:] == codes[:-1]) & (key[1:] == key[:-1])
    if dup.any():
        bad = uniques[np.unique(codes[1:][dup])]
        raise InputError(
            f"column '{time_col}': {int(dup.sum())} duplicate ({id_col}, {time_col}) rows in series "
            f"{describe_ids(bad)}; keep one row per time stamp (aggregate or drop duplicates)"
        )

    lengths = np.bincount(codes, minlength=len(uniques))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    freq = infer_freq(ds, offsets)
    gap = time_gaps(ds, offsets, freq) & (lengths[codes[:-1]] >= min_length)  # (rows - 1,): a step skips time
    if gap.any():
        if not fill:
            i = np.flatnonzero(gap)
            bad = uniques[np.unique(codes[i])]
            gaps = f"{len(i)} gap{'s' if len(i) > 1 else ''}"
            raise InputError(
                f"column '{time_col}': {gaps} in the time stamps of series {describe_ids(bad)} (e.g. "
                f"{_stamp(ds[i[0]])} then {_stamp(ds[i[0] + 1])}, at a frequency of {describe_freq(freq)}); add "
                f"the missing rows, or pass --fill (fill=True) to insert them and interpolate '{target_col}'"
            )
        n, gapped = len(codes), uniques[np.unique(codes[:-1][gap])]
        codes, ds, y = _insert_missing(codes, ds, y, gap, offsets, freq, uniques, time_col)
        warnings.warn(f"inserted {len(codes) - n} missing time stamps of '{time_col}' in {describe_ids(gapped)}",
                      PanelWarning, stacklevel=2)
        lengths = np.bincount(codes, minlength=len(uniques))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    y = _check_finite(y, codes, uniques, offsets, target_col, fill)
    panel = Panel(uniques, y, ds, offsets, cols, freq, zone)
    return panel.drop_short(min_length)


def _stamp(t) -> str:
    if not isinstance(t, np.datetime64):
        return str(int(t))
    t = pd.Timestamp(t)
    return str(t.date()) if t == t.normalize() else str(t)


def _step(freq):
    """One period of ``freq`` as something a timestamp array can be shifted by: a pandas offset, or an int."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return freq
    return pd.tseries.frequencies.to_offset(freq)


def time_gaps(ds: np.ndarray, offsets: np.ndarray, freq) -> np.ndarray:
    """``(rows - 1,)`` bool: the step from row ``i`` to ``i + 1`` stays inside one series and skips time.

    With a calendar frequency (months, quarters, business days, weeks anchored on a day) a step skips time
    when it reaches two periods on or more, so months of 28-31 days, weekends between business days and
    stamps anchored elsewhere in the period (the 15th of each month) are regular. With a fixed-length one
    (days, hours, the median step when no calendar frequency fits, integer steps) it is a step longer than
    1.5 periods; without any frequency, longer than 1.5 times the median step.
    """
    n = len(ds)
    if n < 2:
        return np.zeros(max(n - 1, 0), bool)
    same = np.ones(n - 1, bool)
    same[offsets[1:-1] - 1] = False  # the step from a series' last row to the next series' first
    step = _step(freq)
    if step is not None and not isinstance(step, (int, np.integer, pd.tseries.offsets.Tick)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' PerformanceWarning for offsets it cannot vectorize
            two = (pd.DatetimeIndex(ds[:-1]) + 2 * step).to_numpy(dtype="datetime64[ns]")
        return same & (ds[1:] >= two)
    d = (ds[1:] - ds[:-1]).astype(np.int64)  # (rows - 1,) integer steps or nanoseconds
    if isinstance(step, pd.tseries.offsets.Tick):
        length = pd.Timedelta(step).value
    elif step is not None:
        length = int(step)
    elif same.any():
        length = float(np.median(d[same]))
    else:
        return same
    return same & (d > 1.5 * length)


def _insert_missing(codes, ds, y, gap, offsets, freq, uniques, time_col):
    """The rows with the missing time stamps of each gap inserted (target NaN, to be interpolated), or an
    InputError when a gapped series' stamps are not on one grid of ``freq`` from its first stamp."""
    step = _step(freq)
    if step is None:
        raise InputError(f"column '{time_col}': the time stamps have no regular frequency to fill gaps on; "
                         f"add the missing rows yourself")
    gapped = np.unique(codes[:-1][gap])  # only the series with gaps, and only under --fill
    lengths = offsets[gapped + 1] - offsets[gapped]  # (gapped,)
    rows = concat_ranges(offsets[gapped], lengths)  # (their rows,)
    series = np.repeat(np.arange(len(gapped)), lengths)  # (their rows,) which gapped series
    first = ds[offsets[gapped]]  # (gapped,)
    k = _periods(ds[rows], first[series], step)  # (their rows,) periods since the series' first stamp
    if k is None:  # an offset without period arithmetic here: pandas builds each series' grid
        return _insert_missing_by_series(codes, ds, y, gapped, offsets, freq, uniques, time_col)
    off_grid = _stamps_at(first[series], k, step) != ds[rows]
    if off_grid.any():
        raise InputError(f"column '{time_col}': the time stamps of series "
                         f"{describe_ids(uniques[gapped[np.unique(series[off_grid])]])} are not on one "
                         f"{describe_freq(freq)} grid, so their gaps cannot be filled; add the missing rows yourself")
    periods = k[np.cumsum(lengths) - 1] + 1  # (gapped,) grid points from each first stamp to its last
    start = np.cumsum(periods) - periods  # (gapped,) where each series' grid begins
    present = np.zeros(int(periods.sum()), bool)  # (grid points,)
    present[start[series] + k] = True
    grid_series = np.repeat(np.arange(len(gapped)), periods)  # (grid points,)
    grid_k = concat_ranges(np.zeros(len(gapped), np.int64), periods)  # (grid points,) 0, 1, ... per series
    missing = ~present
    new_codes = gapped[grid_series[missing]].astype(codes.dtype)
    new_ds = _stamps_at(first[grid_series[missing]], grid_k[missing], step)
    return _merge_rows(codes, ds, y, new_codes, new_ds)


def _insert_missing_by_series(codes, ds, y, gapped, offsets, freq, uniques, time_col):
    """:func:`_insert_missing` for offsets without period arithmetic (semi-month, business month, ...):
    one pandas date range per gapped series."""
    new_codes, new_ds = [], []
    for c in gapped:
        t = ds[offsets[c] : offsets[c + 1]]
        grid = pd.date_range(t[0], t[-1], freq=_step(freq)).to_numpy(dtype="datetime64[ns]")
        if len(grid) == 0 or grid[0] != t[0] or not np.isin(t, grid).all():
            raise InputError(f"column '{time_col}': the time stamps of series {describe_ids([uniques[c]])} are "
                             f"not on one {describe_freq(freq)} grid, so their gaps cannot be filled; add the "
                             f"missing rows yourself")
        missing = grid[~np.isin(grid, t)]
        new_codes.append(np.full(len(missing), c, dtype=codes.dtype))
        new_ds.append(missing)
    return _merge_rows(codes, ds, y, np.concatenate(new_codes), np.concatenate(new_ds))


def _merge_rows(codes, ds, y, new_codes, new_ds):
    """The new rows (target NaN) merged in, sorted by series, then time."""
    codes = np.concatenate([codes, new_codes])
    ds = np.concatenate([ds, new_ds.astype(ds.dtype)])
    y = np.concatenate([y, np.full(len(codes) - len(y), np.nan)])
    key = ds.view(np.int64) if ds.dtype.kind == "M" else ds
    order = np.lexsort((key, codes))  # by series, then time
    return codes[order], ds[order], y[order]


_DAY = np.timedelta64(1, "D")


def _periods(t: np.ndarray, first: np.ndarray, offset) -> np.ndarray | None:
    """``(rows,)`` whole periods of ``offset`` from ``first`` to each stamp ``t`` (rounded down; a stamp off
    the grid is caught by comparing :func:`_stamps_at` with it), or None for an offset this does not cover."""
    if isinstance(offset, (int, np.integer)):
        return (t - first) // offset
    length = _fixed_length(offset)
    if length is not None:
        return (t - first).astype(np.int64) // length
    months = _months_per_period(offset)
    if months is not None:
        month = lambda s: s.astype("datetime64[M]").astype(np.int64)  # noqa: E731
        return (month(t) - month(first)) // months
    if type(offset) is pd.tseries.offsets.BusinessDay and offset.n == 1 and not offset.offset:
        return np.busday_count(first.astype("datetime64[D]"), t.astype("datetime64[D]")).astype(np.int64)
    return None


def _stamps_at(first: np.ndarray, k: np.ndarray, offset) -> np.ndarray:
    """The stamps ``k`` periods of ``offset`` after ``first`` (elementwise), for the offsets
    :func:`_periods` covers. Months, quarters and years keep the first stamp's day (clamped to each month's
    length) or, for a first stamp at a month's end under an end-anchored offset, stay at month ends."""
    if isinstance(offset, (int, np.integer)):
        return first + k * offset
    length = _fixed_length(offset)
    if length is not None:
        return first + (k * length).astype("timedelta64[ns]")
    day = first.astype("datetime64[D]")
    time = first - day.astype(first.dtype)  # (rows,) time of day
    months = _months_per_period(offset)
    if months is None:  # business days
        return np.busday_offset(day, k, roll="forward").astype(first.dtype) + time
    start = first.astype("datetime64[M]")  # (rows,) the first stamp's month
    month = start + k * months  # (rows,) the target month
    dom = (day - start.astype("datetime64[D]")).astype(np.int64)  # day of month - 1
    at_end = isinstance(offset, (pd.tseries.offsets.MonthEnd, pd.tseries.offsets.QuarterEnd,
                                 pd.tseries.offsets.YearEnd)) & (dom == _days_in(start) - 1)
    dom = np.where(at_end, _days_in(month) - 1, np.minimum(dom, _days_in(month) - 1))
    return (month.astype("datetime64[D]") + dom * _DAY).astype(first.dtype) + time


def _days_in(month: np.ndarray) -> np.ndarray:
    """Days in each ``datetime64[M]`` month."""
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)


def _fixed_length(offset) -> int | None:
    """Nanoseconds in one period of a fixed-length offset (ticks; weeks on naive stamps), else None."""
    if isinstance(offset, pd.tseries.offsets.Tick):
        return pd.Timedelta(offset).value
    if isinstance(offset, pd.tseries.offsets.Week) and offset.weekday is not None:
        return 7 * offset.n * 86400 * 10**9
    return None


def _is_sorted(codes: np.ndarray, key: np.ndarray) -> bool:
    dc = np.diff(codes)
    return bool(np.all((dc > 0) | ((dc == 0) & (np.diff(key) > 0))))


def _parse_target(col: pd.Series, codes, uniques, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"column '{name}' is boolean; the target must be numeric")
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if col.dtype == object and col.map(type).eq(bool).any():
        bad = uniques[np.unique(codes[col.map(type).eq(bool).to_numpy()])]
        raise InputError(f"column '{name}' holds boolean values in series {describe_ids(bad)}; it must be numeric")
    num = pd.to_numeric(col, errors="coerce")
    bad_rows = (num.isna() & col.notna()).to_numpy()
    if bad_rows.any():
        example = col[bad_rows].iloc[0]
        bad = uniques[np.unique(codes[bad_rows])]
        raise InputError(
            f"column '{name}' has non-numeric values (e.g. {example!r}) in series {describe_ids(bad)}"
        )
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


# a time stamp's trailing UTC offset, after its time of day: "...T00:00:00+01:00", "... 08:30-0500", "...Z"
_OFFSET = r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:Z|[+-]\d\d:?\d\d)$"


def _parse_time(col: pd.Series, codes, uniques, name: str) -> tuple[np.ndarray, Zone | None]:
    """``(stamps, zone)``: datetime64 or int64 stamps, and the :class:`Zone` of stamps that had one."""
    def fail(rows: np.ndarray, what: str):
        example = col[rows].iloc[0]
        bad = uniques[np.unique(codes[rows])]
        raise InputError(f"column '{name}' has {what} (e.g. {example!r}) in series {describe_ids(bad)}")

    empty = col.isna().to_numpy()
    if empty.any():
        bad = uniques[np.unique(codes[empty])]
        raise InputError(f"column '{name}' has {int(empty.sum())} empty values in series {describe_ids(bad)}")
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"column '{name}' is boolean; use dates or integer time steps")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return zoned(col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"),
                     col.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"), col.dt.tz)
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.to_numpy(dtype="datetime64[ns]"), None
    if pd.api.types.is_integer_dtype(col):
        return col.to_numpy(dtype=np.int64), None
    if pd.api.types.is_float_dtype(col):
        frac = (col % 1 != 0).to_numpy()
        if frac.any():
            fail(frac, "fractional time steps")
        return col.to_numpy(dtype=np.int64), None

    # object column: numbers, dates as text, or a mix of both
    kinds = col.map(lambda v: "number" if isinstance(v, (int, float, np.number)) else type(v).__name__)
    if kinds.nunique() > 1:
        minority = kinds != kinds.mode().iloc[0]
        fail(minority.to_numpy(), f"mixed value types ({', '.join(sorted(kinds.unique()))})")
    rows, texts = pd.factorize(col.astype(str).str.strip())  # stamps repeat across series: parse each text once
    text = pd.Series(texts)  # (distinct texts,); rows: (rows,) which one each row holds
    as_number = pd.to_numeric(text, errors="coerce")
    numeric = as_number.notna().to_numpy()
    if numeric.all():
        frac = (as_number % 1 != 0).to_numpy()
        if frac.any():
            fail(frac[rows], "fractional time steps")
        return as_number.to_numpy(dtype=np.int64)[rows], None
    if numeric.any():
        fail(numeric[rows], "a mix of plain numbers and dates")
    local_text = text.str.replace(_OFFSET, r"\1", regex=True)  # the wall-clock time of a stamp with an offset
    with_offset = (local_text != text).to_numpy()
    if with_offset.any() and not with_offset.all():
        fail((with_offset if with_offset[rows].sum() * 2 < len(rows) else ~with_offset)[rows],
             "a mix of time stamps with and without a UTC offset")
    day_first = _day_first(local_text, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": we check below
        parsed = pd.to_datetime(text, errors="coerce", utc=with_offset.any(), dayfirst=day_first)  # offsets: UTC
        wall = pd.to_datetime(local_text, errors="coerce", dayfirst=day_first) if with_offset.any() else None
    bad = parsed.isna().to_numpy() | (wall.isna().to_numpy() if wall is not None else False)
    if bad.any():
        fail(bad[rows], "values that are not dates in one consistent format")
    if wall is None:
        return parsed.to_numpy(dtype="datetime64[ns]")[rows], None
    utc = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")[rows]
    local = wall.to_numpy(dtype="datetime64[ns]")[rows]
    shifts = np.unique(local - utc)  # the UTC offsets met: one is a fixed zone, several (summer time) no name
    tz = datetime.timezone(pd.Timedelta(shifts[0]).to_pytimedelta()) if len(shifts) == 1 else None
    return zoned(utc, local, tz)


def _day_first(text: pd.Series, name: str) -> bool:
    """Whether numeric dates such as ``01/02/2020`` (distinct texts) are day-first. A first field above 12
    says so and a second above 12 says not; when both stay at 12 or below, the reading in which the stamps
    fall on fewer days of the month wins (monthly or quarterly data fall on one day), with a warning.
    Dates of any other form are left to pandas."""
    fields = text.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:$|[ T])")  # (texts, 2): day or month each
    if len(text) == 0 or fields.isna().any().any():
        return False
    first, second = fields[0].astype(int), fields[1].astype(int)
    if (first > 12).any() or (second > 12).any():
        return bool((first > 12).any())
    day_first = first.nunique() < second.nunique()
    if (first != second).any():
        example = text[first != second].iloc[0]
        stamp = pd.to_datetime(pd.Series([example]), dayfirst=day_first).iloc[0]
        reading = f"{stamp.day} {stamp:%B %Y}"
        warnings.warn(f"column '{name}': dates such as {example!r} can be read day-first or month-first; read "
                      f"{'day' if day_first else 'month'}-first ({example} is {reading}), the reading in which "
                      f"they fall on fewer days of the month; write dates as YYYY-MM-DD to be sure",
                      PanelWarning, stacklevel=4)
    return day_first


def _check_finite(y, codes, uniques, offsets, name: str, fill: bool) -> np.ndarray:
    bad_rows = ~np.isfinite(y)
    if not bad_rows.any():
        return y.astype(np.float32)
    bad = uniques[np.unique(codes[bad_rows])]
    if not fill:
        raise InputError(
            f"column '{name}' has {int(bad_rows.sum())} NaN or infinite values in series "
            f"{describe_ids(bad)}; fix them or pass --fill (fill=True) to interpolate"
        )
    filled = _interpolate(y, ~bad_rows, offsets[codes], offsets[codes + 1])
    left = np.isnan(filled)
    if left.any():
        allbad = uniques[np.unique(codes[left])]
        raise InputError(
            f"column '{name}' has no finite value at all in series {describe_ids(allbad)}; "
            f"nothing to interpolate from: drop those series"
        )
    warnings.warn(
        f"interpolated {int(bad_rows.sum())} missing, NaN or infinite values of '{name}' in {describe_ids(bad)}",
        PanelWarning,
        stacklevel=3,
    )
    return filled.astype(np.float32)


def _interpolate(y: np.ndarray, good: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows that are not ``good`` between the nearest good rows of the same
    series (rows ``start[i]:stop[i]`` are row i's series), constant beyond a series' first or last good
    row, NaN in a series without any: pandas' ``interpolate(limit_direction="both")`` per series, in one pass.
    """
    i = np.arange(len(y))
    before = np.maximum.accumulate(np.where(good, i, -1))  # (rows,) the last good row at or before i
    after = np.minimum.accumulate(np.where(good, i, len(y))[::-1])[::-1]  # the first good row at or after i
    has_before, has_after = before >= start, after < stop  # inside the same series
    lo = np.where(has_before, before, np.where(has_after, after, 0))
    hi = np.where(has_after, after, lo)
    w = np.where(hi > lo, (i - lo) / np.maximum(hi - lo, 1), 0.0)  # (rows,) how far from lo to hi
    out = (1 - w) * y[lo].astype(np.float64) + w * y[hi].astype(np.float64)
    return np.where(good, y, np.where(has_before | has_after, out, np.nan))


# ---------------------------------------------------------------------------------------------------
# Files

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_frame(path: str | Path, id_col: str = "unique_id") -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file, or a directory of Parquet files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        parts = sorted(path.glob("*.parquet")) + sorted(path.glob("*.pq"))
        if not parts:
            raise InputError(f"{path} is a directory with no .parquet files in it")
        return pd.concat([_read_parquet(p) for p in parts], ignore_index=True)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".xz", ".zst", ".zip"}:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if kind in CSV_SUFFIXES:
        if path.stat().st_size == 0:
            raise InputError(f"{path} is an empty file")
        try:
            # ids as text: '007' stays '007'
            df = pd.read_csv(path, sep=None if kind == ".tsv" else ",", dtype={id_col: str},
                             engine="python" if kind == ".tsv" else "c")
        except pd.errors.EmptyDataError:
            raise InputError(f"{path} is an empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path} could not be read as CSV: {first}") from None
        if len(df.columns) <= 1 and len(df) == 0:
            raise InputError(f"{path} has a header but no rows")
        return df
    raise InputError(
        f"{path} is not a CSV or Parquet file (extension {kind or 'none'!r}); "
        f"save it as .csv or .parquet"
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types; say which file and why in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} could not be read as Parquet: {first}") from None


def read_panel(
    path: str | Path,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    fill: bool = False,
    min_length: int = 1,
) -> Panel:
    """Read and validate a CSV or Parquet file into a :class:`Panel`."""
    df = read_frame(path, id_col)
    return from_frame(df, id_col, time_col, target_col, fill=fill, min_length=min_length)


# ---------------------------------------------------------------------------------------------------
# Frequency


_FREQ_NAMES = [("min", "minutely"), ("h", "hourly"), ("D", "daily"), ("B", "business daily"),
               ("W", "weekly"), ("M", "monthly"), ("Q", "quarterly"), ("Y", "yearly"), ("A", "yearly"),
               ("s", "secondly")]


VOTE_RUN = 8  # consecutive stamps per vote when a whole series has gaps: 8 business days span a weekend
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def infer_freq(ds: np.ndarray, offsets: np.ndarray) -> str | int | None:
    """A frequency guess: a pandas offset alias for dates, the common step for integer time.

    Dates: pandas' guess on the longest series; when every one of them has a gap (a missing month, a
    holiday in business days), the most common guess over runs of ``VOTE_RUN`` consecutive stamps; when
    no run fits a pandas frequency, a typical step of 28-31, 89-92 or 365-366 days is months, quarters or
    years (stamps anchored inside the period, such as the 15th of each month, keep their day: see
    :func:`shift_stamps`), and any other step is a fixed length."""
    lengths = np.diff(offsets)
    if len(lengths) == 0 or lengths.max() < 2:
        return None
    if ds.dtype.kind in "iu":
        first = offsets[:-1][lengths >= 2]
        step = ds[first + 1] - ds[first]
        values, counts = np.unique(step, return_counts=True)
        return int(values[np.argmax(counts)])
    longest = np.argsort(lengths)[::-1][:5]  # a few series are enough; the guess is advisory
    runs = [pd.DatetimeIndex(ds[offsets[i] : offsets[i + 1]]) for i in longest]
    guesses = [g for g in (pd.infer_freq(r) for r in runs if len(r) >= 3) if g]
    if not guesses:  # every long series has a gap: vote over gap-free runs of consecutive stamps
        for r in runs:
            starts = np.arange(0, len(r) - VOTE_RUN + 1, VOTE_RUN)  # (runs,)
            if len(starts) > 40:  # 40 runs spread over the series vote
                starts = starts[np.linspace(0, len(starts) - 1, 40).astype(int)]
            guesses += [g for g in (pd.infer_freq(r[s : s + VOTE_RUN]) for s in starts) if g]
    if guesses:
        return max(set(guesses), key=guesses.count)
    steps = np.concatenate([np.diff(r.asi8) for r in runs])  # (steps,) nanoseconds inside the long series
    days = float(np.median(steps)) / 86400e9
    start = runs[0][0]
    for low, high, alias in ((28, 31, "MS"), (89, 92, f"QS-{MONTHS[(start.month - 1) % 3]}"),
                             (365, 366, f"YS-{MONTHS[start.month - 1]}")):
        if low <= days <= high:
            return alias
    return pd.tseries.frequencies.to_offset(pd.Timedelta(int(np.median(steps)), "ns")).freqstr


def _months_per_period(offset) -> int | None:
    """How many calendar months one period of a month, quarter or year offset spans (None: another kind)."""
    o = pd.tseries.offsets
    for kinds, months in (((o.MonthBegin, o.MonthEnd), 1), ((o.QuarterBegin, o.QuarterEnd), 3),
                          ((o.YearBegin, o.YearEnd), 12)):
        if isinstance(offset, kinds):
            return months * offset.n
    return None


def shift_stamps(index: pd.DatetimeIndex, k: int, freq) -> pd.DatetimeIndex:
    """``index`` moved ``k`` periods of ``freq``. Monthly, quarterly and yearly stamps anchored inside
    their period (the 15th of each month) keep their day (clamped to the month's length), where adding the
    pandas offset would roll them onto its anchor (the 1st); month ends stay month ends. Fixed lengths move by
    their length, so weekly stamps keep their weekday (a series of Mondays in a panel read as weeks ending on
    Sunday)."""
    offset = _step(freq)
    if _months_per_period(offset) is not None or _fixed_length(offset) is not None:
        stamps = index.to_numpy(dtype="datetime64[ns]")
        return pd.DatetimeIndex(_stamps_at(stamps, np.full(len(stamps), k), offset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets pandas cannot vectorize
        return index + k * offset


def period_seconds(freq) -> float | None:
    """The nominal length in seconds of one period of a date frequency, averaged over a year of periods;
    None for integer time steps (they carry no unit) or an unknown frequency."""
    offset = _step(freq)
    if offset is None or isinstance(offset, (int, np.integer)):
        return None
    start = pd.Timestamp("2001-01-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = start + offset  # rolls onto the offset's anchor
        n = max(1, int(pd.Timedelta(days=366) / max(first + offset - first, pd.Timedelta(seconds=1))))
        return float((first + n * offset - first).total_seconds()) / n


def describe_freq(freq: str | int | None) -> str:
    """``'MS (monthly)'``, ``'integer steps of 1'`` or ``'unknown'``."""
    if freq is None:
        return "unknown"
    if isinstance(freq, (int, np.integer)):
        return f"integer steps of {freq}"
    alias = str(freq).lstrip("0123456789")
    for prefix, name in _FREQ_NAMES:
        if alias.startswith(prefix):
            return f"{freq} ({name})"
    return str(freq)
