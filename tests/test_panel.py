"""The long-frame contract: validation into a Panel, and every bad input's one-line error."""

from __future__ import annotations

import itertools
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from fewcast.errors import InputError, PanelWarning
from fewcast.experiment import guess_season
from fewcast.forecaster import future_times
from fewcast.panel import Panel, _interpolate, concat_ranges, from_frame, infer_freq, read_panel, time_gaps


def test_concat_ranges_matches_loop():
    starts, lengths = np.array([5, 0, 10, 3]), np.array([3, 0, 2, 1])
    expected = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    np.testing.assert_array_equal(concat_ranges(starts, lengths), expected)


def test_from_frame_sorts_and_offsets(frame):
    panel = from_frame(frame)
    assert list(panel.ids) == sorted(frame["unique_id"].unique())
    assert panel.values.dtype == np.float32 and panel.values.flags["C_CONTIGUOUS"]
    for i, uid in enumerate(panel.ids):
        expected = frame[frame.unique_id == uid].sort_values("ds")
        np.testing.assert_allclose(panel.series(i), expected["y"].to_numpy(np.float32))
        np.testing.assert_array_equal(panel.times(i), expected["ds"].to_numpy())
    assert panel.offsets[-1] == len(frame)
    assert panel.freq == "MS"


def test_renamed_columns_round_trip(frame):
    renamed = frame.rename(columns={"unique_id": "id", "ds": "date", "y": "realValue"})
    panel = from_frame(renamed, id_col="id", time_col="date", target_col="realValue")
    back = panel.to_frame()
    assert list(back.columns) == ["id", "date", "realValue"]
    assert len(back) == len(frame)


def test_integer_time_and_text_dates(tmp_path, frame):
    ints = frame.assign(ds=frame.groupby("unique_id").cumcount() + 1)
    assert from_frame(ints).freq == 1
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)  # dates become text in the file
    panel = read_panel(path)
    assert panel.ds.dtype.kind == "M" and panel.n_series == 12


def test_parquet_file(tmp_path, frame):
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    panel = read_panel(path)
    np.testing.assert_allclose(panel.values, from_frame(frame).values)


def zoned_frame(freq: str, periods: int, tz: str, start: str = "2019-10-01") -> pd.DataFrame:
    """Two series over the same stamps in ``tz``, across changes of clock."""
    ds = pd.date_range(start, periods=periods, freq=freq, tz=tz)
    return pd.DataFrame({"unique_id": np.repeat(["a", "b"], periods), "ds": np.tile(ds, 2),
                         "y": np.arange(2 * periods, dtype=float)})


def test_zoned_calendar_stamps_stay_on_the_calendar(tmp_path):
    # Paris month starts: in UTC they fall at 23:00 or 22:00 the day before; held as wall-clock times they
    # are month starts, and they come back in their zone
    frame = zoned_frame("MS", 30, "Europe/Paris")
    panel = from_frame(frame)
    assert panel.freq == "MS" and panel.zone.wall
    np.testing.assert_array_equal(panel.times(0), pd.date_range("2019-10-01", periods=30, freq="MS").to_numpy())
    pd.testing.assert_series_equal(panel.to_frame()["ds"], frame["ds"])
    # the same data written to CSV: text with +01:00 and +02:00 offsets, no zone name; its wall-clock
    # times are kept (and written back without an offset: which zone it was is not in the file)
    path = tmp_path / "paris.csv"
    frame.to_csv(path, index=False)
    text = read_panel(path)
    assert text.freq == "MS" and text.zone is None
    np.testing.assert_array_equal(text.ds, panel.ds)
    # one offset only: a fixed zone, given back
    tokyo = zoned_frame("D", 40, "Asia/Tokyo")
    tokyo.to_csv(path, index=False)
    panel = read_panel(path)
    assert panel.freq == "D" and str(panel.to_frame()["ds"].iloc[0]) == "2019-10-01 00:00:00+09:00"
    np.testing.assert_array_equal(panel.times(1), pd.date_range("2019-10-01", periods=40, freq="D").to_numpy())


