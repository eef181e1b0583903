"""Shared fixtures: seeded synthetic panels, tiny settings, and a helper that runs the command line in-process."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewcast.cli import main
from fewcast.config import Settings
from fewcast.data import PanelData
from fewcast.panel import Panel


def make_frame(n_series: int = 12, min_len: int = 40, max_len: int = 70, seed: int = 0) -> pd.DataFrame:
    """A long frame (unique_id, ds, y) of seasonal series with trends, in shuffled row order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        n = int(rng.integers(min_len, max_len + 1))
        t = np.arange(n)
        y = 10 + i + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n)
        ds = pd.date_range("2020-01-01", periods=n, freq="MS")
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y}))
    frame = pd.concat(rows, ignore_index=True)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


def cli(*args) -> tuple[int, str, str]:
    """Run ``fewcast ARGS`` in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_cli():
    return cli


def seasonal_panel(n: int = 30, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    series = []
    for _ in range(n):
        t = np.arange(rng.integers(40, 61))
        series.append(50 + rng.uniform(5, 20) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6)) + 0.3 * t)
    return Panel.from_arrays(np.array([f"s{i:02d}" for i in range(n)]), series)


def tiny_settings(protocol: str = "holdout") -> Settings:
    return Settings.from_dict({
        "data": {"input_size": 12, "h": 6, "season_length": 12},
        "model": {"hidden": 16},
        "learner": {"name": "metasgd", "inner_steps": 1, "inner_lr": 0.01},
        "train": {"shots": 3, "val_frac": 0.2, "test_frac": 0.3, "iterations": 6, "pretrain_iterations": 6,
                  "meta_batch_size": 8, "val_every": 3},
        "eval": {"protocol": protocol, "classical": ["naive", "seasonal_naive", "theta"], "combine": ["theta"],
                 "curve_steps": 2,
                 "shots_curve": [0, 2], "plot_series": 2},
    })


def panel_data(poison: bool) -> PanelData:
    visible, horizon = seasonal_panel().split_last(6)
    if poison:  # a horizon no sane forecast could produce: if anything saw it, the outputs would change
        horizon = Panel(horizon.ids, np.full_like(horizon.values, 1e9), horizon.ds, horizon.offsets)
    return PanelData("synthetic", visible, horizon, 6, 12)


TRAIN_SETTINGS = ["--h", "6", "--input-size", "12", "--season-length", "12", "--hidden", "32", "--shots", "3",
            "--iterations", "60", "--pretrain-iterations", "40", "--meta-batch-size", "64", "--val-every", "10",
            "--checkpoint-every", "2", "--quiet"]


def fewcast(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fewcast", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "panel.csv"
    seasonal_panel(40).to_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def uninterrupted(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "straight"
    proc = fewcast("train", data, "--out", run, *TRAIN_SETTINGS)
    assert proc.returncode == 0, proc.stderr
    return run


TINY = dict(input_size=12, h=6, season_length=12, hidden=16, shots=3, iterations=6, pretrain_iterations=6,
            meta_batch_size=8, val_every=3, val_frac=0.2, test_frac=0.3, classical=["naive"], combine=[], curve_steps=1,
            shots_curve=[0, 2], plot_series=2)


def monthly_frame(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        length = int(rng.integers(40, 61))
        t = np.arange(length)
        y = 50 + rng.uniform(5, 20) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6)) + 0.3 * t
        start = pd.Timestamp("2015-01-01") + pd.DateOffset(months=int(rng.integers(0, 24)))
        rows.append(pd.DataFrame({"store": f"s{i:02d}", "month": pd.date_range(start, periods=length, freq="MS"),
                                  "sales": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="session")
def fitted():
    """A forecaster fitted on 30 monthly series (renamed columns), and its frame."""
    from fewcast import FewShotForecaster

    frame = monthly_frame()
    fc = FewShotForecaster(model="mlp", learner="metasgd", **TINY).fit(frame, "store", "month", "sales")
    return fc, frame
