"""Reading long frames and files into a Panel, and every bad input's one-line error."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fewcast.calendar import future_times
from fewcast.errors import InputError, PanelWarning
from fewcast.frame import from_frame, read_panel


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
    daily = f.copy()  # series s09 a day apart in a monthly panel
    s09 = daily.unique_id == "s09"
    daily.loc[s09, "ds"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(daily[s09].ds.rank().to_numpy() - 1, "D")
    halves = f.assign(ds=f.groupby("unique_id").ds.rank().astype(float))  # integer steps 1.0, 2.0, ...
    halves.loc[halves.index[halves.unique_id == "s01"][3], "ds"] += 0.5
    return {
        "missing column": (f.drop(columns="y"), r"missing column 'y' \(columns found: unique_id, ds\)"),
        "non-numeric y": (nonnum, r"column 'y' has non-numeric values \(e.g. 'n/a'\) in series 's04'"),
        "boolean y": (boolean, "column 'y' is boolean"),
        "NaN y": (nan, r"column 'y' has \d+ NaN or infinite values in series 's07' .*`fill=True`"),
        "infinite y": (inf, r"column 'y' has 1 NaN or infinite values in series 's08'"),
        "duplicates": (dup, r"column 'ds': 2 duplicate \(unique_id, ds\) rows in series 's03'"),
        "unparseable ds": (bad_ds, r"column 'ds' has values that are not dates .*'not a date'.* 's02'"),
        "mixed ds": (mixed_ds, r"column 'ds' has a mix of plain numbers and dates .*'s06'"),
        "gap in ds": (gap, r"column 'ds': 1 gap in the time stamps of series 's05' \(1 series\) \(e.g. "
                           r"2020-10-01 then 2021-01-01, at a frequency of MS \(monthly\)\); .*`fill=True`"),
        "crowded ds": (daily, r"column 'ds': the time stamps of series 's09' \(1 series\) are closer together than "
                              r"the panel's frequency of MS \(monthly\) \(e.g. 2020-01-01 then 2020-01-02\)"),
        "fractional ds": (halves, r"column 'ds' has fractional time steps \(e.g. \d+\.5\) in series 's01' "
                                  r"\(1 series\)$"),
    }


BAD_CASES = ["missing column", "non-numeric y", "boolean y", "NaN y", "infinite y", "duplicates",
             "unparseable ds", "mixed ds", "gap in ds", "crowded ds", "fractional ds"]


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
    assert "`" not in err  # a setting the error names is spelled as its flag


def test_frames_a_csv_cannot_hold(frame):
    """An id in the index, a column given twice and targets that are not real numbers: one line saying so."""
    with pytest.raises(InputError, match=r"missing column 'unique_id' .*it is in the frame's index: move it to a "
                                         r"column with `df.reset_index\(\)`"):
        from_frame(frame.set_index("unique_id"))
    with pytest.raises(InputError, match=r"missing column 'unique_id' \(columns found: y\); it is in the frame"):
        from_frame(frame.set_index(["unique_id", "ds"]))
    with pytest.raises(InputError, match=r"column 'y' appears 2 times in the frame; keep one of them"):
        from_frame(pd.concat([frame, frame[["y"]]], axis=1))
    for values in (pd.to_timedelta(frame["y"], "s"), frame["y"] + 1j):
        with pytest.raises(InputError, match=r"column 'y' holds .* values; the target must be real numbers"):
            from_frame(frame.assign(y=values))


@pytest.mark.parametrize("freq, first, read", [("W-SUN", "2014-12-29", "W-MON"), ("Q-NOV", "2014-12-01", "QS-DEC"),
                                               ("Y", "2015-01-01", "YS-JAN"), ("M", "2015-01-01", "MS")])
def test_periods_are_read_by_their_first_day(freq, first, read):
    panel = from_frame(pd.DataFrame({"unique_id": "a", "ds": pd.period_range("2015-01", periods=30, freq=freq),
                                     "y": np.arange(30.0)}))
    assert str(panel.ds[0])[:10] == first and panel.freq == read


def test_dates_written_as_yyyymmdd_numbers_are_dates():
    """As integers, floats or text: dates, with a warning, even within one month (a new series' few days);
    integer steps that are not all such dates stay steps."""
    stamps = pd.date_range("2015-01-01", periods=40, freq="MS")
    for ds in (stamps.strftime("%Y%m%d"), stamps.strftime("%Y%m%d").astype(int),
               stamps.strftime("%Y%m%d").astype(float)):
        with pytest.warns(PanelWarning, match=r"column 'ds': numbers such as 20150101 read as dates written "
                                              r"YYYYMMDD \(2015-01-01\)"):
            panel = from_frame(pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(40.0)}))
        assert panel.freq == "MS" and (panel.ds == stamps.to_numpy()).all()
    with pytest.warns(PanelWarning, match="read as dates written YYYYMMDD"):
        days = from_frame(pd.DataFrame({"unique_id": "a", "ds": np.arange(20240125, 20240132), "y": np.arange(7.0)}))
    assert days.freq == "D" and str(future_times(days, 2)[0, 1])[:10] == "2024-02-02"
    steps = from_frame(pd.DataFrame({"unique_id": "a", "ds": np.arange(20150101, 20150141), "y": np.arange(40.0)}))
    assert steps.freq == 1 and steps.ds[0] == 20150101  # 20150132 is no date


def test_columns_fewcast_does_not_use_are_named(frame):
    with pytest.warns(PanelWarning, match=r"columns price, promo not used: each series is forecast from its own "
                                          r"values \(no exogenous features\)"):
        panel = from_frame(frame.assign(price=1.0, promo=0))
    assert panel.n_series == from_frame(frame).n_series
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_frame(frame)  # the three columns alone: no warning


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
