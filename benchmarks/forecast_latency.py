"""Benchmark: adapt to and forecast 10,000 new series with the seed's MLP (10 shots, 10 SGD steps).

A FewShotForecaster with the seed's settings (input 30 -> h 1, the 10-10 MLP, MAML, shots 10, 10
adaptation steps at 0.01) is fitted briefly on ``game`` (the weights do not change the cost), then
``predict`` is timed on 10,000 new synthetic users: validating the frame, building every series' support
windows, 10 vectorized SGD steps for all series at once, the forecasts and their future dates.
Goal (issue 5): under 2 seconds in all on the project's 2-core CPU. Then the same with
``method="pretrained_finetune_all"`` (plain SGD on up to 200 windows of each series, 20 steps) and
``method="maml_auto"`` (that on the series with at least ``forecast.finetune_all_min_shots`` windows), for
their cost beside it; and ``predict`` with 80 % and 95 % intervals and nine quantiles beside the point
forecast (goal, issue 21: at most twice its time).

    .venv/bin/python benchmarks/forecast_latency.py [--series 10000]
"""

from __future__ import annotations

import argparse
import time

import torch

from fewcast import FewShotForecaster, datasets
from fewcast.engine import Layout
from fewcast.forecasting import Forecasts
from fewcast.frame import from_frame
from fewcast.presets import seed_preset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    args = ap.parse_args()
    settings = seed_preset()
    settings.update("train", {"iterations": 20, "pretrain_iterations": 20, "meta_batch_size": 64})
    fc = FewShotForecaster("mlp", "maml", settings=settings)
    train = datasets.game_panel(2000, seed=0).to_frame()
    fc.fit(train)
    new = datasets.game_panel(args.series, seed=1).to_frame()
    new["unique_id"] = "new_" + new["unique_id"]
    fc.predict(new.head(5000))  # warm-up
    panel = from_frame(new)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    ways = (("maml", "10 shots, 10 SGD steps"), ("pretrained_finetune_all", "up to 200 windows, 20 SGD steps"),
            ("maml_auto", "pretrained_finetune_all on series with 30 windows or more, maml on the others"))
    for name, what in ways:
        method = fc.methods()[name]
        best, best_core = float("inf"), float("inf")
        for _ in range(3):
            t = time.perf_counter()
            out = fc.predict(new, method=name)
            best = min(best, time.perf_counter() - t)
            t = time.perf_counter()
            Forecasts(panel, Layout.of(fc.settings.data)).make([method])
            best_core = min(best_core, time.perf_counter() - t)
        print(f"predict(method={name!r}) on {args.series:,} new series ({len(new):,} rows), {what}: {best:.2f} s "
              f"(best of 3); adaptation and forecast alone: {best_core:.2f} s; {len(out):,} forecasts")
    # the intervals beside the point forecast of the learner, timed in turns (the machine is shared and noisy)
    point, ranged = float("inf"), float("inf")
    for _ in range(3):
        t = time.perf_counter()
        fc.predict(new, method="maml")
        point = min(point, time.perf_counter() - t)
        t = time.perf_counter()
        out = fc.predict(new, method="maml", level=[80, 95], quantiles=[q / 10 for q in range(1, 10)])
        ranged = min(ranged, time.perf_counter() - t)
    print(f"predict(method='maml') {point:.2f} s; with level=[80, 95] and 9 quantiles {ranged:.2f} s "
          f"({ranged / point:.2f} times the point forecast; {len(out.columns) - 3} interval columns). "
          f"The forecast chosen on validation here: {fc.state['method']}")


if __name__ == "__main__":
    main()
