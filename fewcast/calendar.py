"""Calendar arithmetic: frequencies and season lengths, gaps, future time stamps and time zones.

A panel's time stamps are datetime64 (dates) or int64 (integer steps). A frequency is a pandas offset
alias (``"MS"``, ``"W-SUN"``, ``"h"``) or, for integer steps, the step itself. Months, quarters and years
move by period arithmetic that keeps a stamp's day in its month; fixed lengths (days, hours, weeks) move
by their length. Time stamps with a time zone are held naive, in their zone's wall clock or in UTC
(:class:`Zone`), and given back in their zone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fewcast.errors import InputError

if TYPE_CHECKING:
    from fewcast.panel import Panel

# one row per frequency: the alias prefix (after any multiple: "2h"), its name, and its season length (the
# periods of the cycle that repeats: 24 hours a day, 7 days a week, 12 months a year); checked in order
FREQUENCIES = (("min", "minutely", 60), ("h", "hourly", 24), ("D", "daily", 7), ("B", "business daily", 5),
               ("W", "weekly", 52), ("M", "monthly", 12), ("Q", "quarterly", 4), ("Y", "yearly", 1),
               ("A", "yearly", 1), ("s", "secondly", 1))


def _frequency(freq) -> tuple[str, str, int] | None:
    """The :data:`FREQUENCIES` row of a date frequency alias, or None."""
    alias = str(freq).lstrip("0123456789")
    return next((row for row in FREQUENCIES if alias.startswith(row[0])), None)


def guess_season(freq) -> int:
    """The season length of a frequency (1 for integer steps, no frequency or one without a cycle)."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1
    row = _frequency(freq)
    return row[2] if row else 1


def describe_freq(freq: str | int | None) -> str:
    """``'MS (monthly)'``, ``'integer steps of 1'`` or ``'unknown'``."""
    if freq is None:
        return "unknown"
    if isinstance(freq, (int, np.integer)):
        return f"integer steps of {freq}"
    row = _frequency(freq)
    return f"{freq} ({row[1]})" if row else str(freq)


