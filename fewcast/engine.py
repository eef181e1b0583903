"""The inference engine: a network adapts to each series' own latest windows and forecasts its horizon.

A forecast problem per series (:class:`Problems`): its support windows (the last ``shots`` windows inside
its history, fewer for a short series, down to none: a zero-shot forecast) and its forecast input (the last
``input_size`` observations, left-padded with the first one when the history is shorter). A series whose
history never moved (all zero, or any constant) forecasts its own level. Every series
adapts at once, in chunks of series that bound the memory. The truth a problem may carry is used only for
scoring; nothing of it is passed to a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fewcast import seasonal
from fewcast.learners import GradientLearner
from fewcast.metrics import seasonal_scale
from fewcast.panel import Panel
from fewcast.tasks import Tasks
from fewcast.windows import Windows, scale, unscale


@dataclass(frozen=True)
class Layout:
    """How a panel becomes forecast problems: window, horizon, season length and scaling."""

    input_size: int
    h: int
    season_length: int = 1
    scaler: str = "mean_abs"
    deseasonalize: bool = False

    @classmethod
    def of(cls, data, h: int | None = None, season_length: int | None = None) -> Layout:
        """The layout of a :class:`~fewcast.config.DataConfig` (``h`` and ``season_length``: as resolved for a
        panel, when the settings leave them 0)."""
        return cls(data.input_size, h or data.h, season_length or data.season_length or 1, data.scaler,
                   data.deseasonalize)


@dataclass
class Problems:
    """One forecast per series: support windows and forecast input (raw), and the truth for scoring."""

    history: Panel
    truth: np.ndarray  # (series, h), never shown to a model
    x_spt: torch.Tensor  # (series, slots, input_size)
    y_spt: torch.Tensor  # (series, slots, h)
    m_spt: torch.Tensor  # (series, slots): 1 for a real support window, 0 for padding
    x_fc: torch.Tensor  # (series, 1, input_size)
    mase_scale: np.ndarray  # (series,)
    factor: np.ndarray | None = None  # (series, h) seasonal indices the forecasts are multiplied by
    level: np.ndarray | None = None  # (series,) a constant history's value (NaN otherwise): its forecast

    @property
    def shots_used(self) -> np.ndarray:
        return self.m_spt.sum(1).numpy().astype(int)


def make_problems(history: Panel, truth: np.ndarray, input_size: int, h: int, shots: int,
                  season_length: int, deseasonalize: bool = False) -> Problems:
    """Support = the last ``shots`` windows inside ``history``; forecast input = its last ``input_size``.
    Series with fewer windows are padded (``m_spt``) up to the most any series has, at most ``shots``.

    ``deseasonalize``: windows and forecast input come from the history divided by its own seasonal
    indices (:mod:`fewcast.seasonal`), and the forecasts are multiplied back by them."""
    raw, factor = history, None
    if deseasonalize:
        history, indices = seasonal.adjust(history, season_length)  # indices: (series, season_length)
        factor = seasonal.horizon_factors(indices, h)
    w = Windows(history, input_size, h)
    longest = int(w.counts.max()) if history.n_series else 0
    slots = max(min(shots, longest), 1)  # no slot that every series would pad
    real = np.minimum(w.counts, shots)  # (series,)
    j = np.arange(slots)[None, :]  # (1, slots)
    valid = j >= slots - real[:, None]  # right-aligned: the most recent windows last
    pos = history.offsets[:-1, None] + np.maximum(w.counts[:, None] - slots + j, 0)  # (series, slots)
    if len(w.view):
        x_spt, y_spt = w.gather(np.clip(pos, 0, len(w.view) - 1))
    else:
        x_spt = np.zeros((history.n_series, slots, input_size), np.float32)
        y_spt = np.zeros((history.n_series, slots, h), np.float32)
    x_spt = np.where(valid[..., None], x_spt, 0.0).astype(np.float32)
    y_spt = np.where(valid[..., None], y_spt, 0.0).astype(np.float32)
    fpos = history.offsets[1:, None] - input_size + np.arange(input_size)[None, :]  # (series, input_size)
    fpos = np.maximum(fpos, history.offsets[:-1, None])  # left-pad with the first observation
    x_fc = history.values[fpos][:, None, :]  # (series, 1, input_size)
    return Problems(raw, np.asarray(truth, dtype=np.float64), torch.from_numpy(x_spt), torch.from_numpy(y_spt),
                    torch.from_numpy(valid.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(x_fc)),
                    seasonal_scale(raw, season_length), factor, raw.constant_levels())


def problems_as_tasks(problems: Problems, scaler: str) -> Tasks:
    """Forecast problems with their truth as one scaled task per series (query = the forecast), support
    padding kept in ``m_spt``: how short validation series are scored the way they will be forecast. For a
    series with ``shots`` support windows it is the task :meth:`TaskSampler.latest` makes."""
    x_spt, y_spt, _ = scale(problems.x_spt, problems.y_spt, scaler)  # (series, slots, input_size), (..., h)
    truth = torch.from_numpy(problems.truth.astype(np.float32))[:, None, :]  # (series, 1, h)
    x_qry, y_qry, _ = scale(problems.x_fc, truth, scaler)  # (series, 1, input_size), (series, 1, h)
    n = len(problems.truth)
    return Tasks(x_spt, y_spt, x_qry, y_qry, np.arange(n), np.zeros(n, np.int64), problems.m_spt)


def forecast(learner: GradientLearner, problems: Problems, scaler: str, steps: int | None = None,
             device="cpu", chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Adapt on each series' support and forecast its horizon: ``(series, h)`` forecasts and the
    per-series support loss after adaptation (in the learner's loss, on scaled windows)."""
    preds, losses = forecast_curve(learner, problems, scaler, steps, device, chunk, every_step=False)
    return preds[-1], losses[-1]


