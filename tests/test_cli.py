"""The command line: every command's options (settings with their help, booleans as --x / --no-x, only
the flags a command uses), validate's summary, forecast's methods and columns, and one-line errors that
spell settings as flags."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewcast import checkpoint, datasets
from fewcast.cli import build_parser
from fewcast.config import Settings, load_toml
from fewcast.options import as_flags, settings_from_args
from tests.conftest import cli, fewcast, seasonal_panel
from tests.test_frame import zoned_frame


def test_help_shows_what_each_setting_does(run_cli):
    code, text, _ = run_cli("train", "--help")
    flat = " ".join(text.split())
    assert code == 0
    assert ("--input-size INT input window: how many of a series' latest values a network sees; 0: derived from h, "
            "the season and the series' lengths (default: 0)") in flat
    assert "--cosine, --no-cosine anneal both phases' learning rate to 0 along a cosine" in flat
    assert "[data] settings" in text and "[train] settings" in text


def test_booleans_are_switches_with_a_no_form():
    parser = build_parser()
    args = parser.parse_args(["train", "x.csv", "--out", "r", "--cosine", "--no-deseasonalize", "--fill"])
    s = settings_from_args(args)
    assert s.train.cosine and not s.data.deseasonalize and s.data.fill
    assert settings_from_args(parser.parse_args(["train", "x.csv", "--out", "r"])) == Settings()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "x.csv", "--out", "r", "--cosine", "true"])


@pytest.mark.parametrize("command, flag", [
    (["train", "x.csv", "--out", "r"], ["--plot-series", "3"]),  # evaluation's settings are not training's
    (["train", "x.csv", "--out", "r"], ["--combine", "theta"]),
    (["train", "x.csv", "--out", "r"], ["--trajectory-title", "t"]),
    (["evaluate", "r"], ["--hidden", "32"]),  # a trained run's network is what it is
    (["evaluate", "r"], ["--extra-learners", "anil"]),  # scoring cannot meta-train another learner
    (["forecast", "r", "--data", "x.csv", "--out", "f.csv"], ["--iterations", "5"]),
])
def test_a_command_offers_only_the_flags_it_uses(command, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, *flag])
    assert exc.value.code == 2 and f"unrecognized arguments: {flag[0]}" in capsys.readouterr().err


def test_errors_spell_settings_as_flags():
    assert as_flags("pass `fill=True` to interpolate") == "pass --fill to interpolate"
    assert as_flags("or `memmap=False`") == "or --no-memmap"
    assert as_flags("`shots=7` fits it; lower `input_size` or `h`") == "--shots 7 fits it; lower --input-size or --h"
    assert as_flags("`ensemble_transforms=identity,last`") == "--ensemble-transforms identity,last"
    assert as_flags("`not_a_setting` stays") == "`not_a_setting` stays"
    assert as_flags("use e.g. level=[80, 95], quantiles=[0.1, 0.5, 0.9]") == (
        "use e.g. --level 80 95, --quantiles 0.1 0.5 0.9")


def test_validate_summary(frame, tmp_path, run_cli):
    path = tmp_path / "p.csv"
    frame.rename(columns={"unique_id": "id", "y": "realValue"}).to_csv(path, index=False)
    code, out, _ = run_cli("validate", path, "--id-col", "id", "--target-col", "realValue",
                           "--input-size", "12", "--h", "3")
    lengths = frame.groupby("unique_id").size()
    windows = int((lengths - 15 + 1).sum())
    assert code == 0
    assert "series:     12" in out
    assert f"min {lengths.min()}, median {np.median(lengths):g}, max {lengths.max()}" in out
    assert "MS (monthly)" in out
    assert f"windows:    {windows} of 12 -> 3" in out
    # a task of 20 shots needs 20 + 3 windows in the part train learns from (all but the last 3 points)
    held = int(((lengths - 3) - 15 + 1 >= 23).sum())
    assert f"tasks:      {held} series hold a meta-training task of 20 shots\n" in out
    code, out, _ = run_cli("validate", path, "--id-col", "id", "--target-col", "realValue",
                           "--input-size", "12", "--h", "3", "--shots", "60")
    fits = (lengths.max() - 3) - 15 + 1 - 3  # the most shots the longest series can hold
    assert f"tasks:      0 series hold a meta-training task of 60 shots; --shots {fits} fits the longest" in out
    assert "horizon:" not in out
    code, out, _ = run_cli("validate", path, "--id-col", "id", "--target-col", "realValue")  # no --h: said so
    assert code == 0 and "horizon:    not given; train needs --h: the windows and settings here are for h = 1" in out
    for freq, held in (("MS", "MS (monthly), time zone Europe/Paris, read on its wall clock"),
                       ("h", "h (hourly), time zone Europe/Paris, held in UTC")):
        zoned_frame(freq, 40, "Europe/Paris").to_parquet(tmp_path / "zoned.parquet")
        code, out, _ = run_cli("validate", tmp_path / "zoned.parquet", "--h", "3")
        assert code == 0 and f"frequency:  {held}\n" in out


def test_validate_defaults_are_train_defaults(run_cli):
    code, out, _ = run_cli("validate", "m3-monthly")
    assert code == 0 and "of 24 -> 18" in out  # train's input_size and the dataset's own horizon


def test_real_command_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,value\na,1,2\n")
    proc = subprocess.run([sys.executable, "-m", "fewcast", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "fewcast validate: error: missing column 'y' (columns found: unique_id, ds, value); "
        "name the right one with --target-col"
    )


def test_validate_csv_written_from_m3_monthly(tmp_path, run_cli):
    path = tmp_path / "m3.csv"
    code, out, _ = run_cli("datasets", "--export", "m3-monthly", path)
    assert code == 0 and "1428 series" in out
    code, out, err = run_cli("validate", path)
    assert code == 0, err
    assert "series:     1428" in out
    assert "lengths:    min 48, median 115, max 126" in out


def test_datasets_listing(run_cli):
    code, out, _ = run_cli("datasets")
    assert code == 0
    for name in datasets.names():
        assert name in out


def test_readme_your_own_data_commands(tmp_path):
    """The three commands of the README's "Your own data" section, run as written (scaled down)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(\.venv/bin/fewcast .+)$", section, flags=re.M)
    assert [c.split()[1] for c in commands] == ["validate", "train", "forecast"]
    frame = seasonal_panel(30).to_frame().rename(columns={"unique_id": "store", "ds": "month", "y": "sales"})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    frame[frame.store.isin(["s01", "s02"])].to_csv(tmp_path / "new_stores.csv", index=False)
    small = ["--iterations", "4", "--pretrain-iterations", "4", "--hidden", "16", "--quiet"]
    for command in commands:
        args = command.split()[1:]
        if args[0] == "train":
            args += small
        proc = fewcast(*args, cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
    out = pd.read_csv(tmp_path / "forecasts.csv")
    assert list(out.columns) == ["store", "month", "fewcast"] and len(out) == 2 * 6


def test_forecast_combine_adds_a_column_and_rejects_unknown_methods(data, uninterrupted, tmp_path):
    out = tmp_path / "f.csv"
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", out, "--combine", "naive")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out)
    last = pd.read_csv(data).sort_values(["unique_id", "ds"]).groupby("unique_id")["y"].last()
    assert list(frame.columns) == ["unique_id", "ds", "fewcast", "fewcast+naive"]
    np.testing.assert_allclose(frame["fewcast+naive"], (frame["fewcast"] + frame["unique_id"].map(last)) / 2,
                               rtol=1e-5)
    bad = fewcast("forecast", uninterrupted, "--data", data, "--out", out, "--combine", "arima")
    assert bad.returncode == 2 and "unknown classical method arima" in bad.stderr
    assert "Traceback" not in bad.stderr
    # several, with spaces or the flag repeated; "fewcast" (evaluate's row) is the chosen forecast
    code, _, err = cli("forecast", uninterrupted, "--data", data, "--out", out, "--combine", "naive, theta",
                       "--combine", "autoets", "--method", "fewcast")
    assert code == 0, err
    both = pd.read_csv(out)
    assert list(both.columns) == ["unique_id", "ds", "fewcast", "fewcast+naive", "fewcast+theta", "fewcast+autoets"]
    np.testing.assert_allclose(both["fewcast"], frame["fewcast"], rtol=1e-6)
    code, _, err = cli("forecast", uninterrupted, "--data", data, "--out", tmp_path / "no" / "f.csv")
    assert code == 2 and f"no directory {tmp_path / 'no'}; create it first" in err


def test_forecast_adapts_by_plain_fine_tuning_when_asked(data, uninterrupted, tmp_path):
    from fewcast import FewShotForecaster

    learned, every = tmp_path / "learned.csv", tmp_path / "every.csv"
    assert fewcast("forecast", uninterrupted, "--data", data, "--out", learned).returncode == 0
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", every, "--method", "pretrained_finetune_all")
    assert proc.returncode == 0, proc.stderr
    fc = FewShotForecaster.load(uninterrupted / "checkpoint")
    by_api = fc.predict(pd.read_csv(data), method="pretrained_finetune_all")
    np.testing.assert_allclose(pd.read_csv(every)["fewcast"], by_api["fewcast"], rtol=1e-5)
    assert not np.allclose(pd.read_csv(every)["fewcast"], pd.read_csv(learned)["fewcast"])
    auto = tmp_path / "auto.csv"
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", auto, "--method", "metasgd_auto")
    assert proc.returncode == 0, proc.stderr
    by_api = fc.predict(pd.read_csv(data), method="metasgd_auto")
    np.testing.assert_allclose(pd.read_csv(auto)["fewcast"], by_api["fewcast"], rtol=1e-5)


def test_forecast_and_evaluate_take_fill(data, uninterrupted, tmp_path):
    """Data with a gap is refused with the advice to pass --fill, which forecast and evaluate take."""
    frame = pd.read_csv(data)
    holed = frame.drop(index=frame.index[(frame.unique_id == frame.unique_id.iloc[0])][10:12])
    holed.to_csv(tmp_path / "holed.csv", index=False)
    out = tmp_path / "f.csv"
    refused = fewcast("forecast", uninterrupted, "--data", tmp_path / "holed.csv", "--out", out)
    assert refused.returncode == 2 and "pass --fill" in refused.stderr and "Traceback" not in refused.stderr
    filled = fewcast("forecast", uninterrupted, "--data", tmp_path / "holed.csv", "--out", out, "--fill")
    assert filled.returncode == 0, filled.stderr
    assert "inserted 2 missing time stamps" in filled.stderr
    assert len(pd.read_csv(out)) == frame.unique_id.nunique() * 6
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)  # evaluate writes its results into the run
    scored = fewcast("evaluate", run, "--data", tmp_path / "holed.csv", "--fill")
    assert scored.returncode == 0, scored.stderr
    assert (run / "results.csv").exists()


