"""Prediction intervals and quantiles: each forecast's errors on the validation cut, scaled by each series'
own volatility, turned into quantiles of a new series' forecast.

The validation cut (:mod:`fewcast.selection`) forecasts series the networks never trained on, from networks
trained on the data before the horizon scored. For each method and each step ahead, the errors
``(y - yhat) / scale`` of those series (``scale``: a series' mean absolute seasonal difference, the MASE
denominator) give empirical quantiles on the grid :data:`TAUS`: a split-conformal calibration whose
intervals widen with each series' own volatility. The training series' horizons the choice also scores lend
the errors' shape (their distribution and how it grows step by step), never their overall width. A new
history shorter than every validation history of the latest cut (a cold start) cannot show the volatility a
long one does: its scale is its recent volatility (over its last ``input_size + season_length`` points)
times the validation series' median ratio of their whole history's volatility to their recent one
(:func:`short_history`, :func:`volatility`), so that its intervals are in the units they were calibrated in;
and its quantiles come from a second calibration, of the same validation and training series forecast from
their last :func:`short_length` points (:func:`short_name`), whose errors are a short history's own: larger
forecast errors, a noisier volatility.
A new series' quantile ``tau`` at step ``j`` is ``yhat[j] + scale * q_j(tau)``, its ``level`` % interval the
quantiles ``(1 -+ level/100) / 2``. Quantiles grow with ``tau`` by construction, so a lower one is never above
a higher one. A method needs at least :data:`MIN_ERRORS` validation forecasts (series times cuts) to be
calibrated.
"""

from __future__ import annotations

import numbers

import numpy as np

from fewcast.errors import InputError
from fewcast.metrics import seasonal_scale
from fewcast.panel import Panel

TAUS = np.arange(1, 200) / 200  # 0.005, 0.010, ..., 0.995: levels up to 99 %
MIN_ERRORS = 10  # fewer validation forecasts than this: no calibration for the method
TRIM = 0.01  # the share of largest absolute errors a step's spread and a group's level leave out


def calibrate(truth: np.ndarray, forecasts: dict[str, np.ndarray], scale: np.ndarray,
              cut: np.ndarray | None = None, count: str = "rows", own: np.ndarray | None = None,
              trim: float = TRIM) -> dict[str, np.ndarray]:
    """Each method's quantiles of scaled errors, ``(len(TAUS), h)``, from ``truth`` and its forecasts
    ``(series, h)`` (rows with a scale that is zero or unknown left out); ``cut``: each row's validation
    cut, 1 for the horizon just before the visible end (default: all 1); ``own``: the rows whose level the
    intervals take, the validation series' (default: all); the others, training series' rows, lend the
    shape of their errors only.

    The errors of all steps and cuts share one shape: each step's errors are divided by their size (the step's
    spread: over every row, each group's errors first brought to one size; a group: a cut's own rows, or a
    cut's other rows) and by their group's level (the size of those ratios), pooled, and the pooled quantiles
    multiplied back by each step's spread and the level of the latest cut's own rows (the latest that has own
    rows with finite errors): its
    series are as long as the ones forecast and, like them, were never trained on, while earlier cuts
    forecast from shorter histories, with larger errors, and a training series' errors may be smaller. With
    one cut and no other rows the level is 1. The quantile levels are widened by the split-conformal factor
    ``(n + 1) / n`` about the median (``n`` the forecasts pooled; ``count="errors"``: the errors, forecasts
    times steps), so that an interval holds its level on a new series rather than on the series it was
    measured on. A size is a mean absolute value with the largest ``trim`` share left out
    (:func:`trimmed_size`), so that a few diverging forecasts set neither the shape nor the level. A method
    needs :data:`MIN_ERRORS` own rows."""
    ok = np.isfinite(scale) & (scale > 0)  # (series,)
    cut = np.ones(len(scale), dtype=int) if cut is None else np.asarray(cut)
    own = np.ones(len(scale), dtype=bool) if own is None else np.asarray(own, dtype=bool)
    span = cut.max(initial=0) - cut.min(initial=0) + 1
    group = np.where(own, cut, cut + span)  # (series,) every other row's group after every own one
    out = {}
    for name, yhat in forecasts.items():
        errors = (truth[ok] - yhat[ok]) / scale[ok, None]  # (rows, h)
        finite = np.isfinite(errors).all(axis=1)
        errors, at = errors[finite], group[ok][finite]  # (rows, h), (rows,)
        if np.count_nonzero(own[ok][finite]) < MIN_ERRORS:
            continue
        n = errors.size if count == "errors" else len(errors)
        _, index = np.unique(at, return_inverse=True)  # each row's group, 0 the latest cut's own rows
        spread = trimmed_size(errors / _group_sizes(errors, index, trim)[index, None], trim)  # (h,) each step's
        spread = np.where(spread > 0, spread, 1.0)
        ratios = errors / spread  # (rows, h)
        level = _group_sizes(ratios, index, trim)  # (groups,)
        pooled = (ratios / level[index, None]).reshape(-1)  # (rows * h,)
        taus = np.clip(0.5 + (TAUS - 0.5) * (n + 1) / n, 0.0, 1.0)
        out[name] = np.quantile(pooled, taus)[:, None] * spread[None, :] * level[0]  # (taus, h)
    return out


