"""Scoring every forecasting method on held-out series: the results table, learning curves and samples.

The methods scored (:mod:`fewcast.forecasting`): the meta-learners adapted and zero-shot, the pre-trained
network zero-shot and fine-tuned as the learner adapts, a network from scratch, plain fine-tuning on every
window and ``<learner>_auto``, the classical baselines, and each ``eval.combine`` method averaged with the
adapted learner, ``<learner>_auto`` and ``pretrained_finetune_all``. Metrics per series, then averaged
(:mod:`fewcast.metrics`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fewcast.baselines import statistical_quantiles
from fewcast.config import Settings
from fewcast.engine import Problems, forecast, forecast_curve
from fewcast.errors import InputError
from fewcast.experiment import Experiment
from fewcast.forecasting import Forecasts, Method, catalog, classical, combined, named, network_methods
from fewcast.intervals import bands as interval_bands
from fewcast.intervals import floors, rescaled, shorter, volatility
from fewcast.learners import GradientLearner, Pretrain
from fewcast.metrics import QUANTILES, coverage, msis, score, smape, sql, wql
from fewcast.selection import Selection, select

COLUMNS = ["protocol", "method", "smape", "mase", "mae", "rmse", "n_series"]
# the intervals: coverage of the 80 % and 95 % ones, MSIS of the 95 % one, and the quantile losses over QUANTILES
INTERVAL_COLUMNS = ["coverage_80", "coverage_95", "msis", "sql", "wql"]
NATIVE = ("autoets", "seasonal_naive")  # scored with statsforecast's own intervals
SCORED_TAUS = (0.025, *QUANTILES, 0.975)


@dataclass
class Results:
    """Everything an experiment measured; ``table`` is the results table, ``methods`` what each row is."""

    settings: Settings
    table: pd.DataFrame
    logs: dict[str, list[dict]] = field(default_factory=dict)
    trajectory: pd.DataFrame | None = None
    shots_curve: pd.DataFrame | None = None
    samples: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    dataset: str = ""
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (series, h)
    test_ids: np.ndarray | None = None
    methods: dict[str, str] = field(default_factory=dict)  # method -> its description
    selection: Selection | None = None  # the forecast chosen on validation (the ``fewcast`` row)
    bands: dict[str, np.ndarray] = field(default_factory=dict)  # method -> quantiles SCORED_TAUS (series, h, taus)
    coverage_curve: pd.DataFrame | None = None  # method, nominal and observed coverage (%) of central intervals
    short_history: dict | None = None  # held-out histories rescaled as short: length, ratio, series, of, tables


def run(exp: Experiment) -> Results:
    """Pre-train, meta-train the run's learner, ``maml`` and any extra learners, choose the forecast on
    validation (with ``train.select``), then score every method and what ``fewcast forecast`` gives as the
    ``fewcast`` row."""
    pretrained, learners = exp.train(exp.learner_names())
    chosen = select(exp) if exp.settings.train.select else None
    if chosen is not None:
        exp.log(f"forecast chosen on validation: {chosen.reason()}")
    return evaluate(exp, pretrained, learners, chosen)


def scored_methods(exp: Experiment, pretrained: Pretrain,
                   learners: dict[str, GradientLearner]) -> tuple[list[Method], list[Method], list[Method]]:
    """What a results table scores, in its order: the network methods, the classical ones, combinations."""
    s = exp.settings
    networks = network_methods(s, learners, pretrained, exp.device, scratch=exp.new_model(seed_offset=1))
    if not s.forecast.finetune_all_shots:  # 0: plain fine-tuning on every window (and auto) is not scored
        networks = [m for m in networks if m.name not in ("pretrained_finetune_all", f"{s.learner.name}_auto")]
    by_name = {m.name: m for m in networks}
    combined_with = [by_name[n] for n in (s.learner.name, f"{s.learner.name}_auto", "pretrained_finetune_all")
                     if n in by_name]
    return (networks, [classical(m) for m in s.eval.classical],
            [combined(network, m) for m in s.eval.combine for network in combined_with])


def evaluate(exp: Experiment, pretrained: Pretrain, learners: dict[str, GradientLearner],
             selection: Selection | None = None, calibration: dict | None = None) -> Results:
    """Score every method on the meta-test series (holdout) or on every series (all-series), and with
    ``selection`` the method it chose as ``fewcast``; the intervals of each method ``calibration`` (default:
    the selection's) holds, and statsforecast's own of AutoETS and seasonal naive. The networks are moved to
    the experiment's device (weights loaded from a checkpoint arrive on the CPU)."""
    s = exp.settings
    if not exp.test_history.n_series:
        raise InputError(f"no series to score: the holdout protocol scores the series held out from training "
                         f"({s.train.test_frac:.0%} of them, by id) and series it never saw, none of these "
                         f"{exp.data.visible.n_series}; score every series' last {exp.h} points with --protocol "
                         f"all-series")
    for module in (pretrained, *learners.values()):
        module.to(exp.device)
    networks, baselines, combinations = scored_methods(exp, pretrained, learners)
    methods = [*networks, *baselines, *combinations]
    problems = exp.problems()
    if calibration is None:
        calibration = selection.calibration if selection is not None else {}
    made = Forecasts(exp.test_history, exp.layout, exp.device)
    started = time.perf_counter()
    made.make(networks)
    exp.timings["forecast networks"] = time.perf_counter() - started
    started = time.perf_counter()
    native = native_quantiles(exp, made, [m.name for m in baselines]) if calibration else {}
    made.make(baselines)
    exp.timings["classical baselines"] = time.perf_counter() - started
    made.make(combinations)
    forecasts = made.make(methods)  # every one made above
    described = {m.name: m.description for m in methods}
    if selection is not None:  # what `fewcast forecast` gives
        forecasts["fewcast"] = made[named(catalog(s, learners[s.learner.name], pretrained, exp.device),
                                          selection.chosen)]
        described["fewcast"] = f"what fewcast forecast gives: {selection.chosen}, chosen on validation"
    rows = [{"protocol": s.eval.protocol, "method": name, **score(problems.truth, yhat, problems.mase_scale)}
            for name, yhat in forecasts.items()]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if calibration:
        started = time.perf_counter()
        chosen = {"fewcast": selection.chosen} if selection is not None else {}
        table, bands, curve = interval_table(exp, problems, forecasts, calibration, chosen, table, native)
        short = rescaled(exp.test_history, calibration)
        exp.timings["intervals"] = time.perf_counter() - started
    else:
        table, bands, curve, short = table.assign(**dict.fromkeys(INTERVAL_COLUMNS, np.nan)), {}, None, None

    started = time.perf_counter()
    by_name = {m.name: m for m in methods}
    default, finetune = learners[s.learner.name], by_name["pretrained_finetune"].learner
    inits = {s.learner.name: default, "pretrained": finetune, "scratch": by_name["scratch"].learner}
    curves = trajectory(exp, problems, inits), shots_curve(exp, default, finetune)
    picked = samples(exp, problems, s.learner.name, forecasts, bands.get("fewcast", bands.get(s.learner.name)))
    exp.timings["curves"] = time.perf_counter() - started
    return Results(s, table, exp.logs, *curves, picked, exp.timings, exp.data.name, forecasts, exp.test_history.ids,
                   described, selection, bands, curve, short)


def native_quantiles(exp: Experiment, made: Forecasts, names: list[str]) -> dict[str, np.ndarray]:
    """statsforecast's own quantiles :data:`SCORED_TAUS` of the methods of :data:`NATIVE` among ``names``,
    ``(series, h, taus)`` each, and AutoETS's point forecast (their median) put in ``made``: one fit gives
    both."""
    if not any(m in names for m in NATIVE):
        return {}
    lay = exp.layout
    out = statistical_quantiles(exp.test_history, lay.h, lay.season_length, SCORED_TAUS)
    if "autoets" in names:
        made.known({"autoets": out["autoets"][:, :, SCORED_TAUS.index(0.5)]})
    return {m: out[m] for m in NATIVE if m in names}


def interval_table(exp: Experiment, problems: Problems, forecasts: dict[str, np.ndarray], calibration: dict,
                   chosen: dict[str, str], table: pd.DataFrame, native: dict[str, np.ndarray]
                   ) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """``table`` with the interval scores (:data:`INTERVAL_COLUMNS`) of every row that has intervals: the
    calibrated ones (a row of ``chosen``, ``fewcast``, by its method's), statsforecast's own for AutoETS and
    seasonal naive (``native``, :func:`native_quantiles`) where it gives them for every series; each row's
    quantiles :data:`SCORED_TAUS`, ``(series, h, taus)``, by method; and the coverage of the central 20 ... 95 %
    intervals of ``fewcast``, AutoETS and seasonal naive (the calibration plot)."""
    lay = exp.layout
    scale, floor = volatility(exp.test_history, lay, calibration), floors(exp.test_history)  # (series,)
    short = shorter(exp.test_history, calibration)  # (series,)
    bands = {}
    for name, yhat in forecasts.items():
        table_name = chosen.get(name, name)
        if table_name in calibration and name not in NATIVE:
            bands[name] = interval_bands(yhat, scale, calibration, table_name, SCORED_TAUS, floor, short)
    bands.update({m: np.maximum(q, floor[:, None, None]) for m, q in native.items()  # floored as their point is
                  if m in forecasts and np.isfinite(q).all()})  # NaN: none for some series
    y, mase_scale = problems.truth, problems.mase_scale
    at = {t: i for i, t in enumerate(SCORED_TAUS)}
    scores = {name: interval_scores(y, q, mase_scale) for name, q in bands.items()}
    extra = pd.DataFrame([scores.get(m, {}) for m in table["method"]], columns=INTERVAL_COLUMNS, index=table.index)
    curve = [{"method": name, "nominal": round(100 * (1 - 2 * lo), 1),
              "observed": 100 * coverage(y, q[:, :, at[lo]], q[:, :, at[round(1 - lo, 3)]])}
             for name, q in bands.items() if name in ("fewcast", *NATIVE)
             for lo in (0.4, 0.3, 0.2, 0.1, 0.025)]
    return pd.concat([table, extra], axis=1), bands, pd.DataFrame(curve, columns=["method", "nominal", "observed"])


def trajectory(exp: Experiment, problems: Problems, inits: dict[str, GradientLearner]) -> pd.DataFrame:
    """Average support loss and horizon sMAPE after 0, 1, ..., ``curve_steps`` adaptation steps."""
    rows = []
    has_support = problems.shots_used > 0
    for label, learner in inits.items():
        yhat, loss = forecast_curve(learner, problems, exp.settings.data.scaler, exp.settings.eval.curve_steps,
                                    exp.device)  # (steps + 1, series, h), (steps + 1, series)
        yhat = np.maximum(yhat, floors(problems.history)[None, :, None])  # as every forecast is (Forecasts)
        for k in range(len(yhat)):
            spt = float(loss[k][has_support].mean()) if has_support.any() else np.nan  # nan: no series has one
            rows.append({"init": label, "steps": k, "support_loss": spt,
                         "smape": float(smape(problems.truth, yhat[k]).mean())})
    return pd.DataFrame(rows)


def shots_curve(exp: Experiment, learner: GradientLearner, finetune: GradientLearner) -> pd.DataFrame:
    """Forecast sMAPE of the learner and of plain fine-tuning against the number of support windows."""
    s = exp.settings
    rows = []
    steps = s.adapt_steps()
    for shots in s.eval.shots_curve:
        problems = exp.problems(shots)
        for label, lrn in ((s.learner.name, learner), ("pretrained_finetune", finetune)):
            yhat, _ = forecast(lrn, problems, s.data.scaler, steps, exp.device)
            yhat = np.maximum(yhat, floors(problems.history)[:, None])  # as every forecast is (Forecasts)
            rows.append({"method": label, "shots": shots, "smape": float(smape(problems.truth, yhat).mean())})
    return pd.DataFrame(rows)


def interval_scores(y: np.ndarray, q: np.ndarray, mase_scale: np.ndarray) -> dict[str, float]:
    """Coverage of the 80 % and 95 % intervals, MSIS (95 %), SQL and WQL (0.1 ... 0.9) of the quantiles
    :data:`SCORED_TAUS` ``q`` ``(series, h, taus)`` of truth ``y`` ``(series, h)``."""
    at = {t: i for i, t in enumerate(SCORED_TAUS)}
    middle = [at[t] for t in QUANTILES]
    return {"coverage_80": coverage(y, q[:, :, at[0.1]], q[:, :, at[0.9]]),
            "coverage_95": coverage(y, q[:, :, at[0.025]], q[:, :, at[0.975]]),
            "msis": msis(y, q[:, :, at[0.025]], q[:, :, at[0.975]], mase_scale),
            "sql": sql(y, q[:, :, middle], QUANTILES, mase_scale),
            "wql": wql(y, q[:, :, middle], QUANTILES)}


def samples(exp: Experiment, problems: Problems, name: str, forecasts: dict, band: np.ndarray | None = None
            ) -> list[dict]:
    """A seeded sample of meta-test series with history, truth and forecasts, for the per-series panels, and
    the 80 % and 95 % intervals of ``band`` (quantiles :data:`SCORED_TAUS`) when given."""
    n = min(exp.settings.eval.plot_series, problems.history.n_series)
    rng = np.random.default_rng(exp.settings.train.seed)
    pick = np.sort(rng.choice(problems.history.n_series, size=n, replace=False))
    out = []
    for i in pick:
        out.append({
            "unique_id": str(problems.history.ids[i]),
            "history": problems.history.series(i).astype(np.float64),
            "truth": problems.truth[i],
            "shots": int(problems.shots_used[i]),
            "forecasts": {label: forecasts[key][i] for label, key in (
                (f"{name} before adaptation", f"{name}_zeroshot"), (f"{name} adapted", name),
                ("pretrained_finetune", "pretrained_finetune"), ("theta", "theta"), ("fewcast", "fewcast"))
                if key in forecasts},
            "bands": {} if band is None else {level: (band[i, :, SCORED_TAUS.index(lo)],
                                                     band[i, :, SCORED_TAUS.index(round(1 - lo, 3))])
                                              for level, lo in ((95, 0.025), (80, 0.1))},
        })
    return out