def test_a_run_on_an_embedded_panel_forecasts_with_its_horizon_and_season(tmp_path):
    """h = 0 means the panel's official horizon and season_length = 0 its season: the checkpoint records
    them, so evaluate and forecast rebuild the network it trained and score with the panel's season, while
    config.toml keeps the settings as given, to rerun on another panel."""
    run = tmp_path / "quarterly"
    small = ["--iterations", "2", "--pretrain-iterations", "2", "--shots", "3", "--input-size", "6", "--hidden", "8",
             "--quiet"]
    assert fewcast("train", "m3-quarterly", "--out", run, *small).returncode == 0
    used = checkpoint.load(run / "checkpoint")[2].data
    given = load_toml(run / "config.toml").data
    assert (used.h, used.season_length, given.h, given.season_length) == (8, 4, 0, 0)
    scored = fewcast("evaluate", run, "--classical", "naive,seasonal_naive", "--combine", "")
    assert scored.returncode == 0, scored.stderr
    table = pd.read_csv(run / "results.csv").set_index("method")
    assert table.loc["seasonal_naive", "smape"] != table.loc["naive", "smape"]  # a season of 4, not 1
    datasets.load("m3-quarterly").to_frame().head(200).to_csv(tmp_path / "new.csv", index=False)
    made = fewcast("forecast", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "f.csv",
                   "--method", "metasgd+naive")
    assert made.returncode == 0, made.stderr
    assert list(pd.read_csv(tmp_path / "f.csv").columns) == ["unique_id", "ds", "fewcast"]
    again = fewcast("train", "m3-yearly", "--out", tmp_path / "yearly", "--config", run / "config.toml",
                    "--iterations", "1", "--pretrain-iterations", "1", "--quiet")
    assert again.returncode == 0, again.stderr
    assert checkpoint.load(tmp_path / "yearly" / "checkpoint")[2].data.h == 6  # yearly's own horizon


