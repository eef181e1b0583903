"""The ``fewcast`` command line.

Every subcommand reads the same long-frame contract (``--id-col``, ``--time-col``, ``--target-col``).
Bad input prints one line to stderr and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from fewcast import datasets
from fewcast.errors import InputError, PanelWarning
from fewcast.panel import Panel, describe_freq, read_panel
from fewcast.tasks import shots_that_fit, task_windows
from fewcast.windows import Windows

EXIT_INPUT = 2


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The data-frame contract options shared by every command that reads a panel."""
    g = p.add_argument_group("columns of the long frame")
    g.add_argument("--id-col", default="unique_id", help="series id column (default: unique_id)")
    g.add_argument("--time-col", default="ds", help="time column, dates or integer steps (default: ds)")
    g.add_argument("--target-col", default="y", help="value column (default: y)")
    g.add_argument("--fill", action="store_true",
                   help="interpolate NaN or infinite values and insert missing time stamps instead of failing")


def load_data(source: str, args: argparse.Namespace, min_length: int = 1) -> tuple[Panel, str]:
    """A panel from a file path or an embedded dataset name (its training part), and a label."""
    if not Path(source).exists() and source in datasets.DATASETS:
        ds = datasets.load(source)
        return ds.train.drop_short(min_length), f"embedded dataset {source} (official test horizon held out)"
    panel = read_panel(source, args.id_col, args.time_col, args.target_col, fill=args.fill, min_length=min_length)
    return panel, source


# -- fewcast datasets ------------------------------------------------------------------------------

def cmd_datasets(args: argparse.Namespace) -> int:
    if args.export:
        name, path = args.export
        data = datasets.load(name)
        frame = data.to_frame(with_test=args.with_test)
        write_frame(frame, path)
        print(f"wrote {len(frame)} rows of {name} ({data.train.n_series} series) to {path}")
        return 0
    table = datasets.table()
    width = max(map(len, table["name"]))
    print(f"{'name':<{width}}  season  h   description")
    for row in table.itertuples():
        print(f"{row.name:<{width}}  {row.season_length:>6}  {row.h:<3} {row.description}")
    return 0


def write_frame(frame, path: str) -> None:
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise InputError(f"cannot write {path}: use a .csv or .parquet file name")


# -- fewcast validate ------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    embedded = not Path(args.path).exists() and args.path in datasets.DATASETS
    if args.h is None:
        args.h = datasets.DATASETS[args.path].h if embedded else 1
    width = args.input_size + args.h
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PanelWarning)
        panel, label = load_data(args.path, args, min_length=width)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    lengths = panel.lengths
    windows = Windows(panel, args.input_size, args.h)
    print(f"{label}: valid")
    print(f"  series:     {panel.n_series}")
    print(f"  lengths:    min {lengths.min()}, median {np.median(lengths):g}, max {lengths.max()}")
    zone = panel.zone
    where = "" if zone is None else f", time zone {zone.tz}, {'read on its wall clock' if zone.wall else 'held in UTC'}"
    print(f"  frequency:  {describe_freq(panel.freq)}{where}")
    print(f"  observations: {len(panel.values)}")
    print(f"  windows:    {len(windows)} of {args.input_size} -> {args.h} "
          f"(per series: min {windows.counts.min()}, median {np.median(windows.counts):g})")
    # train learns from all but a file's last h points (its held-out horizon); an embedded panel's
    # training part is already that
    counts = windows.counts if embedded else np.maximum(windows.counts - args.h, 0)  # (series,)
    held = int((counts >= task_windows(args.shots, args.h)).sum())
    fits = shots_that_fit(int(counts.max()), args.h)
    advice = "" if held else f"; --shots {fits} fits the longest" if fits >= 1 else "; lower --input-size or --h"
    print(f"  tasks:      {held} series hold a meta-training task of {args.shots} shots{advice}")
    return 0


# -- settings as options ---------------------------------------------------------------------------