def test_zoned_hourly_stamps_are_held_in_utc(tmp_path):
    # hourly across the end of summer time: 02:00 comes twice on the wall clock, so the hours are held in
    # UTC, where they are regular (no duplicate, no gap), and come back in their zone
    frame = zoned_frame("h", 72, "Europe/Paris", start="2019-10-26")
    panel = from_frame(frame)
    assert panel.freq == "h" and not panel.zone.wall
    np.testing.assert_array_equal(np.diff(panel.times(0)), np.full(71, np.timedelta64(1, "h")))
    pd.testing.assert_series_equal(panel.to_frame()["ds"], frame["ds"])
    path = tmp_path / "hours.csv"
    frame.to_csv(path, index=False)
    text = read_panel(path)  # several offsets, no zone name: UTC, given back as UTC
    np.testing.assert_array_equal(text.ds, panel.ds)
    assert (text.to_frame()["ds"] == frame["ds"]).all()
    # seconds and fractions of a second survive the offset's removal
    odd = frame.assign(ds=frame["ds"].dt.strftime("%Y-%m-%dT%H:%M:07.250%z"))
    np.testing.assert_array_equal(from_frame(odd).ds, panel.ds + np.timedelta64(7250, "ms"))


@pytest.mark.parametrize("texts, first_day, warned", [
    ([f"01/{m:02d}/2020" for m in range(1, 13)], "2020-01-01", "read day-first (01/02/2020 is 1 February 2020)"),
    ([f"{m:02d}/01/2020" for m in range(1, 13)], "2020-01-01", "read month-first (02/01/2020 is 1 February 2020)"),
    ([f"01.{m:02d}.2020 00:00" for m in range(1, 13)], "2020-01-01", "read day-first"),
    ([f"{d:02d}/03/2020" for d in range(1, 29)], "2020-03-01", None),  # a day above 12: day-first, no doubt
    ([f"03/{d:02d}/2020" for d in range(1, 29)], "2020-03-01", None),  # month-first, no doubt
])
def test_day_first_or_month_first(texts, first_day, warned):
    # European monthly dates on the 1st used to be read month-first: 12 days of January, then gaps
    frame = pd.DataFrame({"unique_id": "a", "ds": texts, "y": np.arange(len(texts), dtype=float)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = from_frame(frame)
    expected = pd.date_range(first_day, periods=len(texts), freq="MS" if len(texts) == 12 else "D")
    np.testing.assert_array_equal(panel.ds, expected.to_numpy())
    messages = [str(w.message) for w in caught if issubclass(w.category, PanelWarning)]
    assert (messages == []) if warned is None else (len(messages) == 1 and warned in messages[0])


def test_stamps_with_and_without_offsets_are_refused():
    frame = zoned_frame("MS", 24, "Europe/Paris").astype({"ds": str})
    frame.loc[30, "ds"] = "2020-05-01 00:00:00"
    with pytest.raises(InputError, match=r"column 'ds' has a mix of time stamps with and without a UTC offset "
                                         r"\(e.g. '2020-05-01 00:00:00'\) in series 'b'"):
        from_frame(frame)


def test_fill_interpolates(frame):
    panel = from_frame(frame)
    broken = panel.to_frame()
    row = panel.offsets[3] + 5
    truth = (broken.loc[row - 1, "y"] + broken.loc[row + 1, "y"]) / 2
    broken.loc[row, "y"] = np.nan
    with pytest.warns(PanelWarning, match="interpolated 1"):
        filled = from_frame(broken, fill=True)
    assert filled.values[row] == pytest.approx(truth, rel=1e-5)


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


def test_fill_inserts_missing_time_stamps(frame):
    panel = from_frame(frame)
    rows = panel.to_frame()
    i = panel.offsets[4] + 7  # series s04 loses two consecutive months
    truth = rows.loc[[i - 1, i, i + 1, i + 2], "y"].to_numpy()
    holed = rows.drop(index=[i, i + 1])
    with pytest.warns(PanelWarning) as record:
        filled = from_frame(holed, fill=True)
    assert [str(w.message) for w in record] == [
        "inserted 2 missing time stamps of 'ds' in 's04' (1 series)",
        "interpolated 2 missing, NaN or infinite values of 'y' in 's04' (1 series)"]
    np.testing.assert_array_equal(filled.lengths, panel.lengths)
    np.testing.assert_array_equal(filled.ds, panel.ds)
    a, b = truth[0], truth[3]  # linear between the neighbours of the hole
    np.testing.assert_allclose(filled.values[i : i + 2], [a + (b - a) / 3, a + 2 * (b - a) / 3], rtol=1e-5)
    others = np.ones(len(panel.values), bool)
    others[i : i + 2] = False
    np.testing.assert_array_equal(filled.values[others], panel.values[others])


def test_fill_refuses_stamps_off_the_grid():
    ds = list(pd.date_range("2020-01-01", periods=30, freq="MS"))
    ds[20] = pd.Timestamp("2020-09-17")  # off the month-start grid, and a gap after it
    del ds[21:23]
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(len(ds), dtype=float)})
    regular = pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"),
                            "y": 1.0})
    with pytest.raises(InputError, match=r"series 'a' \(1 series\) are not on one MS \(monthly\) grid"):
        from_frame(pd.concat([frame, regular]), fill=True)


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


