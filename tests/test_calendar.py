"""Calendar arithmetic: frequencies, season lengths, gaps and future time stamps."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from fewcast.calendar import future_times, guess_season, infer_freq, time_crowded, time_gaps
from fewcast.errors import InputError
from fewcast.frame import from_frame


def _gaps_by_loop(frame: pd.DataFrame, freq) -> int:
    """The reference for ``time_gaps``, one step at a time: with a calendar frequency a gap when the next
    stamp is two periods on or more, with a fixed-length one when it is more than 1.5 periods on."""
    step = pd.tseries.frequencies.to_offset(freq) if isinstance(freq, str) else freq
    fixed = isinstance(step, (int, pd.tseries.offsets.Tick))
    count = 0
    for _, g in frame.sort_values(["unique_id", "ds"]).groupby("unique_id"):
        t = list(g["ds"])
        for a, b in itertools.pairwise(t):
            count += (b - a > 1.5 * step) if fixed else (b >= a + 2 * step)
    return count


@pytest.mark.parametrize("freq, mid_month", [("MS", False), ("MS", True), ("B", False), ("W-SUN", False),
                                             ("QS", False), ("h", False), (7, False)])
def test_time_gaps_match_a_loop(freq, mid_month):
    """Months of 28-31 days, weekends in business days and stamps anchored mid-period are regular; a
    skipped period is a gap, counted exactly as a step-by-step loop counts it."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(6):
        if isinstance(freq, int):
            ds = 3 + freq * np.arange(40)
        else:
            ds = pd.date_range("2020-01-01", periods=40, freq=freq)
            if mid_month:  # the 15th of each month: anchored elsewhere in the period
                ds = ds + pd.Timedelta(days=14)
        keep = rng.random(40) > (0.15 if i % 2 else 0.0)  # odd series lose some rows
        rows.append(pd.DataFrame({"unique_id": f"u{i}", "ds": ds[keep], "y": rng.random(keep.sum())}))
    full = pd.concat(rows, ignore_index=True)
    even = full[full.unique_id.isin(["u0", "u2", "u4"])]
    panel = from_frame(even)  # regular series pass
    if mid_month:
        assert panel.freq == "MS"  # calendar months, each stamp keeping its day (the 15th)
    assert _gaps_by_loop(even, panel.freq) == 0
    expected = _gaps_by_loop(full, panel.freq)
    assert expected > 0
    offsets = np.concatenate([[0], np.cumsum(full.groupby("unique_id").size().to_numpy())])
    ordered = full.sort_values(["unique_id", "ds"])
    ds = ordered["ds"].to_numpy()
    if ds.dtype.kind == "M":
        ds = ds.astype("datetime64[ns]")
    assert int(time_gaps(ds, offsets, panel.freq).sum()) == expected
    with pytest.raises(InputError, match=rf"column 'ds': {expected} gaps? in the time stamps of series "):
        from_frame(full)


def _panel_of(stamps: list) -> tuple[np.ndarray, np.ndarray]:
    ds = np.concatenate([pd.DatetimeIndex(s).to_numpy(dtype="datetime64[ns]") for s in stamps])
    return ds, np.concatenate([[0], np.cumsum([len(s) for s in stamps])])


@pytest.mark.parametrize("stamps, freq", [
    # a holiday in every series: business days, not days (whose weekends would be gaps)
    ([pd.bdate_range("2024-01-01", periods=60).delete(k) for k in (20, 33, 41)], "B"),
    # a missing month in every series: months, not 31 days
    ([pd.date_range("2015-01-01", periods=60, freq="MS").delete(k) for k in (10, 30)], "MS"),
    ([pd.date_range("2024-01-07", periods=50, freq="W-SUN").delete([5, 30])], "W-SUN"),
    # anchored inside the period, which pandas does not name
    ([pd.date_range("2020-01-01", periods=30, freq="MS") + pd.Timedelta(days=14)], "MS"),
    ([pd.date_range("2020-02-01", periods=20, freq="QS-FEB") + pd.Timedelta(days=9)], "QS-FEB"),
    ([pd.date_range("2000-03-01", periods=20, freq="YS-MAR") + pd.Timedelta(days=4)], "YS-MAR"),
])
def test_infer_freq_through_gaps_holidays_and_mid_period_anchors(stamps, freq):
    assert infer_freq(*_panel_of(stamps)) == freq