# option names that would collide or read badly get their own spelling
OPTION_NAMES = {("model", "name"): "--model", ("learner", "name"): "--learner", ("data", "dataset"): "--dataset"}
SKIP_OPTIONS = {("data", "id_col"), ("data", "time_col"), ("data", "target_col"), ("data", "fill")}


def add_settings_options(p: argparse.ArgumentParser, include_dataset: bool = True) -> None:
    """One option per setting (``--inner-lr`` for ``learner.inner_lr``), default: leave the setting as is."""
    from dataclasses import fields

    from fewcast.config import Settings

    base = Settings()
    p.add_argument("--config", help="a TOML settings file (as written to config.toml by every run)")
    for section in Settings.SECTIONS:
        g = p.add_argument_group(f"[{section}] settings")
        for f in fields(getattr(base, section)):
            if (section, f.name) in SKIP_OPTIONS or (not include_dataset and (section, f.name) == ("data", "dataset")):
                continue
            flag = OPTION_NAMES.get((section, f.name), "--" + f.name.replace("_", "-"))
            default = getattr(getattr(base, section), f.name)
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            g.add_argument(flag, dest=f"set__{section}__{f.name}", default=None, metavar=type(default).__name__.upper(),
                           help=f"{section}.{f.name} (default: {shown})")


def settings_from_args(args: argparse.Namespace, base=None):
    """Settings from a preset or --config, then every option given on the command line."""
    from fewcast.config import Settings, load_toml

    settings = load_toml(args.config) if getattr(args, "config", None) else (base or Settings())
    for key, value in vars(args).items():
        if key.startswith("set__") and value is not None:
            _, section, name = key.split("__", 2)
            settings.update(section, {name: value}, "command line")
    for name in ("id_col", "time_col", "target_col", "fill"):
        if hasattr(args, name) and getattr(args, name) != getattr(Settings().data, name):
            settings.update("data", {name: getattr(args, name)}, "command line")
    return settings


# -- fewcast demo ----------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from fewcast.config import preset
    from fewcast.experiment import Experiment
    from fewcast.report import markdown_table, sorted_table, write_run

    settings = settings_from_args(args, preset(args.preset))
    out = Path(args.out)
    print(f"fewcast demo: {settings.data.dataset}, {settings.eval.protocol} protocol, learner {settings.learner.name}, "
          f"writing to {out}", flush=True)
    experiment = Experiment(settings, progress=not args.quiet)
    results = experiment.run()
    paths = write_run(results, out)
    print()
    print(markdown_table(sorted_table(results.table)))
    print(f"wrote {', '.join(sorted(p.name for p in paths.values()))} to {out}")
    return 0


# -- fewcast train / evaluate / forecast ------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from fewcast.learners import TrainingDiverged, TrainingInterrupted
    from fewcast.run import StopFlag, TrainingRun

    settings = None
    if not args.resume:
        settings = settings_from_args(args)
        settings.update("data", {"dataset": args.data})
    run = TrainingRun(args.out, settings, resume=args.resume, progress=not args.quiet,
                      log=lambda *a: print(*a, file=sys.stderr), tensorboard=args.tensorboard)
    resume_cmd = f"fewcast train {args.data} --out {args.out} --resume"
    try:
        with StopFlag() as stop:
            run.train(stop)
    except TrainingInterrupted as exc:
        print(f"fewcast train: {exc}; checkpoint saved in {run.ck}. Resume with: {resume_cmd}", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"fewcast train: error: {exc}. The last good checkpoint is in {run.ck}; "
              f"train again into a new --out with a lower --outer-lr or --inner-lr", file=sys.stderr)
        return 1
    if run.main:
        print(f"trained {run.settings.learner.name} on {args.data}; run in {args.out} "
              f"(checkpoint, config.toml, split.json, metrics.csv)")
    return 0


