"""Benchmark suite: every embedded panel and the four high-frequency panels of ``../shared/data``, in the
``holdout`` and ``all-series`` protocols, with the default settings and no per-panel tuning.

Per panel and protocol: sMAPE and MASE of ``fewcast`` (the forecast chosen on validation), the adapted
meta-learner, ``pretrained_finetune_all``, seasonal naive, AutoETS, Theta and AutoCES, the method chosen and
the wall time (choosing, training and scoring); and the prediction intervals of fewcast, AutoETS and seasonal
naive (coverage of the 80 % and 95 % intervals, MSIS, scaled quantile loss). Per panel also the cold start
fewcast is for: the holdout series cut to a short history (two seasons plus the input window), forecast by
the same networks with the same chosen method (no cold start where no held-out series is longer). Across
panels: the geometric mean of each method's MASE relative to seasonal naive's (as fev and GIFT-Eval
aggregate), and in how many runs ``fewcast`` is at least as good as the best of seasonal naive, AutoETS and
Theta.

    .venv/bin/python benchmarks/suite.py [--quick] [--check] [--panels m3-monthly,nn5] [--protocols holdout]
                                         [--data ../shared/data] [--out runs/suite] [--peers]

``--quick``: five panels, the holdout protocol, 200 pre-training and 30 meta-training iterations (under ten
minutes on the project's 2-core CPU). The high-frequency panels are read from ``--data`` (never copied into
the repository); a panel whose file is missing is skipped with a note. ``--check``: instead of the suite's (or
the quick) panels, the check panels of :data:`DERIVED`, sums of the shared panels over weeks, days or hours
(written to a temporary directory for the run): a weekly frequency, and horizons and seasons, that the
defaults were not chosen on. ``--peers`` adds neuralforecast's NHITS trained on the same training series
(:mod:`peers`; the ``bench`` extra), its accuracy on the same held-out series and cold starts, and its
training time against fewcast's (training both networks and choosing the forecast).
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewcast.config import Settings
from fewcast.data import load_panel_data
from fewcast.evaluation import evaluate
from fewcast.experiment import Experiment
from fewcast.metrics import score, seasonal_scale
from fewcast.selection import select

EMBEDDED = ["m1-monthly", "m1-quarterly", "m1-yearly", "m3-monthly", "m3-quarterly", "m3-yearly", "m3-other",
            "tourism-monthly", "tourism-quarterly", "tourism-yearly", "game"]
# file, h and season as the data's README gives them (the first h where it names several)
FILES = {"pedestrian": ("pedestrian_melbourne_hourly.parquet", 24, 24),
         "ausgrid": ("ausgrid_halfhourly.parquet", 96, 48),
         "nn5": ("nn5_daily.parquet", 56, 7),
         "kaggle": ("kaggle_web_traffic_daily.parquet", 59, 7)}
# check panels: a shared panel summed over whole periods (file key, points per period, h, season), built in a
# temporary directory at run time: frequencies (weekly) and horizons the defaults were not chosen on
DERIVED = {"nn5-weekly": ("nn5", 7, 13, 52),
           "kaggle-weekly": ("kaggle", 7, 13, 52),
           "pedestrian-daily": ("pedestrian", 24, 14, 7),
           "ausgrid-hourly": ("ausgrid", 2, 48, 24)}
QUICK = ["m3-quarterly", "m3-yearly", "tourism-monthly", "nn5", "pedestrian"]
METHODS = ["fewcast", "metasgd", "pretrained_finetune_all", "seasonal_naive", "autoets", "theta", "autoces"]
CLASSICAL = ["seasonal_naive", "autoets", "theta"]  # the bar: fewcast at least as good as the best of these
INTERVALS = ["fewcast", "autoets", "seasonal_naive"]  # fewcast's calibrated intervals, statsforecast's own
INTERVAL_SCORES = ["coverage_80", "coverage_95", "msis", "sql"]


def panel_source(name: str, data_dir, scratch=None) -> tuple[str, int, int]:
    """Where panel ``name`` is read from, its ``h`` and season: a file of ``data_dir`` with the ``h`` and
    season of :data:`FILES`, a check panel of :data:`DERIVED` written to the directory ``scratch``, or an
    embedded panel with its own (0, 0)."""
    if name in FILES:
        file, h, season = FILES[name]
        return str(Path(data_dir) / file), h, season
    if name in DERIVED:
        if scratch is None:
            raise ValueError(f"the check panel {name} is written to a scratch directory: pass one")
        key, points, h, season = DERIVED[name]
        path = Path(scratch) / f"{name}.parquet"
        summed(pd.read_parquet(Path(data_dir) / FILES[key][0]), points).to_parquet(path, index=False)
        return str(path), h, season
    return name, 0, 0


def summed(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    """Each series of a long frame summed over consecutive periods of ``points`` rows from its start (an
    incomplete last period dropped), dated by the period's first row; integer steps renumbered 0, 1, ..."""
    frame = frame.sort_values(["unique_id", "ds"])
    period = frame.groupby("unique_id").cumcount().to_numpy() // points
    out = (frame.assign(period=period).groupby(["unique_id", "period"])
           .agg(ds=("ds", "first"), y=("y", "sum"), rows=("y", "size")).reset_index())
    out = out[out["rows"] == points]
    if not pd.api.types.is_datetime64_any_dtype(out["ds"]):
        out["ds"] = out["period"]
    return out[["unique_id", "ds", "y"]].reset_index(drop=True)


