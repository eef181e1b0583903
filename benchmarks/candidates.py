"""What the validation should choose from, judged on validation: each candidate set chosen on half of the
validation series and scored on the other half, never on a test horizon.

Reads the validation forecasts :mod:`interval_scale` keeps (``--cache``, every method the selection
scored; computed and kept when missing). For each panel (holdout protocol, default settings) and each of
``--splits`` random halvings of its validation series, every candidate set is ranked on one half (the
selection's criterion: the mean of sMAPE and MASE relative to seasonal naive's) and its choice scored the
same way on the other half; the table gives the mean over halvings, and each set's geometric mean over the
panels. Sets: ``current`` (:func:`fewcast.selection.candidate_names`), ``+pair`` (with the two classical
partners of :data:`fewcast.selection.COMBINED_WITH` averaged), ``+three`` (with each network averaged with
both), ``+both``, and ``topK`` (the average of the current set's ``K`` best on the choosing half).

``--partners``: which classical methods the networks are averaged with and which stand alone, each set's
choice the average of its two best (as the selection makes it): AutoETS with Theta (today), with AutoCES,
with statsforecast's AutoTheta or DynamicOptimizedTheta (``dotm``), all three of AutoETS, AutoCES and Theta,
AutoCES and Theta without AutoETS, and today's set with AutoCES as a candidate alone. The classical
forecasts a cache lacks are fitted to its histories and kept in it. ``--over-time``: the same sets chosen on
the earlier cuts of every validation series and scored on the latest cut (a choice carried forward in time,
as a run's is; panels with one cut are left out).

``--by-series``: choices made per series instead, scored on the other half's latest cut only (the earlier
cuts are what a series' own choice is made on): ``top2`` (the panel's two best averaged, as today),
``length2`` and ``length3`` (the two best averaged, chosen separately for the halves or thirds of the series
by history length), ``own`` (for each series, the one of the panel's two best and their average with the
lowest error on the series' own earlier cuts, its MAE over the seasonal-naive scale; the average where it has
none).

``--training N``: the choice made with the horizons of training series as well (``train.select_training = N``:
up to ``N // cuts`` training series in each cut; the cut's networks trained on their earlier windows, not on
these horizons): ``validation`` (half of the validation series), ``+training`` (that half and the training
series, as the selection ranks) and ``training`` (the training series alone), each the average of its two
best, and ``+training top1`` / ``top3`` (the best alone, the three best), each scored on the other half of
the validation series. Its forecasts are kept in ``--cache``/select-training-N, computed when missing (the
validation cut trained again).

    .venv/bin/python benchmarks/candidates.py --cache /tmp/iscache [--panels m3-yearly,nn5] [--splits 20]
                                              [--by-series | --partners [--over-time] | --training 300]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from interval_scale import PANELS
from interval_scale import validation as kept

from fewcast.baselines import CLASSICAL, classical_forecasts, run_statsforecast
from fewcast.intervals import floors
from fewcast.metrics import seasonal_scale
from fewcast.selection import BASELINE, COMBINED_WITH, candidate_names, rank

NETWORKS = ("metasgd", "pretrained_finetune_all", "metasgd_auto")
SETS = ("current", "+pair", "+three", "+both", "top2", "top3", "top5")
BY_SERIES = ("top2", "length2", "length3", "own")
TRAINING = ("validation", "+training", "training", "+training top1", "+training top3")
PARTNERS = {  # set -> (classical methods averaged with each network, classical methods alone)
    "autoets, theta": (("autoets", "theta"), ("autoets", "theta")),
    "autoets, autoces": (("autoets", "autoces"), ("autoets", "autoces")),
    "autoets, autotheta": (("autoets", "autotheta"), ("autoets", "autotheta")),
    "autoets, dotm": (("autoets", "dotm"), ("autoets", "dotm")),
    "autoets, autoces, theta": (("autoets", "autoces", "theta"), ("autoets", "autoces", "theta")),
    "autoces, theta": (("autoces", "theta"), ("autoces", "theta")),
    "autoets, theta; autoces alone": (("autoets", "theta"), ("autoets", "theta", "autoces")),
}


def validation(name: str, data_dir: str, cache: str) -> tuple[dict, str, int, int]:
    """:func:`interval_scale.validation`, with the classical forecasts the cache lacks (every method of
    :data:`fewcast.baselines.CLASSICAL`, AutoTheta and ``dotm``) fitted to its histories and kept."""
    scored, chosen, m, input_size = out = kept(name, data_dir, cache)
    made, history = scored["forecasts"], scored["history"]
    h = scored["truth"].shape[1]
    missing = [c for c in CLASSICAL if c not in made]
    floor = np.concatenate([floors(p) for p in history])[:, None]  # (rows, 1): as fewcast floors forecasts
    if missing:
        per_cut = [classical_forecasts(p, h, m, missing) for p in history]
        made.update({c: np.maximum(np.concatenate([f[c] for f in per_cut]), floor) for c in missing})
    theta_variants = "dotm" not in made
    if theta_variants:
        from statsforecast.models import AutoTheta, DynamicOptimizedTheta

        fitted = [run_statsforecast(p, h, [AutoTheta(season_length=m, alias="autotheta"),
                                            DynamicOptimizedTheta(season_length=m, alias="dotm")]) for p in history]
        for c in ("autotheta", "dotm"):
            made[c] = np.maximum(np.concatenate([f[c].to_numpy(np.float64).reshape(n, h) for f, n in fitted]), floor)
    if missing or theta_variants:
        (Path(cache) / f"{name}.pkl").write_bytes(pickle.dumps(out))
    return scored, chosen, m, input_size


def candidates(made: dict[str, np.ndarray], which: str) -> dict[str, np.ndarray]:
    """The forecasts of candidate set ``which`` (``top3`` starts from the current set; a :data:`PARTNERS`
    set replaces the current set's classical partners)."""
    if which in PARTNERS:
        partners, alone = PARTNERS[which]
        out = {n: made[n] for n in NETWORKS}
        out.update({f"{n}+{c}": (made[n] + made[c]) / 2 for n in NETWORKS for c in partners})
        return {**out, **{c: made[c] for c in alone}, BASELINE: made[BASELINE]}
    out = {n: made[n] for n in candidate_names("metasgd")}
    a, b = COMBINED_WITH
    if which in ("+pair", "+both"):
        out[f"{a}+{b}"] = (made[a] + made[b]) / 2
    if which in ("+three", "+both"):
        out.update({f"{n}+{a}+{b}": (made[n] + made[a] + made[b]) / 3 for n in NETWORKS})
    return out


def relative(truth, yhat, scale, base) -> float:
    """The selection's criterion on these rows (:func:`fewcast.selection.rank`)."""
    table = rank({"x": yhat, BASELINE: base}, truth, scale).set_index("method")
    return float(table.loc["x", "score"])


def ranked(offered: dict[str, np.ndarray], rows: np.ndarray, truth, scale, base) -> list[str]:
    """The candidates of ``offered``, best first on ``rows`` (the selection's criterion)."""
    return sorted(offered, key=lambda c: relative(truth[rows], offered[c][rows], scale[rows], base[rows]))


def best(offered: dict[str, np.ndarray], rows: np.ndarray, truth, scale, base, k: int = 2) -> np.ndarray:
    """``(rows of offered, h)``: the average of the ``k`` candidates best on ``rows``, as the selection makes
    its forecast."""
    return np.mean([offered[c] for c in ranked(offered, rows, truth, scale, base)[:k]], axis=0)


def study(name: str, data_dir: str, splits: int, cache: str, sets=SETS) -> dict[str, float]:
    """Each of ``sets`` chosen on one half of the validation series, scored on the other (a :data:`PARTNERS`
    set's choice: the average of its two best)."""
    scored, _, m, _ = validation(name, data_dir, cache)
    made, truth, history = scored["forecasts"], scored["truth"], scored["history"]
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    n = history[0].n_series
    series = np.tile(np.arange(n), len(history))  # (rows,) each row's validation series
    rng = np.random.default_rng(0)
    sums = dict.fromkeys(sets, 0.0)
    for _ in range(splits):
        half = (rng.permutation(n) < n // 2)[series]  # (rows,) the choosing half
        for which in sets:
            top = 2 if which in PARTNERS else int(which[3:]) if which.startswith("top") else 1
            offered = candidates(made, "current" if which.startswith("top") else which)
            pick = best(offered, half, truth, scale, made[BASELINE], top)
            sums[which] += relative(truth[~half], pick[~half], scale[~half], made[BASELINE][~half]) / splits
    print(f"{name}: {n} validation series", flush=True)
    return sums


def over_time(name: str, data_dir: str, splits: int, cache: str, sets=tuple(PARTNERS)) -> dict[str, float] | None:
    """Each of ``sets`` chosen on the earlier cuts of every validation series and scored on the latest cut
    (None for a panel with one cut; ``splits`` unused: nothing is random)."""
    scored, _, m, _ = validation(name, data_dir, cache)
    made, truth, history, cut = scored["forecasts"], scored["truth"], scored["history"], scored["cut"]
    if len(history) < 2:
        return None
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    past, latest, base = cut >= 2, cut == 1, made[BASELINE]
    out = {}
    for which in sets:
        pick = best(candidates(made, which), past, truth, scale, base)  # (rows, h)
        out[which] = relative(truth[latest], pick[latest], scale[latest], base[latest])
    print(f"{name}: {len(history)} cuts", flush=True)
    return out


def by_series(name: str, data_dir: str, splits: int, cache: str, sets=BY_SERIES) -> dict[str, float]:
    """Per-series choices (``--by-series``), each scored on the other half's latest cut."""
    scored, _, m, _ = validation(name, data_dir, cache)
    made, truth, history, cut = scored["forecasts"], scored["truth"], scored["history"], scored["cut"]
    offered = candidates(made, "current")
    base = made[BASELINE]
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    k, n = len(history), history[0].n_series
    series = np.tile(np.arange(n), k)  # (rows,) each row's validation series
    length = history[0].lengths  # (series,) at the latest cut
    per_point = np.where(scale > 0, scale, np.nan)[:, None]  # (rows, 1) the seasonal-naive scale

    def own(pick: np.ndarray) -> np.ndarray:
        """(series,) ``pick``'s mean absolute error over the scale on each series' earlier cuts (nan: none)."""
        if k == 1:
            return np.full(n, np.nan)
        with np.errstate(invalid="ignore"):
            return np.nanmean((np.abs(truth - pick) / per_point).mean(axis=-1).reshape(k, n)[1:], axis=0)

    rng = np.random.default_rng(0)
    sums = dict.fromkeys(sets, 0.0)
    for _ in range(splits):
        half = (rng.permutation(n) < n // 2)[series]  # (rows,) the choosing half
        latest = ~half & (cut == 1)  # (rows,) the scored rows
        two = ranked(offered, half, truth, scale, base)[:2]
        average = (offered[two[0]] + offered[two[1]]) / 2  # (rows, h)
        picks = {"top2": average}
        for groups in (2, 3):
            edges = np.quantile(length, np.linspace(0, 1, groups + 1)[1:-1])
            group = np.digitize(length, edges)[series]  # (rows,)
            pick = average.copy()
            for g in range(groups):
                if (half & (group == g)).any():
                    pick[group == g] = best(offered, half & (group == g), truth, scale, base)[group == g]
            picks[f"length{groups}"] = pick
        options = np.stack([offered[two[0]], offered[two[1]], average])  # (3, rows, h)
        errors = np.stack([own(o) for o in options])  # (3, series)
        choice = np.where(np.isfinite(errors).all(axis=0), np.argmin(np.nan_to_num(errors, nan=np.inf), axis=0), 2)
        picks["own"] = options[choice[series], np.arange(len(series))]  # (rows, h)
        for rule, pick in picks.items():
            sums[rule] += relative(truth[latest], pick[latest], scale[latest], base[latest]) / splits
    print(f"{name}: {n} validation series, {k} cuts", flush=True)
    return sums


def training(name: str, data_dir: str, splits: int, cache: str, sets=TRAINING, extra: int = 300) -> dict[str, float]:
    """``--training``: each rule of :data:`TRAINING` chosen, then scored on the other half of the validation
    series."""
    scored, _, m, _ = kept(name, data_dir, cache, training=extra)
    made, truth, history = scored["forecasts"], scored["truth"], scored["history"]
    n = int(scored["validation"][: history[0].n_series].sum())  # validation series, the first of each cut
    offered, base = candidates(made, "current"), made[BASELINE]
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    per_cut = history[0].n_series  # validation series first, then training series
    series = np.tile(np.arange(per_cut), len(history))  # (rows,) each row's series in its cut
    trained = series >= n  # (rows,) a training series' row
    rng = np.random.default_rng(0)
    sums = dict.fromkeys(sets, 0.0)
    for _ in range(splits):
        choosing = np.zeros(per_cut, dtype=bool)
        choosing[:n] = rng.permutation(n) < n // 2
        half = choosing[series]  # (rows,) the choosing half of the validation series
        scored_rows = ~half & ~trained
        rows = {"validation": half, "+training": half | trained, "training": trained}
        for rule in sets:
            on, _, top = rule.partition(" top")  # "+training top3": the average of the 3 best on those rows
            pick = best(offered, rows[on], truth, scale, base, int(top or 2))
            sums[rule] += relative(truth[scored_rows], pick[scored_rows], scale[scored_rows],
                                   base[scored_rows]) / splits
    print(f"{name}: {n} validation series, {per_cut - n} training series, {len(history)} cuts", flush=True)
    return sums


def table(rows: dict[str, dict[str, float]], columns) -> None:
    print("| panel | " + " | ".join(columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for name, by_set in rows.items():
        print(f"| {name} | " + " | ".join(f"{by_set[w]:.4f}" for w in columns) + " |")
    geo = {w: float(np.exp(np.mean([np.log(r[w]) for r in rows.values()]))) for w in columns}
    print("| geometric mean | " + " | ".join(f"{geo[w]:.4f}" for w in columns) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default=PANELS)
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--cache", required=True, help="the folder of interval_scale.py's validation forecasts")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--by-series", action="store_true", help="per-series choices, scored on the latest cut")
    mode.add_argument("--partners", action="store_true", help="the classical methods averaged with the networks")
    mode.add_argument("--training", type=int, metavar="N", help="choose with the horizons of up to N training "
                      "series as well")
    ap.add_argument("--over-time", action="store_true", help="with --partners: chosen on the earlier cuts, "
                    "scored on the latest")
    args = ap.parse_args()
    if args.over_time and not args.partners:
        ap.error("--over-time compares the --partners sets: give both")
    if args.training:
        rows = {name: training(name, args.data, args.splits, args.cache, extra=args.training)
                for name in args.panels.split(",")}
        print("\ncells: the choice's score on the other half of the validation series\n")
        table(rows, TRAINING)
        return
    sets = BY_SERIES if args.by_series else tuple(PARTNERS) if args.partners else SETS
    how = by_series if args.by_series else over_time if args.over_time else study
    rows = {name: how(name, args.data, args.splits, args.cache, sets) for name in args.panels.split(",")}
    rows = {name: got for name, got in rows.items() if got is not None}
    print("\ncells: the choice's score on the other half (mean of sMAPE and MASE relative to seasonal naive's)\n")
    table(rows, sets)


if __name__ == "__main__":
    main()
