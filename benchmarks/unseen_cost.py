"""Benchmark: what never having trained on a series costs. The same held-out series, scored twice: by the
networks of the ``holdout`` run (which never saw them) and by those of the ``all-series`` run (which
trained on their training parts, as on every other series' own), on the same test horizon.

If the meta-learner's adaptation on a few windows of an unseen series recovers what training on that
series' history gives, its ``holdout`` score matches the pre-trained network's ``all-series`` score on
those series. The classical methods fit each series alone, so their two scores are equal by construction
(a check that both runs score the same series and horizon).

The all-series networks also train on more series. ``--same-size`` adds a third run that separates the
two: all-series, but without the training parts of other series drawn at random, so that it trains on
as many series as the holdout run, the held-out ones among them.

    .venv/bin/python benchmarks/unseen_cost.py [--dataset m3-monthly] [--model-seeds 0,1] [--same-size]
"""

from __future__ import annotations

import argparse

import numpy as np

from fewcast import evaluation
from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.datasets import load
from fewcast.experiment import Experiment
from fewcast.metrics import smape
from fewcast.windows import Windows

METHODS = ["metasgd", "pretrained_finetune", "pretrained", "theta", "autoets"]


def run(dataset: str, protocol: str, model_seed: int, drop: np.ndarray | None = None):
    """``(results, series trained on)`` of one experiment; ``drop``: ids of series whose training parts are
    left out."""
    s = Settings()
    s.update("eval", {"protocol": protocol, "classical": ["autoets", "theta"], "combine": [], "curve_steps": 1,
                      "shots_curve": [], "plot_series": 0})
    s.update("train", {"model_seed": model_seed})
    exp = Experiment(s, load_panel_data(dataset, s), log=lambda *_: None)
    if drop is not None:
        panel = exp.train_panel
        exp.train_panel = panel.take(np.flatnonzero(~np.isin(panel.ids, drop)))
        exp.windows = Windows(exp.train_panel, s.data.input_size, exp.h, drop_zero_target=s.train.drop_zero_target)
    return evaluation.run(exp), exp.train_panel.n_series


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="m3-monthly")
    ap.add_argument("--model-seeds", default="0,1")
    ap.add_argument("--same-size", action="store_true", help="also train on all series but as many others as held out")
    args = ap.parse_args()
    test = load(args.dataset).test
    print("| draw | trained on | " + " | ".join(METHODS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in METHODS) + " |")
    for seed in map(int, args.model_seeds.split(",")):
        held, n_held = run(args.dataset, "holdout", seed)
        every, n_every = run(args.dataset, "all-series", seed)
        ids = held.test_ids  # (series,) the held-out series
        truth = np.stack([test.series(i) for i in test.index_of(ids)])  # (series, h)
        rows = {"other series only (holdout)": (held, np.arange(len(ids))),
                "these series too (all-series)": (every, np.searchsorted(every.test_ids, ids))}
        if args.same_size:
            others = np.setdiff1d(every.test_ids, ids)  # (series,) every series that is not held out
            drop = np.random.default_rng(seed).choice(others, size=n_every - n_held, replace=False)
            same, _ = run(args.dataset, "all-series", seed, drop)
            rows[f"these series too, {n_held} in all"] = (same, np.searchsorted(same.test_ids, ids))
        for label, (res, pos) in rows.items():
            assert (res.test_ids[pos] == ids).all()
            cells = " | ".join(f"{smape(truth, res.forecasts[m][pos]).mean():.2f}" for m in METHODS)
            print(f"| {seed} | {label} | {cells} |", flush=True)
        print(f"(series trained on: holdout {n_held}, all-series {n_every})", flush=True)


if __name__ == "__main__":
    main()
