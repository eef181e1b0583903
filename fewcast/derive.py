"""Settings derived from the data: what a setting left at 0 (or at its default, for data it cannot take)
becomes for a given panel, horizon and season, with the reason.

- ``h``: an embedded panel's official horizon; ``season_length``: its own, else guessed from the frequency.
- ``input_size``: two seasons and at least four thirds of ``h``, in whole seasons; for sub-daily data a
  week when the series hold enough windows of it (N-BEATS looked back 2 to 7 horizons).
- ``shots``: up to 20 support windows, as many as a quarter of the series hold in a whole task at the
  validation cut (``h`` points before the visible end); where not even one fits, a shorter input.
- ``ensemble_transforms``: a ``log`` member works on ``asinh`` instead when the panel has values below zero.

A value the settings give (not 0) is kept.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from fewcast.calendar import period_seconds
from fewcast.config import Settings

MAX_SHOTS = 20
TASK_SHARE = 0.25  # the share of series that must hold a whole meta-training task


def derive(settings: Settings, visible, h: int, season_length: int) -> tuple[Settings, list[str]]:
    """A copy of ``settings`` with every setting left to the data filled in for the panel ``visible`` (what
    models may see of each series), and one line per derived setting saying why."""
    out = copy.deepcopy(settings)
    reasons: list[str] = []
    d, t = out.data, out.train
    if not d.h or not d.season_length:
        reasons.append(f"h = {h}, season_length = {season_length}: "
                       + ("given" if d.h and d.season_length else "the panel's own, or guessed from its frequency"))
        out.update("data", {"h": h, "season_length": season_length})
    lengths = np.maximum(np.asarray(visible.lengths) - h, 0)  # (series,) what trains at the validation cut
    room = int(np.quantile(lengths, 1 - TASK_SHARE)) if len(lengths) else 0  # a quarter of the series are as long
    input_given = bool(d.input_size)
    if not input_given:
        size, why = _input_size(h, season_length, visible.freq, room)
        d.input_size = size
        reasons.append(f"input_size = {size}: {why}")
    if not t.shots:
        fits = room - d.input_size - 2 * h + 1  # support windows a task of such a series holds
        if fits < 1 and not input_given:
            shorter = max(1, room - 2 * h)
            reasons.append(f"input_size = {shorter}: {d.input_size} leaves no series room for a task "
                           f"(a quarter of them have {room} points before the validation cut)")
            d.input_size, fits = shorter, max(1, room - shorter - 2 * h + 1)
        t.shots = int(max(1, min(MAX_SHOTS, fits)))
        reasons.append(f"shots = {t.shots}: " + (f"the most, {MAX_SHOTS}" if fits >= MAX_SHOTS else
                       f"what a quarter of the series hold in a whole task ({room} points before the cut)"))
    if visible.n_series and float(np.min(visible.values)) < 0 and "log" in out.model.ensemble_transforms:
        out.model.ensemble_transforms = ["asinh" if k == "log" else k for k in out.model.ensemble_transforms]
        reasons.append("ensemble_transforms: asinh instead of log, the panel has values below zero")
    return out, reasons


def _input_size(h: int, m: int, freq, room: int) -> tuple[int, str]:
    """The input window for horizon ``h`` and season ``m`` (and the reason), within ``room`` points."""
    want = max(2 * m, math.ceil(4 * h / 3))
    if m > 1:
        want = m * math.ceil(want / m)  # whole seasons
    why = f"two seasons of {m} and at least 4/3 of h = {h}, in whole seasons" if m > 1 else f"4/3 of h = {h}"
    week = _week(freq)
    if week and week > want and room - week - 2 * h >= MAX_SHOTS:
        return week, f"a week ({week} steps) of sub-daily data, which the series hold"
    return want, why


def _week(freq) -> int | None:
    """Periods of sub-daily ``freq`` in a week (168 for hourly data), else None."""
    seconds = period_seconds(freq)
    if not seconds or seconds >= 86400:
        return None
    return round(7 * 86400 / seconds)