def test_forecast_names_the_methods_on_a_typo(uninterrupted, data, tmp_path):
    bad = fewcast("forecast", uninterrupted, "--data", data, "--out", tmp_path / "f.csv", "--method", "mestasgd")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "unknown method 'mestasgd'; choose one of metasgd, metasgd_zeroshot, pretrained" in bad.stderr


def test_validate_prints_the_settings_it_would_derive_and_why(run_cli):
    code, out, _ = run_cli("validate", "m3-yearly")
    assert code == 0 and "windows:    6064 of 8 -> 6" in out  # the derived input of 8, not a fixed 24
    assert "settings train derives from the data (season 1; a setting you give is kept):" in out
    assert "    input_size = 8: 4/3 of h = 6\n" in out
    assert "    shots = 5: what a quarter of the series hold in a whole task (24 points before the cut)\n" in out
    code, out, _ = run_cli("validate", "m3-yearly", "--input-size", "6", "--shots", "2")
    assert "input_size =" not in out and "shots =" not in out and "of 2 shots" in out


def test_a_panel_too_small_to_hold_series_out_trains_and_says_how_to_score_it(tmp_path):
    """One series: nothing to validate on or hold out. train chooses the adapted learner; evaluate's holdout
    protocol has no series to score and says to score the series' last points instead, which it does."""
    seasonal_panel(1).to_frame().to_csv(tmp_path / "one.csv", index=False)
    run = tmp_path / "one"
    small = ["--h", "6", "--input-size", "12", "--season-length", "12", "--hidden", "8", "--shots", "3",
             "--iterations", "2", "--pretrain-iterations", "2", "--quiet"]
    assert fewcast("train", tmp_path / "one.csv", "--out", run, *small).returncode == 0
    assert len(pd.read_csv(run / "selection.csv")) == 0  # no series to rank on
    refused = fewcast("evaluate", run)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "no series to score" in refused.stderr and "--protocol all-series" in refused.stderr
    scored = fewcast("evaluate", run, "--protocol", "all-series", "--classical", "naive", "--combine", "")
    assert scored.returncode == 0, scored.stderr
    table = pd.read_csv(run / "results.csv").set_index("method")
    assert table.loc["fewcast", "n_series"] == 1 and np.isfinite(table.loc["fewcast", "smape"])
    assert "note: all-series" not in scored.stderr
    (tmp_path / "other.csv").write_bytes((tmp_path / "one.csv").read_bytes())  # other data: maybe trained on
    scored = fewcast("evaluate", run, "--data", tmp_path / "other.csv", "--protocol", "all-series", "--classical",
                     "naive", "--combine", "")
    assert scored.returncode == 0 and "note: all-series scores the last 6 points of every series of" in scored.stderr


