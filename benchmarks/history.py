"""Benchmark: cold start with little history. How each method's accuracy on held-out series changes
when those series show only their last T observations (``--history T``), with the networks trained once.

Everything is as in ``fewcast demo`` (default settings, holdout protocol); only the meta-test series'
visible history is cut, for the networks (support windows and forecast input) and for the classical
methods alike. ``pretrained_finetune_all`` is plain SGD on up to 200 of a series' windows, ``metasgd_auto`` that
on a series with at least 30 windows and Meta-SGD on the others (``--method metasgd_auto``); the last three columns
are the adapted learner, ``pretrained_finetune_all`` and ``metasgd_auto``, each averaged with AutoETS
(``--combine``). A series
with fewer than ``input_size + h`` points has no support window: the networks
forecast it zero-shot (its input left-padded with its first observation).

    .venv/bin/python benchmarks/history.py [--dataset m3-monthly] [--histories 30,42,48,60,84,0]
"""

from __future__ import annotations

import argparse
import time

from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.evaluation import evaluate
from fewcast.experiment import Experiment

SINGLE = ["metasgd", "pretrained_finetune", "pretrained_finetune_all", "metasgd_auto", "pretrained", "theta",
          "autoets", "seasonal_naive"]
COMBINED = ["metasgd+autoets", "pretrained_finetune_all+autoets", "metasgd_auto+autoets"]  # never marked best
METHODS = [*SINGLE, *COMBINED]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="m3-monthly")
    ap.add_argument("--histories", default="30,42,48,60,84,0", help="0: the whole visible history")
    args = ap.parse_args()
    s = Settings()
    s.update("eval", {"classical": ["seasonal_naive", "autoets", "theta"], "curve_steps": 1, "shots_curve": [],
                      "plot_series": 0})
    started = time.perf_counter()
    exp = Experiment(s, load_panel_data(args.dataset, s), log=lambda *_: None)
    pretrained, learners = exp.train()
    print(f"trained in {time.perf_counter() - started:.0f} s; {exp.test_history.n_series} held-out series")
    full = exp.test_history
    print("\n| history T | support windows (mean) | " + " | ".join(METHODS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in METHODS) + " |")
    for t in (int(x) for x in args.histories.split(",")):
        exp.test_history = full.tail(t) if t else full
        res = evaluate(exp, pretrained, learners)
        smape = res.table.set_index("method")["smape"]
        shots = exp.problems().shots_used.mean()
        best = min(round(smape[m], 2) for m in SINGLE)  # the best single method, as printed
        cells = [f"**{smape[m]:.2f}**" if m in SINGLE and round(smape[m], 2) == best else f"{smape[m]:.2f}"
                 for m in METHODS]
        print(f"| {t or 'all'} | {shots:.1f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
