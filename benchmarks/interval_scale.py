"""Which volatility the intervals scale by, chosen on validation: each rule calibrated on half of the
validation series and scored on the other half, never on a test horizon.

The intervals are the validation cut's errors divided by each series' volatility, the quantiles of those
scaled errors multiplied back by a new series' own (:mod:`fewcast.intervals`). The rules compared: ``all``
(the mean absolute seasonal difference over the whole history, the MASE scale); ``recent-N`` (the same over
the last ``N`` input windows and a season, the whole history's where that is zero); ``short`` (fewcast's scale:
``all``, but a history shorter than every one of the calibration half's takes its recent volatility times
their median ratio of whole to recent volatility, :func:`fewcast.intervals.volatility`); ``widen-errors``
(``all`` with the conformal widening counting every error rather than every validation forecast); ``chosen``
and ``crossfit`` (``all``, the forecast scored being the average of the two candidates best on the calibration
half: calibrated on that half's errors of it, or on each series' errors of the two best chosen without its
fold of the half, the choice's own errors rather than its winner's); with ``--training N`` (the selection's
forecasts with ``train.select_training = N``, the choice it makes), ``+training`` and ``+training-level`` (the
training series' errors pooled with the calibration half's; with ``-level`` they lend the shape only, the
level being the half's, :func:`fewcast.intervals.calibrate` with ``own``), each also after ``short``
(``short+training-level``: fewcast's in the twentieth session); ``+table`` (a short history's own table,
calibrated on the whole histories' errors scaled as a short history's volatility is) and ``+short-errors``
(the same from the selection's forecasts of the same horizons from short histories, which a selection since
the twenty-first session keeps: ``short+training-level+short-errors`` is fewcast's); ``+trim-F`` (the spread
and level of :func:`fewcast.intervals.calibrate` leaving out the largest share ``F`` of absolute errors). For each
panel (holdout protocol, default settings) the selection is run once; then, over ``--splits`` random halvings
of its validation series, the chosen method is calibrated on one half (every cut) and its intervals scored on
the other half's latest cut (histories as long as a forecast's): coverage of the 80 % and 95 % intervals, MSIS
(95 %) and the scaled quantile loss over 0.1 ... 0.9, averaged over the halvings. With ``--short``, the scored
half's volatility and floor are those of its history cut to the suite's cold start (two seasons plus the input
window), and its forecasts are the selection's from that short history where it kept them (else those
made from the whole history: what a rule's scale alone does to a short history's intervals). With
``--over-time`` (panels whose validation scores two horizons or more), the calibration half's earlier cuts
only: a rule carried forward in time, as a forecast carries it past the validation period.

    .venv/bin/python benchmarks/interval_scale.py [--panels m3-yearly,nn5] [--splits 20] [--cache DIR] [--short]
        [--over-time] [--training 300 --rules short+training-level,short+training-level+short-errors]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from suite import panel_source, settings_for

from fewcast.data import load_panel_data
from fewcast.engine import Layout
from fewcast.evaluation import SCORED_TAUS, interval_scores
from fewcast.experiment import Experiment
from fewcast.intervals import SHORT, TRIM, calibrate, floors, quantiles, series_scale, short_history, volatility
from fewcast.metrics import seasonal_scale
from fewcast.panel import Panel
from fewcast.selection import candidate_names, rank, select

PANELS = ("m1-monthly,m1-quarterly,m1-yearly,m3-monthly,m3-quarterly,m3-yearly,m3-other,tourism-monthly,"
          "tourism-quarterly,tourism-yearly,game,pedestrian,ausgrid,nn5,kaggle")


def scales(rule: str, history: Panel, season_length: int, input_size: int) -> np.ndarray:
    """Each series' volatility, ``(series,)``, by ``rule``."""
    if not rule.startswith("recent-"):
        return series_scale(history, season_length)
    windows = int(rule.split("-")[1])
    return series_scale(history, season_length, windows * input_size + season_length)