def _load_forecaster(run: str):
    from fewcast.forecaster import FewShotForecaster

    return FewShotForecaster.load(Path(run) / "checkpoint")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fewcast.report import markdown_table, sorted_table, write_run

    fc = _load_forecaster(args.run)
    s = fc.settings
    if args.protocol:
        s.update("eval", {"protocol": args.protocol})
    if args.fill:
        s.update("data", {"fill": True})
    source = args.data or s.data.dataset
    if Path(source).exists() or source not in datasets.DATASETS:
        from fewcast.panel import read_frame

        frame = read_frame(source, s.data.id_col)
    else:  # an embedded panel: its official horizon is the last h points of the full series
        frame = datasets.load(source).to_frame(with_test=True).rename(
            columns={"unique_id": s.data.id_col, "ds": s.data.time_col, "y": s.data.target_col})
    fc.logs = _read_logs(Path(args.run) / "metrics.csv")
    results = fc.evaluate_run(frame)
    write_run(results, args.run)
    print(markdown_table(sorted_table(results.table)))
    print(f"wrote results.csv, results.md, report.html and pictures to {args.run}")
    return 0


def _read_logs(path: Path) -> dict[str, list[dict]]:
    """metrics.csv of a run, one list of rows per training phase."""
    import pandas as pd

    if not path.exists():
        return {}
    frame = pd.read_csv(path)
    return {phase: part.drop(columns="phase").to_dict("records") for phase, part in frame.groupby("phase", sort=False)}


def cmd_forecast(args: argparse.Namespace) -> int:
    from fewcast.panel import read_frame

    fc = _load_forecaster(args.run)
    s = fc.settings
    if args.fill:
        s.update("data", {"fill": True})
    id_col = args.id_col or s.data.id_col
    time_col = args.time_col or s.data.time_col
    target_col = args.target_col or s.data.target_col
    frame = read_frame(args.data, id_col)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PanelWarning)
        out = fc.predict(frame, h=args.h, id_col=id_col, time_col=time_col, target_col=target_col,
                         combine=[m for m in args.combine.split(",") if m], adapt=args.adapt)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    write_frame(out, args.out)
    print(f"wrote {len(out)} forecasts of {out[id_col].nunique()} series to {args.out}")
    return 0


# -- the parser ------------------------------------------------------------------------------------

EXAMPLES = {
    "datasets": "examples:\n  fewcast datasets\n  fewcast datasets --export m3-monthly m3.csv --with-test",
    "demo": (
        "examples:\n  fewcast demo                      # m3-monthly, holdout protocol, tuned defaults\n"
        "  fewcast demo --preset seed        # the seed experiment on the synthetic game panel, done right\n"
        "  fewcast demo --dataset tourism-monthly --protocol all-series --out runs/tourism"
    ),
    "train": (
        "examples:\n  fewcast train m3-monthly --out runs/m3\n"
        "  fewcast train sales.csv --out runs/sales --h 6 --input-size 24 --id-col store --time-col month\n"
        "  fewcast train sales.csv --out runs/sales --resume      # continue after Ctrl-C or a crash\n"
        "  fewcast train game --out runs/game --config runs/m3/config.toml"
    ),
    "evaluate": "examples:\n  fewcast evaluate runs/m3\n  fewcast evaluate runs/sales --data sales.csv",
    "forecast": (
        "examples:\n  fewcast forecast runs/sales --data new_stores.csv --out forecasts.csv\n"
        "  fewcast forecast runs/m3 --data new.parquet --h 6 --out next6.parquet\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --combine autoets   # and its average with AutoETS\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --adapt finetune_all  # plain SGD on every window\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --adapt auto  # that on long series only"
    ),
    "validate": (
        "examples:\n  fewcast validate sales.csv\n"
        "  fewcast validate users.parquet --id-col id --time-col date --target-col realValue --input-size 30 --h 1\n"
        "  fewcast validate m3-monthly"
    ),
}


