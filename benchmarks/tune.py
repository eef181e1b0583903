"""Tuning on meta-validation only: score settings on the validation series, never on the test horizon.

For each setting it pre-trains and meta-trains the default learner, then forecasts each meta-validation
series at ``--cuts`` forecast origins inside its visible part (the last h visible points, the h before
them, ...), adapting on the windows before each origin. Prints sMAPE of the pre-trained network, plain
fine-tuning as the learner adapts, plain fine-tuning on every window (``finetune_all``, the results
tables' ``pretrained_finetune_all``) and the adapted learner (with ``--classical``: each classical method
and its average with each of the last two), and saves the forecasts (``--save``) so ensembles of settings
can be scored offline.

    .venv/bin/python benchmarks/tune.py --dataset m3-monthly --set input_size=24 --set shots=20 --save /tmp/tune/a.npz
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from fewcast import datasets
from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.engine import forecast, make_problems
from fewcast.experiment import Experiment, Hooks
from fewcast.forecasting import Forecasts, network_methods
from fewcast.forecasting import classical as classical_method
from fewcast.learners import MetaTrainer
from fewcast.metrics import smape
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler, WindowSampler
from fewcast.windows import Windows


def validation_cuts(exp: Experiment, cuts: int, part: Panel | None = None) -> list[tuple[Panel, np.ndarray]]:
    """``(history, truth)`` of the validation series (or of ``part``) at each of ``cuts`` forecast origins: the
    last h visible points, the h before them, ..."""
    d, h = exp.data, exp.h
    part = d.visible_part(d.visible.index_of(exp.split.val)) if part is None else part
    out = []
    for c in range(1, cuts + 1):
        keep = part.lengths - c * h
        ok = keep >= h + 2
        sub = part.take(np.flatnonzero(ok))
        out.append((sub.slice(0, keep[ok]), sub.slice(keep[ok], keep[ok] + h).values.reshape(-1, h)))
    return out


def by_windows(exp: Experiment, methods: dict, pre, problems, most, save: str = "") -> None:
    """The learner against ``finetune_all`` on the validation forecasts with histories cut to hold at most
    ``n`` windows (for each ``n`` of ``most``; 0: the whole history): sMAPE by how many windows a series has,
    and of the per-series switch (``finetune_all`` from ``m`` windows on, the learner below) for each ``m``.
    ``save``: also write each forecast's windows, both sMAPEs and the pre-trained network's support loss
    (zero-shot, on every window) to ``save.<cell>.npz``."""
    s, lay = exp.settings, exp.layout
    ways = {s.learner.name: methods[s.learner.name], "finetune_all": methods["pretrained_finetune_all"]}
    windows, fit, errors = {}, {}, {label: {} for label in ways}
    for _, tag, (hist_all, truth) in problems:
        for n in most:
            ends = hist_all.lengths
            keep = n + lay.input_size + lay.h - 1  # observations that hold n windows
            hist = hist_all.slice(np.maximum(ends - keep, 0), ends) if n else hist_all
            key = tag or "val"
            made = Forecasts(hist, lay).make(list(ways.values()))
            for label, method in ways.items():
                errors[label].setdefault(key, []).append(smape(truth, made[method.name]))
            every = ways["finetune_all"].shots  # every window (up to 200): how many a series has, and how
            problem = make_problems(hist, truth, lay.input_size, lay.h, every, lay.season_length, lay.deseasonalize)
            windows.setdefault(key, []).append(problem.shots_used)  # the pre-trained network fits them
            fit.setdefault(key, []).append(forecast(pre, problem, s.data.scaler, 0)[1])  # zero-shot support loss
    for key in windows:
        n = np.concatenate(windows[key])  # (forecasts,) windows each forecast's series has
        a, b = (np.concatenate(errors[label][key]) for label in (s.learner.name, "finetune_all"))
        edges = [0, 1, 2, 5, 10, 15, 20, 25, 30, 40, 60, 100, 10**6]
        print(f"{key}: windows | forecasts | {s.learner.name} | finetune_all")
        for lo, hi in itertools.pairwise(edges):
            sel = (n >= lo) & (n < hi)
            if sel.any():
                print(f"{key}: [{lo}, {hi}) | {sel.sum()} | {a[sel].mean():.3f} | {b[sel].mean():.3f}")
        switch = " ".join(f"{m}:{np.where(n >= m, b, a).mean():.3f}" for m in edges[1:-1])
        print(f"{key}: switch at n windows (all {len(n)} forecasts) | {s.learner.name} {a.mean():.3f} | "
              f"finetune_all {b.mean():.3f} | {switch}", flush=True)
        if save:
            np.savez(f"{save}.{key}.npz", windows=n, learner=a, finetune_all=b, fit=np.concatenate(fit[key]))


class LastIterate(Hooks):
    """Pre-training without validation: it ends on its last iterate."""

    def restore(self, phase, trainer) -> None:
        if phase == "pretrained":
            trainer._val = None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="m3-monthly", help="an embedded panel or a file")
    ap.add_argument("--set", action="append", default=[], help="name=value of any setting")
    ap.add_argument("--cuts", type=int, default=2)
    ap.add_argument("--save", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trim", type=int, default=0, help="drop the last trim*h points of every meta-train series")
    ap.add_argument("--valcut", type=int, default=0, help="meta-validation tasks end valcut*h before the visible end")
    ap.add_argument("--score-cut", type=int, default=0, help="score this cut (default: the trim)")
    ap.add_argument("--refit", type=int, default=0, help="after training, continue pre-training for N iterations "
                    "on the data of trim-1 (no selection) and give the learner those weights")
    ap.add_argument("--no-pretrain-select", action="store_true", help="pre-training ends on its last iterate")
    ap.add_argument("--extra", default="", help="other embedded panels whose training parts join pre-training")
    ap.add_argument("--recent", type=int, default=0, help="train on each series' last N windows only")
    ap.add_argument("--classical", default="", help="also score these classical methods (theta,autoets) and "
                    "each one's plain average with the adapted learner")
    ap.add_argument("--member", type=int, default=0, help="another model and sampling seed, same split "
                    "(train.model_seed)")
    ap.add_argument("--score-train", action="store_true", help="also score the meta-train series at the trim cut "
                    "(their last trim*h points were never trained on): about 7 times more series")
    ap.add_argument("--windows", default="", help="also score every validation forecast with its history cut to "
                    "hold at most n windows, for each n of this list (0: all), and print the learner against "
                    "finetune_all by how many windows a series has, and the per-series switch between them")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = Settings()
    sections = s.field_sections()
    for item in args.set:
        k, v = item.split("=", 1)
        s.update("model" if k == "name_model" else sections[k], {("name" if k == "name_model" else k): v})
    s.train.model_seed = args.member
    started = time.perf_counter()
    exp = Experiment(s, load_panel_data(args.dataset, s), log=lambda *_: None)
    full = exp.train_panel
    if args.trim:
        tp = exp.train_panel
        exp.train_panel = tp.slice(0, np.maximum(tp.lengths - args.trim * exp.h, 0))
        exp.windows = Windows(exp.train_panel, s.data.input_size, exp.h)
    if args.recent:
        exp.train_panel = exp.train_panel.tail(args.recent + s.data.input_size + exp.h - 1)
        exp.windows = Windows(exp.train_panel, s.data.input_size, exp.h)
    if args.extra:  # cross-panel pre-training: other panels' series (trimmed alike) join the training windows
        parts = [exp.train_panel]
        for name in args.extra.split(","):
            other = datasets.load(name).train
            parts.append(other.slice(0, np.maximum(other.lengths - args.trim * exp.h, 0)))
        ids = np.concatenate([np.char.add(f"{k}:", p.ids.astype(str)) for k, p in enumerate(parts)])
        lengths = np.concatenate([p.lengths for p in parts])  # (series,)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        exp.train_panel = Panel(ids, np.concatenate([p.values for p in parts]),
                                np.concatenate([p.ds.astype(np.int64) for p in parts]), offsets, freq=1)
        exp.windows = Windows(exp.train_panel, s.data.input_size, exp.h)
    if args.valcut:
        part = exp.data.visible_part(exp.data.visible.index_of(exp.split.val))
        part = part.slice(0, np.maximum(part.lengths - args.valcut * exp.h, 0))
        vw = Windows(part, s.data.input_size, exp.h)
        exp.validation = TaskSampler(vw, s.train.shots, 1, s.data.scaler, s.train.seed).latest()
    pre, learners = exp.train(hooks=LastIterate() if args.no_pretrain_select else None)
    learner = learners[s.learner.name]
    if args.refit:
        part = full.slice(0, np.maximum(full.lengths - (args.trim - 1) * exp.h, 0))
        sampler = WindowSampler(Windows(part, s.data.input_size, exp.h), s.data.scaler, exp.rank_seed + 1)
        batch = s.train.pretrain_batch_size or s.train.meta_batch_size * (s.train.shots + 1)
        MetaTrainer(pre, sampler, None, outer_lr=s.train.pretrain_lr, meta_batch_size=batch, iterations=args.refit,
                    val_every=10**9).fit()
        learner.model.load_state_dict(pre.model.state_dict())
    methods = {m.name: m for m in network_methods(s, {s.learner.name: learner}, pre)}
    runs = {"pretrained": methods["pretrained"], "finetune": methods["pretrained_finetune"],
            s.learner.name: methods[s.learner.name]}
    every = s.forecast.finetune_all_shots  # pretrained_finetune_all adapts on up to this many windows (0: not scored)
    if every:
        runs["finetune_all"] = methods["pretrained_finetune_all"]
    res, saved = {}, {}
    # (key, tag, (history, truth)): key numbers the saved forecasts; leak-free, only the cut whose origin is
    # where training data ends is scored
    scored = args.score_cut or args.trim
    problems = [(c, "", cut) for c, cut in enumerate(validation_cuts(exp, args.cuts)) if not scored or c + 1 == scored]
    if args.score_train:
        if not args.trim:
            raise SystemExit("--score-train needs --trim")
        problems.append((args.cuts + args.trim - 1, "@train", validation_cuts(exp, args.trim, full)[-1]))
    networks = [s.learner.name, "finetune_all"] if every else [s.learner.name]
    classical = args.classical.split(",") if args.classical else []
    for c, tag, (hist, truth) in problems:
        made = Forecasts(hist, exp.layout)
        forecasts = {label: made[m] for label, m in runs.items()}
        if classical:
            forecasts.update(made.make([classical_method(c) for c in classical]))  # floored as fewcast's are
        saved[f"truth_{c}"] = truth
        for label, yhat in forecasts.items():
            saved[f"{label}_{c}"] = yhat
            res.setdefault(label + tag, []).append(smape(truth, yhat))
        for name in classical:
            for network in networks:  # each network's plain average with the classical method
                mean = (forecasts[name] + forecasts[network]) / 2
                res.setdefault(f"{network}+{name}{tag}", []).append(smape(truth, mean))
    if args.windows and every:
        by_windows(exp, methods, pre, problems, [int(n) for n in args.windows.split(",")],
                   args.save and args.save.removesuffix(".npz") + ".windows")
    line = " ".join(f"{k}={np.concatenate(v).mean():.3f}" for k, v in res.items())
    print(f"{' '.join(args.set)} trim={args.trim} member={args.member} | {line} | "
          f"{time.perf_counter() - started:.0f}s",
          flush=True)
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
