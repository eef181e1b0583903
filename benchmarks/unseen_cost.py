"""Benchmark: what never having trained on a series costs. The same held-out series, scored twice: by the
networks of the ``holdout`` run (which never saw them) and by those of the ``all-series`` run (which
trained on their training parts, as on every other series' own), on the same test horizon.

If the meta-learner's adaptation on a few windows of an unseen series recovers what training on that
series' history gives, its ``holdout`` score matches the pre-trained network's ``all-series`` score on
those series. The classical methods fit each series alone, so their two scores are equal by construction
(a check that both runs score the same series and horizon).

    .venv/bin/python benchmarks/unseen_cost.py [--dataset m3-monthly] [--model-seeds 0,1]
"""

from __future__ import annotations

import argparse

import numpy as np

from fewcast.config import Settings
from fewcast.datasets import load
from fewcast.experiment import Experiment
from fewcast.metrics import smape

METHODS = ["metasgd", "pretrained_finetune", "pretrained", "theta", "autoets"]


def run(dataset: str, protocol: str, model_seed: int):
    s = Settings()
    s.update("data", {"dataset": dataset})
    s.update("eval", {"protocol": protocol, "classical": ["autoets", "theta"], "combine": [], "curve_steps": 1,
                      "shots_curve": [], "plot_series": 0})
    s.update("train", {"model_seed": model_seed})
    return Experiment(s, log=lambda *_: None).run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="m3-monthly")
    ap.add_argument("--model-seeds", default="0,1")
    args = ap.parse_args()
    test = load(args.dataset).test
    print("| draw | trained on | " + " | ".join(METHODS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in METHODS) + " |")
    for seed in map(int, args.model_seeds.split(",")):
        held = run(args.dataset, "holdout", seed)
        every = run(args.dataset, "all-series", seed)
        ids = held.test_ids  # (series,) the held-out series
        truth = np.stack([test.series(i) for i in test.index_of(ids)])  # (series, h)
        rows = {"other series only (holdout)": (held, np.arange(len(ids))),
                "these series too (all-series)": (every, np.searchsorted(every.test_ids, ids))}
        for label, (res, pos) in rows.items():
            assert (res.test_ids[pos] == ids).all()
            cells = " | ".join(f"{smape(truth, res.forecasts[m][pos]).mean():.2f}" for m in METHODS)
            print(f"| {seed} | {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
