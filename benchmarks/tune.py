"""Tuning on meta-validation only: score settings on the validation series, never on the test horizon.

For each setting it pre-trains and meta-trains the default learner, then forecasts each meta-validation
series at ``--cuts`` forecast origins inside its visible part (the last h visible points, the h before
them, ...), adapting on the windows before each origin. Prints sMAPE of the pre-trained network, plain
fine-tuning as the learner adapts, plain fine-tuning on every window (``finetune_all``, the results
tables' ``pretrained_finetune_all``) and the adapted learner (with ``--classical``: each classical method
and its average with each of the last two), and saves the forecasts (``--save``) so ensembles of settings
can be scored offline.

    .venv/bin/python benchmarks/tune.py --set input_size=24 --set shots=20 --save /tmp/tune/a.npz
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from fewcast import datasets
from fewcast.baselines import classical_forecasts
from fewcast.config import Settings
from fewcast.experiment import Experiment, adaptation, finetune_all, forecast, make_problems
from fewcast.learners import MetaTrainer
from fewcast.metrics import smape
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler, WindowSampler
from fewcast.windows import Windows


def validation_problems(exp: Experiment, cuts: int, shots: int, part: Panel | None = None):
    d, h = exp.data, exp.h
    part = d.visible_part(d.visible.index_of(exp.split.val)) if part is None else part
    out = []
    for c in range(1, cuts + 1):
        keep = part.lengths - c * h
        ok = keep >= h + 2
        sub = part.take(np.flatnonzero(ok))
        hist = sub.slice(0, keep[ok])
        truth = sub.slice(keep[ok], keep[ok] + h).values.reshape(-1, h)
        out.append(make_problems(hist, truth, exp.settings.data.input_size, h, shots, d.season_length,
                                 exp.settings.data.deseasonalize))
    return out


def by_windows(exp: Experiment, learner, pre, problems, most, save: str = "") -> None:
    """The learner against ``finetune_all`` on the validation forecasts with histories cut to hold at most
    ``n`` windows (for each ``n`` of ``most``; 0: the whole history): sMAPE by how many windows a series has,
    and of the per-series switch (``finetune_all`` from ``m`` windows on, the learner below) for each ``m``.
    ``save``: also write each forecast's windows, both sMAPEs and the pre-trained network's support loss
    (zero-shot, on every window) to ``save.<cell>.npz``."""
    s = exp.settings
    ways = {s.learner.name: "learned", "finetune_all": "finetune_all"}  # label: the adaptation it forecasts with
    windows, fit, errors = {}, {}, {label: {} for label in ways}
    for _, tag, (prob, _) in problems:
        for n in most:
            ends = prob.history.lengths
            keep = n + s.data.input_size + exp.h - 1  # observations that hold n windows
            hist = prob.history.slice(np.maximum(ends - keep, 0), ends) if n else prob.history
            key = tag or "val"
            for label, way in ways.items():
                lrn, shots, steps = adaptation(s, learner, pre.model, way)
                problem = make_problems(hist, prob.truth, s.data.input_size, exp.h, shots, exp.data.season_length,
                                        s.data.deseasonalize)
                yhat = forecast(lrn, problem, s.data.scaler, steps)[0]
                errors[label].setdefault(key, []).append(smape(prob.truth, yhat))
                if way == "finetune_all":  # every window (up to 200): how many a series has, and how the
                    windows.setdefault(key, []).append(problem.shots_used)  # pre-trained network fits them
                    fit.setdefault(key, []).append(forecast(pre, problem, s.data.scaler, 0)[1])  # zero-shot loss
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


def main() -> None:
    ap = argparse.ArgumentParser()
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
    exp = Experiment(s, log=lambda *_: None)
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
        exp.validation = TaskSampler(vw, s.learner.shots, 1, s.data.scaler, s.train.seed).latest()
    if args.no_pretrain_select:
        def last_iterate():
            trainer = exp.pretrain_trainer()
            trainer._val = None  # no validation: the last iterate
            return exp.fit("pretrained", trainer)
        exp.pretrain = last_iterate
    pre, learners = exp.train(extra=False)
    learner = learners[s.learner.name]
    if args.refit:
        part = full.slice(0, np.maximum(full.lengths - (args.trim - 1) * exp.h, 0))
        sampler = WindowSampler(Windows(part, s.data.input_size, exp.h), s.data.scaler, exp.rank_seed + 1)
        batch = s.train.pretrain_batch_size or s.train.meta_batch_size * (s.learner.shots + 1)
        MetaTrainer(pre, sampler, None, outer_lr=s.train.pretrain_lr, meta_batch_size=batch, iterations=args.refit,
                    val_every=10**9).fit()
        learner.model.load_state_dict(pre.model.state_dict())
    fine = exp.finetuner(pre.model)
    res, saved = {}, {}
    # (key, tag, problem): key numbers the saved forecasts; leak-free, only the cut whose origin is where
    # training data ends is scored
    scored = args.score_cut or args.trim
    every = s.eval.finetune_all_shots  # pretrained_finetune_all adapts on up to this many windows (0: not scored)
    shots = (s.learner.shots, every) if every else (s.learner.shots,)
    problems = [(c, "", p) for c, p in enumerate(zip(*(validation_problems(exp, args.cuts, k) for k in shots)))
                if not scored or c + 1 == scored]
    if args.score_train:
        if not args.trim:
            raise SystemExit("--score-train needs --trim")
        at_trim = tuple(validation_problems(exp, args.trim, k, full)[-1] for k in shots)  # the meta-train series' cut
        problems.append((args.cuts + args.trim - 1, "@train", at_trim))
    networks = [s.learner.name, "finetune_all"] if every else [s.learner.name]
    for c, tag, (prob, *prob_all) in problems:
        steps_at_test = s.eval.adapt_steps or None
        runs = [("pretrained", pre, 0, prob), ("finetune", fine, steps_at_test, prob),
                (s.learner.name, learner, steps_at_test, prob)]
        if every:
            runs.append(("finetune_all", finetune_all(pre.model, s), None, prob_all[0]))
        for label, lrn, steps, problem in runs:
            yhat = forecast(lrn, problem, s.data.scaler, steps)[0]
            saved[f"{label}_{c}"] = yhat
            saved[f"truth_{c}"] = prob.truth
            res.setdefault(label + tag, []).append(smape(prob.truth, yhat))
        if args.classical:
            methods = args.classical.split(",")
            for name, yhat in classical_forecasts(prob.history, exp.h, exp.data.season_length, methods).items():
                res.setdefault(name + tag, []).append(smape(prob.truth, yhat))
                saved[f"{name}_{c}"] = yhat
                for network in networks:  # each network's plain average with the classical method
                    mean = (yhat + saved[f"{network}_{c}"]) / 2
                    res.setdefault(f"{network}+{name}{tag}", []).append(smape(prob.truth, mean))
    if args.windows and every:
        by_windows(exp, learner, pre, problems, [int(n) for n in args.windows.split(",")],
                   args.save and args.save.removesuffix(".npz") + ".windows")
    line = " ".join(f"{k}={np.concatenate(v).mean():.3f}" for k, v in res.items())
    print(f"{' '.join(args.set)} trim={args.trim} member={args.member} | {line} | "
          f"{time.perf_counter() - started:.0f}s",
          flush=True)
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
