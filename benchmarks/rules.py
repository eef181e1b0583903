"""Choosing the derived input window and pre-training's length on validation: each candidate rule on each
panel (input rules ``current``, ``h``, ``2h``, ``24``; pre-training rules ``pretrain-1000``, 1,000 iterations,
and ``pretrain-patience``, stopped after 16 validations without improvement), scored by
the selection's leak-free validation (networks trained on the data up to the cut, the validation series'
held-back horizons scored), never on a test horizon.

For each panel and rule it prints the validation score (mean of sMAPE and MASE relative to seasonal
naive's; lower is better) of the adapted meta-learner, of plain fine-tuning on every window and of the
chosen candidate, the seconds the choice took (training included), and at the end each rule's geometric
mean over the panels.

    .venv/bin/python benchmarks/rules.py [--panels m3-quarterly,nn5] [--rules current,h,2h]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from suite import panel_source

from fewcast.calendar import guess_season
from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.experiment import Experiment
from fewcast.selection import select

PRETRAIN = {"pretrain-1000": {"pretrain_iterations": 1000, "pretrain_patience": 0},
            "pretrain-patience": {"pretrain_iterations": 4000, "pretrain_patience": 16}}


def input_for(rule: str, h: int, m: int) -> int | None:
    """The input window a rule gives (None: the current derivation)."""
    whole = (lambda n: m * math.ceil(n / m)) if m > 1 else (lambda n: n)
    return {"current": None, "h": whole(max(2 * m, h)), "2h": whole(max(2 * m, 2 * h)),
            "24": 24}.get(rule)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default="m1-monthly,m3-quarterly,m3-yearly,tourism-monthly,tourism-quarterly,game,nn5")
    ap.add_argument("--rules", default="current,h,2h")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    scores: dict[str, list[float]] = {}
    print("| panel | rule | input_size | shots | metasgd | pretrained_finetune_all | chosen | chosen score | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.panels.split(","):
        source, h, m = panel_source(name, args.data)
        for rule in args.rules.split(","):
            s = Settings()
            s.update("data", {"h": h, "season_length": m})
            s.update("train", PRETRAIN.get(rule, {}))
            data = load_panel_data(source, s)
            size = input_for(rule, data.h, data.season_length or guess_season(data.visible.freq))
            if size is not None:
                s.update("data", {"input_size": size})
            exp = Experiment(s, data, log=lambda *_: None)
            chosen = select(exp)
            t = chosen.table.set_index("method")
            best = float(t["score"].iloc[0])
            scores.setdefault(f"{rule}, chosen", []).append(best)
            scores.setdefault(f"{rule}, metasgd", []).append(float(t.loc["metasgd", "score"]))
            print(f"| {name} | {rule} | {exp.settings.data.input_size} | {exp.settings.train.shots} | "
                  f"{t.loc['metasgd', 'score']:.3f} | {t.loc['pretrained_finetune_all', 'score']:.3f} | "
                  f"{chosen.chosen} | {best:.3f} | {chosen.seconds:.0f} |", flush=True)
    for rule, values in scores.items():
        print(f"{rule}: geometric mean of the validation score {math.exp(np.log(values).mean()):.4f}")


if __name__ == "__main__":
    main()