VOTE_RUN = 8  # consecutive stamps per vote when a whole series has gaps: 8 business days span a weekend
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def infer_freq(ds: np.ndarray, offsets: np.ndarray) -> str | int | None:
    """A frequency guess: a pandas offset alias for dates, the common step for integer time.

    Dates: pandas' guess on the longest series; when every one of them has a gap (a missing month, a
    holiday in business days), the most common guess over runs of ``VOTE_RUN`` consecutive stamps; when
    no run fits a pandas frequency, a typical step of 28-31, 89-92 or 365-366 days is months, quarters or
    years (month ends anchored at the period's end; stamps anchored inside the period, such as the 15th of
    each month, keep their day: see :func:`shift_stamps`), and any other step is a fixed length."""
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
    if all(r.is_month_end.all() for r in runs):  # month ends: the end-anchored offsets keep them at month ends
        spans = ("ME", f"QE-{MONTHS[(start.month - 1) % 3 + 9]}", f"YE-{MONTHS[start.month - 1]}")
    else:
        spans = ("MS", f"QS-{MONTHS[(start.month - 1) % 3]}", f"YS-{MONTHS[start.month - 1]}")
    for (low, high), alias in zip(((28, 31), (89, 92), (365, 366)), spans):
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
    offset = period_step(freq)
    if _months_per_period(offset) is not None or _fixed_length(offset) is not None:
        stamps = index.to_numpy(dtype="datetime64[ns]")
        return pd.DatetimeIndex(stamps_at(stamps, np.full(len(stamps), k), offset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets pandas cannot vectorize
        return index + k * offset


def period_seconds(freq) -> float | None:
    """The nominal length in seconds of one period of a date frequency, averaged over a year of periods;
    None for integer time steps (they carry no unit) or an unknown frequency."""
    offset = period_step(freq)
    if offset is None or isinstance(offset, (int, np.integer)):
        return None
    start = pd.Timestamp("2001-01-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = start + offset  # rolls onto the offset's anchor
        n = max(1, int(pd.Timedelta(days=366) / max(first + offset - first, pd.Timedelta(seconds=1))))
        return float((first + n * offset - first).total_seconds()) / n


def period_step(freq):
    """One period of ``freq`` as something a timestamp array can be shifted by: a pandas offset, or an int."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return freq
    return pd.tseries.frequencies.to_offset(freq)


def _within_series(n: int, offsets: np.ndarray) -> np.ndarray:
    """``(n - 1,)`` bool: the step from row ``i`` to ``i + 1`` stays inside one series."""
    same = np.ones(n - 1, bool)
    same[offsets[1:-1] - 1] = False  # the step from a series' last row to the next series' first
    return same


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
    same = _within_series(n, offsets)
    step = period_step(freq)
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


def time_crowded(ds: np.ndarray, offsets: np.ndarray, freq) -> np.ndarray:
    """``(rows - 1,)`` bool: the step from row ``i`` to ``i + 1`` stays inside one series and is shorter than
    two thirds of a period of ``freq`` (its nominal length, :func:`period_seconds`; integer steps: the step):
    a series at a higher frequency than the panel's, such as a daily one among weekly series. Months of 28
    days, business days over a weekend and stamps anchored anywhere in their period are not. Without a
    frequency of known length, no step is."""
    n = len(ds)
    step = period_step(freq)
    length = int(step) if isinstance(step, (int, np.integer)) else period_seconds(freq)
    if n < 2 or not length:
        return np.zeros(max(n - 1, 0), bool)
    if not isinstance(step, (int, np.integer)):
        length *= 1e9  # nanoseconds, as the stamps' steps
    same = _within_series(n, offsets)
    d = (ds[1:] - ds[:-1]).astype(np.int64)  # (rows - 1,) integer steps or nanoseconds
    return same & (1.5 * d < length)


_DAY = np.timedelta64(1, "D")


def periods_since(t: np.ndarray, first: np.ndarray, offset) -> np.ndarray | None:
    """``(rows,)`` whole periods of ``offset`` from ``first`` to each stamp ``t`` (rounded down; a stamp off
    the grid is caught by comparing :func:`stamps_at` with it), or None for an offset this does not cover."""
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


def stamps_at(first: np.ndarray, k: np.ndarray, offset) -> np.ndarray:
    """The stamps ``k`` periods of ``offset`` after ``first`` (elementwise), for the offsets
    :func:`periods_since` covers. Months, quarters and years keep the first stamp's day (clamped to each month's
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


def check_same_freq(panel: Panel, trained, time_col: str) -> None:
    """An InputError when new data runs at another frequency than the data the model was trained on (weekly
    data for a monthly model): its windows would mean something else. Period lengths within a factor 1.5
    pass, so anchors (quarters starting in January or October, month starts or ends) do not matter; integer
    time steps carry no unit and are not compared."""
    new, old = period_seconds(panel.freq), period_seconds(trained)
    if new is None or old is None:
        return
    if not 1 / 1.5 <= new / old <= 1.5:
        raise InputError(f"column '{time_col}': the data is at a frequency of {describe_freq(panel.freq)}, but "
                         f"the model was trained on {describe_freq(trained)} data; forecast data of the frequency "
                         f"it was trained on (or train a model on this data)")


def future_times(panel: Panel, h: int, freq=None) -> np.ndarray:
    """``(series, h)`` time stamps after each series' last one, at the panel's (or the given) frequency."""
    freq = panel.freq if panel.freq is not None else freq
    last = panel.ds[panel.offsets[1:] - 1]  # (series,)
    steps = np.arange(1, h + 1)
    if panel.ds.dtype.kind in "iu":
        step = int(freq) if isinstance(freq, (int, np.integer)) else 1
        return last[:, None] + step * steps[None, :]
    if freq is None:
        raise InputError(f"cannot tell the frequency of column '{panel.columns.time_col}' to date the forecasts; "
                         f"give every series at least 3 regular time stamps")
    index = pd.DatetimeIndex(last)
    return np.stack([shift_stamps(index, k, freq).to_numpy() for k in steps], axis=1)  # (series, h)