def settings_for(protocol: str, h: int, season: int, quick: bool, select_top: int | None = None) -> Settings:
    s = Settings()
    if select_top:
        s.update("train", {"select_top": select_top})
    s.update("data", {"h": h, "season_length": season})
    s.update("eval", {"protocol": protocol, "classical": [*CLASSICAL, "autoces"], "combine": ["autoets", "theta"],
                      "curve_steps": 0, "shots_curve": [], "plot_series": 0})
    if quick:
        s.update("train", {"pretrain_iterations": 200, "iterations": 30})
    return s


def one_run(name: str, source: str, h: int, season: int, protocol: str, quick: bool,
            peers: bool = False, select_top: int | None = None) -> tuple[list[dict], str]:
    """The rows of one panel and protocol (and of its cold start under holdout), and the method chosen."""
    started = time.perf_counter()
    settings = settings_for(protocol, h, season, quick, select_top)
    data = load_panel_data(source, settings)
    exp = Experiment(settings, data, log=lambda *_: None)
    pretrained, learners = exp.train()
    chosen = select(exp)
    trained = time.perf_counter() - started  # both networks trained and the forecast chosen
    results = evaluate(exp, pretrained, learners, chosen)
    seconds = time.perf_counter() - started
    rows = [_row(name, protocol, results.table, chosen.chosen, seconds)]
    s = exp.settings
    keep = 2 * s.data.season_length + s.data.input_size
    histories = [exp.test_history]
    if protocol == "holdout" and exp.test_history.lengths.max() > keep:  # else the cold start is the holdout
        exp.test_history = exp.test_history.tail(keep)
        histories.append(exp.test_history)
        cold = evaluate(exp, pretrained, learners, chosen)
        rows.append(_row(name, f"cold start ({keep} points)", cold.table, chosen.chosen, float("nan")))
    if peers:
        from peers import nhits

        accelerator = "gpu" if exp.device.type == "cuda" else "cpu"  # NHITS on fewcast's device
        made, fit_seconds = nhits(exp.train_panel, histories, s.data.h, s.data.input_size, accelerator=accelerator)
        for row, history, yhat in zip(rows, histories, made):
            got = score(exp.test_truth, yhat, seasonal_scale(history, s.data.season_length))
            row.update({"nhits smape": got["smape"], "nhits mase": got["mase"], "nhits seconds": fit_seconds,
                        "fewcast train seconds": trained})
    return rows, chosen.chosen


