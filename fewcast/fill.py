"""Filling what is missing in a panel: time stamps skipped inside a series, and NaN or infinite values.

Both run only when asked (``fill=True``); otherwise a gap or a missing value is an
:class:`~fewcast.errors.InputError`. Missing stamps are inserted on each series' own grid of the panel's
frequency (from its first stamp), then every missing value is interpolated linearly inside its series.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fewcast.calendar import describe_freq, period_step, periods_since, stamps_at
from fewcast.errors import InputError, PanelWarning, describe_ids
from fewcast.panel import concat_ranges


def insert_missing(codes, ds, y, gap, offsets, freq, uniques, time_col):
    """The rows with the missing time stamps of each gap inserted (target NaN, to be interpolated), or an
    InputError when a gapped series' stamps are not on one grid of ``freq`` from its first stamp."""
    step = period_step(freq)
    if step is None:
        raise InputError(f"column '{time_col}': the time stamps have no regular frequency to fill gaps on; "
                         f"add the missing rows yourself")
    gapped = np.unique(codes[:-1][gap])  # only the series with gaps, and only under --fill
    lengths = offsets[gapped + 1] - offsets[gapped]  # (gapped,)
    rows = concat_ranges(offsets[gapped], lengths)  # (their rows,)
    series = np.repeat(np.arange(len(gapped)), lengths)  # (their rows,) which gapped series
    first = ds[offsets[gapped]]  # (gapped,)
    k = periods_since(ds[rows], first[series], step)  # (their rows,) periods since the series' first stamp
    if k is None:  # an offset without period arithmetic here: pandas builds each series' grid
        return _insert_missing_by_series(codes, ds, y, gapped, offsets, freq, uniques, time_col)
    off_grid = stamps_at(first[series], k, step) != ds[rows]
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
    new_ds = stamps_at(first[grid_series[missing]], grid_k[missing], step)
    return _merge_rows(codes, ds, y, new_codes, new_ds)


def _insert_missing_by_series(codes, ds, y, gapped, offsets, freq, uniques, time_col):
    """:func:`insert_missing` for offsets without period arithmetic (semi-month, business month, ...):
    one pandas date range per gapped series."""
    new_codes, new_ds = [], []
    for c in gapped:
        t = ds[offsets[c] : offsets[c + 1]]
        grid = pd.date_range(t[0], t[-1], freq=period_step(freq)).to_numpy(dtype="datetime64[ns]")
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


LARGEST = 1e30  # past this magnitude, sums and squares of a window overflow the networks' 32-bit floats


def check_finite(y, codes, uniques, offsets, name: str, fill: bool) -> np.ndarray:
    """``y`` as float32, after refusing values too large for it and (with ``fill``) interpolating the NaN and
    infinite ones, or refusing them."""
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(y) & (np.abs(y) > LARGEST)
    if huge.any():
        raise InputError(f"column '{name}' has {int(huge.sum())} values beyond ±{LARGEST:.0e} (e.g. "
                         f"{y[huge][0]:.3g}) in series {describe_ids(uniques[np.unique(codes[huge])])}; "
                         f"rescale the column (divide it by a power of ten) or fix those values")
    bad_rows = ~np.isfinite(y)
    if not bad_rows.any():
        return y.astype(np.float32)
    bad = uniques[np.unique(codes[bad_rows])]
    if not fill:
        raise InputError(
            f"column '{name}' has {int(bad_rows.sum())} NaN or infinite values in series "
            f"{describe_ids(bad)}; fix them or pass `fill=True` to interpolate"
        )
    filled = interpolate(y, ~bad_rows, offsets[codes], offsets[codes + 1])
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


def interpolate(y: np.ndarray, good: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
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
    with np.errstate(invalid="ignore", over="ignore"):  # rows from a bad value are not used
        out = (1 - w) * y[lo].astype(np.float64) + w * y[hi].astype(np.float64)
    return np.where(good, y, np.where(has_before | has_after, out, np.nan))