SHORT = "~short-history"  # the calibration's entry for short histories: [[length, ratio]] (not a method)
RATIO_ENDS = np.linspace(0.5, 1.0, 9)  # where the validation histories are ended to measure the ratio


def _group_sizes(errors: np.ndarray, index: np.ndarray, trim: float) -> np.ndarray:
    """Each group's :func:`trimmed_size` over all its errors (``index``: each row's group), 1 where it is 0."""
    size = np.array([trimmed_size(errors[index == g].reshape(-1), trim) for g in range(index.max() + 1)])
    return np.where(size > 0, size, 1.0)  # (groups,)


def trimmed_size(errors: np.ndarray, trim: float) -> np.ndarray:
    """The mean absolute value of ``errors`` along its first axis, the largest ``trim`` share of them left
    out (``(rows, ...)`` -> ``(...)``), so that a few diverging forecasts do not set the size of all."""
    size = np.abs(errors)
    if not trim:
        return size.mean(axis=0)
    drop = int(trim * len(size))  # the largest ones, whole errors: never all of them
    return np.sort(size, axis=0)[: len(size) - drop].mean(axis=0)


def short_name(method: str) -> str:
    """The calibration's entry for ``method``'s forecasts from a short history (:func:`short_length`)."""
    return f"{SHORT}:{method}"


def short_length(layout) -> int:
    """The history the short-history calibration forecasts from: an input window and two seasons."""
    return layout.input_size + 2 * layout.season_length


def short_history(history: Panel, layout) -> np.ndarray:
    """``[[length, ratio]]`` from the validation histories ``history`` (the latest cut's, which the intervals' width
    comes from): a history shorter than ``length`` (the shortest of them) is short, and its recent volatility
    times ``ratio`` stands for the volatility a history as long as theirs would show. ``ratio``: the median of
    whole over recent volatility of the histories ended at :data:`RATIO_ENDS` of their length; at a single end
    it would carry that time's volatility (a season of the year) into every forecast, over the second half of
    the histories it keeps what persists (growth)."""
    m, window = layout.season_length, layout.input_size + layout.season_length
    ratios = []
    for end in RATIO_ENDS:
        part = history.slice(0, np.ceil(end * history.lengths).astype(np.int64))
        whole, recent = series_scale(part, m), series_scale(part, m, window)  # (series,)
        ok = np.isfinite(whole) & np.isfinite(recent) & (whole > 0) & (recent > 0)
        ok &= (part.lengths > window) | (history.lengths <= window)  # a 1 only where the history itself is short
        ratios.append(whole[ok] / recent[ok])
    ratios = np.concatenate(ratios)
    ratio = float(np.median(ratios)) if len(ratios) else 1.0
    return np.array([[float(history.lengths.min()), ratio]])


def calibrated(calibration: dict) -> list[str]:
    """The methods a calibration has intervals for."""
    return [name for name in calibration if not name.startswith(SHORT)]


def volatility(history: Panel, layout, calibration: dict) -> np.ndarray:
    """Each series' volatility for its intervals, ``(series,)``: :func:`series_scale` of its whole history;
    for a history shorter than the calibration's :data:`SHORT` length, its recent volatility (over its last
    ``layout.input_size + layout.season_length`` points) times the calibration's ratio. A calibration
    without that entry (a checkpoint from before it) scales every series by its whole history."""
    scale = series_scale(history, layout.season_length)
    short = shorter(history, calibration)
    if not short.any():
        return scale
    recent = series_scale(history, layout.season_length, layout.input_size + layout.season_length)
    return np.where(short, _short_entry(calibration)[1] * recent, scale)


def shorter(history: Panel, calibration: dict) -> np.ndarray:
    """``(series,)``: whether a history is shorter than the calibration's :data:`SHORT` length (all False for a
    calibration without it)."""
    entry = _short_entry(calibration)
    return history.lengths < entry[0] if entry is not None else np.zeros(history.n_series, dtype=bool)


def bands(yhat: np.ndarray, scale: np.ndarray, calibration: dict, method: str, taus, floor: np.ndarray,
          short: np.ndarray) -> np.ndarray:
    """:func:`quantiles` of ``method``'s forecasts ``yhat`` ``(series, h)``: ``(series, h, len(taus))``, by its
    calibration, and for the ``short`` histories (:func:`shorter`) by its short-history one where it has one."""
    q = quantiles(yhat, scale, calibration[method], taus, floor)
    table = calibration.get(short_name(method))
    if table is not None and short.any():
        q[short] = quantiles(yhat[short], scale[short], table, taus, floor[short])
    return q


