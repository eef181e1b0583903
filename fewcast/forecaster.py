"""``FewShotForecaster``: the scikit-learn / Nixtla style entry point.

    from fewcast import FewShotForecaster
    fc = FewShotForecaster(model="mlp", learner="metasgd", input_size=36, h=18, season_length=12)
    fc.fit(train_df)                     # long frame: unique_id, ds, y (renamable)
    future = fc.predict(new_df)          # unique_id, ds, fewcast: h future values per series
    fc.save("model_dir"); fc = FewShotForecaster.load("model_dir")

``fit`` splits the series by ``unique_id`` (meta-train / meta-validation / meta-test) and never trains on
the meta-test series nor on any series' last ``h`` points, so :meth:`evaluate` can score them honestly.
``predict`` adapts to every series of the new frame at once, on its own most recent windows, and forecasts
the ``h`` values after its last observation. A series with fewer than ``input_size`` points is left-padded
with its first value; one with no complete window is forecast zero-shot (a warning counts them).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import torch

from fewcast import checkpoint
from fewcast.baselines import check_methods, classical_forecasts
from fewcast.config import Settings
from fewcast.errors import InputError, PanelWarning
from fewcast.experiment import (
    Experiment,
    PanelData,
    Results,
    adaptation,
    check_adaptation,
    check_log_values,
    finetune_all_rows,
    forecast_series,
    learner_options,
)
from fewcast.learners import Pretrain, build_learner
from fewcast.models import build_from_config
from fewcast.panel import Panel, describe_freq, from_frame, period_seconds, shift_stamps
from fewcast.windows import Windows


class FewShotForecaster:
    """Meta-learn a forecaster on a panel, then adapt it to new series in a few gradient steps."""

    def __init__(self, model: str = "mlp", learner: str = "metasgd", input_size: int | None = None,
                 h: int | None = None, settings: Settings | None = None, **options):
        self.settings = settings or Settings()
        self.settings.update("model", {"name": model})
        self.settings.update("learner", {"name": learner})
        if input_size is not None:
            self.settings.update("data", {"input_size": input_size})
        if h is not None:
            self.settings.update("data", {"h": h})
        sections = self.settings.field_sections()
        for key, value in options.items():
            if key not in sections:
                raise InputError(f"unknown setting {key!r}; known: {', '.join(sorted(sections))}")
            self.settings.update(sections[key], {key: value})
        self.learner = None
        self.pretrained: Pretrain | None = None
        self.state: dict = {}
        self.logs: dict[str, list[dict]] = {}  # training curves of fit (or of the run it was loaded from)

    # -- training -----------------------------------------------------------------------------------
    def _panel_data(self, df: pd.DataFrame, id_col: str, time_col: str, target_col: str,
                    fitting: bool = True) -> PanelData:
        s = self.settings
        if not s.data.h:
            raise InputError("set the forecast horizon: FewShotForecaster(h=...)")
        panel = from_frame(df, id_col, time_col, target_col, fill=s.data.fill, min_length=s.data.h + 2)
        if not fitting:  # scoring a fitted model: the data must be at the frequency it was trained on
            check_same_freq(panel, self.state.get("freq"), time_col)
        data = PanelData.from_panel("frame", panel, s.data.h, s.data.season_length)
        s.update("data", {"id_col": id_col, "time_col": time_col, "target_col": target_col,
                          "season_length": data.season_length})
        if fitting:
            self.state.update(freq=panel.freq, columns=[id_col, time_col, target_col])
        return data

    def fit(self, df: pd.DataFrame, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
            progress: bool = False) -> FewShotForecaster:
        """Pre-train and meta-train on the long frame ``df`` (holdout split recorded in ``self.state``)."""
        data = self._panel_data(df, id_col, time_col, target_col)
        self.settings.update("eval", {"protocol": "holdout"})
        experiment = Experiment(self.settings, data, progress=progress, log=print if progress else (lambda *_: None))
        self.pretrained, learners = experiment.train(extra=False)
        self.learner = learners[self.settings.learner.name]
        self.logs = experiment.logs
        split = experiment.split
        self.state.update(split={"train": split.train.tolist(), "val": split.val.tolist(),
                                 "test": split.test.tolist()})
        return self

    def _check_fitted(self):
        if self.learner is None:
            raise InputError("this forecaster is not fitted: call fit(df) or FewShotForecaster.load(path)")

    # -- forecasting --------------------------------------------------------------------------------
    def predict(self, df: pd.DataFrame, h: int | None = None, adapt_steps: int | None = None,
                id_col: str | None = None, time_col: str | None = None, target_col: str | None = None,
                combine: list[str] | tuple[str, ...] = (), adapt: str = "learned") -> pd.DataFrame:
        """Forecast the next ``h`` values of every series of ``df`` after adapting to its own history.

        Returns a long frame (id, time, ``fewcast``) under the input's column names, future times
        continuing each series' frequency. ``combine=["autoets"]`` adds a column ``fewcast+autoets``: the
        average of the adapted forecast and that classical method fitted to the same history.
        ``adapt="finetune_all"`` forecasts as the results table's ``pretrained_finetune_all`` (the
        pre-trained network, plain SGD on every window) instead of the meta-learner, ``adapt="auto"`` as its
        ``<learner>_auto`` (that on a series with at least ``eval.finetune_all_min_shots`` windows, the
        meta-learner on the others): use the one that scored best in :meth:`evaluate`.
        """
        self._check_fitted()
        s = self.settings
        id_col, time_col, target_col = (id_col or s.data.id_col, time_col or s.data.time_col,
                                        target_col or s.data.target_col)
        h = h or s.data.h
        if h > s.data.h:
            raise InputError(f"h={h} is longer than the trained horizon {s.data.h}: the model forecasts "
                             f"{s.data.h} steps directly; retrain with a longer h")
        check_methods(combine)
        check_adaptation(adapt)
        panel = from_frame(df, id_col, time_col, target_col, fill=s.data.fill)
        check_log_values(panel, s, target_col)
        check_same_freq(panel, self.state.get("freq"), time_col)
        yhat = self.forecast_panel(panel, adapt_steps, adapt)[:, :h]  # (series, h)
        future = future_times(panel, h, self.state.get("freq")).reshape(-1)  # (series * h,)
        future = panel.stamps(future)  # in the input's time zone, when it had one
        out = pd.DataFrame({id_col: np.repeat(panel.ids, h), time_col: future, "fewcast": yhat.reshape(-1)})
        for method, other in classical_forecasts(panel, h, s.data.season_length or 1, list(combine)).items():
            out[f"fewcast+{method}"] = ((yhat + other) / 2).reshape(-1)  # (series, h) flattened like the rows
        return out

    def forecast_panel(self, panel: Panel, adapt_steps: int | None = None, adapt: str = "learned") -> np.ndarray:
        """``(series, h)`` adapted forecasts of the ``h`` points after each series of ``panel``."""
        s = self.settings
        check_adaptation(adapt)
        zero_shot = int((Windows(panel, s.data.input_size, s.data.h).counts == 0).sum())
        if zero_shot:
            warnings.warn(f"{zero_shot} of {panel.n_series} series are too short for one window of "
                          f"{s.data.input_size} -> {s.data.h}: forecast zero-shot (no adaptation)",
                          PanelWarning, stacklevel=3)
        if adapt != "auto":
            return self._adapted(panel, adapt_steps, adapt)
        long = finetune_all_rows(panel, s.data.input_size, s.data.h, s)  # (series,)
        yhat = np.empty((panel.n_series, s.data.h))
        for way, rows in (("finetune_all", np.flatnonzero(long)), ("learned", np.flatnonzero(~long))):
            if len(rows):
                yhat[rows] = self._adapted(panel.take(rows), adapt_steps, way)
        return yhat

    def _adapted(self, panel: Panel, adapt_steps: int | None, adapt: str, chunk: int = 8192) -> np.ndarray:
        """``(series, h)`` forecasts of ``panel`` adapted one way, ``chunk`` series at a time."""
        s = self.settings
        learner, shots, steps = adaptation(s, self.learner, self.pretrained.model, adapt, self._device())
        steps = adapt_steps if adapt_steps is not None else steps
        return forecast_series(learner, panel, s, s.data.h, s.data.season_length or 1, shots, steps, self._device(),
                               chunk)

    def _device(self) -> torch.device:
        """Where the weights are: the CPU after load(), the experiment's device after fit() or evaluate_run()
        (a GPU, say)."""
        return next(self.learner.parameters()).device

    def evaluate(self, df: pd.DataFrame, id_col: str | None = None, time_col: str | None = None,
                 target_col: str | None = None) -> pd.DataFrame:
        """The results table (every method) on the meta-test series recorded at ``fit``."""
        return self.evaluate_run(df, id_col, time_col, target_col).table

    def evaluate_run(self, df, id_col=None, time_col=None, target_col=None) -> Results:
        self._check_fitted()
        s = self.settings
        data = self._panel_data(df, id_col or s.data.id_col, time_col or s.data.time_col,
                                target_col or s.data.target_col, fitting=False)
        here = s
        if s.train.device.startswith("cuda") and not torch.cuda.is_available():
            here = copy.deepcopy(s)  # trained on a GPU, scored on this machine's CPU
            here.update("train", {"device": "cpu"})
        experiment = Experiment(here, data, log=lambda *_: None)
        experiment.logs = self.logs
        results = experiment.evaluate(self.pretrained, {s.learner.name: self.learner})  # moves them to its device
        results.settings = s
        return results

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the weights, learned rates and settings as a checkpoint (safetensors, no pickle)."""
        self._check_fitted()
        tensors = {f"learner.{k}": v for k, v in self.learner.state_dict().items()}
        tensors.update({f"pretrained.{k}": v for k, v in self.pretrained.state_dict().items()})
        checkpoint.save(path, tensors, {"phase": "done", **self.state}, self.settings)

    @classmethod
    def load(cls, path) -> FewShotForecaster:
        tensors, state, settings = checkpoint.load(path)
        if state.get("phase") != "done":
            raise InputError(f"the training run in {path} is not finished (it stopped in phase "
                             f"{state.get('phase')!r}); continue it with `fewcast train ... --resume`")
        fc = cls(settings.model.name, settings.learner.name, settings=settings)
        fc.state = {k: v for k, v in state.items() if k in ("freq", "columns", "split")}
        def experiment_model():
            return build_from_config(settings.model, settings.data.input_size, settings.data.h)

        fc.pretrained = Pretrain(experiment_model(), loss=settings.learner.loss)
        fc.learner = build_learner(settings.learner.name, experiment_model(), **learner_options(settings.learner))
        for prefix, module in (("learner.", fc.learner), ("pretrained.", fc.pretrained)):
            try:
                module.load_state_dict(checkpoint.section(tensors, prefix), strict=True)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise InputError(f"checkpoint {path} does not fit its own settings: {first}") from None
        return fc


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


__all__ = ["FewShotForecaster", "check_same_freq", "future_times"]
