"""Fuzzed long frames through validate, train and forecast: each command succeeds with finite forecasts for
every series, or exits with status 2 and one line; never a traceback, a NaN written, or a half-written file.

The frames mix what real files hold: ids of any text (unicode, commas, quotes, empty) or numbers, dates and
integer steps with gaps, duplicates and stray text, values with NaN, infinities, huge and tiny magnitudes,
negative numbers, constant and all-zero series, series of one point. ``make test`` runs a few dozen frames;
``FEWCAST_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py`` runs a longer search.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import cli

EXAMPLES = int(os.environ.get("FEWCAST_FUZZ_EXAMPLES", "40"))
TRAIN = ["--h", "2", "--hidden", "8", "--iterations", "2", "--pretrain-iterations", "2", "--meta-batch-size", "4",
         "--val-every", "1", "--quiet"]

ids = st.one_of(st.text(min_size=1, max_size=6), st.sampled_from(["a,b", 'say "hi"', " ", "é", "🙂", "NA", "None"]),
                st.integers(-5, 5))
ODD = [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, 0.0, -5.0, 1e12]  # values a real file may hold


@st.composite
def series(draw, kind: str) -> pd.DataFrame:
    """One series: its times as ``kind`` (monthly dates, daily dates, integer steps) with gaps and duplicates."""
    shape = draw(st.sampled_from(["seasonal", "seasonal", "random", "constant", "zero", "negative"]))
    n = draw(st.sampled_from([1, 2, 5, 20, 40, 40, 60, 60]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    t = np.arange(n)
    level, scale = draw(st.floats(-1e3, 1e3)), draw(st.sampled_from([1e-6, 1.0, 1e3, 1e8]))
    y = {"seasonal": level + scale * (np.sin(2 * np.pi * t / 12) + 0.3 * rng.normal(size=n)),
         "random": level + scale * rng.normal(size=n),
         "constant": np.full(n, level),
         "zero": np.zeros(n),
         "negative": -scale * rng.gamma(2.0, size=n)}[shape]
    if draw(st.integers(0, 3)) == 0:  # a few odd values
        for at in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            y[at] = draw(st.sampled_from(ODD))
    gaps = [0] * 12 + [1, 3] if draw(st.integers(0, 3)) == 0 else [0]
    steps = np.arange(n) + np.cumsum(draw(st.lists(st.sampled_from(gaps), min_size=n, max_size=n)))
    if n > 1 and draw(st.integers(0, 19)) == 0:  # a duplicated time stamp
        steps[-1] = steps[0]
    if kind == "month":
        ds = [pd.Timestamp("2019-01-01") + pd.DateOffset(months=int(k)) for k in steps]
    elif kind == "day":
        ds = list(pd.Timestamp("2021-03-01") + pd.to_timedelta(steps, "D"))
    else:
        ds = [int(k) for k in steps]
    if draw(st.integers(0, 59)) == 0:  # a stray text time stamp
        ds[draw(st.integers(0, n - 1))] = draw(st.sampled_from(["soon", "", "2020-13-45"]))
    return pd.DataFrame({"ds": ds, "y": y})


@st.composite
def frames(draw) -> pd.DataFrame:
    kind = draw(st.sampled_from(["month", "day", "step"]))
    names = draw(st.lists(ids, min_size=1, max_size=8, unique_by=lambda i: str(i).strip()))
    if draw(st.integers(0, 19)) == 0:  # a row without an id
        names.append("")
    parts = [draw(series(kind)).assign(unique_id=name) for name in names]
    frame = pd.concat(parts, ignore_index=True)[["unique_id", "ds", "y"]]
    return frame.sample(frac=1.0, random_state=draw(st.integers(0, 9))).reset_index(drop=True)


def one_line_error(command: str, code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith(f"fewcast {command}: error: "), err


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(frame=frames())
def test_fuzzed_frames_forecast_or_fail_with_one_line(frame, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    data, run, out = folder / "panel.csv", folder / "run", folder / "forecasts.csv"
    frame.to_csv(data, index=False)
    fill = ["--fill"] if len(frame) % 2 else []  # half the frames with gaps filled, half refused
    code, _, err = cli("validate", data, "--h", "2", *fill)
    if code != 0:
        one_line_error("validate", code, err)
    code, _, err = cli("train", data, "--out", run, *TRAIN, *fill)
    if code != 0:
        one_line_error("train", code, err)
        return
    code, _, err = cli("forecast", run, "--data", data, "--out", out)
    if code != 0:
        one_line_error("forecast", code, err)
        assert not out.exists()
        return
    forecasts = pd.read_csv(out, keep_default_na=False, na_values=[])
    numbers = forecasts.drop(columns=["unique_id", "ds"]).apply(pd.to_numeric, errors="coerce")
    assert np.isfinite(numbers.to_numpy()).all(), forecasts
    assert (forecasts.groupby("unique_id").size() == 2).all()
    assert not list(folder.glob(".*.tmp*")) and not list(run.glob(".*.tmp*"))
