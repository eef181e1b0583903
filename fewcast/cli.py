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
from fewcast.windows import Windows

EXIT_INPUT = 2


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The data-frame contract options shared by every command that reads a panel."""
    g = p.add_argument_group("columns of the long frame")
    g.add_argument("--id-col", default="unique_id", help="series id column (default: unique_id)")
    g.add_argument("--time-col", default="ds", help="time column, dates or integer steps (default: ds)")
    g.add_argument("--target-col", default="y", help="value column (default: y)")
    g.add_argument("--fill", action="store_true", help="interpolate NaN or infinite values instead of failing")


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
    print(f"  frequency:  {describe_freq(panel.freq)}")
    print(f"  observations: {len(panel.values)}")
    print(f"  windows:    {len(windows)} of {args.input_size} -> {args.h} "
          f"(per series: min {windows.counts.min()}, median {np.median(windows.counts):g})")
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


# -- the parser ------------------------------------------------------------------------------------

EXAMPLES = {
    "datasets": "examples:\n  fewcast datasets\n  fewcast datasets --export m3-monthly m3.csv --with-test",
    "demo": (
        "examples:\n  fewcast demo                      # m3-monthly, holdout protocol, tuned defaults\n"
        "  fewcast demo --preset seed        # the seed experiment on the synthetic game panel, done right\n"
        "  fewcast demo --dataset tourism-monthly --protocol all-series --out runs/tourism"
    ),
    "validate": (
        "examples:\n  fewcast validate sales.csv\n"
        "  fewcast validate users.parquet --id-col id --time-col date --target-col realValue --input-size 30 --h 1\n"
        "  fewcast validate m3-monthly"
    ),
}


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
    p.add_argument("--input-size", type=positive_int, default=30, help="input window length (default: 30)")
    p.add_argument("--h", type=positive_int, default=1, help="forecast horizon (default: 1)")
    p.set_defaults(func=cmd_validate)

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
