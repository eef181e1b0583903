"""What the validation should choose from, judged on validation: each candidate set chosen on half of the
validation series and scored on the other half, never on a test horizon.

Reads the validation forecasts :mod:`interval_scale` keeps (``--cache``, every method the selection
scored; computed and kept when missing). For each panel (holdout protocol, default settings) and each of
``--splits`` random halvings of its validation series, every candidate set is ranked on one half (the
selection's criterion: the mean of sMAPE and MASE relative to seasonal naive's) and its choice scored the
same way on the other half; the table gives the mean over halvings, and each set's geometric mean over the
panels. Sets: ``current`` (:func:`fewcast.selection.candidate_names`), ``+pair`` (with AutoETS and Theta
averaged), ``+three`` (with each network averaged with AutoETS and Theta), ``+both``, and ``topK`` (the
average of the current set's ``K`` best on the choosing half).

    .venv/bin/python benchmarks/candidates.py --cache /tmp/iscache [--panels m3-yearly,nn5] [--splits 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from interval_scale import PANELS, validation

from fewcast.metrics import seasonal_scale
from fewcast.selection import BASELINE, candidate_names, rank

NETWORKS = ("metasgd", "pretrained_finetune_all", "metasgd_auto")
SETS = ("current", "+pair", "+three", "+both", "top2", "top3", "top5")


def candidates(made: dict[str, np.ndarray], which: str) -> dict[str, np.ndarray]:
    """The forecasts of candidate set ``which`` (``top3`` starts from the current set)."""
    out = {n: made[n] for n in candidate_names("metasgd")}
    if which in ("+pair", "+both"):
        out["autoets+theta"] = made["autoets+theta"]
    if which in ("+three", "+both"):
        out.update({f"{n}+autoets+theta": (made[n] + made["autoets"] + made["theta"]) / 3 for n in NETWORKS})
    return out


def relative(truth, yhat, scale, base) -> float:
    """The selection's criterion on these rows (:func:`fewcast.selection.rank`)."""
    table = rank({"x": yhat, BASELINE: base}, truth, scale).set_index("method")
    return float(table.loc["x", "score"])


def study(name: str, data_dir: str, splits: int, cache: str) -> dict[str, float]:
    scored, _, m, _ = validation(name, data_dir, cache)
    made, truth, history = scored["forecasts"], scored["truth"], scored["history"]
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    n = history[0].n_series
    series = np.tile(np.arange(n), len(history))  # (rows,) each row's validation series
    rng = np.random.default_rng(0)
    sums = dict.fromkeys(SETS, 0.0)
    for _ in range(splits):
        half = (rng.permutation(n) < n // 2)[series]  # (rows,) the choosing half
        for which in SETS:
            top = int(which[3:]) if which.startswith("top") else 1
            offered = candidates(made, "current" if top > 1 else which)
            ranked = sorted(offered, key=lambda k: relative(truth[half], offered[k][half], scale[half],
                                                            made[BASELINE][half]))
            pick = np.mean([offered[k] for k in ranked[:top]], axis=0)
            sums[which] += relative(truth[~half], pick[~half], scale[~half], made[BASELINE][~half]) / splits
    print(f"{name}: {n} validation series", flush=True)
    return sums


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default=PANELS)
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--cache", required=True, help="the folder of interval_scale.py's validation forecasts")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    rows = {name: study(name, args.data, args.splits, args.cache) for name in args.panels.split(",")}
    print("\ncells: the choice's score on the other half (mean of sMAPE and MASE relative to seasonal naive's)\n")
    print("| panel | " + " | ".join(SETS) + " |")
    print("| --- |" + " --- |" * len(SETS))
    for name, by_set in rows.items():
        print(f"| {name} | " + " | ".join(f"{by_set[w]:.4f}" for w in SETS) + " |")
    geo = {w: float(np.exp(np.mean([np.log(r[w]) for r in rows.values()]))) for w in SETS}
    print("| geometric mean | " + " | ".join(f"{geo[w]:.4f}" for w in SETS) + " |")


if __name__ == "__main__":
    main()
