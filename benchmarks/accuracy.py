"""Benchmark: every method's accuracy on real and synthetic panels, holdout and all-series protocols.

Runs the tuned default settings (``fewcast.config.Settings()``; only the dataset and protocol change) on
``m3-monthly``, ``tourism-monthly`` and ``game``, and prints each results table (sMAPE and MASE per
method) as Markdown, with the time each run took. The defaults were chosen on meta-validation series,
never on the test horizon.

    .venv/bin/python benchmarks/accuracy.py [--datasets m3-monthly,tourism-monthly,game]
                                            [--protocols holdout,all-series] [--out runs/accuracy]
                                            [--set staleness=18 ...]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.evaluation import run
from fewcast.experiment import Experiment
from fewcast.report import write_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="m3-monthly,tourism-monthly,game")
    ap.add_argument("--protocols", default="holdout,all-series")
    ap.add_argument("--out", default="runs/accuracy")
    ap.add_argument("--set", action="append", default=[], help="name=value: a setting other than the defaults")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            settings = Settings()
            settings.update("eval", {"protocol": protocol})
            sections = settings.field_sections()
            for item in args.set:
                name, value = item.split("=", 1)
                settings.update(sections[name], {name: value})
            started = time.perf_counter()
            results = run(Experiment(settings, load_panel_data(dataset, settings), log=lambda *_: None))
            seconds = time.perf_counter() - started
            suffix = "".join(f"-{item.replace('=', '')}" for item in args.set)
            write_run(results, Path(args.out) / f"{dataset}-{protocol}{suffix}")
            table = results.table.sort_values("smape")
            extra = f", {' '.join(args.set)}" if args.set else ""
            print(f"\n### {dataset}, {protocol}{extra} ({int(table['n_series'].iloc[0])} series, {seconds:.0f} s)\n",
                  flush=True)
            print("| method | sMAPE | MASE |")
            print("| --- | --- | --- |")
            for row in table.itertuples():
                print(f"| {row.method} | {row.smape:.2f} | {row.mase:.3f} |")


if __name__ == "__main__":
    main()
