"""Shared fixtures: a seeded synthetic panel and a helper that runs the command line in-process."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from fewcast.cli import main


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