def scores(truth, yhat, scale, mase_scale, table, floor, short_table=None, short=None) -> np.ndarray:
    """Coverage 80 %, coverage 95 %, MSIS and SQL of the intervals ``table`` gives ``yhat`` (``short_table``
    those of the rows ``short``)."""
    q = quantiles(yhat, scale, table, SCORED_TAUS, floor)  # (rows, h, taus)
    if short_table is not None:
        q = np.where(short[:, None, None], quantiles(yhat, scale, short_table, SCORED_TAUS, floor), q)
    got = interval_scores(truth, q, mase_scale)
    return np.array([got[k] for k in ("coverage_80", "coverage_95", "msis", "sql")])


def validation_rows(scored: dict) -> dict:
    """A selection's kept ``scored`` restricted to the validation series' rows (it also ranks on training
    series': :func:`fewcast.selection.select`); a cache kept before it did is returned as it is."""
    if "validation" not in scored:
        return scored
    own, history = scored["validation"], scored["history"]
    n = int(own[: history[0].n_series].sum())  # validation series, the first of each cut
    rows = {"forecasts": {name: yhat[own] for name, yhat in scored["forecasts"].items()},
            "truth": scored["truth"][own], "cut": scored["cut"][own],
            "history": [panel.take(np.arange(n)) for panel in history]}
    if "short" in scored:  # the same rows forecast from short histories
        rows["short"] = {"forecasts": {name: yhat[own] for name, yhat in scored["short"]["forecasts"].items()},
                         "history": [panel.take(np.arange(n)) for panel in scored["short"]["history"]]}
    return rows


def validation(name: str, data_dir: str, cache: str | None, training: int | None = None
               ) -> tuple[dict, str, int, int]:
    """The selection's scored validation forecasts for panel ``name`` (its validation series' rows), its choice,
    season and input size (from ``cache``, a folder, when it holds them: the training is the slow part).
    With ``training``: ``train.select_training`` set to it, and every row kept, the training series' too
    (cached in ``cache``/select-training-N)."""
    folder = Path(cache) / f"select-training-{training}" if cache and training is not None else cache
    path = Path(folder) / f"{name}.pkl" if folder else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    source, h, season = panel_source(name, data_dir)
    settings = settings_for("holdout", h, season, quick=False)
    if training is not None:
        settings.update("train", {"select_training": training})
    data = load_panel_data(source, settings)
    run = Experiment(settings, data, log=lambda *_: None)
    chosen = select(run, keep=True)
    scored = chosen.scored if training is not None else validation_rows(chosen.scored)
    out = (scored, chosen.chosen, data.season_length, run.settings.data.input_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(out))
    return out


def top2(made: dict[str, np.ndarray], rows: np.ndarray, truth, scale) -> np.ndarray:
    """``(rows of made, h)``: the average of the two candidates best on ``rows``, as the selection chooses."""
    names = [c for c in candidate_names("metasgd") if c in made]
    table = rank({c: made[c][rows] for c in names}, truth[rows], scale[rows])
    return np.mean([made[c] for c in table["method"].iloc[:2]], axis=0)


def crossfit(made: dict[str, np.ndarray], rows: np.ndarray, series: np.ndarray, truth, scale,
             folds: int = 5) -> np.ndarray:
    """``(rows of made, h)``: each row of ``rows`` forecast by the :func:`top2` chosen on the other rows of
    ``rows`` (its series' fold left out), the errors of the choice itself rather than of its winner."""
    out = np.full(truth.shape, np.nan)
    fold = series % folds  # (rows,) every cut of a series in the same fold
    for f in range(folds):
        inside = rows & (fold == f)
        if inside.any() and (rows & (fold != f)).any():
            out[inside] = top2(made, rows & (fold != f), truth, scale)[inside]
    return out