@pytest.mark.parametrize("freq, shift", [("MS", 0), ("MS", 14), ("ME", 0), ("QS-FEB", 9), ("QE-DEC", 0),
                                         ("YS-JUL", 3), ("B", 0), ("W-WED", 0), ("D", 0), ("h", 0),
                                         ("15min", 0), (7, 0)])
def test_fill_restores_every_missing_stamp(freq, shift):
    """Rows dropped at random from 30 regular series (the first and last kept) come back exactly, for every
    kind of period: calendar months (anchored on the 1st, the 15th or the month's end), quarters, years,
    business days, weeks, fixed lengths and integer steps."""
    rng = np.random.default_rng(5)
    full, holed = [], []
    for i in range(30):
        n = int(rng.integers(8, 60))
        if isinstance(freq, int):
            ds = 3 + i + freq * np.arange(n)
        else:
            ds = pd.date_range(pd.Timestamp("2001-01-01") + pd.Timedelta(days=11 * i), periods=n, freq=freq)
            ds = ds + pd.Timedelta(days=shift)
        keep = rng.random(n) > 0.2
        keep[[0, -1]] = True
        full.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": 1.0 + np.arange(n)}))
        holed.append(full[-1][keep])
    with pytest.warns(PanelWarning) as record:
        filled = from_frame(pd.concat(holed), fill=True)
    assert [str(w.message).split()[0] for w in record] == ["inserted", "interpolated"]
    expected = from_frame(pd.concat(full))
    np.testing.assert_array_equal(filled.ds, expected.ds)
    np.testing.assert_allclose(filled.values, expected.values, rtol=1e-6)  # a straight line interpolates exactly


def test_interpolation_matches_pandas_series_by_series():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 12, 300)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    codes = np.repeat(np.arange(300), lengths)
    y, good = rng.random(offsets[-1]), rng.random(offsets[-1]) > 0.4
    reference = (pd.DataFrame({"g": codes, "y": np.where(good, y, np.nan)}).groupby("g")["y"]
                 .transform(lambda s: s.interpolate(limit_direction="both")).to_numpy())
    got = _interpolate(y, good, offsets[codes], offsets[codes + 1])
    assert np.isnan(reference).sum() > 0  # some series have no good row at all
    np.testing.assert_array_equal(np.isnan(got), np.isnan(reference))
    np.testing.assert_allclose(got[~np.isnan(got)], reference[~np.isnan(reference)])


def test_short_series_dropped_with_count(frame):
    short = pd.DataFrame({"unique_id": ["tiny"] * 3, "ds": pd.date_range("2020", periods=3, freq="MS"),
                          "y": [1.0, 2.0, 3.0]})
    with pytest.warns(PanelWarning, match=r"dropped 1 of 13 series shorter than 20 .*'tiny'"):
        panel = from_frame(pd.concat([frame, short]), min_length=20)
    assert "tiny" not in panel.ids and panel.n_series == 12
    with pytest.raises(InputError, match="every series is shorter than 500"):
        from_frame(frame, min_length=500)


def test_take_slice_split(frame):
    panel = from_frame(frame)
    head, tail = panel.split_last(5)
    assert np.all(tail.lengths == 5) and np.all(head.lengths == panel.lengths - 5)
    np.testing.assert_array_equal(tail.series(2), panel.series(2)[-5:])
    sub = panel.select(["s05", "s01"])
    np.testing.assert_array_equal(sub.series(0), panel.series(5))
    with pytest.raises(InputError, match="unknown series 'nope'"):
        panel.select(["nope"])


def test_from_arrays_sorts_ids():
    panel = Panel.from_arrays(np.array(["b", "a"]), [np.ones(3), np.zeros(4)])
    assert list(panel.ids) == ["a", "b"]
    np.testing.assert_array_equal(panel.series(0), np.zeros(4))
    np.testing.assert_array_equal(panel.times(1), [1, 2, 3])


# -- every bad input: its error through the API and exit code 2 through `fewcast validate` ----------