def rescaled(history: Panel, calibration: dict) -> dict | None:
    """How :func:`volatility` treats ``history``: the calibration's short-history ``length`` and ``ratio``, how
    many of its ``of`` series are shorter (``series``) and whether they have short-history ``tables``
    (:func:`bands`); None for a calibration without the entry."""
    entry = _short_entry(calibration)
    if entry is None:
        return None
    length, ratio = entry
    return {"length": int(length), "ratio": ratio, "series": int((history.lengths < length).sum()),
            "of": int(history.n_series), "tables": any(name.startswith(short_name("")) for name in calibration)}


def _short_entry(calibration: dict) -> tuple[float, float] | None:
    """The calibration's :data:`SHORT` ``(length, ratio)`` (a checkpoint gives it back as a ``(1, 2)`` array),
    or None."""
    if SHORT not in calibration:
        return None
    length, ratio = np.asarray(calibration[SHORT], dtype=np.float64).reshape(-1)[:2]
    return float(length), float(ratio)


def series_scale(history: Panel, season_length: int, window: int = 0) -> np.ndarray:
    """Each series' volatility, ``(series,)``: its mean absolute seasonal difference over its last ``window``
    points (0: its whole history), the whole history's where that span's is zero or unknown (a flat recent
    stretch); for a series too short for one difference, the panel's median ratio of that scale to a
    series' level times its own last value."""
    scale = seasonal_scale(history, season_length)
    if window:
        recent = seasonal_scale(history.tail(window), season_length)  # (series,)
        scale = np.where(np.isfinite(recent) & (recent > 0), recent, scale)
    missing = ~np.isfinite(scale)
    if missing.any():
        last = np.abs(history.values[history.offsets[1:] - 1].astype(np.float64))  # (series,)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = scale / last
        known = np.isfinite(ratio) & (last > 0)
        typical = float(np.median(ratio[known])) if known.any() else 0.1
        scale = np.where(missing, typical * last, scale)
    return scale


def quantiles(yhat: np.ndarray, scale: np.ndarray, table: np.ndarray, taus, floor: np.ndarray | None = None
              ) -> np.ndarray:
    """The ``taus`` quantiles of forecasts ``yhat`` ``(series, h)``: ``(series, h, len(taus))``, steps past
    the calibrated horizon taking its last step's errors, and none below a series' ``floor`` (see
    :func:`floors`)."""
    taus = np.asarray(taus, dtype=np.float64)
    h = yhat.shape[1]
    steps = np.minimum(np.arange(h), table.shape[1] - 1)
    q = np.stack([np.interp(taus, TAUS, table[:, j]) for j in steps])  # (h, taus)
    out = yhat[:, :, None] + scale[:, None, None] * q[None]  # (series, h, taus)
    return out if floor is None else np.maximum(out, floor[:, None, None])


def floors(history: Panel) -> np.ndarray:
    """0 for a series that has never been below zero (sales, counts: no quantile goes below it), else -inf."""
    lowest = np.minimum.reduceat(history.values, history.offsets[:-1]) if len(history.values) else np.zeros(0)
    return np.where(lowest >= 0, 0.0, -np.inf)


def level_taus(levels) -> list[float]:
    """The quantiles that bound each level's interval, level by level (``[80, 95]`` -> 0.1, 0.9, 0.025, 0.975)."""
    return [tau for lv in levels for tau in ((100 - lv) / 200, (100 + lv) / 200)]


def check_request(levels, taus) -> None:
    """An InputError for a level or quantile that is not a number, a level outside (0, 99] or a quantile
    outside [0.005, 0.995]."""
    for what, values in (("level", levels), ("quantile", taus)):
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real)]
        if bad:
            raise InputError(f"{what} {bad[0]!r} is not a number; use e.g. level=[80, 95], quantiles=[0.1, 0.5, 0.9]")
    bad = [lv for lv in levels if not 0 < lv <= 99]
    if bad:
        raise InputError(f"level {bad[0]} is not a percentage in (0, 99]; use e.g. level=[80, 95]")
    bad = [t for t in taus if not TAUS[0] <= t <= TAUS[-1]]
    if bad:
        raise InputError(f"quantile {bad[0]} is outside [{TAUS[0]}, {TAUS[-1]}]; use e.g. quantiles=[0.1, 0.5, 0.9]")


def columns(alias: str, levels, taus) -> list[str]:
    """statsforecast's names: ``alias-lo-80``, ``alias-hi-80`` per level, then ``alias-q-10`` per quantile."""
    names = [f"{alias}-{side}-{_pct(lv)}" for lv in levels for side in ("lo", "hi")]
    return names + [f"{alias}-q-{_pct(100 * t)}" for t in taus]


def _pct(value: float) -> str:
    return f"{value:g}"