def test_output_into_a_pipe_its_reader_closed_stops_quietly(data):
    piped = subprocess.run(["bash", "-c", f'"{sys.executable}" -m fewcast validate "{data}" | head -1; '
                            'exit "${PIPESTATUS[0]}"'], capture_output=True, text=True)
    assert piped.stdout.endswith(": valid\n") and piped.stderr == ""
    assert piped.returncode in (0, 141)  # 141 where the reader left before the last line, as for SIGPIPE


def test_a_horizon_the_series_cannot_train_for_is_refused_by_validate_as_by_train(tmp_path, run_cli):
    """80 hourly points and h = 48: 32 points before the held-out horizon, not one window of even 1 -> 48.
    validate says so (as train does) instead of deriving an input of 1 and calling the data valid."""
    t = pd.date_range("2024-01-01", periods=80, freq="h")
    frame = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": np.sin(np.arange(80) / 4) + i})
                       for i in range(6)])
    frame.to_csv(tmp_path / "short.csv", index=False)
    code, out, err = run_cli("validate", tmp_path / "short.csv", "--h", "48")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no series is long enough to train on: a task of 1 shot of 1 -> 48 needs 97 points before the last 48, " \
           "the longest has 32; lower --h" in err
    trained = fewcast("train", tmp_path / "short.csv", "--out", tmp_path / "run", "--h", "48", "--quiet")
    assert trained.returncode == 2 and "Traceback" not in trained.stderr
    assert "the longest has 32 (each series' last 48 held back); lower --h" in trained.stderr