def forecast_series(learner: GradientLearner, history: Panel, layout: Layout, shots: int,
                    steps: int | None = None, device="cpu", chunk: int = 8192) -> np.ndarray:
    """``(series, h)`` forecasts of every series of ``history`` adapted on its last ``shots`` windows for
    ``steps`` steps (None: the learner's own), built ``chunk`` series at a time: the support windows of a
    large panel (up to 200 a series) are never all in memory at once."""
    out = [np.zeros((0, layout.h))]
    for lo in range(0, history.n_series, chunk):
        part = history.take(np.arange(lo, min(lo + chunk, history.n_series)))
        problems = make_problems(part, np.zeros((part.n_series, layout.h)), layout.input_size, layout.h, shots,
                                 layout.season_length, layout.deseasonalize)
        out.append(forecast(learner, problems, layout.scaler, steps, device)[0])
    return np.concatenate(out)


def forecast_curve(learner: GradientLearner, problems: Problems, scaler: str, steps: int | None = None,
                   device="cpu", chunk: int = 2048, every_step: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts ``(steps + 1, series, h)`` and support losses ``(steps + 1, series)`` after 0, 1, ...,
    ``steps`` adaptation steps, in one pass (``every_step=False``: after the last step only, ``(1, ...)``)."""
    preds, losses = [], []
    learner.eval()
    for lo in range(0, problems.x_fc.shape[0], chunk):  # chunks of series bound the memory
        sl = slice(lo, lo + chunk)
        xs, ys, _ = scale(problems.x_spt[sl], problems.y_spt[sl], scaler)  # (n, slots, ...)
        xf, _, stats = scale(problems.x_fc[sl], None, scaler)  # (n, 1, input_size)
        xs, ys, xf, m = xs.to(device), ys.to(device), xf.to(device), problems.m_spt[sl].to(device)
        with torch.no_grad():
            pred, spt = learner.adapt_curve(xs, ys, xf, m, steps, every_step)  # (curve, n, 1, h), (curve, n)
        preds.append(torch.stack([unscale(p.cpu(), stats)[:, 0] for p in pred]))  # (steps + 1, n, h)
        losses.append(spt.cpu())
    preds = torch.cat(preds, 1).double().numpy()  # (curve, series, h)
    if problems.factor is not None:
        preds = preds * problems.factor[None]
    if problems.level is not None:  # a series that never moved forecasts its own level
        flat = ~np.isnan(problems.level)  # (series,)
        preds[:, flat] = problems.level[flat, None]
    return preds, torch.cat(losses, 1).double().numpy()
