"""Presets: named settings and the panel they run on (``fewcast demo --preset NAME``)."""

from __future__ import annotations

from fewcast.config import Settings
from fewcast.errors import InputError


def seed_preset() -> Settings:
    """The seed experiment's settings (../shared/SEED.md), with real per-series tasks, second-order MAML
    and held-out series: 30 -> 1 windows (of the ``game`` panel), the 10-10 MLP, one inner SGD step of 0.01,
    Adam 0.001 for 500 iterations of 1,000 tasks (the seed's inert ``tasks_per_meta_batch``, made real),
    a pre-trained network with full-batch Adam 0.01 for 500 iterations, then K = 10 support windows and
    10 SGD steps of 0.01 on 1,000 held-out users."""
    return Settings.from_dict({
        "data": {"input_size": 30, "h": 1},
        "model": {"name": "mlp", "hidden": 10, "depth": 2, "ensemble": 1, "ensemble_transforms": []},
        "learner": {"name": "maml", "inner_lr": 0.01, "inner_steps": 1, "first_order": False, "loss": "mse",
                    "adapt_params": "all"},
        "forecast": {"adapt_steps": 10},
        "train": {"shots": 10, "query_shots": 1, "init": "random", "outer_params": "all", "val_frac": 0.1,
                  "test_frac": 0.2, "outer_lr": 0.001, "meta_batch_size": 1000, "iterations": 500,
                  "pretrain_iterations": 500, "pretrain_lr": 0.01, "pretrain_batch_size": -1, "pretrain_ema": 0.0,
                  "pretrain_patience": 0,
                  "val_every": 25},
        "eval": {"curve_steps": 10,
                 "trajectory_title": "Average learning trajectory for K=10, starting from initial weights"},
    }, "the seed preset")


# preset name -> (its settings, the panel it runs on)
PRESETS = {"default": (Settings, "m3-monthly"), "seed": (seed_preset, "game")}


def preset(name: str) -> tuple[Settings, str]:
    """A preset's settings and the embedded panel it runs on."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    make, dataset = PRESETS[name]
    return make(), dataset