def study(name: str, data_dir: str, rules: list[str], splits: int, cache: str | None,
          short: bool = False, over_time: bool = False, training: int | None = None) -> dict[str, np.ndarray]:
    kept, method, m, input_size = validation(name, data_dir, cache, training)
    scored = validation_rows(kept)
    yhat, truth, cut = scored["forecasts"][method], scored["truth"], scored["cut"]  # (rows, h)
    history = scored["history"]  # one panel per cut, the latest first
    n = history[0].n_series
    window = input_size + m  # the recent volatility's span (fewcast.intervals.volatility)
    scored_history = [p.tail(2 * m + input_size) if short else p for p in history]  # what the scored half sees
    by_short = short and "short" in scored  # the selection's forecasts from those short histories
    if by_short:  # scored as a cold start is: its own forecasts, not the whole history's
        scored_history = scored["short"]["history"]
    extra = _training_rows(kept, method, m, window)  # the training series' rows (truth, yhat, scale, cut, recent)
    if extra is None and any("+training" in rule for rule in rules):
        raise SystemExit(f"{name}: the +training rules need --training N (the selection's training rows)")
    if extra is not None and over_time:  # the earlier cuts only, as the calibration half's
        extra = {key: x[extra["cut"] > 1] for key, x in extra.items()}
    series = np.tile(np.arange(n), len(history))  # (rows,) each row's validation series
    mase_scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    floor = np.concatenate([floors(p) for p in scored_history])
    recent = np.concatenate([series_scale(p, m, window) for p in history])  # (rows,)
    short_recent = np.concatenate([series_scale(p, m, window) for p in scored_history])  # (rows,)
    layout = Layout(input_size, truth.shape[1], m)
    out = {}
    if over_time and len(history) < 2:
        return {rule: np.full(4, np.nan) for rule in rules}
    for rule in rules:
        rng = np.random.default_rng(0)  # the same halvings for every rule
        scale = np.concatenate([scales(rule, p, m, input_size) for p in history])  # (rows,)
        scored_scale = np.concatenate([scales(rule, p, m, input_size) for p in scored_history])
        runs = []
        for _ in range(splits):
            half = rng.permutation(n) < n // 2  # (series,) the calibration half
            fit, test = half[series] & (cut > 1 if over_time else True), ~half[series] & (cut == 1)  # (rows,)
            ok = test & np.isfinite(mase_scale) & (mase_scale > 0)
            count = "errors" if rule == "widen-errors" else "rows"
            pick = scored["short"]["forecasts"][method] if by_short else yhat  # the forecast scored
            fitted = yhat  # the forecasts its intervals are calibrated on
            if rule in ("chosen", "crossfit"):  # the forecast chosen on the calibration half itself
                pick = top2(scored["forecasts"], fit, truth, mase_scale)
                fitted = crossfit(scored["forecasts"], fit, series, truth, mase_scale) if rule == "crossfit" else pick
            latest = history[1] if over_time else history[0]  # the latest cut calibrated on
            entry = {SHORT: short_history(latest.take(np.flatnonzero(half)), layout)}
            ratio, length = float(entry[SHORT][0, 1]), float(entry[SHORT][0, 0])
            table = _table(rule, truth, fitted, cut, fit, scale, extra, "yhat", "scale", count)
            if table is None or not ok.any():
                continue
            if rule.startswith("short"):  # fewcast's: a history shorter than all calibrated on: recent scale converted
                scored_scale = np.concatenate([volatility(p, layout, entry) for p in scored_history])
            short_table = None
            if "+table" in rule:  # calibrated on the whole histories' errors scaled as a short history's are
                short_table = _table(rule, truth, fitted, cut, fit, ratio * recent, extra, "yhat", "recent", count,
                                     ratio)
            if "+short-errors" in rule and by_short:  # calibrated on the short histories' own errors, scaled so
                short_table = _table(rule, truth, scored["short"]["forecasts"][method], cut, fit, ratio * short_recent,
                                     extra, "short_yhat", "short_recent", count, ratio)
            is_short = np.concatenate([p.lengths for p in scored_history])[ok] < length
            runs.append(scores(truth[ok], pick[ok], scored_scale[ok], mase_scale[ok], table, floor[ok],
                               short_table, is_short))
        out[rule] = np.mean(runs, axis=0) if runs else np.full(4, np.nan)
    print(f"{name}: {method}, {n} validation series, {len(history)} cut(s)", flush=True)
    return out