FILL_HELP = ("insert missing time stamps and interpolate missing or NaN values of this data (default: as the "
             "run was trained)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fewcast",
        description="Few-shot forecasting for panels of short related series (long frames: unique_id, ds, y).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("datasets", help="list the embedded panels, or export one", epilog=EXAMPLES["datasets"],
                       formatter_class=fmt)
    p.add_argument("--export", nargs=2, metavar=("NAME", "PATH"), help="write a dataset to a .csv or .parquet")
    p.add_argument("--with-test", action="store_true", help="with --export: include the official test horizon")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("validate", help="check a panel file and summarize it", epilog=EXAMPLES["validate"],
                       formatter_class=fmt)
    p.add_argument("path", help="a CSV or Parquet file (or an embedded dataset name)")
    add_data_options(p)
    from fewcast.config import ADAPTATIONS, Settings

    trained = Settings()
    p.add_argument("--input-size", type=positive_int, default=trained.data.input_size,
                   help=f"input window length (default: {trained.data.input_size}, as train)")
    p.add_argument("--h", type=positive_int, default=None,
                   help="forecast horizon (default: an embedded dataset's own, else 1)")
    p.add_argument("--shots", type=positive_int, default=trained.learner.shots,
                   help=f"support windows of a meta-training task (default: {trained.learner.shots}, as train)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="meta-train on a panel into a run directory (checkpoints, resume)",
                       epilog=EXAMPLES["train"], formatter_class=fmt)
    p.add_argument("data", help="a CSV or Parquet file, or an embedded dataset name")
    p.add_argument("--out", required=True, help="the run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to RUN/tensorboard (needs: pip install tensorboard)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_options(p)
    add_settings_options(p, include_dataset=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained run on its held-out series, write results and pictures",
                       epilog=EXAMPLES["evaluate"], formatter_class=fmt)
    p.add_argument("run", help="a run directory written by fewcast train")
    p.add_argument("--data", help="the panel (default: the one it was trained on)")
    p.add_argument("--protocol", choices=["holdout", "all-series"])
    p.add_argument("--fill", action="store_true", help=FILL_HELP)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("forecast", help="adapt to and forecast every series of a new panel",
                       epilog=EXAMPLES["forecast"], formatter_class=fmt)
    p.add_argument("run", help="a run directory written by fewcast train")
    p.add_argument("--data", required=True, help="the new series: a CSV or Parquet file")
    p.add_argument("--out", required=True, help="where to write the forecasts (.csv or .parquet)")
    p.add_argument("--h", type=positive_int, help="how many steps ahead (default: the trained h)")
    p.add_argument("--id-col", help="default: the trained one")
    p.add_argument("--time-col", help="default: the trained one")
    p.add_argument("--target-col", help="default: the trained one")
    p.add_argument("--combine", default="", help="classical methods (autoets, theta, naive, seasonal_naive) to "
                   "average with: one more column fewcast+METHOD each")
    p.add_argument("--adapt", choices=ADAPTATIONS, default="learned",
                   help="learned: the meta-learner adapts (default); finetune_all: the pre-trained network, plain "
                   "SGD on every window; auto: finetune_all on a series with at least eval.finetune_all_min_shots "
                   "(30 by default) windows, learned on the others (pretrained_finetune_all and <learner>_auto "
                   "in evaluate's table: use whichever scored best)")
    p.add_argument("--fill", action="store_true", help=FILL_HELP)
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("demo", help="meta-train, score every method on unseen series, write a report",
                       epilog=EXAMPLES["demo"], formatter_class=fmt)
    p.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    p.add_argument("--preset", default="default", help="default (tuned, m3-monthly) or seed (the seed experiment)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_options(p)
    add_settings_options(p)
    p.set_defaults(func=cmd_demo)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default", PanelWarning)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"fewcast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"fewcast {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        joined = sys.modules.get("fewcast.distributed")  # imported only by commands that can train
        if joined is not None:
            joined.shutdown()
