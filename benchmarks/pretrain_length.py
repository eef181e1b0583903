"""How long pre-training should run on a panel: one long pre-training per panel (the holdout protocol, the
default settings otherwise), its meta-validation loss every ``val_every`` iterations, and the best loss
reached by each shorter run. Pre-training's learning rate is constant and it keeps the best-validating
moving average, so a run of ``n`` iterations is the first ``n`` iterations of the long one.

Per panel: training series, training windows, windows per iteration, epochs in 1,000 iterations, the
iteration of the best validation, and the best loss within 250, 500, 1,000, 2,000, ... iterations relative
to the long run's best (1.000: as good); then, for stopping after ``P`` validations without improvement,
where it stops and its best loss relative to the long run's. ``--out``: each panel's validation curve as
CSV.

    .venv/bin/python benchmarks/pretrain_length.py [--panels m3-yearly,game] [--iterations 4000] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from suite import EMBEDDED, FILES, panel_source

from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.experiment import Experiment

MARKS = [250, 500, 1000, 2000, 4000, 8000]
PATIENCE = [4, 8, 16, 40]  # validations without improvement


def stop_at(val: np.ndarray, patience: int) -> int:
    """The index of the validation at which a run with this patience stops (the last one if it never does)."""
    best, bad = np.inf, 0
    for i, v in enumerate(val):
        best, bad = (v, 0) if v < best else (best, bad + 1)
        if bad >= patience:
            return i
    return len(val) - 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default=",".join([*EMBEDDED, *FILES]))
    ap.add_argument("--iterations", type=int, default=4000)
    ap.add_argument("--out", default="")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    marks = [m for m in MARKS if m < args.iterations] + [args.iterations]
    print("| panel | train series | windows | batch | epochs per 1,000 | best at | "
          + " | ".join(f"within {m}" for m in marks) + " | seconds per 1,000 | "
          + " | ".join(f"patience {p}" for p in PATIENCE) + " |")
    print("| --- " * (7 + len(marks) + len(PATIENCE)) + "|")
    for name in args.panels.split(","):
        source, h, m = panel_source(name, args.data)
        s = Settings()
        s.update("data", {"h": h, "season_length": m})
        s.update("train", {"pretrain_iterations": args.iterations})
        data = load_panel_data(source, s)
        exp = Experiment(s, data, log=lambda *_: None)
        trainer = exp.pretrain_trainer()
        trainer.fit()
        rows = [r for r in trainer.history if not math.isnan(r["val_loss"])]
        it = np.array([r["iteration"] for r in rows])
        raw = np.array([r["val_loss"] for r in rows])
        val = np.minimum.accumulate(raw)  # best so far
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            np.savetxt(f"{args.out}/{name}.csv", np.c_[it, raw], delimiter=",", header="iteration,val_loss")
        stops = [stop_at(raw, p) for p in PATIENCE]
        seconds = sum(r["seconds"] for r in trainer.history) / len(trainer.history) * 1000
        n_windows = len(exp.windows) if exp.train_series is None else int(exp.windows.counts[exp.train_series].sum())
        batch = trainer.meta_batch_size
        within = [val[it <= mk][-1] / val[-1] for mk in marks]
        print(f"| {name} | {len(exp.split.train)} | {n_windows} | {batch} | {1000 * batch / n_windows:.1f} | "
              f"{int(it[np.argmin(val)])} | " + " | ".join(f"{w:.3f}" for w in within) + f" | {seconds:.0f} | "
              + " | ".join(f"{it[i]}: {val[i] / val[-1]:.3f}" for i in stops) + " |",
              flush=True)


if __name__ == "__main__":
    main()