def _row(panel: str, protocol: str, table: pd.DataFrame, chosen: str, seconds: float) -> dict:
    scores = table.set_index("method")
    row = {"panel": panel, "protocol": protocol, "series": int(scores["n_series"].iloc[0]), "chosen": chosen,
           "seconds": seconds}
    for m in METHODS:
        row[f"{m} smape"] = float(scores.loc[m, "smape"])
        row[f"{m} mase"] = float(scores.loc[m, "mase"])
    for m in INTERVALS:
        for c in INTERVAL_SCORES:
            row[f"{m} {c}"] = float(scores.loc[m, c]) if c in scores else float("nan")
    return row


def interval_markdown(frame: pd.DataFrame) -> str:
    """Per run: coverage of the 80 % and 95 % intervals, MSIS (95 %) and the scaled quantile loss over the
    quantiles 0.1 ... 0.9, of fewcast, AutoETS and seasonal naive (bold: fewcast's losses below AutoETS's)."""
    lines = ["| panel | protocol | " + " | ".join(f"{m} cov80 / cov95 / MSIS / SQL" for m in INTERVALS) + " |",
             "| --- | --- | " + " | ".join("---" for _ in INTERVALS) + " |"]
    for r in frame.to_dict("records"):
        cells = []
        for m in INTERVALS:
            cell = " / ".join(f"{r[f'{m} {c}']:.3f}" for c in INTERVAL_SCORES)
            if m == "fewcast" and r["fewcast msis"] < r["autoets msis"] and r["fewcast sql"] < r["autoets sql"]:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {r['panel']} | {r['protocol']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peer_markdown(frame: pd.DataFrame) -> str:
    """Per run: fewcast and NHITS (sMAPE / MASE), their training seconds and the ratio."""
    lines = ["| panel | protocol | fewcast | NHITS | fewcast training s | NHITS training s | speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in frame.to_dict("records"):
        mine = f"{r['fewcast smape']:.2f} / {r['fewcast mase']:.3f}"
        if r["fewcast smape"] < r["nhits smape"] and r["fewcast mase"] < r["nhits mase"]:
            mine = f"**{mine}**"
        cold = r["protocol"].startswith("cold")
        times = ("", "", "") if cold else (f"{r['fewcast train seconds']:.0f}", f"{r['nhits seconds']:.0f}",
                                           f"{r['nhits seconds'] / r['fewcast train seconds']:.1f}x")
        lines.append(f"| {r['panel']} | {r['protocol']} | {mine} | {r['nhits smape']:.2f} / {r['nhits mase']:.3f} | "
                     + " | ".join(times) + " |")
    return "\n".join(lines)


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| panel | protocol | series | " + " | ".join(METHODS) + " | chosen | seconds |",
             "| --- | --- | --- | " + " | ".join("---" for _ in METHODS) + " | --- | --- |"]
    for r in frame.to_dict("records"):
        best_mase = min(r[f"{m} mase"] for m in CLASSICAL)
        best_smape = min(r[f"{m} smape"] for m in CLASSICAL)
        cells = []
        for m in METHODS:
            cell = f"{r[f'{m} smape']:.2f} / {r[f'{m} mase']:.3f}"
            if m == "fewcast" and r[f"{m} mase"] <= best_mase + 1e-9 and r[f"{m} smape"] <= best_smape + 1e-9:
                cell = f"**{cell}**"  # at least as good as the best classical method in both
            cells.append(cell)
        seconds = "" if math.isnan(r["seconds"]) else f"{r['seconds']:.0f}"
        lines.append(f"| {r['panel']} | {r['protocol']} | {r['series']} | " + " | ".join(cells)
                     + f" | {r['chosen']} | {seconds} |")
    return "\n".join(lines)


def summary(frame: pd.DataFrame) -> str:
    """Geometric means of MASE relative to seasonal naive, and how often fewcast matches the best classical."""
    runs = frame[~frame["protocol"].str.startswith("cold")]
    lines = ["| method | geometric mean of MASE / seasonal naive's |", "| --- | --- |"]
    for m in [*METHODS, *(["nhits"] if "nhits mase" in runs else [])]:
        ratio = runs[f"{m} mase"] / runs["seasonal_naive mase"]
        lines.append(f"| {m} | {math.exp(np.log(ratio).mean()):.3f} |")
    best_mase = runs[[f"{m} mase" for m in CLASSICAL]].min(axis=1)
    best_smape = runs[[f"{m} smape" for m in CLASSICAL]].min(axis=1)
    both = ((runs["fewcast mase"] <= best_mase + 1e-9) & (runs["fewcast smape"] <= best_smape + 1e-9)).sum()
    lines.append(f"\nfewcast at least as good as the best of {', '.join(CLASSICAL)} in MASE and sMAPE: {both} of "
                 f"{len(runs)} runs (MASE alone: {(runs['fewcast mase'] <= best_mase + 1e-9).sum()}, sMAPE alone: "
                 f"{(runs['fewcast smape'] <= best_smape + 1e-9).sum()})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--panels", default="", help="comma-separated names (default: all, or the quick five)")
    ap.add_argument("--protocols", default="", help="default: holdout,all-series (quick: holdout)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/suite")
    ap.add_argument("--peers", action="store_true", help="add neuralforecast's NHITS (the bench extra)")
    ap.add_argument("--check", action="store_true", help="the check panels (DERIVED: weekly, daily and hourly "
                    "sums of the shared panels) instead of the suite's")
    ap.add_argument("--select-top", type=int, help="train.select_top: average this many best candidates (default: "
                    "the settings' own)")
    args = ap.parse_args()
    if args.peers:
        from peers import available

        if not available():
            raise SystemExit("suite.py: --peers needs neuralforecast: pip install -c constraints.txt -e '.[bench]'")
    names = args.panels.split(",") if args.panels else (list(DERIVED) if args.check else QUICK if args.quick
                                                        else [*EMBEDDED, *FILES])
    protocols = args.protocols.split(",") if args.protocols else (["holdout"] if args.quick else
                                                                  ["holdout", "all-series"])
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
          f"{gpu}{', quick' if args.quick else ''}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory()
    for name in names:
        file = FILES.get(DERIVED[name][0] if name in DERIVED else name)
        if file and not (Path(args.data) / file[0]).exists():
            print(f"note: {Path(args.data) / file[0]} is missing; {name} skipped", flush=True)
            continue
        source, h, season = panel_source(name, args.data, scratch.name)
        for protocol in protocols:
            got, chosen = one_run(name, source, h, season, protocol, args.quick, args.peers, args.select_top)
            rows += got
            print(f"{name}, {protocol}: chosen {chosen}, fewcast sMAPE {got[0]['fewcast smape']:.2f} MASE "
                  f"{got[0]['fewcast mase']:.3f}, {got[0]['seconds']:.0f} s", flush=True)
            pd.DataFrame(rows).to_csv(out / "suite.csv", index=False)
    frame = pd.DataFrame(rows)
    print(f"\nsMAPE / MASE per series, averaged (bold: fewcast at least as good as the best classical method in "
          f"both); {time.perf_counter() - started:.0f} s in all\n")
    print(markdown(frame))
    print("\nIntervals (cov80 / cov95: the share of values inside the 80 % and 95 % intervals; MSIS of the 95 % "
          "one; SQL: scaled quantile loss over 0.1 ... 0.9; bold: fewcast's MSIS and SQL below AutoETS's)\n")
    print(interval_markdown(frame))
    if args.peers:
        print("\nThe peer (NHITS, neuralforecast; sMAPE / MASE; bold: fewcast better in both; training seconds "
              "and fewcast's speed-up)\n")
        print(peer_markdown(frame))
    print()
    print(summary(frame))


if __name__ == "__main__":
    main()