def test_a_panel_too_short_to_train_a_horizon_earlier_trains_without_the_choice(tmp_path):
    """h = 12 on series of 14-18 points and a few of 40: the run's networks train, but a horizon earlier not
    one series holds a task. train forecasts with the adapted learner and says why, instead of failing."""
    rng = np.random.default_rng(1)
    frame = pd.concat([pd.DataFrame({"unique_id": f"z{i:03d}", "ds": np.arange(n),
                                     "y": 100 + np.cumsum(rng.normal(1, 3, n))})
                       for i, n in enumerate([40] * 15 + list(rng.integers(14, 19, 105)))])
    frame.to_csv(tmp_path / "long_h.csv", index=False)
    run = tmp_path / "run"
    trained = fewcast("train", tmp_path / "long_h.csv", "--out", run, "--h", "12", "--hidden", "8",
                      "--pretrain-iterations", "5", "--iterations", "2")
    assert trained.returncode == 0, trained.stderr
    assert "note: no forecast chosen on validation: the series 12 points before their end are too short" in (
        trained.stdout + trained.stderr)
    assert checkpoint.load(run / "checkpoint")[1]["method"] == "metasgd"


def test_resuming_a_run_that_does_not_exist_leaves_nothing_behind(data, tmp_path, run_cli):
    code, _, err = run_cli("train", data, "--out", tmp_path / "none", "--resume")
    assert code == 2 and "no run directory" in err and "to resume" in err
    assert not (tmp_path / "none").exists()


def test_a_refused_train_says_why_and_leaves_no_run_directory(data, tmp_path, run_cli):
    """A mistyped file is named as such (not as a missing horizon), and a run refused before training leaves no
    directory holding only its lock; an existing directory is left as it was."""
    code, _, err = run_cli("train", tmp_path / "m3-montly.csv", "--out", tmp_path / "typo")
    assert code == 2 and "no such file" in err and "nor an embedded dataset" in err, err
    assert not (tmp_path / "typo").exists()
    code, _, err = run_cli("train", data, "--out", tmp_path / "bad", "--h", "6", "--val-every", "0")
    assert code == 2 and "--val-every" in err and "1 or more" in err and "Traceback" not in err, err
    assert not (tmp_path / "bad").exists()
    (tmp_path / "kept").mkdir()
    code, _, err = run_cli("train", tmp_path / "missing.csv", "--out", tmp_path / "kept")
    assert code == 2 and (tmp_path / "kept").is_dir()