@pytest.mark.parametrize("stamps, freq, future", [
    (["2021-03-31", "2021-04-30"], "ME", ["2021-05-31", "2021-06-30", "2021-07-31"]),
    (["2021-01-31", "2021-02-28"], "ME", ["2021-03-31", "2021-04-30", "2021-05-31"]),
    (["2021-03-31", "2021-06-30"], "QE-DEC", ["2021-09-30", "2021-12-31", "2022-03-31"]),
    (["2019-02-28", "2020-02-29"], "YE-FEB", ["2021-02-28", "2022-02-28", "2023-02-28"]),
    (["2021-03-30", "2021-04-30"], "MS", ["2021-05-30", "2021-06-30", "2021-07-30"]),  # the 30th: kept
])
def test_two_stamps_at_month_ends_forecast_at_month_ends(stamps, freq, future):
    """Series of two stamps are too short for pandas' guess: a typical step of a month, a quarter or a year
    between month ends is end-anchored, so that forecasts stay at month ends."""
    panel = from_frame(pd.DataFrame({"unique_id": "a", "ds": pd.to_datetime(stamps), "y": [1.0, 2.0]}))
    assert panel.freq == freq
    assert [str(t)[:10] for t in future_times(panel, 3)[0]] == future


def test_season_and_forecast_dates_of_mid_period_stamps():
    """Stamps on the 15th are monthly data (season 12), and their forecasts fall on the 15th; month ends
    stay month ends, and a weekly series keeps its weekday."""
    mid = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS")
                        + pd.Timedelta(days=14), "y": 1.0})
    panel = from_frame(mid)
    assert guess_season(panel.freq) == 12
    assert [str(t)[:10] for t in future_times(panel, 3)[0]] == ["2022-07-15", "2022-08-15", "2022-09-15"]
    ends = pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2020-01-31", periods=25, freq="ME"), "y": 1.0})
    assert [str(t)[:10] for t in future_times(from_frame(ends), 3)[0]] == ["2022-02-28", "2022-03-31", "2022-04-30"]
    sundays = [pd.DataFrame({"unique_id": f"c{i}", "ds": pd.date_range("2024-01-07", periods=30, freq="W-SUN"),
                             "y": 1.0}) for i in range(3)]
    mondays = pd.DataFrame({"unique_id": "d", "ds": pd.date_range("2024-01-01", periods=20, freq="W-MON"), "y": 1.0})
    weeks = from_frame(pd.concat([*sundays, mondays]))
    assert weeks.freq == "W-SUN"  # most long series say
    assert [str(t)[:10] for t in future_times(weeks, 2)[3]] == ["2024-05-20", "2024-05-27"]  # still Mondays


@pytest.mark.parametrize("freq, faster", [("MS", "W-SUN"), ("W-SUN", "D"), ("B", "h"), ("h", "30min"), ("QS", "MS"),
                                          (7, 1)])
def test_a_series_at_a_higher_frequency_than_the_panel_is_refused(freq, faster):
    """Every step of the faster series is flagged, none of the panel's (regular ones, as in the test above),
    and from_frame refuses the panel naming that series."""
    def stamps(f, start):
        return start + f * np.arange(40) if isinstance(f, int) else pd.date_range("2020-01-01", periods=40, freq=f)

    rows = [pd.DataFrame({"unique_id": u, "ds": stamps(f, 3), "y": 1.0})
            for u, f in (("a", freq), ("b", freq), ("c", freq), ("fast", faster))]
    frame = pd.concat(rows, ignore_index=True)
    ds = frame["ds"].to_numpy()
    if ds.dtype.kind == "M":
        ds = ds.astype("datetime64[ns]")
    offsets = np.arange(0, 161, 40)
    crowded = time_crowded(ds, offsets, infer_freq(ds[:120], offsets[:4]))
    assert np.array_equal(np.flatnonzero(crowded), np.arange(120, 159))  # the fast series' 39 steps
    with pytest.raises(InputError, match=r"column 'ds': the time stamps of series 'fast' \(1 series\) are closer"):
        from_frame(frame)
