"""Benchmark: meta-train the seed's MLP for 2,000 iterations at meta-batch 256 on the ``game`` panel.

Second-order MAML, one inner step (inner_lr 0.01), shots 10 and 1 query window per task, input 30 -> h 1,
Adam with outer_lr 0.001; the 5,000 synthetic users are split 60/10/30 and only meta-train series are
sampled. Goal (issue 3): under a minute on the project's 2-core CPU machine, task sampling included.

    .venv/bin/python benchmarks/train_game.py [--iterations 2000] [--meta-batch-size 256]
"""

from __future__ import annotations

import argparse
import time

import torch

from fewcast import TaskSampler, Windows, datasets, split_series
from fewcast.learners import MAML, MetaTrainer
from fewcast.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--meta-batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    data = datasets.load("game")
    panel = data.train
    split = split_series(panel.ids, 0.1, 0.3, seed=0)
    windows = Windows(panel, 30, 1)
    train = TaskSampler(windows, shots=10, query_shots=1, seed=0, series=panel.index_of(split.train))
    val = TaskSampler(windows, shots=10, query_shots=1, seed=1, series=panel.index_of(split.val))
    learner = MAML(build_model("mlp", 30, 1, hidden=10, depth=2), inner_lr=0.01, inner_steps=1)
    trainer = MetaTrainer(learner, train, val.latest(), outer_lr=1e-3, meta_batch_size=args.meta_batch_size,
                          iterations=args.iterations, val_every=500)
    setup = time.perf_counter() - started
    t = time.perf_counter()
    history = trainer.fit()
    train_s = time.perf_counter() - t
    vals = [r["val_loss"] for r in history if r["val_loss"] == r["val_loss"]]
    print(f"set-up (data, split, windows, samplers): {setup:.2f} s")
    print(f"{len(history)} iterations x {args.meta_batch_size} tasks: {train_s:.1f} s "
          f"({len(history) * args.meta_batch_size / train_s:.0f} tasks/s, "
          f"{1e3 * train_s / len(history):.1f} ms/iteration)")
    print(f"meta-train loss first/last 50: {sum(r['train_loss'] for r in history[:50]) / 50:.4f} -> "
          f"{sum(r['train_loss'] for r in history[-50:]) / 50:.4f}; meta-validation: "
          + ", ".join(f"{v:.4f}" for v in vals))


if __name__ == "__main__":
    main()
