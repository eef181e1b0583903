"""Where a training run's time goes: the suite's settings (holdout protocol, defaults) on each panel, timed by
phase: pre-training and meta-training the run's networks, training them again on the validation cut, and
scoring the candidates there (forecasts of every candidate, classical ones included, on every cut).

Per phase: the iterations run, the seconds and the milliseconds per iteration (validation included). On a GPU
the small networks' steps are bound by kernel launches, not arithmetic, so the milliseconds per iteration
say how far a step is from free.

    .venv/bin/python benchmarks/phases.py [--panels m3-monthly,game] [--data ../shared/data] [--device auto]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from suite import panel_source, settings_for

from fewcast.data import load_panel_data
from fewcast.experiment import Experiment
from fewcast.selection import select


def _trained(history: list[dict]) -> tuple[int, float]:
    """The iterations of one trainer's history and the seconds they took."""
    return len(history), sum(row["seconds"] for row in history)


def phases(source: str, h: int, season: int, device: str) -> list[tuple[str, int, float]]:
    """(phase, iterations, seconds) of one panel's training run and choice of the forecast."""
    settings = settings_for("holdout", h, season, quick=False)
    settings.update("train", {"device": device})
    exp = Experiment(settings, load_panel_data(source, settings), log=lambda *_: None)
    exp.train()
    chosen = select(exp)
    rows = [(f"run: {label}", *_trained(history)) for label, history in exp.logs.items()]
    cut = [(f"validation cut: {label}", *_trained(history)) for label, history in chosen.logs.items()]
    scoring = chosen.seconds - sum(seconds for _, _, seconds in cut)
    return [*rows, *cut, ("validation cut: scoring the candidates", 0, scoring)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default="m3-monthly,game")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() and args.device != "cpu" else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}{gpu}")
    print("\n| panel | phase | iterations | seconds | ms per iteration |\n| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.panels.split(","):
            source, h, season = panel_source(name, args.data, scratch)
            started = time.perf_counter()
            for phase, iterations, seconds in phases(source, h, season, args.device):
                per = f"{1e3 * seconds / iterations:.1f}" if iterations else ""
                print(f"| {name} | {phase} | {iterations or ''} | {seconds:.1f} | {per} |", flush=True)
            print(f"| {name} | all | | {time.perf_counter() - started:.1f} | |", flush=True)


if __name__ == "__main__":
    main()
