"""The ``fewcast`` command line: datasets, validate, train, evaluate, forecast and demo.

Every subcommand reads the same long-frame contract (``--id-col``, ``--time-col``, ``--target-col``).
Bad input prints one line to stderr and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np

from fewcast import datasets
from fewcast.errors import InputError, PanelWarning, RunWarning, StorageError
from fewcast.lock import RunLock, remove_if_unused
from fewcast.options import add_settings_options, as_flags, settings_from_args

EXIT_INPUT = 2


def show_warnings(caught) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


# -- fewcast datasets ------------------------------------------------------------------------------

def cmd_datasets(args: argparse.Namespace) -> int:
    from fewcast.frame import write_frame

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


# -- fewcast validate ------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from fewcast.calendar import describe_freq, guess_season
    from fewcast.config import Settings
    from fewcast.data import read_source
    from fewcast.derive import derive
    from fewcast.panel import Columns
    from fewcast.tasks import shots_that_fit, task_windows
    from fewcast.windows import Windows

    info = datasets.DATASETS[args.path] if datasets.is_embedded(args.path) else None
    h = args.h or (info.h if info else 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PanelWarning)
        panel, _ = read_source(args.path, Columns(args.id_col, args.time_col, args.target_col), bool(args.fill),
                               min_length=(args.input_size or 1) + h)
    show_warnings(caught)
    # train learns from all but a file's last h points (its held-out horizon); an embedded panel's
    # training part is already that
    visible = panel if info else panel.slice(0, panel.lengths - h)
    given = Settings.from_dict({"data": {"input_size": args.input_size or 0, "h": h,
                                         "season_length": args.season_length or 0},
                                "train": {"shots": args.shots or 0}})
    season = args.season_length or (info.season_length if info else guess_season(panel.freq))
    settings, reasons = derive(given, visible, h, season)
    input_size, shots = settings.data.input_size, settings.train.shots
    lengths = panel.lengths
    windows = Windows(panel, input_size, h)
    counts = Windows(visible, input_size, h).counts  # (series,)
    held = int((counts >= task_windows(shots, h)).sum())
    fits = shots_that_fit(int(counts.max()), h)
    if not held and fits < 1:  # not one task of one shot: train refuses such data
        raise InputError(f"no series is long enough to train on: a task of 1 shot of {input_size} -> {h} needs "
                         f"{task_windows(1, h) + input_size + h - 1} points before the last {h}, the longest has "
                         f"{int(visible.lengths.max())}; lower `h`" + ("" if input_size <= 1 else " or `input_size`"))
    print(f"{f'embedded dataset {args.path} (official test horizon held out)' if info else args.path}: valid")
    print(f"  series:     {panel.n_series}")
    print(f"  lengths:    min {lengths.min()}, median {np.median(lengths):g}, max {lengths.max()}")
    zone = panel.zone
    where = "" if zone is None else f", time zone {zone.tz}, {'read on its wall clock' if zone.wall else 'held in UTC'}"
    print(f"  frequency:  {describe_freq(panel.freq)}{where}")
    print(f"  observations: {len(panel.values)}")
    print(f"  windows:    {len(windows)} of {input_size} -> {h} "
          f"(per series: min {windows.counts.min()}, median {np.median(windows.counts):g})")
    advice = "" if held else f"; --shots {fits} fits the longest"
    print(f"  tasks:      {held} series hold a meta-training task of {shots} shots{advice}")
    if not (args.h or info):
        print("  horizon:    not given; train needs --h: the windows and settings here are for h = 1, give --h to "
              "see the ones train would use")
    print(f"  settings train derives from the data (season {season}; a setting you give is kept):")
    for line in reasons or ["none: every one is given"]:
        print(f"    {line}")
    return 0


# -- fewcast demo / train / evaluate / forecast ----------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from fewcast.config import read_toml
    from fewcast.presets import preset

    base, dataset = preset(args.preset)
    settings = settings_from_args(args, base)
    written = read_toml(args.config).get("data", {}).get("dataset") if args.config else None  # older files
    source = args.dataset or written or dataset
    out = Path(args.out)
    with RunLock(out, "fewcast demo"):
        return _demo(args, settings, source, out)


def _demo(args, settings, source: str, out: Path) -> int:
    from fewcast import evaluation
    from fewcast.data import load_panel_data
    from fewcast.experiment import Experiment
    from fewcast.report import print_tables, write_run

    print(f"fewcast demo: {source}, {settings.eval.protocol} protocol, learner {settings.learner.name}, "
          f"writing to {out}", flush=True)
    data = load_panel_data(source, settings)
    experiment = Experiment(settings, data, progress=not args.quiet, log=lambda *a: print(*a, flush=True))
    results = evaluation.run(experiment)
    paths = write_run(results, out, config=settings, derived=(results.settings, experiment.derived))
    print()
    print_tables(results.table)
    print(f"wrote {', '.join(sorted(p.name for p in paths.values()))} to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume and not Path(args.out).is_dir():  # refused before the lock would create the directory
        raise InputError(f"no run directory {args.out} to resume; train one with `fewcast train DATA --out "
                         f"{args.out}`")
    settings = None if args.resume else settings_from_args(args)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 alone writes the run
        return _train(args, settings)
    created = not Path(args.out).exists()
    with RunLock(args.out, "fewcast train"):
        try:
            return _train(args, settings)
        except InputError:  # refused before writing anything: no run directory holding only its lock is left
            if created:
                remove_if_unused(args.out)
            raise


def _train(args, settings) -> int:
    from fewcast.learners import TrainingDiverged, TrainingInterrupted
    from fewcast.run import StopFlag, TrainingRun

    run = TrainingRun(args.out, None if args.resume else args.data, settings, resume=args.resume,
                      progress=not args.quiet, log=lambda *a: print(*a, file=sys.stderr), tensorboard=args.tensorboard)
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
    except StorageError as exc:
        print(f"fewcast train: error: {exc}. Once it can be written, resume with: {resume_cmd}", file=sys.stderr)
        return 1
    if run.main:
        print(f"trained {run.settings.learner.name} on {run.source}; run in {args.out} "
              f"(checkpoint, config.toml, split.json, metrics.csv)")
    return 0


def _load(run: str):
    from fewcast.forecaster import FewShotForecaster

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RunWarning)
        fc = FewShotForecaster.load(run)
    show_warnings(caught)
    return fc


def cmd_evaluate(args: argparse.Namespace) -> int:
    if not Path(args.run).is_dir():
        raise InputError(f"no run directory {args.run}; train one with `fewcast train DATA --out {args.run}`")
    with RunLock(args.run, "fewcast evaluate"):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from fewcast.data import load_panel_data
    from fewcast.report import print_tables, write_run
    from fewcast.run import read_metrics

    fc = _load(args.run)  # with the ranking train wrote
    evaluation = settings_from_args(args, copy.deepcopy(fc.settings)).eval
    source = args.data or fc.state.get("source")
    if not source:
        raise InputError(f"{args.run} does not record the data it was trained on: pass --data")
    reading = copy.deepcopy(fc.settings)  # the data is read as the run read it, --fill apart
    if args.fill is not None:
        reading.data.fill = args.fill
    fc.logs = read_metrics(args.run)
    trained_on = fc.state.get("source")
    if (evaluation.protocol == "all-series" and args.data and trained_on
            and Path(args.data).resolve() != Path(trained_on).resolve()):
        print(f"note: all-series scores the last {reading.data.h} points of every series of {args.data}; they are "
              f"held out only where the run ({trained_on}) did not train on them (new points or new series)",
              file=sys.stderr)
    results = fc.score(load_panel_data(source, reading), evaluation)
    write_run(results, args.run)
    print_tables(results.table)
    print(f"wrote results.csv, results.md, report.html and pictures to {args.run}")
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from fewcast.frame import check_writable, read_frame, write_frame

    check_writable(args.out)  # before the forecasts are made
    fc = _load(args.run)
    s = fc.settings
    id_col = args.id_col or s.data.id_col
    frame = read_frame(args.data, id_col)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PanelWarning)
        combine = [m.strip() for given in args.combine for m in given.split(",") if m.strip()]
        out = fc.predict(frame, h=args.h, method=args.method, combine=combine,
                         level=args.level or (), quantiles=args.quantiles or (), id_col=id_col,
                         time_col=args.time_col, target_col=args.target_col, fill=args.fill)
    show_warnings(caught)
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
    "evaluate": "examples:\n  fewcast evaluate runs/m3\n  fewcast evaluate runs/sales --data sales.csv --history 36",
    "forecast": (
        "examples:\n  fewcast forecast runs/sales --data new_stores.csv --out forecasts.csv\n"
        "  fewcast forecast runs/m3 --data new.parquet --h 6 --out next6.parquet\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --combine autoets   # and its average with AutoETS\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --method pretrained_finetune_all+autoets\n"
        "  fewcast forecast runs/m3 --data new.csv --out f.csv --level 80 95 --quantiles 0.1 0.5 0.9"
    ),
    "validate": (
        "examples:\n  fewcast validate sales.csv\n"
        "  fewcast validate users.parquet --id-col id --time-col date --target-col realValue --input-size 30 --h 1\n"
        "  fewcast validate m3-monthly"
    ),
}

METHOD_HELP = ("the forecast to write, by its name in evaluate's results table (default: fewcast, the one "
               "chosen on validation at train, first in RUN/selection.csv): <learner> (the adapted meta-learner), "
               "<learner>_zeroshot, pretrained, pretrained_finetune, "
               "pretrained_finetune_all (plain SGD on every window), <learner>_auto (that on a series with "
               "forecast.finetune_all_min_shots windows or more, the learner on the others), naive, seasonal_naive, "
               "autoets, autoces, theta, a network method averaged with a classical one (<learner>+autoets), or "
               "several of these joined by commas, averaged (<learner>+autoets,pretrained_finetune_all+autoces)")


def build_parser() -> argparse.ArgumentParser:
    from fewcast.config import EvalConfig, Settings

    parser = argparse.ArgumentParser(
        prog="fewcast",
        description="Few-shot forecasting for panels of short related series (long frames: unique_id, ds, y).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, func):
        p = sub.add_parser(name, help=help, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    def columns(p, defaults: tuple[str, str, str] | None):
        """The long frame's column options (``defaults`` None: as the run was trained) and ``--fill``."""
        names = (("id-col", "series id column"), ("time-col", "time column"), ("target-col", "value column"))
        for (name, what), default in zip(names, defaults or (None,) * 3):
            shown = default or "as the run was trained"
            p.add_argument(f"--{name}", default=default, help=f"{what} (default: {shown})")
        p.add_argument("--fill", action=argparse.BooleanOptionalAction, default=None,
                       help="insert missing time stamps and interpolate NaN values of this data (default: "
                            f"{'as the run was trained' if defaults is None else 'no'})")

    p = command("datasets", "list the embedded panels, or export one", cmd_datasets)
    p.add_argument("--export", nargs=2, metavar=("NAME", "PATH"), help="write a dataset to a .csv or .parquet")
    p.add_argument("--with-test", action="store_true", help="with --export: include the official test horizon")

    p = command("validate", "check a panel file and summarize it", cmd_validate)
    p.add_argument("path", help="a CSV or Parquet file (or an embedded dataset name)")
    columns(p, ("unique_id", "ds", "y"))
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input window length (default: derived from the data, as train does)")
    p.add_argument("--h", type=positive_int, default=None,
                   help="forecast horizon (default: an embedded dataset's own, else 1)")
    p.add_argument("--season-length", type=positive_int, default=None,
                   help="season length (default: an embedded dataset's own, else guessed from the frequency)")
    p.add_argument("--shots", type=positive_int, default=None,
                   help="support windows of a meta-training task (default: derived from the data, as train does)")

    p = command("train", "meta-train on a panel into a run directory (checkpoints, resume)", cmd_train)
    p.add_argument("data", help="a CSV or Parquet file, or an embedded dataset name")
    p.add_argument("--out", required=True, help="the run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to RUN/tensorboard (needs: pip install tensorboard)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_settings_options(p, Settings.SECTIONS, only={"eval": ("protocol",)})

    p = command("evaluate", "score a trained run on its held-out series, write results and pictures", cmd_evaluate)
    p.add_argument("run", help="a run directory written by fewcast train")
    p.add_argument("--data", help="the panel (default: the one it was trained on)")
    p.add_argument("--fill", action=argparse.BooleanOptionalAction, default=None,
                   help="insert missing time stamps and interpolate NaN values of this data (default: as the run "
                        "was trained)")
    scored = tuple(f.name for f in fields(EvalConfig) if f.name != "extra_learners")
    add_settings_options(p, ("eval",), only={"eval": scored}, config=False)

    p = command("forecast", "adapt to and forecast every series of a new panel", cmd_forecast)
    p.add_argument("run", help="a run directory written by fewcast train")
    p.add_argument("--data", required=True, help="the new series: a CSV or Parquet file")
    p.add_argument("--out", required=True, help="where to write the forecasts (.csv or .parquet)")
    p.add_argument("--h", type=positive_int, help="how many steps ahead (default: the trained h)")
    columns(p, None)
    p.add_argument("--method", help=METHOD_HELP)
    p.add_argument("--combine", action="append", default=[], help="classical methods (autoets, autoces, theta, "
                   "naive, seasonal_naive; several joined by commas or the flag repeated) to average with: one more "
                   "column fewcast+METHOD each")
    p.add_argument("--level", type=float, nargs="+", metavar="L",
                   help="prediction intervals of L %% (e.g. --level 80 95): columns fewcast-lo-80, fewcast-hi-80, ...")
    p.add_argument("--quantiles", type=float, nargs="+", metavar="Q",
                   help="quantiles (e.g. --quantiles 0.1 0.5 0.9): columns fewcast-q-10, fewcast-q-50, ...")

    p = command("demo", "meta-train, score every method on unseen series, write a report", cmd_demo)
    p.add_argument("--dataset", help="an embedded dataset name or a CSV / Parquet file (default: the preset's)")
    p.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    p.add_argument("--preset", default="default", help="default (tuned, m3-monthly) or seed (the seed experiment)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_settings_options(p, Settings.SECTIONS)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # past a file size limit, a write fails (a StorageError) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    succeeded = False
    try:
        with warnings.catch_warnings():  # each warning as one line, "warning: ...", and each once
            warnings.simplefilter("default", PanelWarning)
            warnings.showwarning = _show_warning
            code = args.func(args)
            sys.stdout.flush()  # a reader that left (`fewcast validate X | head -1`) shows here, not at exit
        succeeded = True
        return code
    except BrokenPipeError:  # stop quietly, with the status of a process the pipe's SIGPIPE ended
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more reaches the closed pipe
        return 141
    except InputError as exc:
        print(f"fewcast {args.command}: error: {as_flags(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except StorageError as exc:
        print(f"fewcast {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fewcast {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        joined = sys.modules.get("fewcast.distributed")  # imported only by commands that can train
        if joined is not None:
            joined.shutdown(wait=succeeded)
