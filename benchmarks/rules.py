"""Choosing the derived input window and pre-training's length on validation: each candidate rule on each
panel (input rules ``current``, ``h``, ``2h``, ``24``; pre-training rules ``pretrain-1000``, 1,000 iterations,
and ``pretrain-patience``, stopped after 16 validations without improvement), scored by
the selection's leak-free validation (networks trained on the data up to the cut, the validation series'
held-back horizons scored), never on a test horizon.

For each panel, rule and seed (``--seeds``: ``train.model_seed``, another draw of weights and tasks on the
same validation series) it prints the validation score (mean of sMAPE and MASE relative to seasonal
naive's; lower is better) of the adapted meta-learner, of plain fine-tuning on every window and of the
chosen candidate, the chosen forecast's score out of sample ("halved": the choice made as the selection
makes it, on half of the validation series and every training series' rows, scored on the other half of
the validation series; the mean over ``--splits`` halvings), the seconds the choice took (training
included), and at the end each rule's geometric mean over the panels and seeds.

    .venv/bin/python benchmarks/rules.py [--panels m3-quarterly,nn5] [--rules current,h,2h] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from candidates import best, relative
from suite import panel_source

from fewcast.calendar import guess_season
from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.experiment import Experiment
from fewcast.metrics import seasonal_scale
from fewcast.selection import BASELINE, candidate_names, select

PRETRAIN = {"pretrain-1000": {"pretrain_iterations": 1000, "pretrain_patience": 0},
            "pretrain-patience": {"pretrain_iterations": 4000, "pretrain_patience": 16}}


def input_for(rule: str, h: int, m: int) -> int | None:
    """The input window a rule gives (None: the current derivation)."""
    whole = (lambda n: m * math.ceil(n / m)) if m > 1 else (lambda n: n)
    return {"current": None, "h": whole(max(2 * m, h)), "2h": whole(max(2 * m, 2 * h)),
            "24": 24}.get(rule)


def validation_only(scored: dict, m: int) -> dict[str, float]:
    """The adapted meta-learner's and plain fine-tuning's validation score on the validation series' rows
    alone (the selection's table ranks on the training series' rows too)."""
    made, truth, own = scored["forecasts"], scored["truth"], scored["validation"]
    scale = np.concatenate([seasonal_scale(p, m) for p in scored["history"]])[own]  # (validation rows,)
    return {f"{n} (validation)": relative(truth[own], made[n][own], scale, made[BASELINE][own])
            for n in ("metasgd", "pretrained_finetune_all")}


def halved(scored: dict, m: int, splits: int, top: int) -> float:
    """The chosen forecast's validation score out of sample: the average of the ``top`` candidates best on
    half of the validation series and every training series' rows, scored on the other half's rows (the
    mean over ``splits`` halvings)."""
    made, truth, history = scored["forecasts"], scored["truth"], scored["history"]
    own = scored["validation"]  # (rows,) a validation series' row
    per_cut = history[0].n_series
    n = int(own[:per_cut].sum())  # validation series, the first of each cut
    series = np.tile(np.arange(per_cut), len(history))  # (rows,) each row's series in its cut
    scale = np.concatenate([seasonal_scale(p, m) for p in history])  # (rows,)
    offered = {c: made[c] for c in candidate_names("metasgd")}
    rng, total = np.random.default_rng(0), 0.0
    for _ in range(splits):
        choosing = np.zeros(per_cut, dtype=bool)
        choosing[:n] = rng.permutation(n) < n // 2
        half = choosing[series]  # (rows,) the choosing half of the validation series
        pick = best(offered, half | ~own, truth, scale, made[BASELINE], top)
        rows = ~half & own
        total += relative(truth[rows], pick[rows], scale[rows], made[BASELINE][rows]) / splits
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default="m1-monthly,m3-quarterly,m3-yearly,tourism-monthly,tourism-quarterly,game,nn5")
    ap.add_argument("--rules", default="current,h,2h")
    ap.add_argument("--seeds", default="0", help="train.model_seed values, comma-separated")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    scores: dict[str, list[float]] = {}
    print("| panel | rule | seed | input_size | shots | metasgd | pretrained_finetune_all | metasgd (validation) "
          "| pretrained_finetune_all (validation) | chosen | chosen score | halved | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.panels.split(","):
        source, h, m = panel_source(name, args.data)
        for rule in args.rules.split(","):
            for seed in (int(x) for x in args.seeds.split(",")):
                s = Settings()
                s.update("data", {"h": h, "season_length": m})
                s.update("train", {**PRETRAIN.get(rule, {}), "model_seed": seed})
                data = load_panel_data(source, s)
                size = input_for(rule, data.h, data.season_length or guess_season(data.visible.freq))
                if size is not None:
                    s.update("data", {"input_size": size})
                exp = Experiment(s, data, log=lambda *_: None)
                chosen = select(exp, keep=True)
                t = chosen.table.set_index("method")
                row = {"metasgd": float(t.loc["metasgd", "score"]),
                       "pretrained_finetune_all": float(t.loc["pretrained_finetune_all", "score"]),
                       "chosen": float(t["score"].iloc[0]),
                       **validation_only(chosen.scored, exp.layout.season_length),
                       "halved": halved(chosen.scored, exp.layout.season_length, args.splits,
                                        exp.settings.train.select_top)}
                for column, value in row.items():
                    scores.setdefault(f"{rule}, {column}", []).append(value)
                print(f"| {name} | {rule} | {seed} | {exp.settings.data.input_size} | {exp.settings.train.shots} | "
                      f"{row['metasgd']:.3f} | {row['pretrained_finetune_all']:.3f} | "
                      f"{row['metasgd (validation)']:.3f} | "
                      f"{row['pretrained_finetune_all (validation)']:.3f} | {chosen.chosen} | "
                      f"{row['chosen']:.3f} | {row['halved']:.4f} | {chosen.seconds:.0f} |", flush=True)
    for rule, values in scores.items():
        print(f"{rule}: geometric mean of the validation score {math.exp(np.log(values).mean()):.4f}")


if __name__ == "__main__":
    main()
