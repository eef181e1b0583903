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
import io
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewcast import run
from fewcast.baselines import check_methods
from fewcast.calendar import check_same_freq, future_times
from fewcast.config import EvalConfig, Settings
from fewcast.data import PanelData
from fewcast.engine import Layout
from fewcast.errors import InputError, PanelWarning, RunWarning
from fewcast.evaluation import Results, evaluate
from fewcast.experiment import Experiment
from fewcast.forecasting import Forecasts, Method, catalog, combined, named
from fewcast.frame import from_frame
from fewcast.intervals import MIN_ERRORS, bands, calibrated, check_request, floors, level_taus, shorter, volatility
from fewcast.intervals import columns as interval_columns
from fewcast.learners import GradientLearner, Pretrain
from fewcast.models import check_log_values
from fewcast.selection import COLUMNS, Selection, select
from fewcast.tasks import recorded_split
from fewcast.windows import Windows


class FewShotForecaster:
    """Meta-learn a forecaster on a panel, then adapt it to new series in a few gradient steps."""

    def __init__(self, model: str = "mlp", learner: str = "metasgd", input_size: int | None = None,
                 h: int | None = None, settings: Settings | None = None, **options):
        self.settings = copy.deepcopy(settings) if settings is not None else Settings()
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
        self.settings.check()
        self.learner: GradientLearner | None = None
        self.pretrained: Pretrain | None = None
        self.state: dict = {}  # what fit learned: the data's frequency, columns, split (and source), the method
        self.selection: Selection | None = None  # how fit chose the method on validation
        self.calibration: dict[str, np.ndarray] = {}  # method -> its interval calibration; intervals.SHORT
        self.logs: dict[str, list[dict]] = {}  # training curves of fit (or of the run it was loaded from)

    # -- training -----------------------------------------------------------------------------------
    def _panel_data(self, df: pd.DataFrame, id_col: str, time_col: str, target_col: str, fill: bool) -> PanelData:
        s = self.settings
        if not s.data.h:
            raise InputError("set the forecast horizon: FewShotForecaster(h=...)")
        panel = from_frame(df, id_col, time_col, target_col, fill=fill, min_length=s.data.h + 2)
        return PanelData.from_panel("frame", panel, s.data.h, s.data.season_length)

    def fit(self, df: pd.DataFrame, id_col: str | None = None, time_col: str | None = None,
            target_col: str | None = None, progress: bool = False) -> FewShotForecaster:
        """Pre-train and meta-train on the long frame ``df`` (holdout split recorded in ``self.state``); the
        column names default to the settings' (``unique_id``, ``ds``, ``y`` unless given)."""
        s = self.settings
        id_col, time_col, target_col = (id_col or s.data.id_col, time_col or s.data.time_col,
                                        target_col or s.data.target_col)
        data = self._panel_data(df, id_col, time_col, target_col, s.data.fill)
        s.update("data", {"id_col": id_col, "time_col": time_col, "target_col": target_col,
                          "season_length": data.season_length})
        s.update("eval", {"protocol": "holdout"})
        log = print if progress else (lambda *_: None)
        experiment = Experiment(s, data, progress=progress, log=log)
        self.settings = s = experiment.settings  # as derived for the data
        self.pretrained, learners = experiment.train()
        self.selection = select(experiment) if s.train.select else None
        self.learner = learners[s.learner.name]
        self.calibration = self.selection.calibration if self.selection else {}
        self.logs = experiment.logs
        split = experiment.split
        self.state = {"freq": data.visible.freq, "columns": [id_col, time_col, target_col],
                      "split": {"train": split.train.tolist(), "val": split.val.tolist(), "test": split.test.tolist()},
                      "method": self.selection.chosen if self.selection else None}
        return self

    def _check_fitted(self):
        if self.learner is None:
            raise InputError("this forecaster is not fitted: call fit(df) or FewShotForecaster.load(path)")

    # -- forecasting --------------------------------------------------------------------------------
    def methods(self) -> dict[str, Method]:
        """Every way this forecaster forecasts, by the name its results tables give it (``metasgd``,
        ``pretrained_finetune_all``, ``metasgd_auto``, ``theta``, ``metasgd+autoets``, ...)."""
        self._check_fitted()
        return catalog(self.settings, self.learner, self.pretrained, self._device())

    def predict(self, df: pd.DataFrame, h: int | None = None, *, method: str | None = None,
                combine: list[str] | tuple[str, ...] = (), level: list[float] | tuple[float, ...] = (),
                quantiles: list[float] | tuple[float, ...] = (), id_col: str | None = None,
                time_col: str | None = None, target_col: str | None = None, fill: bool | None = None) -> pd.DataFrame:
        """Forecast the next ``h`` values of every series of ``df`` after adapting to its own history.

        Returns a long frame (id, time, ``fewcast``) under the input's column names, future times
        continuing each series' frequency. ``method`` names the forecast (see :meth:`methods`; default, or
        ``"fewcast"``: the one chosen on validation at :meth:`fit`, else the adapted learner).
        ``combine=["autoets"]`` adds a column ``fewcast+autoets``: the average of that forecast and the classical
        method fitted to the same history. ``fill``: fill gaps and NaN values of ``df`` (default: as at ``fit``).
        """
        s = self.settings
        combine, level, quantiles = (_listed(v) for v in (combine, level, quantiles))  # "autoets", 80: one each
        chosen = named(self.methods(), self._method_name(method))
        id_col, time_col, target_col = (id_col or s.data.id_col, time_col or s.data.time_col,
                                        target_col or s.data.target_col)
        h = _horizon(h, s.data.h)
        check_methods(combine)
        check_request(level, quantiles)
        panel = from_frame(df, id_col, time_col, target_col, fill=s.data.fill if fill is None else fill)
        check_log_values(panel, s.model, target_col)
        check_same_freq(panel, self.state.get("freq"), time_col)
        zero_shot = int((Windows(panel, s.data.input_size, s.data.h).counts == 0).sum())
        if zero_shot:
            warnings.warn(f"{zero_shot} of {panel.n_series} series are too short for one window of "
                          f"{s.data.input_size} -> {s.data.h}: forecast zero-shot (no adaptation)",
                          PanelWarning, stacklevel=2)
        columns = {"fewcast": chosen, **{f"fewcast+{m}": combined(chosen, m) for m in combine}}
        made = Forecasts(panel, Layout.of(s.data), self._device()).make(list(columns.values()))
        future = future_times(panel, h, self.state.get("freq")).reshape(-1)  # (series * h,)
        out = pd.DataFrame({id_col: np.repeat(panel.ids, h), time_col: panel.stamps(future)})
        if isinstance(df[id_col].dtype, pd.CategoricalDtype):  # ids keep their categories, as statsforecast's do
            out[id_col] = out[id_col].astype(df[id_col].dtype)
        for column, m in columns.items():
            out[column] = made[m.name][:, :h].reshape(-1)  # (series, h) flattened like the rows
        taus = [*level_taus(level), *quantiles]
        if taus:
            scale, floor = volatility(panel, Layout.of(s.data), self.calibration), floors(panel)  # (series,)
            short = shorter(panel, self.calibration)  # (series,)
            for column, m in columns.items():
                if m.name not in self.calibration:
                    raise InputError(f"no intervals for {m.name}: {self._calibrated()}")
                q = bands(made[m.name][:, :h], scale, self.calibration, m.name, taus, floor, short)
                for k, name in enumerate(interval_columns(column, level, quantiles)):
                    out[name] = q[:, :, k].reshape(-1)
        return out

    def _method_name(self, method: str | None) -> str:
        """The name ``predict`` forecasts with: ``method``, or for None or ``"fewcast"`` (evaluate's row) the one
        chosen at training, else the adapted learner."""
        if method is not None and not str(method).strip():
            raise InputError("method is empty; name one (`fewcast forecast --help` lists them) or leave it out")
        if method is not None and str(method).strip() != "fewcast":
            return method
        return self.state.get("method") or self.settings.learner.name

    def _device(self) -> torch.device:
        """Where the weights are: the CPU after load(), the experiment's device after fit() or evaluate_run()
        (a GPU, say)."""
        return next(self.learner.parameters()).device

    def evaluate(self, df: pd.DataFrame, id_col: str | None = None, time_col: str | None = None,
                 target_col: str | None = None) -> pd.DataFrame:
        """The results table (every method) on the meta-test series recorded at ``fit`` and any series of ``df``
        it never saw."""
        return self.evaluate_run(df, id_col, time_col, target_col).table

    def evaluate_run(self, df: pd.DataFrame, id_col=None, time_col=None, target_col=None,
                     evaluation: EvalConfig | None = None, fill: bool | None = None) -> Results:
        """Everything :meth:`evaluate` measures (forecasts, curves, timings), with ``evaluation`` settings
        (default: those of the forecaster) and ``fill`` for ``df`` (default: as at ``fit``)."""
        s = self.settings
        columns = id_col or s.data.id_col, time_col or s.data.time_col, target_col or s.data.target_col
        data = self._panel_data(df, *columns, s.data.fill if fill is None else fill)
        return self.score(data, evaluation)

    def score(self, data: PanelData, evaluation: EvalConfig | None = None) -> Results:
        """The results of every method on the meta-test series of ``data`` (the protocol of ``evaluation``),
        with what :meth:`predict` gives as the ``fewcast`` row."""
        self._check_fitted()
        check_same_freq(data.visible, self.state.get("freq"), self.settings.data.time_col)
        reported = copy.deepcopy(self.settings)
        if evaluation is not None:
            reported.eval = copy.deepcopy(evaluation)
        here = copy.deepcopy(reported)
        if here.train.device.startswith("cuda") and not torch.cuda.is_available():
            here.update("train", {"device": "cpu"})  # trained on a GPU, scored on this machine's CPU
        recorded = self.state.get("split")
        split = recorded_split(data.visible.ids, recorded) if recorded and here.eval.protocol == "holdout" else None
        experiment = Experiment(here, data, log=lambda *_: None, trained=True, split=split)
        experiment.logs = self.logs
        chosen = self.selection
        if chosen is None and self.state.get("method"):
            chosen = Selection(pd.DataFrame(columns=COLUMNS), self.state["method"], 0, data.h)
        results = evaluate(experiment, self.pretrained, {here.learner.name: self.learner}, chosen,
                           self.calibration)  # on its device
        results.settings = reported
        return results

    def _calibrated(self) -> str:
        """Which methods have intervals, and why none has where none has."""
        methods = self.methods()
        which = sorted(n for n in calibrated(self.calibration) if all(p in methods for p in n.split(",")))
        if which:
            more = f" and {len(which) - 12} more" if len(which) > 12 else ""
            return (f"they are calibrated on validation at training (`select`), for {', '.join(which[:12])}{more} "
                    f"(`fewcast forecast --help` lists the methods)")
        if not self.settings.train.select:
            return "they are calibrated by the choice on validation at training, which this run skipped (`select`)"
        held = len(self.state.get("split", {}).get("val", []))
        return (f"they are calibrated at training on at least {MIN_ERRORS} validation forecasts, and this run's "
                f"{held} validation series gave fewer; train on more series, or hold more out for validation "
                f"(`val_frac`, now {self.settings.train.val_frac})")

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the weights, learned rates, intervals' calibration and settings as a checkpoint (safetensors,
        no pickle), with the validation ranking where :meth:`fit` made one."""
        self._check_fitted()
        ranking = {} if self.selection is None else {"selection": self.selection.to_csv()}
        run.save_networks(path, self.learner, self.pretrained,
                          {"phase": run.DONE, **self.state, **ranking, "calibration": self.calibration}, self.settings)

    @classmethod
    def load(cls, path) -> FewShotForecaster:
        """What :meth:`save` wrote to ``path``, or the run directory ``fewcast train --out`` wrote (its
        checkpoint, and the validation ranking in ``selection``)."""
        directory = Path(path)
        checkpoint = directory / run.CHECKPOINT if (directory / run.CHECKPOINT).is_dir() else directory
        settings, state, learner, pretrained = run.load_networks(checkpoint)
        fc = cls(settings.model.name, settings.learner.name, settings=settings)
        fc.state = {k: v for k, v in state.items() if k in ("source", "freq", "columns", "split", "method")}
        fc.learner, fc.pretrained = learner, pretrained
        fc.calibration = state.get("calibration", {})
        ranking = directory / run.SELECTION
        if checkpoint == directory and "selection" in state:  # what save wrote
            fc.selection = Selection.from_csv(io.StringIO(state["selection"]))
        elif checkpoint != directory and ranking.exists() and fc.state.get("method"):
            try:
                fc.selection = Selection.from_csv(ranking)
            except (ValueError, KeyError, IndexError) as exc:  # pandas' parser errors are ValueErrors
                warnings.warn(f"{ranking} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]}); the "
                              f"validation ranking is left out, the chosen forecast ({fc.state['method']}) kept",
                              RunWarning, stacklevel=2)
        return fc


def _horizon(h, trained: int) -> int:
    """The steps ``predict`` forecasts: ``h`` (None: the ``trained`` horizon), a whole number from 1 to it."""
    h = trained if h is None else h
    if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
        raise InputError(f"h={h!r}: give the number of steps ahead as a whole number from 1 to {trained} "
                         f"(the trained horizon)")
    if h > trained:
        raise InputError(f"h={h} is longer than the trained horizon {trained}: the model forecasts {trained} "
                         f"steps directly; retrain with a longer h")
    return int(h)


def _listed(value) -> list:
    """``value`` as a list: one name or number alone (``"autoets"``, ``80``) is a list of one, None none."""
    if value is None:
        return []
    return [value] if isinstance(value, (str, numbers.Number)) else list(value)


__all__ = ["FewShotForecaster"]