def _bad_inputs(frame: pd.DataFrame) -> dict:
    f = frame.copy()
    dup = pd.concat([f, f[f.unique_id == "s03"].head(2)])
    nonnum = f.astype({"y": object})
    nonnum.loc[nonnum.unique_id == "s04", "y"] = "n/a"
    boolean = f.assign(y=f.y > 10)
    nan = f.copy()
    nan.loc[nan.unique_id == "s07", "y"] = np.nan
    inf = f.copy()
    inf.loc[inf.index[inf.unique_id == "s08"][0], "y"] = np.inf
    bad_ds = f.astype({"ds": str})
    bad_ds.loc[bad_ds.index[bad_ds.unique_id == "s02"][0], "ds"] = "not a date"
    mixed_ds = f.astype({"ds": str})
    mixed_ds.loc[mixed_ds.index[mixed_ds.unique_id == "s06"][:3], "ds"] = "17"
    s05 = f[f.unique_id == "s05"].sort_values("ds")
    gap = f.drop(index=s05.index[10:12])  # two months missing inside s05
    return {
        "missing column": (f.drop(columns="y"), r"missing column 'y' \(columns found: unique_id, ds\)"),
        "non-numeric y": (nonnum, r"column 'y' has non-numeric values \(e.g. 'n/a'\) in series 's04'"),
        "boolean y": (boolean, "column 'y' is boolean"),
        "NaN y": (nan, r"column 'y' has \d+ NaN or infinite values in series 's07' .*--fill"),
        "infinite y": (inf, r"column 'y' has 1 NaN or infinite values in series 's08'"),
        "duplicates": (dup, r"column 'ds': 2 duplicate \(unique_id, ds\) rows in series 's03'"),
        "unparseable ds": (bad_ds, r"column 'ds' has values that are not dates .*'not a date'.* 's02'"),
        "mixed ds": (mixed_ds, r"column 'ds' has a mix of plain numbers and dates .*'s06'"),
        "gap in ds": (gap, r"column 'ds': 1 gap in the time stamps of series 's05' \(1 series\) \(e.g. "
                           r"2020-10-01 then 2021-01-01, at a frequency of MS \(monthly\)\); .*--fill"),
    }


BAD_CASES = ["missing column", "non-numeric y", "boolean y", "NaN y", "infinite y", "duplicates",
             "unparseable ds", "mixed ds", "gap in ds"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_frame(case, frame, tmp_path, run_cli):
    bad, pattern = _bad_inputs(frame)[case]
    with pytest.raises(InputError, match=pattern):
        from_frame(bad)
    path = tmp_path / "bad.parquet" if case == "boolean y" else tmp_path / "bad.csv"
    if path.suffix == ".csv":
        bad.to_csv(path, index=False)
    else:
        bad.to_parquet(path, index=False)
    code, out, err = run_cli("validate", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("fewcast validate: error: ")


def test_mixed_python_types_in_ds(frame):
    mixed = frame.astype({"ds": object})
    mixed.loc[mixed.index[mixed.unique_id == "s09"][0], "ds"] = 5
    with pytest.raises(InputError, match=r"column 'ds' has mixed value types .*'s09'"):
        from_frame(mixed)


def test_many_bad_ids_are_counted(frame):
    nan = frame.assign(y=np.nan)
    with pytest.raises(InputError, match=r"'s00', 's01', 's02', 's03', 's04' and 7 more \(12 series\)"):
        from_frame(nan)


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("empty.csv", b"", "is an empty file"),
        ("header.csv", b"unique_id,ds,y\n", "has no rows"),
        ("data.xlsx", b"PK\x03\x04", r"is not a CSV or Parquet file \(extension '.xlsx'\)"),
        ("fake.parquet", b"not parquet at all", "could not be read as Parquet"),
        ("binary.csv", b"\xff\xfe\x00\x81\x00" * 50, "could not be read as CSV"),
    ],
)
def test_bad_files(name, content, pattern, tmp_path, run_cli):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=pattern):
        read_panel(path)
    code, _out, err = run_cli("validate", path)
    assert code == 2 and err.count("\n") == 1 and pattern.split("\\")[0].split("(")[0].strip() in err


def test_missing_path(tmp_path, run_cli):
    code, _, err = run_cli("validate", tmp_path / "nope.csv")
    assert code == 2 and "no such file" in err


def test_too_short_through_cli(frame, tmp_path, run_cli):
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_cli("validate", path, "--input-size", "200", "--h", "1")
    assert code == 2 and "every series is shorter than 201 points" in err
    code, out, err = run_cli("validate", path, "--input-size", "45", "--h", "5")
    assert code == 0 and "warning: dropped" in err and "series:     " in out


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