def _table(rule, truth, fitted, cut, fit, by, extra, forecast, scale, count, times=1.0) -> np.ndarray | None:
    """The calibration half's (``fit``) errors of ``fitted`` scaled by ``by``, with the training rows' errors
    of their ``forecast`` (``extra``, scaled by its ``scale`` times ``times``) pooled in for a ``+training``
    rule: their table."""
    trim = float(rule.split("+trim-")[1]) if "+trim-" in rule else TRIM
    if "+training" not in rule:
        return calibrate(truth[fit], {"m": fitted[fit]}, by[fit], cut[fit], count, trim=trim).get("m")
    own = np.r_[np.ones(fit.sum(), bool), np.zeros(len(extra["cut"]), bool)] if "-level" in rule else None
    made = {"m": np.concatenate([fitted[fit], extra[forecast]])}
    by = np.concatenate([by[fit], times * extra[scale]])
    return calibrate(np.concatenate([truth[fit], extra["truth"]]), made, by, np.concatenate([cut[fit], extra["cut"]]),
                     count, own, trim).get("m")


def _training_rows(kept: dict, method: str, m: int, window: int) -> dict | None:
    """The training series' rows of a selection's kept ``scored`` (``train.select_training``): their ``truth``,
    ``method``'s forecasts (``yhat``), MASE ``scale``, ``cut`` and ``recent`` volatility (over ``window``
    points); with the forecasts from short histories kept, ``short_yhat`` and ``short_recent`` (theirs); None
    when it kept none."""
    if "validation" not in kept or kept["validation"].all():
        return None
    other = ~kept["validation"]
    rows = {"truth": kept["truth"][other], "yhat": kept["forecasts"][method][other], "cut": kept["cut"][other],
            "scale": np.concatenate([seasonal_scale(p, m) for p in kept["history"]])[other],  # (rows,)
            "recent": np.concatenate([series_scale(p, m, window) for p in kept["history"]])[other]}
    if "short" in kept:
        rows["short_yhat"] = kept["short"]["forecasts"][method][other]
        rows["short_recent"] = np.concatenate([series_scale(p, m, window) for p in kept["short"]["history"]])[other]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default=PANELS)
    ap.add_argument("--rules", default="all,recent-1,short")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--cache", help="a folder keeping each panel's validation forecasts between runs")
    ap.add_argument("--short", action="store_true", help="score with the volatility of a cold start's history")
    ap.add_argument("--over-time", action="store_true", help="calibrate on the earlier cuts only (panels with "
                                                             "two cuts or more)")
    ap.add_argument("--training", type=int, help="the selection's forecasts with train.select_training set to "
                                                   "this (rules +training, +training-level pool their errors in)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    rules = args.rules.split(",")
    rows = {name: study(name, args.data, rules, args.splits, args.cache, args.short, args.over_time, args.training)
            for name in args.panels.split(",")}
    print("\ncells: coverage 80 % / coverage 95 % / MSIS / SQL on the other half's latest cut\n")
    print("| panel | " + " | ".join(rules) + " |")
    print("| --- |" + " --- |" * len(rules))
    for name, by_rule in rows.items():
        cells = ("{:.3f} / {:.3f} / {:.2f} / {:.3f}".format(*by_rule[r]) for r in rules)
        print(f"| {name} | " + " | ".join(cells) + " |")
    common = [p for p in rows if all(np.isfinite(rows[p][r]).all() for r in rules)]  # scored by every rule
    print(f"\nover the {len(common)} panels every rule scores: mean absolute distance from nominal (80 %, 95 %); "
          f"geometric mean of MSIS and SQL relative to `{rules[0]}`:\n")
    print("| rule | 80 % | 95 % | MSIS | SQL |")
    print("| --- | --- | --- | --- | --- |")
    for r in rules:
        got = np.array([rows[p][r] for p in common])  # (panels, 4)
        base = np.array([rows[p][rules[0]] for p in common])
        rel = np.exp(np.nanmean(np.log(got[:, 2:] / base[:, 2:]), axis=0))
        print(f"| {r} | {np.nanmean(np.abs(got[:, 0] - 0.8)):.3f} | {np.nanmean(np.abs(got[:, 1] - 0.95)):.3f} | "
              f"{rel[0]:.3f} | {rel[1]:.3f} |")


if __name__ == "__main__":
    main()
